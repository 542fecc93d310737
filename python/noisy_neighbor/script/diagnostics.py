"""Errors in a script, located and printed the way bpftrace prints them::

    stdin:1:9-12: ERROR: Unknown function: foo
    BEGIN { foo(); }
            ~~~

A :class:`Location` is on every syntax node; every pass raises
:class:`~noisy_neighbor.errors.ScriptError` holding one or more
:class:`Diagnostic`, whose text is exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ScriptError

__all__ = ["Diagnostic", "Location", "Source", "fail"]


@dataclass(frozen=True)
class Location:
    """Where a node is: 1-based line and column of its first character, and
    the column just after its last one (on its first line)."""

    line: int
    column: int
    end_column: int

    def span(self, other: Location) -> Location:
        """From this node's start to ``other``'s end (on this line)."""
        end = other.end_column if other.line == self.line else self.end_column
        return Location(self.line, self.column, max(end, self.column + 1))


@dataclass(frozen=True)
class Source:
    """A script's text and the name bpftrace gives it in messages: ``stdin``
    for ``-e``, the file's path otherwise."""

    text: str
    name: str = "stdin"

    def line(self, number: int) -> str:
        lines = self.text.split("\n")
        return lines[number - 1] if 0 < number <= len(lines) else ""


@dataclass(frozen=True)
class Diagnostic:
    source: Source
    location: Location | None
    message: str
    severity: str = "ERROR"

    def __str__(self) -> str:
        if self.location is None:
            return f"{self.severity}: {self.message}"
        loc = self.location
        line = self.source.line(loc.line)
        width = max(loc.end_column - loc.column, 1)
        # bpftrace keeps tabs in the caret line so it lines up under the source.
        lead = "".join(c if c == "\t" else " " for c in line[: loc.column - 1])
        return (
            f"{self.source.name}:{loc.line}:{loc.column}-{loc.column + width}: "
            f"{self.severity}: {self.message}\n{line}\n{lead}{'~' * width}"
        )


def fail(source: Source, location: Location | None, message: str) -> ScriptError:
    """The error to raise for one problem at ``location``."""
    return ScriptError([Diagnostic(source, location, message)])
