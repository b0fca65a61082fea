"""One check before any work: every output can be written and none of them is an input.

Every command lists the files it reads (with the image files a particle table names) and
the files it will write, and calls :func:`check_outputs` before it computes anything. It
refuses, with one line naming the file:

* an output that is also an input (after resolving links and ``..``) — a run must never
  destroy what it reads;
* an empty output path, an output that is an existing directory (or a folder output that
  is an existing file), an output whose folder cannot be created or written to;
* an input that is not a regular file (a FIFO or a device would block or stream forever).

Nothing is created by the check itself.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from ..engine.particles import Particles
from .errors import InputError
from .relion_star import ParticleStack

__all__ = ["check_inputs_are_files", "check_outputs", "particle_files"]


def particle_files(particles: Particles, path: Path | None = None) -> list[Path]:
    """The files a particle set was read from: its table (``path``) and every image stack."""
    files: list[Path] = [] if path is None else [Path(path)]
    if isinstance(particles.images, ParticleStack):
        files += list(particles.images.files)
    return files


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


def check_inputs_are_files(paths: Iterable[Path | None]) -> None:
    """:class:`InputError` for an existing input that is not a regular file (FIFO, device,
    socket): reading one would block or never end."""
    for p in paths:
        if p is None or str(p) == "":
            continue
        try:
            mode = os.stat(p).st_mode
        except OSError:
            continue  # missing files are the readers' to report
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise InputError("is not a regular file (a pipe, device or socket); give a file", p)


def _writable_folder(folder: Path, output: Path) -> None:
    """The nearest existing ancestor of ``folder`` must be a writable directory."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"cannot be written: {probe} is not a directory", output)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"cannot be written: no permission to write in {probe}", output)


def check_outputs(
    inputs: Iterable[Path | None],
    outputs: Iterable[Path | None],
    folders: Iterable[Path | None] = (),
) -> None:
    """Refuse outputs that overlap inputs or cannot be written (see the module docstring).

    Parameters
    ----------
    inputs
        Every file the command reads (None entries are skipped).
    outputs
        Every file the command will write.
    folders
        Output folders the command creates or fills (must not be existing files).
    """
    inputs = [Path(p) for p in inputs if p is not None and str(p) != ""]
    check_inputs_are_files(inputs)
    read = {_resolved(p): p for p in inputs}
    for folder in folders:
        if folder is None:
            continue
        if str(folder) == "":
            raise InputError("the output folder is an empty path")
        if Path(folder).exists() and not Path(folder).is_dir():
            raise InputError("exists and is not a directory", folder)
        _writable_folder(Path(folder), Path(folder))
    for out in outputs:
        if out is None:
            continue
        if str(out) in ("", "."):
            raise InputError("the output is an empty path")
        out = Path(out)
        if out.is_dir():
            raise InputError("is an existing directory; give a file name", out)
        if _resolved(out) in read:
            raise InputError(f"would overwrite an input of this command ({read[_resolved(out)]}); "
                             "choose another output", out)
        _writable_folder(out.parent if str(out.parent) else Path("."), out)
