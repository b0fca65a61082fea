"""The method's path, as the code stands now, on a method case's cached network.

A method case (``python -m benchmarks.method CASE``) trains its network for half an hour
or more on this CPU; the path after it (features → recovery → ambiguity → refinement, and
optionally the second chance) takes minutes. This script re-simulates the case's images
(same seed: the very particles the case recovered), loads the network the case cached
(``benchmarks/cache/method_CASE/model.pt``) and runs the path with the current code and
defaults, so that a change of the path is measured without training again. With
``--second-chance`` the global reassignment runs after the refinement.

Results: ``benchmarks/results/cached_path_CASE[_second-chance].json`` and the table
"The path again on cached networks" in docs/benchmarks.md.

usage: python -m benchmarks.cached_path CASE [--second-chance]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.reassign import ReassignConfig
from napari_cryorient.io.checkpoint import load_model
from napari_cryorient.method.demo import origin_errors, score_case, simulate_case, stage_errors
from napari_cryorient.method.recover import RecoverySettings, recover_poses

from ._load import LoadSampler, shared_mark
from ._report import RESULTS, machine, machine_label, save_json, update_docs_section
from .method import CACHE, case_config


def result_stem(case: str, second_chance: bool) -> str:
    """File stem of a run's results."""
    return f"cached_path_{case}" + ("_second-chance" if second_chance else "")


def run(case: str, second_chance: bool = False) -> dict:
    """Run the path on ``case``'s cached network and images; returns the stored record."""
    folder = CACHE / f"method_{case}"
    if not (folder / "model.pt").exists():
        raise SystemExit(f"{folder} has no model: run python -m benchmarks.method {case} first")
    config = case_config(case)
    if second_chance:
        config = replace(config, reassign=config.reassign or ReassignConfig())
    model = load_model(folder / "model.pt")
    stored = RESULTS / f"method_{case}.json"
    trained_at = json.loads(stored.read_text())["machine"]["commit"] if stored.exists() else None
    who = machine()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with LoadSampler() as load:
        sim = run_job(simulate_case(config, timings))
        settings = RecoverySettings(recovery=config.recovery, refine=config.refine, reassign=config.reassign,
                                    seed=config.seed)
        began = time.perf_counter()
        poses = run_job(recover_poses(sim.particles, model, settings))
        method_s = time.perf_counter() - began
        timings.update(poses.timings_s)
        scores = run_job(score_case(config, sim, poses, timings))
    final, ours, true_map = scores.final.o4, scores.map_scores["final"], scores.map_scores["true"]
    payload = {
        "benchmark": "cached_path", "case": case, "second_chance": second_chance,
        "network_trained_at": trained_at, "n_particles": config.n_particles, "snr_db": config.snr_db,
        "feature_rotations": settings.feature_rotations,
        "error_mean_deg": final.mean_deg, "error_median_deg": final.median_deg, "error_p90_deg": final.p90_deg,
        "stage_errors_deg": stage_errors(sim, poses, config.seed), **origin_errors(sim, poses),
        "reassigned_fraction": None if poses.reassignment is None else float(poses.reassignment.moved.mean()),
        "fsc_resolution_final_A": ours.truth.best.resolution_05_a,
        "fsc_resolution_true_A": true_map.truth.same_hand.resolution_05_a,
        "method_s": method_s, "timings_s": timings, "total_s": time.perf_counter() - t0,
        "machine": who, "load_average_mean": load.mean, "date": time.strftime("%Y-%m-%d"),
    }
    save_json(result_stem(case, second_chance), payload)
    print(json.dumps({k: v for k, v in payload.items() if not isinstance(v, dict)}), flush=True)
    return payload


def _stage(d: dict, stage: str) -> str:
    s = d["stage_errors_deg"].get(stage)
    return "—" if s is None else f"{s['mean']:.1f} / {s['median']:.1f} / {s['p90']:.1f}"


def write_table() -> None:
    lines = [
        "## The path again on cached networks",
        "",
        "Produced by `python -m benchmarks.cached_path CASE [--second-chance]` "
        "(`benchmarks/results/cached_path_*.json`): the images of a method case (same seed, so the "
        "same particles), the network that case trained and cached, and the path as the code stood "
        "at the commit shown — a change of recovery, ambiguity or refinement measured without "
        "training again. Errors after O(4) alignment, mean / median / p90 (°); FSC 0.5 against the "
        "true map. *Method* is the path alone (features to the last refinement). Rows marked * ran "
        "while other work shared the CPU.",
        "",
        "| case | network trained at | second chance (moved) | recovered (°) | after refinement (°) "
        "| final (°) | origin error (px) | FSC 0.5 final / true poses (Å) | method (s) | machine |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("cached_path_*.json")):
        d = json.loads(path.read_text())
        moved = "no" if d["reassigned_fraction"] is None else f"yes ({100 * d['reassigned_fraction']:.1f} %)"
        lines.append(
            f"| `{d['case']}` | {d['network_trained_at'] or '?'} | {moved} | {_stage(d, 'recover')} | "
            f"{_stage(d, 'refine')} | {d['error_mean_deg']:.1f} / {d['error_median_deg']:.1f} / "
            f"{d['error_p90_deg']:.1f} | {d['origin_error_px_mean']:.2f} | {d['fsc_resolution_final_A']:.1f} / "
            f"{d['fsc_resolution_true_A']:.1f} | {d['method_s']:.0f}{shared_mark(d)} | "
            f"{machine_label(d['machine'])} |")
    update_docs_section("cached_path", "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", help="a method case whose cache holds a network (e.g. ribosome-12db-ctf-local-box32)")
    parser.add_argument("--second-chance", action="store_true", help="run the global reassignment too")
    args = parser.parse_args(argv)
    try:
        case_config(args.case)
    except KeyError:
        parser.error(f"unknown method case {args.case!r}")
    run(args.case, args.second_chance)
    write_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
