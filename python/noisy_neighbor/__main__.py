"""``python -m noisy_neighbor`` runs the CLI."""

import sys

from .views.cli import main

sys.exit(main())
