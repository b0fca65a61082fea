"""All-or-nothing output folders, one writer at a time.

A run writes its files into a hidden staging folder ``.staging-<pid>-*`` inside the output
folder and moves them into place only when every file is complete; on failure, Ctrl-C or
SIGTERM the staging folder is deleted. A run killed outright (SIGKILL, power loss) leaves
its staging folder behind: the next run into the same folder removes every staging
folder whose process is gone. While files are moved, the folder is locked (an advisory
``flock`` on the folder itself), so two runs into one folder never mix their files: each
run's set of files lands whole.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError

__all__ = ["remove_stale_staging", "staged_outputs"]

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_staging(out_dir: Path) -> list[Path]:
    """Delete the staging folders in ``out_dir`` whose process no longer runs; returns them."""
    removed = []
    for item in out_dir.glob(".staging-*"):
        parts = item.name.split("-")
        pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
        if item.is_dir() and (pid is None or not _alive(pid)):
            shutil.rmtree(item, ignore_errors=True)
            removed.append(item)
    return removed


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    fd = os.open(out_dir, os.O_RDONLY)  # the folder itself: no lock file is left behind
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(fd, fcntl.LOCK_EX)  # another run is moving its files: wait for it
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def staged_outputs(out_dir: str | Path) -> Iterator[Path]:
    """Yield a hidden staging folder inside ``out_dir``; on success move its files into
    ``out_dir`` (replacing same-named files, under the folder's lock), on failure delete it.

    A job that writes several files therefore leaves either all of them or none.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("exists and is not a directory", out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out_dir)
    stage = Path(tempfile.mkdtemp(prefix=f".staging-{os.getpid()}-", dir=out_dir))
    try:
        yield stage
        with _locked(out_dir):
            for item in sorted(stage.iterdir()):
                os.replace(item, out_dir / item.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
