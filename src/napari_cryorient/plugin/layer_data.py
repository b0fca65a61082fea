"""Engine results as napari layer data, and back. No Qt, no viewer.

Poses are shown as Points on a sphere: particle ``i`` sits at ``radius · v_i`` where
``v_i`` is its viewing direction in the reference frame (third row of ``R_i``); napari
coordinates are ``(z, y, x)``. The layer's features carry ``index``, RELION angles
``rot``, ``tilt``, ``psi`` (degrees) and, when known, ``error_deg``; the pose is read back
from the angles, so a Points layer is enough to export a STAR file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..engine import so3
from ..engine.particles import Particles

__all__ = [
    "SPHERE_RADIUS",
    "image_layer_data",
    "is_map_layer",
    "is_stack_layer",
    "particles_of_layer",
    "pose_points_layer_data",
    "rotations_from_features",
    "stack_images",
    "stack_layer_data",
]

#: radius of the pose sphere in display units
SPHERE_RADIUS = 50.0

LayerData = tuple[Any, dict[str, Any], str]


def pose_features(rotations: np.ndarray, errors_deg: np.ndarray | None = None,
                  confidence: np.ndarray | None = None) -> pd.DataFrame:
    """Features table of a pose layer (see the module docstring); ``confidence``: each
    particle's correlation with its own half-map after refinement (higher is better)."""
    euler = so3.matrix_to_euler_relion(rotations)
    f = pd.DataFrame(
        {"index": np.arange(len(rotations)), "rot": euler[:, 0], "tilt": euler[:, 1], "psi": euler[:, 2]}
    )
    if errors_deg is not None:
        f["error_deg"] = np.asarray(errors_deg, dtype=np.float64)
    if confidence is not None:
        f["confidence"] = np.asarray(confidence, dtype=np.float64)
    return f


def pose_points_layer_data(
    rotations: np.ndarray,
    errors_deg: np.ndarray | None = None,
    name: str = "poses",
    pixel_size_a: float | None = None,
    extra_metadata: dict[str, Any] | None = None,
    confidence: np.ndarray | None = None,
) -> LayerData:
    """Points on the sphere of viewing directions, one per particle.

    Parameters
    ----------
    rotations
        `(n, 3, 3)` poses (package convention).
    errors_deg
        `(n,)` angular error per particle (colours the points), or None.
    name
        Layer name.
    pixel_size_a
        Pixel size of the particles (kept in the metadata for the STAR writer).
    confidence
        `(n,)` per-particle confidence (colours the points when there is no error).
    """
    rotations = np.asarray(rotations, dtype=np.float64)
    v = so3.viewing_directions(rotations)  # (n, 3) xyz
    coords = SPHERE_RADIUS * v[:, ::-1]  # napari (z, y, x)
    features = pose_features(rotations, errors_deg, confidence)
    kwargs: dict[str, Any] = {
        "name": name,
        "features": features,
        "size": 2.0,
        "shading": "spherical",
        "border_width": 0,
        "metadata": {"pixel_size_a": pixel_size_a, **(extra_metadata or {})},
    }
    box = (extra_metadata or {}).get("box")
    if pixel_size_a and box:
        # around the map: centred on its centre voxel, radius 0.6 × its width (Å)
        centre = (box // 2) * float(pixel_size_a)
        kwargs["translate"] = (centre, centre, centre)
        kwargs["scale"] = (0.6 * box * float(pixel_size_a) / SPHERE_RADIUS,) * 3
        kwargs["size"] = 2.0
    if errors_deg is not None:
        kwargs["face_color"] = "error_deg"
        kwargs["face_colormap"] = "plasma"
        kwargs["face_contrast_limits"] = (0.0, max(1.0, float(np.percentile(errors_deg, 95))))
    elif confidence is not None:
        lo, hi = np.percentile(confidence, [5, 95])
        kwargs["face_color"] = "confidence"
        kwargs["face_colormap"] = "viridis"
        kwargs["face_contrast_limits"] = (float(lo), float(max(hi, lo + 1e-12)))
    return coords, kwargs, "points"


def rotations_from_features(features: pd.DataFrame) -> np.ndarray:
    """`(n, 3, 3)` poses from a pose layer's ``rot``, ``tilt``, ``psi`` features."""
    missing = [c for c in ("rot", "tilt", "psi") if c not in features]
    if missing:
        raise ValueError(f"the layer has no pose features ({', '.join(missing)} missing)")
    return so3.euler_relion_to_matrix(features[["rot", "tilt", "psi"]].to_numpy(dtype=np.float64))


def image_layer_data(volume: np.ndarray, pixel_size_a: float | None, name: str, **kwargs: Any) -> LayerData:
    """A 3D map as an Image layer in Å (``scale`` = voxel size); ``metadata["kind"]`` is
    ``"map"`` (a map is never offered as a particle stack)."""
    px = float(pixel_size_a) if pixel_size_a else 1.0
    meta = {"pixel_size_a": pixel_size_a, "kind": "map"}
    return (
        np.asarray(volume, dtype=np.float32),
        {"name": name, "scale": (px, px, px), "metadata": meta, **kwargs},
        "image",
    )


def stack_layer_data(images: np.ndarray, pixel_size_a: float | None, name: str,
                     particles: Particles | None = None, **kwargs: Any) -> LayerData:
    """A particle stack `(n, h, w)` as an Image layer of shape `(n, 1, h, w)`.

    The first axis is the particle index and has a slider of its own: the images sit in
    one plane of the maps' z axis, stretched over a map of the same box (scale ``h`` × the
    pixel size along z, centred), so that they show at every z of the maps in 2D, scrolling
    particles never moves a map's slice, and the stack takes no depth of its own in the
    3D view (the 3D view hides stacks: see ``widgets/_view``).

    ``metadata["kind"]`` is ``"stack"``; ``metadata["particles"]`` keeps the particle set
    the images belong to (CTF, origins, optics, the source table), so that a stack adopted
    by the Dataset widget carries all of it (:func:`particles_of_layer`).
    """
    px = float(pixel_size_a) if pixel_size_a else 1.0
    meta = {"pixel_size_a": pixel_size_a, "kind": "stack", **kwargs.pop("metadata", {})}
    if particles is not None:
        meta["particles"] = particles
    box = images.shape[-1]
    return (
        images[:, None],
        {"name": name, "scale": (1.0, box * px, px, px), "translate": (0.0, (box / 2 - 0.5) * px, 0.0, 0.0),
         "metadata": meta, "axis_labels": ("particle", "z", "y", "x"), **kwargs},
        "image",
    )


def stack_images(layer: Any) -> np.ndarray:
    """The `(n, h, w)` images of a stack Image layer (its `(n, 1, h, w)` data squeezed; a
    plain `(n, h, w)` layer as it is)."""
    data = layer.data
    if data.ndim == 4 and data.shape[1] == 1:
        data = data[:, 0]
    if data.ndim != 3 or data.shape[-1] != data.shape[-2]:
        raise ValueError(f"{layer.name} is not a stack of square images")
    return data


def is_stack_layer(layer: Any) -> bool:
    """Whether an Image layer holds a particle stack (never a 3D map)."""
    try:
        stack_images(layer)
    except ValueError:
        return False
    return not getattr(layer, "rgb", False) and not is_map_layer(layer)


def is_map_layer(layer: Any) -> bool:
    """Whether an Image layer holds a 3D map (never a particle stack)."""
    kind = (layer.metadata or {}).get("kind")
    if kind is not None:
        return kind == "map"
    return layer.ndim == 3 and len(set(layer.data.shape)) == 1 and "particle" not in layer.axis_labels


def particles_of_layer(layer: Any) -> Particles:
    """The particle set of a stack Image layer: the one it was read with (CTF, origins,
    optics, source table) when its metadata has it, else the bare images and pixel size."""
    meta = layer.metadata or {}
    data = stack_images(layer)
    px = meta.get("pixel_size_a") or (float(layer.scale[-1]) if float(layer.scale[-1]) != 1.0 else None)
    known = meta.get("particles")
    if isinstance(known, Particles) and len(known) == len(data) and known.box == data.shape[-1]:
        return known.with_images(data, px)
    return Particles(data, px, name=layer.name)
