"""Orientation error versus the number of particles, on realistic images at one noise level.

One truth-trained network (trained as in the method case ``MAP-NNdb-ctf`` on 5 000
particles: CTF, origins σ 3 px, fresh noise at every step) recovers the poses of fresh
particle sets of growing size N (other poses, origins, CTFs and noise than its training
set: seed 1) with the method's one path (features → recovery → ambiguity → refinement of
poses and origins; the standard preset, no second chance). Each N reports errors, FSC
against the truth, the time of each stage, and the process's peak memory so far (the N
run in increasing order, so it is the peak of the largest N yet).

With ``--case CASE`` (a method case, e.g. ``sample-16db-ctf-local-box32``) the images,
network and path are that case's, and the network is the one the method case trained and
cached (``benchmarks/cache/method_CASE/model.pt``, trained on its 5 000 particles, seed 0);
it is trained here only when the cache has none.

usage: python -m benchmarks.error_vs_n [--volume sample|ribosome] [--snr -16] [--n 1000 5000 20000]
                                      [--size full|small]   (small: a 1 000-particle, short training)
       python -m benchmarks.error_vs_n --case sample-16db-ctf-local-box32 [--n ...] [--snr -20]
                                      (--snr with --case: that network on images of another noise level)
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import replace

from napari_cryorient.engine.inference import DistanceModel
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.reassign import ReassignConfig
from napari_cryorient.io.checkpoint import load_model
from napari_cryorient.method import DemoConfig
from napari_cryorient.method.demo import (
    origin_errors,
    score_case,
    simulate_case,
    stage_errors,
    train_truth_network,
)
from napari_cryorient.method.recover import RecoverySettings, recover_poses

from ._load import LoadSampler, shared_mark
from ._report import RESULTS, machine, machine_label, save_json, update_docs_section
from .method import CACHE, RIBOSOME, case_config, realistic, small

TRAIN_N = 5000


def _config(volume: str, snr_db: float, size: str) -> DemoConfig:
    base = DemoConfig(snr_db=snr_db, n_particles=TRAIN_N)
    if volume == "ribosome":
        base = replace(base, volume=RIBOSOME, pixel_size_a=3.0 * 65 / 64)
    return realistic(small(base) if size == "small" else base, second_chance=False)


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _network(config: DemoConfig, case: str | None, timings: dict[str, float]) -> tuple[DistanceModel, str]:
    """The method case's cached network, or one trained now; and where it came from."""
    cached = CACHE / f"method_{case}" / "model.pt"
    if case is not None and cached.exists():
        stored = RESULTS / f"method_{case}.json"
        commit = json.loads(stored.read_text())["machine"]["commit"] if stored.exists() else "?"
        return load_model(cached), f"cached by the method case {case} (trained at {commit})"
    train_sim = run_job(simulate_case(config, timings))
    trainer = run_job(train_truth_network(config, train_sim, timings))
    return trainer.distance_model(), "trained by this run"


def run(volume: str, snr_db: float, sizes: list[int], size: str = "full", case: str | None = None,
        second_chance: bool = False) -> dict:
    """Train once (or load the case's network), then recover and score each N (with the
    global second chance after the refinement if asked); returns the stored record."""
    config = _config(volume, snr_db, size) if case is None else case_config(case)
    if second_chance:
        config = replace(config, reassign=config.reassign or ReassignConfig())
    trained_db = config.snr_db
    config = replace(config, snr_db=snr_db)  # with --case: the case's network on other noise, if asked
    who = machine()  # the code as it was when the run started
    train_timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with LoadSampler() as load:
        model, network = _network(config, case, train_timings)
        rows = []
        for n in sorted(sizes):
            sized = replace(config, n_particles=n, seed=1)
            timings: dict[str, float] = {}
            start = time.perf_counter()
            sim = run_job(simulate_case(sized, timings))
            settings = RecoverySettings(recovery=sized.recovery, refine=sized.refine, reassign=sized.reassign,
                                        seed=sized.seed)
            began = time.perf_counter()
            poses = run_job(recover_poses(sim.particles, model, settings))
            method_s = time.perf_counter() - began
            timings.update(poses.timings_s)
            scores = run_job(score_case(sized, sim, poses, timings))
            final, ours, true_map = scores.final, scores.map_scores["final"], scores.map_scores["true"]
            rows.append({
                "n_particles": n, "method_s": method_s, "total_s": time.perf_counter() - start,
                "timings_s": timings, "peak_rss_gib_so_far": _peak_rss_gib(),
                "error_mean_deg": final.o4.mean_deg, "error_median_deg": final.o4.median_deg,
                "error_p90_deg": final.o4.p90_deg, "harmless_mean_deg": final.harmless.mean_deg,
                "stage_errors_deg": stage_errors(sim, poses, sized.seed), **origin_errors(sim, poses),
                "fsc_resolution_final_A": ours.truth.best.resolution_05_a,
                "fsc_resolution_true_A": true_map.truth.same_hand.resolution_05_a,
            })
            print(json.dumps({k: v for k, v in rows[-1].items() if not isinstance(v, dict)}), flush=True)
            del sim, poses, scores
    payload = {"benchmark": "error_vs_n", "volume": volume, "snr_db": snr_db, "trained_snr_db": trained_db,
               "size": size, "case": case, "second_chance": second_chance,
               "network": network, "train_n": config.n_particles,
               "train_s": train_timings.get("train"), "rows": rows, "machine": who,
               "load_average_mean": load.mean, "date": time.strftime("%Y-%m-%d"),
               "wall_s": time.perf_counter() - t0}
    stem = f"error_vs_n_{case}" if case else f"error_vs_n_{volume}_{abs(snr_db):.0f}db"
    if case and snr_db != trained_db:
        stem += f"_at{abs(snr_db):.0f}db"
    save_json(stem + ("_small" if size == "small" else "") + ("_second-chance" if second_chance else ""), payload)
    return payload


def write_table() -> None:
    lines = [
        "## Error versus number of particles",
        "",
        "Produced by `python -m benchmarks.error_vs_n` (`benchmarks/results/error_vs_n_*.json`). "
        f"One truth-trained network (trained on {TRAIN_N} particles as in the realistic method cases: "
        "CTF, origins σ 3 px) recovers fresh particle sets of N particles of the same map at the same "
        "noise (other poses, origins, CTFs and noise). The path of the realistic cases with the standard "
        "preset: recovery, ambiguity, refinement of poses and origins, and the global second chance "
        "where the map column says so. Errors after "
        "O(4) alignment; FSC 0.5 against the true map from the final and from the true poses. "
        "*Method* is the pose recovery alone (not the simulation nor the scoring); peak RSS is the "
        "process's peak so far (N in increasing order). Rows marked * ran while other work shared "
        "the CPU.",
        "",
        "| map | SNR (dB) | N | error mean / median / p90 (°) | harmless only: mean (°) "
        "| origin error (px) | FSC 0.5 final / true poses (Å) | method (s) | peak RSS (GiB) | machine |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("error_vs_n_*.json")):
        d = json.loads(path.read_text())
        for r in d["rows"]:
            label = d["volume"] + (" (small network)" if d.get("size") == "small" else "")
            if d.get("case"):
                label = f"{d['volume']} (`{d['case']}` network)"
                if d.get("trained_snr_db") not in (None, d["snr_db"]):
                    label = f"{d['volume']} (`{d['case']}` network, trained at {d['trained_snr_db']:g} dB)"
            if d.get("second_chance"):
                label += ", second chance"
            lines.append(
                f"| {label} | {d['snr_db']:g} | {r['n_particles']} | {r['error_mean_deg']:.1f} / "
                f"{r['error_median_deg']:.1f} / {r['error_p90_deg']:.1f} | {r['harmless_mean_deg']:.1f} | "
                f"{r['origin_error_px_mean']:.2f} | {r['fsc_resolution_final_A']:.1f} / "
                f"{r['fsc_resolution_true_A']:.1f} | {r['method_s']:.0f}{shared_mark(d)} | "
                f"{r['peak_rss_gib_so_far']:.2f} | {machine_label(d['machine'])} |")
    update_docs_section("error_vs_n", "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", choices=("sample", "ribosome"), default="sample")
    parser.add_argument("--snr", type=float, default=None,
                        help="per-image SNR (dB); default -16, or with --case the case's own")
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--size", choices=("full", "small"), default="full",
                        help="full: the network of the method cases; small: a short training (a check)")
    parser.add_argument("--case", help="a method case whose images, path and cached network to use")
    parser.add_argument("--second-chance", action="store_true", help="the global second chance after the refinement")
    args = parser.parse_args(argv)
    if args.case is not None:
        if args.size == "small":
            parser.error("--case uses the case's own network: no --size small")
        try:
            config = case_config(args.case)
        except KeyError:
            parser.error(f"unknown method case {args.case!r}")
        if config.snr_db is None:
            parser.error("the case needs a noise level")
        args.volume = "ribosome" if config.volume is not None else "sample"
        args.snr = config.snr_db if args.snr is None else args.snr
    elif args.snr is None:
        args.snr = -16.0
    if any(n < 100 for n in args.n):
        parser.error("each N must be at least 100")
    if args.volume == "ribosome" and not RIBOSOME.exists():
        print(f"skipping: {RIBOSOME} not found")
        return 0
    run(args.volume, args.snr, args.n, args.size, args.case, args.second_chance)
    write_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
