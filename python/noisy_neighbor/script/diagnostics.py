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
    the column just after its last one, on ``end_line`` (0: the same line)."""

    line: int
    column: int
    end_column: int
    end_line: int = 0

    @property
    def last_line(self) -> int:
        return self.end_line or self.line

    def span(self, other: Location) -> Location:
        """From this node's start to ``other``'s end."""
        if other.last_line == self.line:
            return Location(self.line, self.column, max(other.end_column, self.column + 1))
        if other.last_line < self.line:
            return self
        return Location(self.line, self.column, other.end_column, other.last_line)


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
        where = f"{self.source.name}:{loc.line}"
        if loc.last_line > loc.line:
            # bpftrace names only the lines of a node that spans several
            return f"{where}-{loc.last_line}: {self.severity}: {self.message}"
        header = f"{where}:{loc.column}-{loc.end_column}: {self.severity}: {self.message}"
        line = self.source.line(loc.line)
        if not line:
            return header
        # bpftrace prints a tab as four spaces, in the line and under it
        marks = "".join(
            (" " if x < loc.column - 1 else "~") * (4 if c == "\t" else 1)
            for x, c in enumerate(line[: loc.end_column - 1])
        )
        return f"{header}\n{line.replace(chr(9), '    ')}\n{marks}"


def fail(source: Source, location: Location | None, message: str) -> ScriptError:
    """The error to raise for one problem at ``location``."""
    return ScriptError([Diagnostic(source, location, message)])
