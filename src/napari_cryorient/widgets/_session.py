"""State shared by the widgets of one viewer: the data set and every result so far.

Widgets never reach into each other; they read and write the :class:`Session` of their
viewer and listen to its signals.
"""

from __future__ import annotations

import operator
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from psygnal import evented

from ..engine.ctf import CTFParams
from ..engine.particles import Particles

__all__ = ["HalfSplit", "Session", "get_session"]


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
    layer
        Name of the viewer layer that shows these particles (its first axis is the
        particle index), or None: what the inspector keeps in step with the selection.
    """

    particles: Particles
    truth: np.ndarray | None = None
    clean: np.ndarray | None = None
    noise_variance: np.ndarray | None = None
    volume: np.ndarray | None = None
    layer: str | None = None

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


@dataclass(frozen=True)
class JobRecord:
    """One run of a job widget, as RELION job folders and cryoSPARC event logs keep it.

    Attributes
    ----------
    job
        The widget's section name (``train``, ``recover``, …).
    parameters
        The form's values when the job started.
    started
        Start time (ISO 8601, local time).
    duration_s
        Wall time of the run (s).
    status
        ``finished``, ``stopped`` or ``failed``.
    summary
        The widget's last status line (the result, or the error).
    dataset
        Name of the data set the job ran on.
    log
        The run's progress lines (``+12.3 s  stage 4/10  message``).
    folder
        The job's folder in the project folder, once written there ("" before).
    """

    job: str
    parameters: dict[str, Any]
    started: str
    duration_s: float
    status: str
    summary: str
    dataset: str
    log: tuple[str, ...] = ()
    folder: str = ""

    def to_json(self) -> dict[str, Any]:
        """The record as ``job.json`` holds it (the log goes to its own file)."""
        return {k: v for k, v in asdict(self).items() if k not in ("log", "folder")}


@dataclass(frozen=True)
class HalfSplit:
    """The two halves the current poses were estimated with.

    Attributes
    ----------
    assignment
        `(n,)` 0 or 1 per particle.
    from_start
        True when the halves shared nothing from the first step (ab initio: a gold-standard
        figure); False when they were split only for the refinement (learned recovery and
        the ambiguity step saw all particles together, so their FSC can flatter).
    """

    assignment: np.ndarray
    from_start: bool


_SESSION_FIELDS = ("dataset", "checkpoint", "trainer", "features", "poses", "errors_deg", "metrics", "volume",
                   "projector", "fsc", "current", "confidence", "aligned_poses", "history", "project",
                   "halves")


@evented(equality_operators=dict.fromkeys(_SESSION_FIELDS, operator.is_))
@dataclass
class Session:
    """Results shared by one viewer's widgets (see the module docstring).

    Every field is evented (psygnal): assigning ``session.poses = ...`` emits
    ``session.events.poses`` with the new value, so widgets react to changes instead of
    being told. Only the main thread assigns fields: jobs return their results, and the
    widget that ran the job applies them.

    Attributes
    ----------
    dataset
        The particle set (None before one is made or adopted).
    checkpoint, trainer
        The distance network (a checkpoint dict) and the trainer that made it, if any.
    features
        `(n, f)` image features of the last recovery.
    poses, errors_deg
        `(n, 3, 3)` recovered poses; `(n,)` errors against the truth (simulations only).
    aligned_poses
        `(n, 3, 3)` the recovered poses in the truth's frame (after the harmless rotation;
        simulations only): what the inspector compares with the true angles.
    confidence
        `(n,)` per-particle confidence of the poses (refinement score: higher is better),
        or None.
    metrics
        Figures of the last runs (for the export report).
    shifts_a
        `(n, 2)` origins (Å) found with the last poses (ab initio), or None: the data set's own.
    volume, projector, fsc
        The last reconstruction, a projector of it (built in the worker), and its FSCs
        ``(half-maps, against the truth or None)``.
    current
        The selected particle.
    history
        A :class:`JobRecord` per finished, stopped or failed job, oldest first (exported
        as ``jobs.json``; kept across data sets: it is the session's log).
    halves
        The :class:`HalfSplit` of the current poses (Reconstruct uses the same halves), or None.
    project
        The project folder each job's record is also written to (``jobs/NNN_job/``), or
        None (see :mod:`napari_cryorient.io.project`).
    """

    dataset: Dataset | None = None
    checkpoint: dict[str, Any] | None = None
    trainer: Any = None
    features: np.ndarray | None = None
    poses: np.ndarray | None = None
    shifts_a: np.ndarray | None = None
    errors_deg: np.ndarray | None = None
    aligned_poses: np.ndarray | None = None
    confidence: np.ndarray | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    volume: np.ndarray | None = None
    projector: Any = None
    fsc: Any = None
    current: int = 0
    history: list[JobRecord] = field(default_factory=list)
    project: Path | None = None
    halves: HalfSplit | None = None

    def record(self, entry: JobRecord) -> None:
        """Append a job record (a new list, so that ``events.history`` fires)."""
        self.history = [*self.history, entry]

    def replace_record(self, old: JobRecord, new: JobRecord) -> None:
        """Put ``new`` where ``old`` is in the history (e.g. once it is saved)."""
        self.history = [new if r is old else r for r in self.history]

    def set_dataset(self, dataset: Dataset) -> None:
        """Adopt a new particle set: every result of the previous one is dropped first; the
        distance network is kept (it is checked against the new images when it is used)."""
        self.trainer = self.features = self.poses = self.shifts_a = self.errors_deg = None
        self.aligned_poses = self.confidence = self.halves = None
        self.volume = self.projector = self.fsc = None
        self.metrics = {}
        self.current = 0
        self.dataset = dataset

    def origins_a(self) -> np.ndarray | None:
        """The origins that go with :attr:`poses`: found ones, else the data set's."""
        if self.shifts_a is not None:
            return self.shifts_a
        return None if self.dataset is None else self.dataset.shifts_a

    def select(self, index: int) -> None:
        """Select particle ``index`` (ignored when out of range)."""
        if self.dataset is None or not (0 <= index < len(self.dataset)) or index == self.current:
            return
        self.current = int(index)


_SESSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def get_session(viewer: Any) -> Session:
    """The :class:`Session` of ``viewer`` (created on first use)."""
    key = getattr(viewer, "__wrapped__", viewer)  # plugins get a proxy of the viewer
    if key not in _SESSIONS:
        _SESSIONS[key] = Session()
    return _SESSIONS[key]
