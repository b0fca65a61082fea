"""Time of orientation recovery (default settings) against the number of particles.

Features are synthetic (each particle's quaternion with Gaussian noise appended, so the
predicted distances are noisy but right on average): this times the optimiser alone, not
the network. Each N runs the default :class:`RecoveryConfig` and the same with the batch
never capped by the set size (``pairs_per_particle`` unlimited, the behaviour before the
cap), and reports time and error after O(4) alignment.

With ``--case CASE`` it also times the whole path of the Recover widget and ``cryorient
recover`` (:func:`~napari_cryorient.method.recover_poses` with its default settings:
features with test-time turns → recovery → ambiguity → refinement of poses and origins) on
the first N particles of a method case's cached images and network (64 px, its CTF; the
origins are not given), stage by stage.

usage: python -m benchmarks.recover_speed [--n 200 400 1000 2000] [--case CASE --path-n 400]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import numpy as np

from napari_cryorient.engine import so3
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.recover import FeatureDistances, RecoveryConfig, recover_orientations
from napari_cryorient.method.evaluate import evaluate_poses

from ._load import LoadSampler, shared_mark
from ._report import RESULTS, machine, machine_label, save_json, update_docs_section

NOISE = 0.25  # std of the 6 noise dimensions appended to each unit quaternion


def synthetic_features(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`(n, 10)` noisy features and the `(n, 3, 3)` poses they come from."""
    rng = np.random.default_rng(seed)
    rotations = so3.sample_uniform_so3(n, rng)
    q = so3.matrix_to_quaternion(rotations)
    return np.concatenate([q, NOISE * rng.standard_normal((n, 6))], 1).astype(np.float32), rotations


def run_path(case: str, n: int) -> dict:
    """Stage times of ``recover_poses`` (defaults, origins searched) on ``n`` cached particles."""
    from napari_cryorient.engine.refine import RefineConfig
    from napari_cryorient.io.checkpoint import load_model
    from napari_cryorient.io.particles import read_particle_set
    from napari_cryorient.method.recover import RecoverySettings, recover_poses

    from .method import CACHE

    folder = CACHE / f"method_{case}"
    if not (folder / "model.pt").exists():
        raise SystemExit(f"{folder} has no model: run python -m benchmarks.method {case} first")
    model = load_model(folder / "model.pt")
    every = read_particle_set(folder / "particles_true.star")
    truth = every.rotations[:n]
    particles = every.subset(np.arange(n)).with_poses(np.broadcast_to(np.eye(3), (n, 3, 3)).copy())
    particles = replace(particles, shifts_a=None)  # picks: origins unknown
    settings = RecoverySettings(refine=RefineConfig(search_shifts=True))
    t0 = time.perf_counter()
    result = run_job(recover_poses(particles, model, settings))
    total = time.perf_counter() - t0
    o4 = evaluate_poses(result.rotations, truth, seed=0).o4
    return {"case": case, "n": n, "total_s": total, "stages_s": result.timings_s,
            "error_mean_deg": o4.mean_deg, "error_median_deg": o4.median_deg}


def run(sizes: list[int], case: str | None = None, path_n: int = 400) -> dict:
    rows = []
    path = None
    who = machine()
    with LoadSampler() as load:
        if case is not None:
            path = run_path(case, path_n)
            print(json.dumps(path), flush=True)
        for n in sizes:
            features, truth = synthetic_features(n)
            default = RecoveryConfig()
            settings = [("default", default)]
            if default.pairs_per_particle * n < default.batch_pairs:  # the cap binds
                settings.append(("uncapped batch", replace(default, pairs_per_particle=10**9)))
            for label, config in settings:
                t0 = time.perf_counter()
                rec = run_job(recover_orientations(FeatureDistances(features), config))
                seconds = time.perf_counter() - t0
                o4 = evaluate_poses(rec.quaternions, truth, seed=0).o4
                rows.append({"n": n, "settings": label, "seconds": seconds, "error_mean_deg": o4.mean_deg,
                             "error_median_deg": o4.median_deg})
                print(json.dumps(rows[-1]), flush=True)
    payload = {"benchmark": "recover_speed", "noise": NOISE, "machine": who, "load_average_mean": load.mean,
               "date": time.strftime("%Y-%m-%d"), "rows": rows, "path": path}
    save_json("recover_speed", payload)
    return payload


def write_table() -> None:
    path = RESULTS / "recover_speed.json"
    if not path.exists():
        return
    d = json.loads(path.read_text())
    lines = [
        "## Orientation recovery: time against N",
        "",
        "Produced by `python -m benchmarks.recover_speed` (`benchmarks/results/recover_speed.json`). "
        "`recover_orientations` with the default settings (3 restarts, spectral start, 6 screened "
        "roundings, 500 Adam steps) on synthetic features (unit quaternion + 6 Gaussian noise "
        f"dimensions of σ {d['noise']}): the optimiser alone, no network. *Uncapped batch*: every step "
        "uses the full 16 384 pairs whatever N (before the batch was capped at 16 pairs per particle). "
        "Errors after O(4) alignment. A * marks a run that shared the CPU.",
        "",
        "| N | settings | time (s) | error mean / median (°) | machine |",
        "|---|---|---|---|---|",
    ]
    for r in d["rows"]:
        lines.append(f"| {r['n']} | {r['settings']} | {r['seconds']:.1f}{shared_mark(d)} | "
                     f"{r['error_mean_deg']:.2f} / {r['error_median_deg']:.2f} | {machine_label(d['machine'])} |")
    p = d.get("path")
    if p:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in p["stages_s"].items())
        lines += [
            "",
            f"The whole path (`recover_poses`, default settings, origins searched) on the first {p['n']} "
            f"particles of the `{p['case']}` method case (its network and noisy 64 px images with CTF): "
            f"**{p['total_s']:.0f} s**{shared_mark(d)} in all (stages, s: {stages}); error after O(4) "
            f"alignment {p['error_mean_deg']:.1f}° mean, {p['error_median_deg']:.1f}° median "
            f"({machine_label(d['machine'])}).",
        ]
    update_docs_section("recover_speed", "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[200, 400, 1000, 2000])
    parser.add_argument("--case", help="a method case whose cached network and images to time the "
                        "whole path on")
    parser.add_argument("--path-n", type=int, default=400)
    args = parser.parse_args(argv)
    run(args.n, args.case, args.path_n)
    write_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
