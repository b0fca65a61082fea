"""All-or-nothing output folders."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["staged_outputs"]


@contextlib.contextmanager
def staged_outputs(out_dir: str | Path) -> Iterator[Path]:
    """Yield a hidden staging folder inside ``out_dir``; on success move its files into
    ``out_dir`` (replacing same-named files), on failure delete it.

    A job that writes several files therefore leaves either all of them or none.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        from .errors import InputError

        raise InputError("exists and is not a directory", out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        yield stage
        for item in sorted(stage.iterdir()):
            os.replace(item, out_dir / item.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
