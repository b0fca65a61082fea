"""The error raised for bad input files."""

from __future__ import annotations

from pathlib import Path

__all__ = ["InputError"]


class InputError(ValueError):
    """A user-supplied file or setting cannot be used.

    The message names the file (when there is one) and the problem, and is meant to be
    shown to the user as is (CLI: exit code 2; GUI: a notification).
    """

    def __init__(self, problem: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")
