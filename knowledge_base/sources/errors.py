"""The error every importer raises for input it cannot use."""

from __future__ import annotations

from pathlib import Path

from crowddesk.errors import Rejected


class KBImportError(Rejected, ValueError):
    """A source file that cannot be imported; `line` is 1-based, None for whole-file problems."""

    def __init__(self, path: Path, line: int | None, message: str) -> None:
        super().__init__(path, line, message)  # all three in args, so the error pickles
        self.path = path
        self.line = line
        self.message = message

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.message}"
