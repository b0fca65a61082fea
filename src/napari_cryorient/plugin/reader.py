"""napari reader: maps (``.mrc``/``.map``), stacks (``.mrcs``) and particle files
(``.star``, cryoSPARC ``.cs``).

``napari_get_reader`` never raises: it returns None for files it does not handle. The
reader it returns raises :class:`~napari_cryorient.io.errors.InputError` with one clear
message for a bad file, which napari shows as a notification.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..io import read_map, read_stack
from ..io.errors import InputError
from ..io.particles import read_particle_set
from .layer_data import image_layer_data, pose_points_layer_data, stack_layer_data

__all__ = ["MAX_STACK_BYTES", "napari_get_reader", "read_layers"]

_SUFFIXES = (".mrc", ".map", ".mrcs", ".star", ".cs")
#: particle stacks larger than this are not loaded into a viewer (use the CLI on them)
MAX_STACK_BYTES = 4 * 2**30


def napari_get_reader(path: str | list[str]) -> Callable[[Any], list] | None:
    """Return :func:`read_layers` for paths this plugin reads, else None."""
    paths = [path] if isinstance(path, str) else list(path)
    if not paths or not all(str(p).lower().endswith(_SUFFIXES) for p in paths):
        return None
    return read_layers


def _read_one(path: Path) -> list[tuple]:
    suffix = path.suffix.lower()
    if suffix in (".mrc", ".map"):
        shape = read_stack(path, check_values=False).data.shape  # header only (memory-mapped)
        if len(set(shape)) == 1 and shape[0] > 1:
            data = read_map(path)
            return [image_layer_data(data.data, data.voxel_size_a, path.stem)]
        suffix = ".mrcs"  # a 2D image or a stack saved as .mrc
    if suffix == ".mrcs":
        stack = read_stack(path)
        return [stack_layer_data(np.asarray(stack.data), stack.pixel_size_a, path.stem)]
    particles = read_particle_set(path)
    n, box = len(particles), particles.box
    if n * box * box * 4 > MAX_STACK_BYTES:
        raise InputError(
            f"{n} particles of {box}² are too many to show ({n * box * box * 4 / 2**30:.1f} "
            f"GiB); use the command line, or pre-process to a smaller box",
            path,
        )
    px = particles.pixel_size_a
    layers = [
        stack_layer_data(particles.images[:], px, f"{path.stem} particles", particles=particles,
                         metadata={"source": str(path)})
    ]
    if particles.has_poses:
        layers.append(
            pose_points_layer_data(
                particles.rotations,
                name=f"{path.stem} poses",
                pixel_size_a=px,
                extra_metadata={"source": str(path), "box": box, "particles": particles},
            )
        )
    return layers


def read_layers(path: str | list[str]) -> list[tuple]:
    """Layer data for one or several files (see the module docstring)."""
    paths = [path] if isinstance(path, str) else list(path)
    out: list[tuple] = []
    for p in paths:
        out.extend(_read_one(Path(p)))
    return out
