"""The truth-free pipeline on maps the generalist never saw: accuracy, resolution, time.

Each case simulates ``N`` particles (64 px) of an evaluation map with CTF (defocus
1–2.5 µm, astigmatism, amplitude contrast 0.1) and origins (σ = 3 px), hands the method
the images, pixel size and CTFs only, runs :func:`napari_cryorient.method.ab_initio` with
the shipped generalist, and scores with the truth afterwards: orientation errors after
the harmless rotation only (what a user gets; the hand left free) at every stage (the
ablation), the origin error, the final map's FSC against the truth next to the map from
the true poses, the half-map FSC next to the random-pose baseline, and the generalist's
raw transfer (distance error by true-distance bin, nearest-neighbour precision).

usage: python -m benchmarks.ab_initio [CASE ...] [--n N] [--preset quick|standard|thorough]
                                     [--start generalist|soft-search] [--second-chance]
       python -m benchmarks.ab_initio --list
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from napari_cryorient.engine.fsc import compare_with_reference
from napari_cryorient.engine.inference import image_features
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.particles import Particles
from napari_cryorient.engine.reconstruct import reconstruct_volume
from napari_cryorient.engine.recover import ExactDistances, FeatureDistances
from napari_cryorient.engine.simulate import SimulationConfig, simulate_particles
from napari_cryorient.engine.so3 import geodesic_distance, matrix_to_quaternion
from napari_cryorient.io.checkpoint import load_generalist
from napari_cryorient.method import DemoConfig
from napari_cryorient.method.ab_initio import PRESETS, STARTS, AbInitioSettings, ab_initio
from napari_cryorient.method.demo import load_demo_volume
from napari_cryorient.method.evaluate import harmless_alignment, random_pose_baseline, translate_to_reference

from ._load import LoadSampler, shared_mark
from ._report import RESULTS, machine, machine_label, save_json, update_docs_section

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "volumes"
MAPS = {
    # the ribosome header has no voxel size: 3.05 Å/px at 65 px as in benchmarks.method
    "ribosome": DemoConfig(volume=SHARED / "clean70SRibosome_vol_65p.mrc", pixel_size_a=3.0 * 65 / 64),
    "hand": DemoConfig(volume=SHARED / "hand-vol.mrc"),
    # an atomic model (PDB 2XHE, Unc18-syntaxin, about 80 kDa and 120 Å across; benchmarks/data/README.md)
    # rendered at 2.5 Å/px: 160 Å box
    "unc18": DemoConfig(volume=Path(__file__).resolve().parent / "data" / "2xhe.pdb.gz", pixel_size_a=2.5),
    "sample": DemoConfig(),
}
SNRS = (-12.0, -16.0)
BINS_DEG = (0, 10, 20, 40, 90, 180)


def _cases() -> dict[str, tuple[str, float]]:
    return {f"{m}-{abs(s):.0f}db": (m, s) for m in MAPS for s in SNRS}


def transfer(model, particles: Particles, truth: np.ndarray, n: int = 2000, seed: int = 0) -> dict:
    """The generalist's raw distances on these images: error by true-distance bin and
    the precision of its 10 nearest neighbours (share that are among the true 10)."""
    rows = np.sort(np.random.default_rng(seed).permutation(len(particles))[:n])
    sub = particles.subset(rows)
    f = run_job(image_features(model, sub.images, pixel_size_a=sub.pixel_size_a, ctf=sub.ctf))
    pred = FeatureDistances(f)
    q = torch.as_tensor(matrix_to_quaternion(truth[rows]))
    g = torch.Generator().manual_seed(seed)
    i = torch.randint(0, len(rows), (200_000,), generator=g)
    j = (i + torch.randint(1, len(rows), (200_000,), generator=g)) % len(rows)
    d_true = np.rad2deg(geodesic_distance(q[i], q[j]).numpy())
    d_pred = np.rad2deg(pred.pairs(i, j).numpy())
    by_bin = {}
    for lo, hi in itertools.pairwise(BINS_DEG):
        sel = (d_true >= lo) & (d_true < hi)
        by_bin[f"{lo}-{hi}"] = float(np.abs(d_pred[sel] - d_true[sel]).mean()) if sel.any() else None
    k = 10
    nn_pred = pred.nearest_neighbours(k).numpy()
    nn_true = ExactDistances(q.numpy()).nearest_neighbours(k).numpy()
    precision = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(nn_pred, nn_true, strict=True)]))
    return {"mae_by_true_distance_deg": by_bin, "mae_deg": float(np.abs(d_pred - d_true).mean()),
            "nn10_precision": precision, "n": int(len(rows))}


def _errors(poses: np.ndarray, truth: np.ndarray) -> dict:
    a = harmless_alignment(poses, truth)
    return {"mean_deg": a.mean_deg, "median_deg": a.median_deg, "p90_deg": a.p90_deg}


def _origin_error_without_global_shift(found_a: np.ndarray, true_a: np.ndarray, rotations: np.ndarray) -> float:
    """Mean origin error (Å) after the least-squares 3D translation ``t`` that all origins may
    share: particle ``i`` sees it as the image-plane part of ``R_i t`` (or ``R_iᵀ t``: both
    are tried, the better kept, so no convention is assumed)."""
    diff = (found_a - true_a).reshape(-1)
    best = np.inf
    for a in (rotations[:, :2, :], np.transpose(rotations, (0, 2, 1))[:, :2, :]):
        t, *_ = np.linalg.lstsq(a.reshape(-1, 3), diff, rcond=None)
        best = min(best, float(np.linalg.norm((diff - a.reshape(-1, 3) @ t).reshape(-1, 2), axis=1).mean()))
    return best


def run_case(name: str, n: int, preset: str, start: str = "generalist", second_chance: bool = False) -> dict:
    volume_name, snr = _cases()[name]
    vol, px = load_demo_volume(MAPS[volume_name])
    config = SimulationConfig(n_particles=n, snr_db=snr, ctf=True, defocus_range_um=(1.0, 2.5),
                              shift_std_a=3.0 * px, amplitude_contrast=0.1, seed=0)
    t0 = time.perf_counter()
    with LoadSampler() as load:
        sim = run_job(simulate_particles(vol, px, config))
        particles = Particles(sim.images, px, ctf=sim.ctf, name=name)  # no poses, no origins
        model = load_generalist()
        raw = transfer(model, particles, sim.rotations)
        t_run = time.perf_counter()
        result = run_job(ab_initio(particles, model, AbInitioSettings.preset(preset, start=start, second_chance=second_chance)))
        t_method = time.perf_counter() - t_run
        base = run_job(random_pose_baseline(particles, "wiener"))
        true_map = run_job(reconstruct_volume(sim.images, sim.rotations, px, shifts_a=sim.shifts_a, ctf=sim.ctf,
                                              ctf_correction="wiener"))
    truth = sim.rotations
    stages = {}
    for stage, poses in result.stage_poses.items():
        if stage == "start":  # each half in its own frame (the soft search: half 1 only)
            stages[stage] = {f"half{h + 1}": _errors(poses[result.halves == h], truth[result.halves == h])
                             for h in ((0,) if start == "soft-search" else (0, 1))}
        else:
            stages[stage] = _errors(poses, truth)
    final = _errors(result.particles.rotations, truth)
    # the map in the truth's frame: the harmless rotation (the poses' alignment), then the
    # global translation every origin may share (the cross-correlation peak)
    aligned = harmless_alignment(result.particles.rotations, truth).rotations
    final_map = run_job(reconstruct_volume(sim.images, aligned, px, shifts_a=result.particles.shifts_a,
                                           ctf=sim.ctf, ctf_correction="wiener"))
    moved, map_shift = translate_to_reference(final_map.volume, vol)
    ours = compare_with_reference(moved, vol, px)
    ref = compare_with_reference(true_map.volume, vol, px)
    metrics = {
        "n_particles": n, "snr_db": snr, "pixel_size_a": px, "preset": preset, "start": start,
        "second_chance": second_chance,
        "final_harmless": final, "stages": stages, "rounds": result.rounds,
        "origin_error_px": float(np.linalg.norm(result.particles.shifts_a - sim.shifts_a, axis=1).mean() / px),
        "origin_error_global_shift_removed_px": _origin_error_without_global_shift(
            result.particles.shifts_a, sim.shifts_a, truth) / px,
        "map_shift_px": [int(v) for v in map_shift],
        "origin_error_none_px": float(np.linalg.norm(sim.shifts_a, axis=1).mean() / px),
        "fsc05_vs_truth_A": ours.best.resolution_05_a, "hand": ours.hand,
        "fsc05_true_poses_A": ref.best.resolution_05_a,
        "half_map_fsc0143_A": result.fsc.resolution_0143_a,
        "random_poses_half_map_fsc0143_A": base.resolution_0143_a,
        "generalist_transfer": raw, "method_s": t_method, "total_s": time.perf_counter() - t0,
    }
    payload = {"benchmark": "ab_initio", "case": name, "machine": machine(), "load_average_mean": load.mean,
               "date": time.strftime("%Y-%m-%d"), "metrics": metrics}
    label = ("" if start == "generalist" else f"_{start}") + ("_second-chance" if second_chance else "")
    save_json(f"ab_initio_{name}{label}", payload)
    print(name, json.dumps({k: v for k, v in metrics.items() if k not in ("rounds", "generalist_transfer")}))
    return payload


def write_table() -> None:
    lines = [
        "## Orientations from the images alone (`cryorient ab-initio`)",
        "",
        "Produced by `python -m benchmarks.ab_initio CASE` (`benchmarks/results/ab_initio_*.json`). "
        "Maps the generalist never saw, 64 px, CTF (defocus 1–2.5 µm) and origins (σ = 3 px); the "
        "method gets the images, pixel size and CTFs only. Errors after the harmless rotation only "
        "(what a user gets), mean / median in degrees. Stages: *start* = the generalist's poses "
        "(each half on its own; mean per half) or the soft search's (half 1 only: half 2 starts from its "
        "map), *search* = after global search, *refine* = after local refinement "
        "of poses and origins, *second chance* = after the global second chance and its short "
        "refinement (`--second-chance`; — where it did not run), *final* = after the "
        "self-training rounds (the best round). FSC 0.5 "
        "against the true map: our map (reconstructed from the final poses after the harmless "
        "rotation and moved by the global translation the origins leave free, the cross-correlation "
        "peak; runs before this scoring compared the map unaligned) / the map from the true poses. "
        "Origin error: raw, and after the least-squares 3D translation all origins may share "
        "(where recorded). Half-map FSC 0.143 (gold "
        "standard from the first step) / the same with random poses. Transfer: the generalist's "
        "raw distance MAE for pairs closer than 10° / overall, and its 10-nearest-neighbour "
        "precision. Times marked * ran while other work shared the CPU.",
        "",
        "| case | start | N | start (°) | search (°) | refine (°) | second chance (°) | final (°) | origin error, px: raw / global shift removed (no search) "
        "| FSC 0.5 ours / true poses (Å) | half-map 0.143 / random (Å) | transfer: MAE <10° / all (°), "
        "NN precision | method (s) | machine |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("ab_initio_*.json")):
        d = json.loads(path.read_text())
        m = d["metrics"]
        st = m["stages"]
        start = st.get("start")
        start_txt = (" / ".join(f"{start[h]['mean_deg']:.0f}" for h in ("half1", "half2") if h in start)
                     if start else "—")
        shifted = (f" / {m['origin_error_global_shift_removed_px']:.2f}"
                   if "origin_error_global_shift_removed_px" in m else "")
        kind = m.get("start", "generalist") + (", second chance" if m.get("second_chance") else "")

        def fmt(e):
            return f"{e['mean_deg']:.1f} / {e['median_deg']:.1f}" if e else "—"

        t = m["generalist_transfer"]
        lines.append(
            f"| {d['case']} | {kind} | {m['n_particles']} | {start_txt} | {fmt(st.get('search'))} | {fmt(st.get('refine'))} | "
            f"{fmt(st.get('second chance'))} | "
            f"{fmt(m['final_harmless'])} | {m['origin_error_px']:.2f}{shifted} ({m['origin_error_none_px']:.2f}) | "
            f"{m['fsc05_vs_truth_A']:.1f} / {m['fsc05_true_poses_A']:.1f} | "
            f"{m['half_map_fsc0143_A']:.1f} / {m['random_poses_half_map_fsc0143_A']:.1f} | "
            f"{t['mae_by_true_distance_deg']['0-10']:.1f} / {t['mae_deg']:.1f}, {t['nn10_precision']:.2f} | "
            f"{m['method_s']:.0f}{shared_mark(d)} | {machine_label(d['machine'])} |")
    update_docs_section("ab-initio", "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=["ribosome-12db"])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--preset", choices=PRESETS, default="standard")
    parser.add_argument("--second-chance", action="store_true",
                        help="run the global second chance after the refinement (the file name says so)")
    parser.add_argument("--start", choices=STARTS, default="generalist",
                        help="where the start map comes from (the result file says which)")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(_cases()))
        return 0
    unknown = [c for c in args.cases if c not in _cases()]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; --list shows them")
    for name in args.cases:
        run_case(name, args.n, args.preset, args.start, args.second_chance)
    write_table()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

