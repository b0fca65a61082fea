"""Poses of a particle set from a trained distance network — the method's one path.

features → recovery on SO(3) → ambiguity resolved from the images → local refinement.
``cryorient recover``, ``cryorient demo``, the Recover widget and the benchmarks all run
:func:`recover_poses`; none of them assembles these steps itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..engine.ambiguity import AmbiguityResult, resolve_ambiguity
from ..engine.inference import DistanceModel, image_features
from ..engine.jobs import Job, forward
from ..engine.particles import Particles
from ..engine.recover import FeatureDistances, RecoveryConfig, RecoveryResult, recover_orientations
from ..engine.refine import RefineConfig, RefinementResult, refine_orientations

__all__ = ["PoseRecovery", "RecoverySettings", "recover_poses"]

#: the fewest particles orientation recovery accepts
MIN_PARTICLES = 3


@dataclass(frozen=True)
class RecoverySettings:
    """What :func:`recover_poses` does.

    Attributes
    ----------
    recovery
        Optimiser of the orientations on SO(3) (its ``seed`` is replaced by ``seed``).
    resolve
        Resolve the projection-geometry ambiguity from the images (common lines).
    refine
        Local projection-matching refinement after the ambiguity step (None: skip);
        needs ``resolve``.
    seed
        Seed of every step.
    device
        Where the network and the refinement run.
    """

    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)
    resolve: bool = True
    refine: RefineConfig | None = field(default_factory=RefineConfig)
    seed: int = 0
    device: str | torch.device = "cpu"


@dataclass
class PoseRecovery:
    """Everything :func:`recover_poses` found.

    Attributes
    ----------
    rotations
        `(n, 3, 3)` final poses (package convention), after every step that ran.
    features
        `(n, f)` image features of the network.
    recovery
        The raw recovery (defined up to the O(4) ambiguity).
    ambiguity, refinement
        The ambiguity choice and the refinement, or None when skipped.
    timings_s
        Wall time of each stage that ran (``features``, ``recover``, ``resolve``, ``refine``).
    """

    rotations: np.ndarray
    features: np.ndarray
    recovery: RecoveryResult
    ambiguity: AmbiguityResult | None = None
    refinement: RefinementResult | None = None
    timings_s: dict[str, float] = field(default_factory=dict)


def _pixel_size_for(particles: Particles) -> float:
    """The pixel size the image steps need: required with a CTF (defocus is in Å); without
    one, any scale works (1 Å)."""
    if particles.ctf is not None:
        return particles.require_pixel_size()
    return particles.pixel_size_a or 1.0


def recover_poses(particles: Particles, model: DistanceModel, settings: RecoverySettings | None = None,
                  ) -> Job[PoseRecovery]:
    """Recover the orientations of ``particles`` with ``model``; no truth is used.

    Parameters
    ----------
    particles
        The images (their poses, if any, are ignored); CTF and origins are used by the
        ambiguity and refinement steps.
    model
        A trained distance network for images of this box.
    settings
        :class:`RecoverySettings`.

    Yields
    ------
    Progress
        Stages ``features``, ``recover``, ``resolve``, ``refine`` (those that run).

    Returns
    -------
    PoseRecovery
    """
    s = settings or RecoverySettings()
    particles.require_count(MIN_PARTICLES, "orientation recovery")
    model.check_box(particles.box, f"the images of {particles.name or 'the data set'}")
    if s.refine is not None and not s.resolve:
        raise ValueError("refinement needs the ambiguity resolved first (resolve=True)")
    px = _pixel_size_for(particles)
    timings: dict[str, float] = {}
    features = yield from forward(image_features(model, particles.images, device=s.device), "features",
                                  timings=timings)
    rec = yield from forward(
        recover_orientations(FeatureDistances(features), replace(s.recovery, seed=s.seed)), "recover",
        timings=timings)
    result = PoseRecovery(rec.rotations, features, rec, timings_s=timings)
    if not s.resolve:
        return result
    result.ambiguity = yield from forward(
        resolve_ambiguity(particles.images, rec.rotations, ctf=particles.ctf, pixel_size_a=px, seed=s.seed),
        "resolve", timings=timings)
    result.rotations = result.ambiguity.apply(rec.rotations)
    if s.refine is not None:
        result.refinement = yield from forward(
            refine_orientations(particles.images, result.rotations, px, shifts_a=particles.shifts_a,
                                ctf=particles.ctf, config=replace(s.refine, seed=s.seed), device=s.device),
            "refine", timings=timings)
        result.rotations = result.refinement.rotations
    return result
