"""The error raised for bad input files."""

from __future__ import annotations

from pathlib import Path

__all__ = ["InputError", "MissingImagesError", "check_input_file"]


class InputError(ValueError):
    """A user-supplied file or setting cannot be used.

    The message names the file (when there is one) and the problem, and is meant to be
    shown to the user as is (CLI: exit code 2; GUI: a notification).
    """

    def __init__(self, problem: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")


class MissingImagesError(InputError):
    """The image files a particle table names are not on this machine (its metadata may
    still be converted)."""


def check_input_file(path: Path, expected: str) -> None:
    """Raise :class:`InputError` unless ``path`` is an existing, non-empty, readable file.

    ``expected`` names what a directory was mistaken for (e.g. ``"a STAR file"``).
    """
    if not path.exists():
        raise InputError("file does not exist", path)
    if path.is_dir():
        raise InputError(f"is a directory, expected {expected}", path)
    if not path.is_file():
        raise InputError(f"is not a regular file (a pipe, device or socket), expected {expected}", path)
    try:
        size = path.stat().st_size
        with open(path, "rb"):
            pass
    except OSError as err:
        raise InputError(f"cannot be read ({err.strerror})", path) from err
    if size == 0:
        raise InputError("file is empty", path)
