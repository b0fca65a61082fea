"""napari writers: an Image layer to MRC (voxel size kept), a pose Points layer to RELION
STAR (or CSV). Writes are atomic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..engine.particles import Particles
from ..io import write_map, write_particles
from ..io.atomic_write import atomic_path
from ..io.particles import write_particle_set
from .layer_data import rotations_from_features

__all__ = ["write_image_mrc", "write_poses_csv", "write_poses_star"]


def _pixel_size(meta: dict[str, Any]) -> float | None:
    px = (meta.get("metadata") or {}).get("pixel_size_a")
    if px:
        return float(px)
    scale = meta.get("scale")
    return float(scale[-1]) if scale is not None and float(scale[-1]) != 1.0 else None


def write_image_mrc(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write a 3D Image layer (a map) or a particle stack to MRC with its voxel size."""
    arr = np.asarray(data, dtype=np.float32)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]  # a particle stack as the viewer shows it, (n, 1, h, w)
    if arr.ndim != 3:
        raise ValueError(f"only 3D images can be written to MRC, this layer is {arr.ndim}D")
    write_map(path, arr, _pixel_size(meta))
    return [str(path)]


def write_poses_star(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write a pose Points layer (features ``rot``, ``tilt``, ``psi``) as a RELION 3.1 STAR."""
    features = pd.DataFrame(meta.get("features"))
    rotations = rotations_from_features(features)
    md = meta.get("metadata") or {}
    particles = md.get("particles")
    if isinstance(particles, Particles) and len(particles) == len(rotations):
        # the particle set the poses belong to: its image names, box, origins, CTF and optics
        stack = md.get("stack")
        write_particle_set(path, particles.with_poses(rotations), stack=Path(stack) if stack else None)
        return [str(path)]
    px = _pixel_size(meta) or 1.0
    box = int(md.get("box", 0) or 0)
    if box <= 0:
        raise ValueError("the layer does not say the particles' box size; cannot write a STAR file")
    stack = md.get("stack")
    write_particles(path, rotations, px, box, stack=Path(stack) if stack else None)
    return [str(path)]


def write_poses_csv(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write a pose Points layer's features (index, angles, errors) and positions as CSV."""
    features = pd.DataFrame(meta.get("features")).copy()
    coords = np.asarray(data)
    for k, axis in enumerate(("z", "y", "x")):
        features[f"sphere_{axis}"] = coords[:, k]
    with atomic_path(Path(path)) as tmp:
        features.to_csv(tmp, index=False)
    return [str(path)]
