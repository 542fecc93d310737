"""The one lifecycle of everything that loads programs (a plugin, the
run-queue probe, the agent to come). What each call does before start, while
running and after stop is the table under "Lifecycle" in the README, its one
place: ``start()`` twice raises :class:`ProbeStateError`, ``stop()`` is
idempotent, readings before start (or after ``close()``) raise, and
``batches()`` turns Ctrl-C into a stop that still delivers every batch made.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Lifecycle", "interrupt_stops"]


class Lifecycle:
    """``with`` support over ``start()``/``stop()``, for every probe."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def interrupt_stops(stop: Callable[[], None]) -> Iterator[None]:
    """While inside, Ctrl-C calls ``stop`` instead of raising
    KeyboardInterrupt, so a loop waiting for batches ends by draining what
    was already made instead of dropping the batch in hand. Only in the main
    thread, and only over Python's default handler (another handler, such as
    a test runner's, is left alone)."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return

    stopping: list[int] = []

    def on_interrupt(signum: int, frame: object) -> None:
        # A second Ctrl-C runs its handler inside the first's stop(), which
        # may hold a lock: calling stop() again there could deadlock.
        if stopping:
            return
        stopping.append(signum)
        stop()

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
