"""One typed particle set, from file to layer: images and everything known about them.

Every reader of :mod:`napari_cryorient.io` returns a :class:`Particles`; every step of the
method takes one; the napari widgets hold one. No pandas and no file formats here: what a
writer needs to write the file back with its other columns untouched travels in
:attr:`Particles.source`, which only :mod:`napari_cryorient.io` looks into.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from .ctf import CTFParams

__all__ = ["ImageStack", "Particles", "RowView", "checked_arrays"]


class ImageStack(Protocol):
    """What the engine needs of a particle stack: ``len``, ``shape`` and slicing along the
    first axis (``stack[a:b]``, ``stack[index_array]``) returning float32 `(k, box, box)`
    arrays. A numpy array, a memory-mapped MRC stack and the lazy stack of a STAR file
    all qualify; images are read one chunk at a time."""

    def __len__(self) -> int: ...

    def __getitem__(self, key: Any) -> np.ndarray: ...

    @property
    def shape(self) -> tuple[int, ...]: ...


@dataclass
class Particles:
    """A particle set.

    Attributes
    ----------
    images
        `(n, box, box)` images (an :class:`ImageStack`: an in-memory array, or a
        memory-mapped / lazily read stack; never loaded whole by the engine).
    pixel_size_a
        Pixel size in Å, or None when the file does not say (steps that need it refuse).
    rotations
        `(n, 3, 3)` poses in the package convention (:mod:`~napari_cryorient.engine.so3`),
        or None (no poses: the real case before recovery).
    shifts_a
        `(n, 2)` RELION origins ``(x, y)`` in Å (the image shows the map centre at
        ``centre − origin``), or None (centred).
    ctf
        Per-particle CTF parameters, or None.
    optics_group
        `(n,)` integer optics group of each particle (RELION ``rlnOpticsGroup``), or None.
    name
        Where the set came from (a file name, ``"simulation"``), for messages.
    source
        Opaque handle of the reader (e.g. the parsed STAR table) that lets the writer keep
        every column it does not change. The engine never looks into it.
    """

    images: ImageStack
    pixel_size_a: float | None
    rotations: np.ndarray | None = None
    shifts_a: np.ndarray | None = None
    ctf: CTFParams | None = None
    optics_group: np.ndarray | None = None
    name: str = ""
    source: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = len(self.images)
        shape = tuple(self.images.shape)
        if len(shape) != 3 or shape[-1] != shape[-2]:
            raise ValueError(f"{self._what}: images must be a stack of square images (n, box, box), "
                             f"got shape {shape}")
        if self.pixel_size_a is not None:
            px = float(self.pixel_size_a)
            if not np.isfinite(px) or px <= 0:
                raise ValueError(f"{self._what}: pixel size must be a positive number of Å, got {px}")
            self.pixel_size_a = px
        if self.rotations is not None:
            self.rotations = np.asarray(self.rotations, dtype=np.float64)
            if self.rotations.shape != (n, 3, 3):
                raise ValueError(f"{self._what}: {n} images but poses of shape {self.rotations.shape}")
        if self.shifts_a is not None:
            self.shifts_a = np.asarray(self.shifts_a, dtype=np.float64)
            if self.shifts_a.shape != (n, 2):
                raise ValueError(f"{self._what}: {n} images but origins of shape {self.shifts_a.shape}")
        if self.ctf is not None and len(self.ctf) != n:
            raise ValueError(f"{self._what}: {n} images but {len(self.ctf)} CTF parameter sets")
        if self.optics_group is not None and len(self.optics_group) != n:
            raise ValueError(f"{self._what}: {n} images but {len(self.optics_group)} optics groups")

    @property
    def _what(self) -> str:
        return self.name or "particles"

    def __len__(self) -> int:
        return len(self.images)

    @property
    def box(self) -> int:
        """Image side length in pixels."""
        return int(self.images.shape[-1])

    @property
    def has_poses(self) -> bool:
        return self.rotations is not None

    def require_pixel_size(self) -> float:
        """The pixel size; ``ValueError`` naming the set when it is unknown."""
        if self.pixel_size_a is None:
            raise ValueError(f"{self._what}: the pixel size is unknown; give it explicitly")
        return self.pixel_size_a

    def require_poses(self) -> np.ndarray:
        """The poses; ``ValueError`` naming the set when it has none."""
        if self.rotations is None:
            raise ValueError(f"{self._what}: no particle orientations")
        return self.rotations

    def require_count(self, minimum: int, what: str) -> None:
        """``ValueError`` when the set has fewer than ``minimum`` particles for ``what``."""
        if len(self) < minimum:
            raise ValueError(f"{what} needs at least {minimum} particles, {self._what} has {len(self)}")

    def origins_a(self) -> np.ndarray:
        """`(n, 2)` origins in Å (zeros when None)."""
        return np.zeros((len(self), 2)) if self.shifts_a is None else self.shifts_a

    def with_poses(self, rotations: np.ndarray, shifts_a: np.ndarray | None = None) -> Particles:
        """The same particles with new poses (and origins when given)."""
        return replace(self, rotations=rotations, shifts_a=self.shifts_a if shifts_a is None else shifts_a)

    def subset(self, rows: np.ndarray) -> Particles:
        """The particles ``rows`` (integer indices), images read lazily from this set's stack."""
        rows = np.asarray(rows, dtype=np.int64)

        def pick(a: Any) -> Any:
            return None if a is None else a[rows]

        return replace(self, images=RowView(self.images, rows), rotations=pick(self.rotations),
                       shifts_a=pick(self.shifts_a), ctf=None if self.ctf is None else self.ctf.subset(rows),
                       optics_group=pick(self.optics_group), source=None)

    def with_images(self, images: ImageStack, pixel_size_a: float | None = None) -> Particles:
        """The same particles with other images (e.g. Fourier-cropped: give their pixel size)."""
        return replace(self, images=images, pixel_size_a=pixel_size_a or self.pixel_size_a)


class RowView:
    """Rows ``rows`` of an image stack, read lazily (an :class:`ImageStack` itself)."""

    def __init__(self, images: ImageStack, rows: np.ndarray) -> None:
        self.images, self.rows = images, np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *tuple(self.images.shape)[1:])

    def __getitem__(self, key: Any) -> np.ndarray:
        rows = self.rows[key]
        if np.ndim(rows) == 0:
            return np.asarray(self.images[int(rows)])
        return np.asarray(self.images[rows])


def checked_arrays(images: Any, rotations: np.ndarray, shifts_a: np.ndarray | None, ctf: CTFParams | None,
                   minimum: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The per-particle inputs of an image step, checked against each other.

    Returns `(n, 3, 3)` float64 poses and `(n, 2)` float64 origins (zeros for None);
    ``ValueError`` when the counts or shapes disagree or there are fewer than ``minimum``.
    """
    rotations = np.asarray(rotations, dtype=np.float64)
    n = len(rotations)
    if rotations.shape != (n, 3, 3) or n < minimum:
        raise ValueError(f"need at least {minimum} poses of shape (3, 3), got shape {rotations.shape}")
    if len(images) != n:
        raise ValueError(f"{len(images)} images but {n} poses")
    if ctf is not None and len(ctf) != n:
        raise ValueError(f"{len(ctf)} CTF parameter sets for {n} particles")
    shifts_a = np.zeros((n, 2)) if shifts_a is None else np.asarray(shifts_a, dtype=np.float64)
    if shifts_a.shape != (n, 2):
        raise ValueError(f"shifts_a must have shape ({n}, 2), got {shifts_a.shape}")
    return rotations, shifts_a
