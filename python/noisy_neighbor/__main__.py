"""``python -m noisy_neighbor`` runs the CLI."""

import sys

from .cli import main

sys.exit(main())
