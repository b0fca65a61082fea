"""Test-time quarter turns of the image features: distance error and recovered poses.

Reads the outputs a method case left in ``benchmarks/cache/method_<case>/`` (its network,
noisy particles and true poses: run ``python -m benchmarks.method CASE`` first) and, for
each number of turns, computes the features of all particles as the method does (phase
flip with their CTF, origins not used), the distance error over random pairs against the
truth, and one orientation recovery (no ambiguity step or refinement), scored after O(4)
alignment. Results: ``benchmarks/results/feature_turns_<case>.json`` and a table in
docs/benchmarks.md.

usage: python -m benchmarks.feature_turns CASE [--turns 1 4] [--pairs 200000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from napari_cryorient.engine import so3
from napari_cryorient.engine.inference import image_features
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.recover import FeatureDistances, RecoveryConfig, recover_orientations
from napari_cryorient.engine.siamese import feature_distance
from napari_cryorient.io.checkpoint import load_model
from napari_cryorient.io.particles import read_particle_set
from napari_cryorient.method.evaluate import evaluate_poses

from ._load import LoadSampler, shared_mark
from ._report import RESULTS, machine, machine_label, save_json, update_docs_section
from .method import CACHE


def run(case: str, turns: list[int], n_pairs: int = 200_000, seed: int = 0) -> dict:
    """Measure each number of turns on the cached outputs of method case ``case``."""
    folder = CACHE / f"method_{case}"
    if not (folder / "model.pt").exists():
        raise SystemExit(f"{folder} has no model: run python -m benchmarks.method {case} first")
    model = load_model(folder / "model.pt")
    particles = read_particle_set(folder / "particles_true.star")
    truth = particles.rotations
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(particles), n_pairs), rng.integers(0, len(particles), n_pairs)
    q = so3.matrix_to_quaternion(truth)
    true_d = so3.geodesic_distance(q[a], q[b])
    rows = []
    who = machine()
    with LoadSampler() as load:
        for k in turns:
            t0 = time.perf_counter()
            features = run_job(image_features(model, particles.images, pixel_size_a=particles.pixel_size_a,
                                              ctf=particles.ctf, rotations=k))
            t_features = time.perf_counter() - t0
            pred = feature_distance(torch.as_tensor(features[a]), torch.as_tensor(features[b])).numpy()
            err = np.degrees(np.abs(pred - true_d))
            close = np.degrees(true_d) < 20
            t0 = time.perf_counter()
            rec = run_job(recover_orientations(FeatureDistances(features), RecoveryConfig(seed=seed)))
            o4 = evaluate_poses(rec.quaternions, truth, seed=seed).o4
            rows.append({"turns": k, "distance_mae_deg": float(err.mean()),
                         "distance_mae_close_deg": float(err[close].mean()),
                         "recovered_mean_deg": o4.mean_deg, "recovered_median_deg": o4.median_deg,
                         "recovered_p90_deg": o4.p90_deg, "features_s": t_features,
                         "recover_s": time.perf_counter() - t0})
            print(json.dumps(rows[-1]), flush=True)
    payload = {"benchmark": "feature_turns", "case": case, "n_particles": len(particles), "pairs": n_pairs,
               "machine": who, "load_average_mean": load.mean, "date": time.strftime("%Y-%m-%d"),
               "rows": rows}
    save_json(f"feature_turns_{case}", payload)
    return payload


def write_table() -> None:
    lines = [
        "## Test-time quarter turns of the features",
        "",
        "Produced by `python -m benchmarks.feature_turns CASE` (`benchmarks/results/feature_turns_*.json`) "
        "on the network, noisy images and true poses a method case left in its cache. *Turns*: the "
        "features average the network over that many exact in-plane quarter turns of each image "
        "(`RecoverySettings.feature_rotations`). Distance MAE over random pairs of all the case's "
        "particles (its training particles too, with the noise of the stored stack), and over the "
        "pairs closer than 20°; one recovery per row (same seed; no ambiguity step, no refinement), "
        "errors after O(4) alignment. Rows marked * ran while other work shared the CPU.",
        "",
        "| case | N | turns | distance MAE, all / < 20° (°) | recovered mean / median / p90 (°) "
        "| features (s) | recovery (s) | machine |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("feature_turns_*.json")):
        d = json.loads(path.read_text())
        for r in d["rows"]:
            lines.append(
                f"| {d['case']} | {d['n_particles']} | {r['turns']} | {r['distance_mae_deg']:.1f} / "
                f"{r['distance_mae_close_deg']:.1f} | {r['recovered_mean_deg']:.1f} / "
                f"{r['recovered_median_deg']:.1f} / {r['recovered_p90_deg']:.1f} | {r['features_s']:.1f} | "
                f"{r['recover_s']:.0f}{shared_mark(d)} | {machine_label(d['machine'])} |")
    update_docs_section("feature_turns", "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case")
    parser.add_argument("--turns", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--pairs", type=int, default=200_000)
    args = parser.parse_args(argv)
    run(args.case, args.turns, args.pairs)
    write_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
