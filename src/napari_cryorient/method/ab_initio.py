"""Orientations from the images alone: the truth-free pipeline (``cryorient ab-initio``).

Input: a particle stack with its pixel size and CTFs, nothing else (no poses, no map).

1. **Gold-standard split first.** The particles are split into two random halves before
   anything is estimated; from then on each half has its own distance matrix, its own
   ambiguity choice, its own maps and its own network. The only thing the halves share is
   the start map, low-pass filtered far below the resolution that is claimed at the end
   (``start_resolution_a``, as RELION shares an initial reference at 30–60 Å).
2. **Start.** By default (``start="soft-search"``) a stochastic soft search
   (:mod:`~napari_cryorient.engine.soft_search`: expectation–maximisation over a pose
   grid, batch by batch, from random maps ranked by their evidence; no network) on half 1
   gives a map, low-passed to the start resolution. Or (``start="generalist"``) the
   generalist network (trained on procedural proteins only, shipped with the package)
   gives features of each half; recovery on SO(3) and the ambiguity step give poses, and
   the map of half 1, low-passed, is the start. Or a user's ``reference`` map (e.g. a
   homologue).
3. **Global search.** Each half is matched over all of SO(3) and a grid of origins
   against its reference at low resolution, then reconstructed; a few iterations, each
   half against its own half-map from the second on.
4. **Local refinement** of orientations *and* origins against each half's own half-map;
   with ``second_chance``, every particle then gets a global search (poses and origins)
   against its own half-map and keeps its result where the images prefer it by more than
   the odds of the search (:mod:`~napari_cryorient.engine.reassign`), and a shorter
   refinement follows.
5. **Self-training rounds.** For each half: projections of its own half-map are
   simulated with the half's CTFs, pixel size and a noise level measured from its
   images; the network is fine-tuned on them and recovers the half's poses again; each
   particle keeps whichever of its current and its new pose matches its half-map better;
   local refinement follows. Rounds stop when the half-map FSC stops improving; the best
   round is kept.

Every step reports progress; closing the job keeps nothing half-done, but every complete
round is yielded (``Progress.data["result"]``) so a caller that stops keeps the last one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..engine import so3
from ..engine.align import align_to_reference
from ..engine.ambiguity import resolve_ambiguity
from ..engine.fourier import lowpass_volume
from ..engine.fsc import FSCResult, fourier_shell_correlation
from ..engine.global_search import GlobalSearchConfig, global_search
from ..engine.inference import DistanceModel, image_features, network_input
from ..engine.jobs import Job, Progress, forward, run_job
from ..engine.matching import pose_scores
from ..engine.particles import Particles
from ..engine.reassign import ReassignConfig, reassign_poses
from ..engine.reconstruct import ReconstructionResult, reconstruct_volume
from ..engine.recover import FeatureDistances, RecoveryConfig, recover_orientations
from ..engine.refine import RefineConfig, refine_orientations
from ..engine.siamese import EncoderConfig
from ..engine.simulate import project_particles
from ..engine.soft_search import SoftSearchConfig, soft_search
from ..engine.train import DistanceTrainer, TrainConfig
from ..engine.training_data import TrainingData

__all__ = ["MIN_PARTICLES", "PRESETS", "STARTS", "AbInitioResult", "AbInitioSettings", "ab_initio",
           "split_halves"]

#: the fewest particles the truth-free pipeline accepts (each half must be recoverable)
MIN_PARTICLES = 40

#: names of :meth:`AbInitioSettings.preset`
PRESETS = ("quick", "standard", "thorough")

#: where the start map comes from when no reference is given (:attr:`AbInitioSettings.start`)
STARTS = ("soft-search", "generalist")


@dataclass(frozen=True)
class AbInitioSettings:
    """What :func:`ab_initio` does.

    Attributes
    ----------
    rounds
        Self-training rounds at most (0: none).
    start
        ``"soft-search"`` (half 1's soft search from a random map) or ``"generalist"``
        (the distance network's recovery); ignored when a reference map is given.
    start_resolution_a
        Low-pass of the shared start (Å); None: 12 pixels (24 Å at 2 Å/px).
    search_resolution_px
        Resolution of the last global-search iteration, in pixels (6: a third of Nyquist);
        the first compares up to the start resolution, and the limit moves linearly between.
    global_iterations
        Global-search iterations.
    start_temperature
        Temperature of the first iteration's drawn assignments
        (:class:`~napari_cryorient.engine.global_search.GlobalSearchConfig`), annealed
        linearly to 0 at the last-but-one; a start that knows little (a blob) is left
        gradually instead of locked in at once.
    second_chance
        After the refinement, a global second chance for every particle against its own
        half-map, then a shorter refinement (``reassign``, ``reassign_radii_deg``).
    soft, search, refine, recovery, reassign
        Settings of the soft search (the start), global search, local refinement, SO(3)
        recovery and the second chance.
    reassign_radii_deg
        Radii of the refinement after the second chance (degrees).
    fine_tune_steps, simulated_views
        Fine-tuning per round and half: optimiser steps, and simulated projections of the
        half-map.
    min_improvement
        Relative gain of the half-map FSC 0.143 resolution below which rounds stop.
    seed, device
        Reproducibility; where the network and matching run.
    """

    rounds: int = 2
    start: str = "soft-search"
    start_resolution_a: float | None = None
    search_resolution_px: float = 6.0
    global_iterations: int = 8
    start_temperature: float = 0.5
    second_chance: bool = False
    soft: SoftSearchConfig = field(default_factory=SoftSearchConfig)
    search: GlobalSearchConfig = field(default_factory=GlobalSearchConfig)
    # origins come from the global search: the refinement only nudges them (±1 step)
    refine: RefineConfig = field(default_factory=lambda: RefineConfig(radii_deg=(8.0, 4.0, 2.0),
                                                                      search_shifts=True, shift_range_px=0.0))
    recovery: RecoveryConfig = field(default_factory=lambda: RecoveryConfig(
        neighbour_fraction=0.5, n_restarts=2, n_steps=300, screen_candidates=4))
    reassign: ReassignConfig = field(default_factory=ReassignConfig)
    reassign_radii_deg: tuple[float, ...] = (4.0, 2.0)
    fine_tune_steps: int = 300
    simulated_views: int = 3000
    min_improvement: float = 0.01
    seed: int = 0
    device: str | torch.device = "cpu"

    @classmethod
    def preset(cls, name: str, **changes) -> AbInitioSettings:
        """``"quick"`` (a first look, minutes for a few thousand particles), ``"standard"``
        (the defaults) or ``"thorough"`` (finer grids, more rounds); ``changes`` override."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        base = cls()
        if name == "quick":
            base = replace(base, rounds=1, global_iterations=5, fine_tune_steps=100, simulated_views=1000,
                           soft=replace(base.soft, epochs=6, restarts=3),
                           search=replace(base.search, n_rotations=2000),
                           refine=replace(base.refine, radii_deg=(6.0, 3.0)),
                           recovery=replace(base.recovery, n_steps=150, n_restarts=1, screen_candidates=2))
        elif name == "thorough":
            base = replace(base, rounds=4, global_iterations=12, fine_tune_steps=600, simulated_views=5000,
                           soft=replace(base.soft, restarts=10),
                           search=replace(base.search, n_rotations=8000, shift_step_px=1.0),
                           refine=replace(base.refine, radii_deg=(10.0, 6.0, 4.0, 2.0, 1.0)),
                           recovery=replace(base.recovery, n_steps=500, n_restarts=3))
        return replace(base, **changes)

    def validate(self) -> None:
        if (self.rounds < 0 or self.global_iterations < 1 or self.fine_tune_steps < 1
                or self.simulated_views < 20):
            raise ValueError("invalid ab-initio settings (rounds >= 0, global iterations >= 1, "
                             "fine-tune steps >= 1, simulated views >= 20)")
        if self.start_resolution_a is not None and self.start_resolution_a <= 0:
            raise ValueError("the start resolution must be > 0 Å")
        if self.start not in STARTS:
            raise ValueError(f"unknown start {self.start!r}; choose one of {', '.join(STARTS)}")
        self.soft.validate()
        self.reassign.validate()


@dataclass
class AbInitioResult:
    """A truth-free reconstruction.

    Attributes
    ----------
    particles
        The input set with the found poses and origins.
    halves
        `(n,)` gold-standard half (0/1) of each particle.
    reconstruction
        Map and half-maps from the final poses (Wiener-corrected with CTFs).
    fsc
        Half-map FSC (independent halves from the first step).
    scores
        `(n,)` each particle's correlation with its own half-map (a confidence).
    rounds
        One record per step: ``stage``, ``resolution_a`` (FSC 0.143), ``resolution_05_a``,
        ``mean_change_deg``, ``seconds``.
    stage_poses
        `(n, 3, 3)` poses after each stage (``start``, ``search``, ``refine``, ``round k``):
        what the benchmark's ablation scores. ``start`` holds each half's own recovery
        (each in its own frame); after the soft-search start, only half 1's rows are poses
        (half 2's are the identity: it had none before the global search).
    networks
        The network of each half after the last round (the generalist when none ran).
    """

    particles: Particles
    halves: np.ndarray
    reconstruction: ReconstructionResult
    fsc: FSCResult
    scores: np.ndarray
    rounds: list[dict] = field(default_factory=list)
    stage_poses: dict[str, np.ndarray] = field(default_factory=dict)
    networks: list[DistanceModel] = field(default_factory=list)


def split_halves(n: int, seed: int = 0) -> np.ndarray:
    """`(n,)` random half (0/1) of each particle, balanced (the gold-standard split)."""
    return np.random.default_rng(seed + 7919).permutation(n) % 2


class _State:
    """Poses, origins and the halves' members of one run."""

    def __init__(self, particles: Particles, settings: AbInitioSettings) -> None:
        self.p = particles
        self.s = settings
        self.px = particles.require_pixel_size()
        self.n = len(particles)
        self.halves = split_halves(self.n, settings.seed)
        self.members = [np.flatnonzero(self.halves == h) for h in (0, 1)]
        self.rotations = np.broadcast_to(np.eye(3), (self.n, 3, 3)).copy()
        self.shifts = particles.origins_a().copy()
        self.rounds: list[dict] = []
        self.stage_poses: dict[str, np.ndarray] = {}
        self.t0 = time.perf_counter()

    def half(self, h: int) -> Particles:
        return self.p.subset(self.members[h]).with_poses(self.rotations[self.members[h]],
                                                         self.shifts[self.members[h]])

    def reconstruct(self, stage: str) -> Job[ReconstructionResult]:
        p = self.p
        return forward(reconstruct_volume(
            p.images, self.rotations, self.px, shifts_a=self.shifts, ctf=p.ctf,
            ctf_correction="wiener" if p.ctf is not None else "none", half_maps=True, halves=self.halves,
            device=self.s.device), stage, message="half-maps")

    def record(self, stage: str, fsc: FSCResult, previous: np.ndarray | None) -> dict:
        moved = so3.relative_angle_deg(self.rotations, previous) if previous is not None else np.zeros(1)
        entry = {"stage": stage, "resolution_a": float(fsc.resolution_0143_a),
                 "resolution_05_a": float(fsc.resolution_05_a), "mean_change_deg": float(moved.mean()),
                 "seconds": round(time.perf_counter() - self.t0, 1)}
        self.rounds.append(entry)
        self.stage_poses[stage] = self.rotations.copy()
        return entry


def _recover_half(particles: Particles, model: DistanceModel, s: AbInitioSettings, label: str
                  ) -> Job[np.ndarray]:
    """Poses of one half from a network: features → recovery → ambiguity (its own)."""
    px = particles.require_pixel_size()
    features = yield from forward(image_features(model, particles.images, device=s.device, pixel_size_a=px,
                                                 shifts_a=particles.shifts_a, ctf=particles.ctf),
                                  "features", message=label)
    job = recover_orientations(FeatureDistances(features), replace(s.recovery, seed=s.seed))
    rec = yield from forward(job, "recover", message=label)
    amb = yield from forward(resolve_ambiguity(particles.images, rec.rotations, ctf=particles.ctf,
                                               pixel_size_a=px, seed=s.seed), "resolve", message=label)
    return amb.apply(rec.rotations)


def _start_map(state: _State, model: DistanceModel | None, reference: np.ndarray | None) -> Job[torch.Tensor]:
    s = state.s
    res = s.start_resolution_a or 12.0 * state.px
    if reference is not None:
        return lowpass_volume(reference, res, state.px)
    if s.start == "soft-search":  # half 1 alone; half 2 sees only the low-passed map
        first = state.half(0)
        found = yield from forward(soft_search(first.images, state.px, first.shifts_a, first.ctf,
                                               replace(s.soft, seed=s.seed), s.device), "start",
                                   message="soft search, half 1")
        state.rotations[state.members[0]] = found.rotations
        state.shifts[state.members[0]] = found.shifts_a
        return lowpass_volume(found.volume, res, state.px)
    for h in (0, 1):  # each half on its own (its poses are also the ablation's "start")
        state.rotations[state.members[h]] = yield from _recover_half(state.half(h), model, s, f"half {h + 1}")
    first = state.half(0)
    rec = yield from forward(reconstruct_volume(
        first.images, first.rotations, state.px, shifts_a=first.shifts_a, ctf=first.ctf,
        ctf_correction="wiener" if first.ctf is not None else "none", device=s.device),
        "start", message="map of half 1")
    return lowpass_volume(rec.volume, res, state.px)


def _global_iterations(state: _State, start: torch.Tensor) -> Job[ReconstructionResult]:
    s, px = state.s, state.px
    refs = [start, start]
    last_res = s.search_resolution_px * px
    first_res = max(last_res, s.start_resolution_a or 12.0 * px)
    rec = None
    n_it = s.global_iterations
    for it in range(n_it):
        previous = state.rotations.copy()
        frac = it / max(1, n_it - 1)
        search_res = first_res + (last_res - first_res) * frac
        temperature = s.start_temperature * max(0.0, 1 - it / max(1, n_it - 2))
        for h in (0, 1):
            part = state.half(h)
            found = yield from forward(global_search(
                part.images, refs[h], px, part.shifts_a, part.ctf,
                replace(s.search, resolution_a=search_res, temperature=temperature, seed=s.seed + it),
                device=s.device), "search", message=f"iteration {it + 1}/{n_it}, half {h + 1}")
            state.rotations[state.members[h]] = found.rotations
            state.shifts[state.members[h]] = found.shifts_a
        rec = yield from state.reconstruct("search")
        fsc = fourier_shell_correlation(*rec.half_maps, px)
        state.record(f"search {it + 1}", fsc, previous)
        refs = [lowpass_volume(rec.half_maps[h], search_res, px) for h in (0, 1)]
    state.stage_poses["search"] = state.rotations.copy()
    return rec


def _refine(state: _State, stage: str, radii_deg: tuple[float, ...] | None = None
            ) -> Job[tuple[ReconstructionResult, FSCResult, np.ndarray]]:
    previous = state.rotations.copy()
    s = state.s
    config = replace(s.refine, seed=s.seed) if radii_deg is None else replace(s.refine, seed=s.seed,
                                                                              radii_deg=radii_deg)
    result = yield from forward(refine_orientations(
        state.p.images, state.rotations, state.px, shifts_a=state.shifts, ctf=state.p.ctf,
        config=config, device=s.device, halves=state.halves), "refine", message=stage)
    state.rotations, state.shifts = result.rotations, result.shifts_a
    rec = yield from state.reconstruct("refine")
    fsc = fourier_shell_correlation(*rec.half_maps, state.px)
    state.record(stage, fsc, previous)
    return rec, fsc, result.scores


def _second_chance(state: _State, rec: ReconstructionResult, fsc: FSCResult
                   ) -> Job[tuple[ReconstructionResult, FSCResult, np.ndarray]]:
    """Each particle's global second chance against its own half-map, then a shorter
    refinement (the halves stay apart)."""
    s = state.s
    moved = yield from forward(reassign_poses(
        state.p.images, rec.half_maps, state.halves, state.rotations, state.px, state.shifts, state.p.ctf,
        fsc.resolution_0143_a, s.reassign, device=s.device), "reassign")
    state.rotations, state.shifts = moved.rotations, moved.shifts_a
    state.stage_poses["second chance"] = state.rotations.copy()
    return (yield from _refine(state, "second chance", s.reassign_radii_deg))


def _measured_noise(part: Particles, half_map: np.ndarray, sample: int, seed: int) -> tuple[float, float]:
    """``(scale, noise variance)`` of a half's images against its half-map: the least-squares
    scale of each image's projection (CTF and origin applied), and the variance of what is
    left; medians over ``sample`` particles."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.permutation(len(part))[: min(sample, len(part))])
    sub = part.subset(rows)
    proj = run_job(project_particles(torch.as_tensor(half_map), sub.rotations, part.require_pixel_size(),
                                  sub.shifts_a, sub.ctf))
    p = proj.images.reshape(len(rows), -1).astype(np.float64)
    x = np.asarray(sub.images[:], dtype=np.float64).reshape(len(rows), -1)
    p -= p.mean(1, keepdims=True)
    x = x - x.mean(1, keepdims=True)
    scale = (x * p).sum(1) / np.maximum((p * p).sum(1), 1e-30)
    noise = (x - scale[:, None] * p).var(1)
    return float(np.median(scale)), float(np.median(noise))


def _simulated_training_data(part: Particles, half_map: np.ndarray, model: DistanceModel, views: int,
                             seed: int) -> TrainingData:
    """Projections of a half-map as the half's images look: its CTFs, pixel size and noise."""
    px = part.require_pixel_size()
    scale, noise_var = _measured_noise(part, half_map, 256, seed)
    rng = np.random.default_rng(seed + 1)
    rotations = so3.sample_orientations(views, "uniform", seed=int(rng.integers(2**31)))
    rows = rng.integers(0, len(part), views)
    ctf = part.ctf.subset(rows) if part.ctf is not None else None
    proj = run_job(project_particles(torch.as_tensor(half_map), rotations, px, None, ctf))
    clean = network_input(torch.from_numpy(proj.images * np.float32(scale)), model.working_box, px, None,
                          ctf, model.phase_flip).numpy()
    std = np.full(views, np.sqrt(max(noise_var, 1e-12)) * model.working_box / part.box, dtype=np.float32)
    return TrainingData(clean, so3.matrix_to_quaternion(rotations), std, part.box,
                        phase_flipped=model.phase_flip, any_box=model.any_box)


def _fine_tune(data: TrainingData, model: DistanceModel, s: AbInitioSettings, label: str
               ) -> Job[DistanceModel]:
    encoder: EncoderConfig = model.net.config
    config = TrainConfig(encoder=encoder, epochs=1, steps_per_epoch=s.fine_tune_steps, lr=5e-4,
                         val_fraction=0.1, val_pairs=5000, patience=0, per_image_norm=model.norm is None,
                         seed=s.seed, device=str(s.device))
    trainer = DistanceTrainer(data, config)
    trainer.model.load_state_dict(model.net.state_dict())
    if model.norm is not None:
        trainer.norm = model.norm
    yield from forward(trainer.run(), "self-train", message=label)
    return trainer.distance_model()


def _self_training_round(state: _State, k: int, rec: ReconstructionResult, models: list[DistanceModel]
                         ) -> Job[list[DistanceModel]]:
    s, px = state.s, state.px
    new_models = []
    for h in (0, 1):
        part = state.half(h)
        label = f"round {k}, half {h + 1}"
        data = _simulated_training_data(part, rec.half_maps[h], models[h], s.simulated_views,
                                        s.seed + 31 * k + h)
        net = yield from _fine_tune(data, models[h], s, label)
        new_models.append(net)
        proposed = yield from _recover_half(part, net, s, label)
        # the new poses in this half's frame (the O(4) map from the current poses; no truth)
        q_new = so3.matrix_to_quaternion(proposed)
        aligned = align_to_reference(q_new, so3.matrix_to_quaternion(part.rotations), seed=s.seed).quaternions
        proposed = so3.quaternion_to_matrix(aligned)
        res = max(s.search_resolution_px * px, state.rounds[-1]["resolution_a"])
        now = pose_scores(part.images, rec.half_maps[h], part.rotations, px, part.shifts_a, part.ctf, res,
                          device=s.device)
        then = pose_scores(part.images, rec.half_maps[h], proposed, px, part.shifts_a, part.ctf, res,
                           device=s.device)
        better = then > now
        rows = state.members[h][better]
        state.rotations[rows] = proposed[better]
        yield Progress("self-train", 1, 1, f"{label}: {better.mean():.0%} of the particles took the new pose")
    return new_models


def ab_initio(particles: Particles, model: DistanceModel | None, settings: AbInitioSettings | None = None,
              reference: np.ndarray | torch.Tensor | None = None) -> Job[AbInitioResult]:
    """Orientations, origins and a map from the images alone (see the module docstring).

    Parameters
    ----------
    particles
        The stack: pixel size required, CTFs used when present (any poses are ignored;
        origins, when given, are the starting origins).
    model
        The distance network (the shipped generalist, or any model that accepts this box).
        Needed unless ``reference`` is given and ``settings.rounds == 0``.
    settings
        :class:`AbInitioSettings`.
    reference
        Optional `(box, box, box)` start map at the particles' pixel size (e.g. a homologue);
        it is low-pass filtered to the start resolution.

    Yields
    ------
    Progress
        Stages ``features``, ``recover``, ``resolve``, ``start``, ``search``, ``refine``,
        ``reassign`` (with ``second_chance``), ``self-train``; after each complete round,
        one event whose ``data["result"]`` is the :class:`AbInitioResult` so far.

    Returns
    -------
    AbInitioResult
        The best round.
    """
    s = settings or AbInitioSettings()
    s.validate()
    particles.require_count(MIN_PARTICLES, "ab-initio reconstruction")
    particles.require_pixel_size()
    if model is None and (s.rounds > 0 or (reference is None and s.start == "generalist")):
        raise ValueError("ab initio needs a distance network (the generalist) for self-training rounds "
                         "and for the generalist start; without one, give a reference map or "
                         "start='soft-search', and rounds=0")
    if model is not None:
        model.check_box(particles.box, f"the images of {particles.name or 'the data set'}")
    if reference is not None and tuple(np.shape(reference)) != (particles.box,) * 3:
        raise ValueError(f"the reference map is {tuple(np.shape(reference))}, the particles are "
                         f"{particles.box} px: resample it to ({particles.box},)*3 at their pixel size")
    state = _State(particles, s)
    start = yield from _start_map(state, model, None if reference is None else np.asarray(reference))
    if reference is None:
        state.stage_poses["start"] = state.rotations.copy()
    yield from _global_iterations(state, start)
    rec, fsc, scores = yield from _refine(state, "refine")
    if s.second_chance:
        rec, fsc, scores = yield from _second_chance(state, rec, fsc)
    best = _snapshot(state, rec, fsc, scores, [model, model] if model is not None else [])
    yield Progress("round", 0, s.rounds, "start + search + refinement", {"result": best})
    models = [model, model]
    for k in range(1, s.rounds + 1):
        models = yield from _self_training_round(state, k, rec, models)
        rec, fsc, scores = yield from _refine(state, f"round {k}")
        gain = best.fsc.resolution_0143_a / max(fsc.resolution_0143_a, 1e-9) - 1
        if gain > 0:
            best = _snapshot(state, rec, fsc, scores, models)
        yield Progress("round", k, s.rounds, f"round {k}: {fsc.resolution_0143_a:.2f} Å", {"result": best})
        if gain < s.min_improvement:
            break
    return best


def _snapshot(state: _State, rec: ReconstructionResult, fsc: FSCResult, scores: np.ndarray,
              models: list[DistanceModel]) -> AbInitioResult:
    return AbInitioResult(
        particles=state.p.with_poses(state.rotations.copy(), state.shifts.copy()),
        halves=state.halves.copy(), reconstruction=rec, fsc=fsc, scores=np.asarray(scores).copy(),
        rounds=[dict(r) for r in state.rounds], stage_poses=dict(state.stage_poses), networks=list(models))
