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
from ..engine.diagnostics import RecoveryDiagnostics, recovery_diagnostics
from ..engine.fsc import fourier_shell_correlation
from ..engine.inference import DistanceModel, image_features
from ..engine.jobs import Job, forward
from ..engine.particles import Particles
from ..engine.reassign import ReassignConfig, ReassignResult, reassign_poses
from ..engine.reconstruct import reconstruct_volume
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
    reassign
        After the refinement, a global search of every particle against its half's map,
        kept where it matches better, then a shorter local refinement
        (:mod:`~napari_cryorient.engine.reassign`; None: skip). Needs ``refine``.
    reassign_radii_deg
        Search radii of the refinement after the reassignment.
    feature_rotations
        Test-time in-plane quarter turns averaged into the image features (1, 2 or 4; see
        :func:`~napari_cryorient.engine.inference.compute_features`). Four by default: on
        the ribosome at −12 dB with CTF (box-32 network) they took the distance MAE from
        17.2° to 16.4° and the recovered mean error from 23.3° to 20.1°
        (``python -m benchmarks.feature_turns``; docs/benchmarks.md).
    seed
        Seed of every step.
    device
        Where the network and the refinement run.
    """

    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)
    resolve: bool = True
    refine: RefineConfig | None = field(default_factory=RefineConfig)
    reassign: ReassignConfig | None = None
    reassign_radii_deg: tuple[float, ...] = (12.0, 6.0, 3.0)
    feature_rotations: int = 4
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
        The ambiguity choice and the (last) refinement, or None when skipped.
    reassignment
        The global second chance, or None when skipped.
    diagnostics
        Warning signs of a failed recovery (collapsed distances, bunched views), found
        without a truth; ``diagnostics.warnings`` says them in words.
    stage_rotations
        `(n, 3, 3)` poses after each stage that ran: ``recover``, ``resolve``, ``refine``,
        ``reassign`` (the last after its refinement) — each stage's share of the result.
    timings_s
        Wall time of each stage that ran (``features``, ``recover``, ``resolve``, ``refine``).
    """

    rotations: np.ndarray
    features: np.ndarray
    recovery: RecoveryResult
    ambiguity: AmbiguityResult | None = None
    refinement: RefinementResult | None = None
    reassignment: ReassignResult | None = None
    diagnostics: RecoveryDiagnostics | None = None
    stage_rotations: dict[str, np.ndarray] = field(default_factory=dict)
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
    model.check_pixel_size(particles.pixel_size_a, f"the images of {particles.name or 'the data set'}")
    if s.refine is not None and not s.resolve:
        raise ValueError("refinement needs the ambiguity resolved first (resolve=True)")
    if s.reassign is not None and s.refine is None:
        raise ValueError("the reassignment needs the refinement (refine=...)")
    px = _pixel_size_for(particles)
    timings: dict[str, float] = {}
    features = yield from forward(
        image_features(model, particles.images, device=s.device, pixel_size_a=px, shifts_a=particles.shifts_a,
                       ctf=particles.ctf, rotations=s.feature_rotations), "features", timings=timings)
    rec = yield from forward(
        recover_orientations(FeatureDistances(features), replace(s.recovery, seed=s.seed)), "recover",
        timings=timings)
    result = PoseRecovery(rec.rotations, features, rec, timings_s=timings)
    result.stage_rotations["recover"] = rec.rotations
    result.diagnostics = recovery_diagnostics(features, rec.rotations, seed=s.seed)
    if not s.resolve:
        return result
    result.ambiguity = yield from forward(
        resolve_ambiguity(particles.images, rec.rotations, ctf=particles.ctf, pixel_size_a=px, seed=s.seed),
        "resolve", timings=timings)
    result.rotations = result.stage_rotations["resolve"] = result.ambiguity.apply(rec.rotations)
    if s.refine is not None:
        result.refinement = yield from forward(
            refine_orientations(particles.images, result.rotations, px, shifts_a=particles.shifts_a,
                                ctf=particles.ctf, config=replace(s.refine, seed=s.seed), device=s.device),
            "refine", timings=timings)
        result.rotations = result.stage_rotations["refine"] = result.refinement.rotations
    if s.reassign is not None:
        yield from _reassign(particles, px, s, result, timings)
    result.diagnostics = recovery_diagnostics(features, result.rotations, seed=s.seed)
    return result


def _reassign(particles: Particles, px: float, s: RecoverySettings, result: PoseRecovery,
              timings: dict[str, float]) -> Job[None]:
    """Global second chance against the refinement's gold-standard half-maps, then a
    shorter refinement of everything (same halves)."""
    first = result.refinement
    assert first is not None and s.refine is not None
    halves = first.half_assignment
    rec = yield from forward(reconstruct_volume(
        particles.images, result.rotations, px, shifts_a=first.shifts_a, ctf=particles.ctf,
        ctf_correction="wiener" if particles.ctf is not None else "none", half_maps=True, seed=s.seed,
        halves=halves, device=s.device), "reassign", message="half-maps", timings=timings)
    fsc = fourier_shell_correlation(*rec.half_maps, px)
    # origins are searched only where the refinement searched them (picks off-centre)
    config = s.reassign if s.refine.search_shifts else s.reassign.keeping_origins()
    result.reassignment = yield from forward(reassign_poses(
        particles.images, rec.half_maps, halves, result.rotations, px, first.shifts_a, particles.ctf,
        fsc.resolution_0143_a, config, device=s.device), "reassign", timings=timings)
    moved = result.reassignment
    refine = replace(s.refine, radii_deg=s.reassign_radii_deg, seed=s.seed, shift_range_px=0.0)
    result.refinement = yield from forward(refine_orientations(
        particles.images, moved.rotations, px, shifts_a=moved.shifts_a, ctf=particles.ctf, config=refine,
        device=s.device, halves=halves), "refine", message="after the reassignment", timings=timings)
    result.rotations = result.stage_rotations["reassign"] = result.refinement.rotations
