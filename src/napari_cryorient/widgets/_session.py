"""State shared by the widgets of one viewer: the data set and every result so far.

Widgets never reach into each other; they read and write the :class:`Session` of their
viewer and listen to its signals.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
from psygnal import Signal

from ..engine.ctf import CTFParams
from ..engine.particles import Particles

__all__ = ["Session", "get_session"]


@dataclass
class Dataset:
    """The particle set of a session and what is known about it only in simulations.

    Attributes
    ----------
    particles
        Images, pixel size, origins, CTF and optics (the one particle type; its poses, if
        any, are not used: recovered poses live in the session, true ones in ``truth``).
    truth
        `(n, 3, 3)` true poses, or None for real data.
    clean, noise_variance
        Noise-free images and the per-image noise variance (simulations: training draws
        fresh noise), or None.
    volume
        Ground-truth map when known.
    """

    particles: Particles
    truth: np.ndarray | None = None
    clean: np.ndarray | None = None
    noise_variance: np.ndarray | None = None
    volume: np.ndarray | None = None

    @property
    def images(self) -> Any:
        return self.particles.images

    @property
    def pixel_size_a(self) -> float:
        """Pixel size in Å (1 when the source does not say)."""
        return self.particles.pixel_size_a or 1.0

    @property
    def ctf(self) -> CTFParams | None:
        return self.particles.ctf

    @property
    def shifts_a(self) -> np.ndarray | None:
        return self.particles.shifts_a

    @property
    def source(self) -> str:
        return self.particles.name

    @property
    def box(self) -> int:
        return self.particles.box

    def __len__(self) -> int:
        return len(self.particles)


class Session:
    """Results shared by one viewer's widgets (see the module docstring)."""

    dataset_changed = Signal()
    model_changed = Signal()
    poses_changed = Signal()
    volume_changed = Signal()
    selected = Signal(int)

    def __init__(self) -> None:
        self.dataset: Dataset | None = None
        self.checkpoint: dict[str, Any] | None = None
        self.trainer: Any = None
        self.features: np.ndarray | None = None
        self.poses: np.ndarray | None = None
        self.errors_deg: np.ndarray | None = None
        self.metrics: dict[str, Any] = {}
        self.volume: np.ndarray | None = None
        self.fsc: Any = None
        self.current: int = 0

    def set_dataset(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.trainer = self.checkpoint = self.features = self.poses = self.errors_deg = None
        self.volume = self.fsc = None
        self.metrics = {}
        self.current = 0
        self.dataset_changed.emit()

    def select(self, index: int) -> None:
        if self.dataset is None or not (0 <= index < len(self.dataset)) or index == self.current:
            return
        self.current = int(index)
        self.selected.emit(self.current)


_SESSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def get_session(viewer: Any) -> Session:
    """The :class:`Session` of ``viewer`` (created on first use)."""
    key = getattr(viewer, "__wrapped__", viewer)  # plugins get a proxy of the viewer
    if key not in _SESSIONS:
        _SESSIONS[key] = Session()
    return _SESSIONS[key]
