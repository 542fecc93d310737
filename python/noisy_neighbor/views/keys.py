"""Quitting a live terminal view with a key press (``q``), without Enter."""

from __future__ import annotations

import contextlib
import select
import sys
import time
from collections.abc import Callable, Iterator

__all__ = ["quit_keys"]


@contextlib.contextmanager
def quit_keys(keys: str = "qQ") -> Iterator[Callable[[float], bool]]:
    """Yields ``pressed(timeout)``: waits up to ``timeout`` seconds and says
    whether a quit key was pressed. The terminal is put in cbreak mode (and
    restored) when stdin is one; otherwise it just sleeps."""
    if not sys.stdin.isatty():

        def sleep(timeout: float) -> bool:
            time.sleep(timeout)
            return False

        yield sleep
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:

        def pressed(timeout: float) -> bool:
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([fd], [], [], left)
                if ready and sys.stdin.read(1) in keys:
                    return True
            return False

        yield pressed
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
