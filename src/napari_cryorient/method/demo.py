"""The whole method on one simulated data set, scored against its truth (``cryorient demo``,
``benchmarks/method.py``): simulate → train → :func:`recover_poses` → evaluate → write.

The truth (poses, map) is used to train the network — the truth-trained upper bound —
and to score; :func:`recover_poses` itself never sees it. Outputs are written into one
folder at the end (all or nothing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..engine.fourier import fourier_resize_volume
from ..engine.jobs import Job, forward
from ..engine.particles import Particles
from ..engine.reassign import ReassignConfig
from ..engine.reconstruct import reconstruct_volume
from ..engine.recover import RecoveryConfig
from ..engine.refine import RefineConfig
from ..engine.simulate import SimulationConfig, SimulationResult, simulate_particles
from ..engine.train import DistanceTrainer, TrainConfig, prepare_training_data
from ..engine.volumes import make_sample_volume, normalise_volume
from ..io import (
    StackWriter,
    is_atomic_model,
    map_from_atomic_model,
    read_map,
    staged_outputs,
    write_map,
    write_particles,
)
from ..io.checkpoint import save_model
from ..io.errors import InputError
from .evaluate import MapScore, PoseMetrics, evaluate_poses, score_map
from .presets import METHOD_PRESETS, method_preset
from .recover import PoseRecovery, RecoverySettings, recover_poses

__all__ = [
    "CaseScores",
    "DemoConfig",
    "SimulatedCase",
    "load_demo_volume",
    "origin_errors",
    "run_demo",
    "score_case",
    "simulate_case",
    "stage_errors",
    "train_truth_network",
]


@dataclass(frozen=True)
class DemoConfig:
    """Settings of a demo run (defaults: the issue's reference setting).

    Attributes
    ----------
    n_particles, box, pixel_size_a
        Data set size; the map is Fourier-resized to ``box``.
    snr_db
        Per-image SNR in dB (None: clean images).
    orientations
        ``uniform``, ``euler`` or ``preferred``.
    ctf
        Simulate a CTF (defocus 1–2.5 µm, astigmatism, amplitude contrast 0.1). The network
        is trained on and applied to phase-flipped images; the common-line step
        phase-flips; reconstruction is Wiener-filtered.
    shift_std_px
        Standard deviation (pixels, per axis) of the particles' origins. The method is not
        told them (as with real picks); set ``refine.search_shifts`` to find them.
    volume, sample
        A map file (with ``pixel_size_a`` if its header has none), an atomic model
        (``.pdb``/``.cif``, optionally gzipped: rendered at ``box`` and ``pixel_size_a``)
        or a built-in sample.
    train, recovery
        Network training and recovery settings.
    refine
        Local projection-matching refinement after recovery (None: skip it).
    reassign
        The global second chance after the refinement
        (:class:`~napari_cryorient.engine.reassign.ReassignConfig`; None: skip it).
    seed
        Seed of everything.
    """

    n_particles: int = 5000
    box: int = 64
    pixel_size_a: float = 2.0
    snr_db: float | None = -12.0
    orientations: str = "uniform"
    ctf: bool = False
    shift_std_px: float = 0.0
    volume: Path | None = None
    sample: str = "pseudo-protein"
    # defaults: the "standard" preset (method/presets.py)
    train: TrainConfig = field(default_factory=lambda: METHOD_PRESETS["standard"].train)
    recovery: RecoveryConfig = field(default_factory=lambda: METHOD_PRESETS["standard"].recovery)
    refine: RefineConfig | None = field(default_factory=lambda: METHOD_PRESETS["standard"].refine)
    reassign: ReassignConfig | None = field(default_factory=lambda: METHOD_PRESETS["standard"].reassign)
    seed: int = 0

    @classmethod
    def preset(cls, name: str, **changes: Any) -> DemoConfig:
        """The settings of preset ``name`` (:data:`~napari_cryorient.method.presets.METHOD_PRESETS`)."""
        p = method_preset(name)
        return cls(train=p.train, recovery=p.recovery, refine=p.refine, reassign=p.reassign, **changes)

    @classmethod
    def quick(cls, **changes: Any) -> DemoConfig:
        """A run that finishes in a few minutes on a 2-core CPU: the ``quick`` preset on
        2 000 particles at -6 dB."""
        return cls.preset("quick", **{"n_particles": 2000, "snr_db": -6.0, **changes})


def load_demo_volume(config: DemoConfig) -> tuple[torch.Tensor, float]:
    """The ground-truth map at ``config.box`` and its voxel size (Å)."""
    if config.volume is None:
        # one molecule whatever the run's seed (the seed draws poses, CTFs and noise): a
        # network is only ever compared on the protein it was trained on
        vol = make_sample_volume(config.sample, config.box, config.pixel_size_a, seed=0)
        return vol, config.pixel_size_a
    if is_atomic_model(config.volume):
        vol = map_from_atomic_model(config.volume, config.box, config.pixel_size_a)
        return normalise_volume(vol), config.pixel_size_a
    data = read_map(config.volume)
    px = data.voxel_size_a or config.pixel_size_a
    if px is None:
        raise InputError("the map has no voxel size; give one", config.volume)
    vol = normalise_volume(torch.from_numpy(data.data))
    d = vol.shape[-1]
    if d != config.box:
        vol = fourier_resize_volume(vol, config.box)
        px = px * d / config.box
    return vol, float(px)


@dataclass
class SimulatedCase:
    """A simulated data set with its truth: noise-free and noisy images of the same poses,
    origins and CTFs, and the map they were made from."""

    clean: SimulationResult
    noisy: SimulationResult
    volume: torch.Tensor
    pixel_size_a: float

    @property
    def particles(self) -> Particles:
        """The noisy images as the method sees them: no poses, no origins (as real picks)."""
        n = self.noisy
        return Particles(n.images, n.pixel_size_a, ctf=n.ctf, name="simulation")


def simulate_case(config: DemoConfig, timings: dict[str, float]) -> Job[SimulatedCase]:
    """Simulate ``config``'s data set (noise-free, then noisy with the same poses)."""
    vol, px = load_demo_volume(config)
    sim_cfg = SimulationConfig(n_particles=config.n_particles, orientations=config.orientations,
                               ctf=config.ctf, shift_std_a=config.shift_std_px * px, seed=config.seed)
    clean = yield from forward(simulate_particles(vol, px, sim_cfg), "simulate", timings=timings)
    noisy = clean
    if config.snr_db is not None:
        noisy = yield from forward(simulate_particles(vol, px, replace(sim_cfg, snr_db=config.snr_db)),
                                   "simulate", timings=timings)
    return SimulatedCase(clean, noisy, vol, px)


def train_truth_network(config: DemoConfig, sim: SimulatedCase, timings: dict[str, float]
                        ) -> Job[DistanceTrainer]:
    """The truth-trained network: clean images and true poses, fresh noise every step.

    The images are as the method will see them: off-centre (their origins are not used)
    and phase-flipped with their CTF."""
    wb = min(config.train.encoder.working_box, config.box)
    train_cfg = replace(config.train, encoder=replace(config.train.encoder, working_box=wb), seed=config.seed)
    noise = sim.noisy.noise_variance if config.snr_db is not None else None
    data = prepare_training_data(sim.clean.images, sim.clean.rotations, wb, noise_variance=noise,
                                 pixel_size_a=sim.pixel_size_a, ctf=sim.clean.ctf, phase_flip=config.ctf)
    trainer = DistanceTrainer(data, train_cfg)
    yield from forward(trainer.run(), "train", timings=timings)
    trainer.model.load_state_dict(trainer.best_model().state_dict())
    return trainer


@dataclass
class CaseScores:
    """Pose errors (O(4) and harmless alignment) and the maps from the true and the final poses."""

    recovered: PoseMetrics
    final: PoseMetrics
    maps: dict[str, Any]
    map_scores: dict[str, MapScore]


def score_case(config: DemoConfig, sim: SimulatedCase, poses: PoseRecovery,
               timings: dict[str, float]) -> Job[CaseScores]:
    """Pose errors, and maps from the true and from the (harmlessly aligned) final poses."""
    truth = sim.clean.rotations
    recovered = evaluate_poses(poses.recovery.quaternions, truth, seed=config.seed)
    final = evaluate_poses(poses.rotations, truth, seed=config.seed)
    ctf_mode = "wiener" if config.ctf else "none"
    aligned = final.harmless.rotations
    maps, scores = {}, {}
    found = poses.refinement.shifts_a if poses.refinement is not None else None
    for name, rotations, shifts in (("true", truth, sim.noisy.shifts_a), ("final", aligned, found)):
        maps[name] = yield from forward(
            reconstruct_volume(sim.noisy.images, rotations, sim.pixel_size_a, shifts_a=shifts,
                               ctf=sim.noisy.ctf, ctf_correction=ctf_mode, half_maps=True, seed=config.seed),
            "reconstruct", message=f"{name} poses", timings=timings)
        scores[name] = score_map(maps[name], sim.volume)
    return CaseScores(recovered, final, maps, scores)


def stage_errors(sim: SimulatedCase, poses: PoseRecovery, seed: int) -> dict[str, dict[str, float]]:
    """Mean / median / p90 error (O(4)-aligned, degrees) after each stage that ran."""
    out = {}
    for stage, rotations in poses.stage_rotations.items():
        o4 = evaluate_poses(rotations, sim.clean.rotations, seed=seed).o4
        out[stage] = {"mean": o4.mean_deg, "median": o4.median_deg, "p90": o4.p90_deg}
    return out


def origin_errors(sim: SimulatedCase, poses: PoseRecovery) -> dict[str, float]:
    """Mean distance (px) of the found origins to the true ones, and of the centre (what
    not searching gives)."""
    truth = sim.noisy.shifts_a / sim.pixel_size_a
    found = poses.refinement.shifts_a if poses.refinement is not None else None
    found = np.zeros_like(truth) if found is None else found / sim.pixel_size_a
    return {"origin_error_px_mean": float(np.linalg.norm(found - truth, axis=1).mean()),
            "origin_error_px_unsearched": float(np.linalg.norm(truth, axis=1).mean())}


def _metrics(config: DemoConfig, sim: SimulatedCase, trainer: DistanceTrainer, poses: PoseRecovery,
             scores: CaseScores, evaluation: Any, timings: dict[str, float]) -> dict[str, Any]:
    full, harmless, rec_only = scores.final.o4, scores.final.harmless, scores.recovered.o4
    true_map, ours = scores.map_scores["true"], scores.map_scores["final"]
    fsc_true, fsc_ours = true_map.truth.same_hand, ours.truth.best
    amb, refinement = poses.ambiguity, poses.refinement
    return {
        "n_particles": config.n_particles, "box": config.box, "pixel_size_a": sim.pixel_size_a,
        "snr_db": config.snr_db, "orientations": config.orientations, "ctf": config.ctf,
        "shift_std_px": config.shift_std_px, **origin_errors(sim, poses),
        "distance_mae_deg": evaluation.mae_deg, "distance_rmse_deg": evaluation.rmse_deg,
        "distance_pearson_r": evaluation.pearson_r,
        "orientation_error_mean_deg": full.mean_deg,
        "orientation_error_median_deg": full.median_deg,
        "orientation_error_p90_deg": full.p90_deg,
        "orientation_error_recovered_mean_deg": rec_only.mean_deg,
        "orientation_error_recovered_median_deg": rec_only.median_deg,
        "orientation_error_recovered_p90_deg": rec_only.p90_deg,
        "refined": refinement is not None,
        "stage_errors_deg": stage_errors(sim, poses, config.seed),
        "diagnostics": None if poses.diagnostics is None else {
            "median_predicted_deg": poses.diagnostics.median_predicted_deg,
            "view_resultant_length": poses.diagnostics.view_resultant_length,
            "warnings": poses.diagnostics.warnings},
        "reassigned_fraction": (None if poses.reassignment is None
                                else float(poses.reassignment.moved.mean())),
        "refinement": refinement.history if refinement is not None else [],
        "orientation_error_harmless_only_mean_deg": harmless.mean_deg,
        "orientation_error_harmless_only_median_deg": harmless.median_deg,
        "orientation_error_harmless_only_p90_deg": harmless.p90_deg,
        "hand_flipped": harmless.hand_flipped,
        "ambiguity": {"conjugated": amb.conjugated, "score": amb.score,
                      "other_branch_score": amb.runner_up_score},
        "fsc_resolution_recovered_A": fsc_ours.resolution_05_a,
        "fsc_resolution_true_A": fsc_true.resolution_05_a,
        "fsc_0143_resolution_recovered_A": fsc_ours.resolution_0143_a,
        "fsc_0143_resolution_true_A": fsc_true.resolution_0143_a,
        "half_map_resolution_recovered_A": ours.half_maps.resolution_0143_a,
        "half_map_resolution_true_A": true_map.half_maps.resolution_0143_a,
        "recovered_map_hand_vs_truth": ours.truth.hand,
        "nyquist_A": 2 * sim.pixel_size_a,
        "training": {"epochs_run": len(trainer.history), "stopped_early": trainer.stopped_early,
                     "best_val_loss": trainer.best_val,
                     "working_box": trainer.config.encoder.working_box},
        "recovery_loss": poses.recovery.loss,
        "timings_s": timings,
        "machine": {"cpu_threads": torch.get_num_threads(), "device": str(trainer.device),
                    "torch": torch.__version__},
    }


def _write_outputs(out_dir: str | Path, sim: SimulatedCase, trainer: DistanceTrainer, poses: PoseRecovery,
                   scores: CaseScores, evaluation: Any, metrics: dict[str, Any]) -> None:
    from .. import plots

    noisy, px, box = sim.noisy, sim.pixel_size_a, sim.noisy.images.shape[-1]
    with staged_outputs(out_dir) as stage:
        save_model(stage / "model.pt", trainer.checkpoint())
        stack = stage / "particles.mrcs"
        with StackWriter(stack, len(noisy.images), box, px) as w:
            w(0, noisy.images)
        found = poses.refinement.shifts_a if poses.refinement is not None else None
        for name, rotations, shifts in (
                ("particles_true", sim.clean.rotations, noisy.shifts_a),
                ("recovered", poses.rotations, found),
                ("aligned", scores.final.o4.rotations, found)):
            write_particles(stage / f"{name}.star", rotations, px, box, stack=stack, shifts_a=shifts,
                            ctf=noisy.ctf)
        write_map(stage / "volume_truth.mrc", sim.volume.numpy(), px)
        write_map(stage / "reconstruction_true_poses.mrc", scores.maps["true"].volume, px)
        write_map(stage / "reconstruction_recovered.mrc", scores.maps["final"].volume, px)
        np.save(stage / "orientation_errors_deg.npy", scores.final.o4.errors_deg)
        plots.plot_losses(trainer.history, stage / "loss_curves.png", poses.recovery.history)
        plots.plot_distances(evaluation, stage / "distances.png")
        errors = {"after O(4) alignment": scores.final.o4.errors_deg,
                  "resolved from images, harmless alignment": scores.final.harmless.errors_deg}
        if poses.refinement is not None:
            errors = {"recovered, before refinement (O(4))": scores.recovered.o4.errors_deg, **errors}
        plots.plot_errors(errors, stage / "orientation_errors.png")
        plots.plot_fsc({"true poses": scores.map_scores["true"].truth.same_hand,
                        "recovered poses": scores.map_scores["final"].truth.best}, stage / "fsc.png")
        (stage / "metrics.json").write_text(json.dumps(metrics, indent=2))


def run_demo(config: DemoConfig, out_dir: str | Path) -> Job[dict[str, Any]]:
    """Run the whole method and write every output into ``out_dir``.

    Yields
    ------
    Progress
        Stages ``simulate``, ``train``, ``features``, ``recover``, ``resolve``,
        ``refine`` (when enabled), ``reconstruct``.

    Returns
    -------
    dict
        The metrics also written to ``out_dir/metrics.json``.
    """
    timings: dict[str, float] = {}
    sim = yield from simulate_case(config, timings)
    trainer = yield from train_truth_network(config, sim, timings)
    settings = RecoverySettings(recovery=config.recovery, refine=config.refine, reassign=config.reassign,
                                seed=config.seed)
    _, evaluation = trainer.validate(rotations=settings.feature_rotations)
    poses = yield from recover_poses(sim.particles, trainer.distance_model(), settings)
    timings.update(poses.timings_s)
    scores = yield from score_case(config, sim, poses, timings)
    metrics = _metrics(config, sim, trainer, poses, scores, evaluation, timings)
    metrics["feature_rotations"] = settings.feature_rotations
    _write_outputs(out_dir, sim, trainer, poses, scores, evaluation, metrics)
    return metrics

