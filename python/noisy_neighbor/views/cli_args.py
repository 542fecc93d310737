"""The ``noisy-neighbor`` argument parser's rules, shared by its subcommands:
every bad argument is one line on stderr and exit status 1, and numbers are
checked for range (no NaN, no infinity) before anything loads."""

from __future__ import annotations

import argparse
import math
import sys
from typing import NoReturn

__all__ = ["MAX_SECONDS", "Parser", "listen_address", "positive_float", "positive_int"]

#: Longest interval or collection a flag takes: a day.
MAX_SECONDS = 86_400.0


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line and exit status 1, like every other
    error of the command (subcommands inherit it)."""

    def error(self, message: str) -> NoReturn:
        print(f"noisy-neighbor: error: {message} (see {self.prog} --help)", file=sys.stderr)
        if self.usage and "USAGE:" in self.usage:  # trace answers as bpftrace does
            print(self.usage.strip("\n"), file=sys.stderr)
        sys.exit(1)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds in (0, {MAX_SECONDS:g}], got {text}"
        )
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 0 < value < 2**31:
        raise argparse.ArgumentTypeError(f"must be between 1 and {2**31 - 1}, got {text}")
    return value


def listen_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9847`` for IPv6; port 0 picks a free one)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"must be HOST:PORT (e.g. 0.0.0.0:9847), got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"the port must be 0 to 65535, got {port!r} in {text!r}")
    return host, int(port)
