"""Argument checkers shared by the ``noisy-neighbor`` subcommands."""

from __future__ import annotations

import argparse

__all__ = ["positive_float", "positive_int"]


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value
