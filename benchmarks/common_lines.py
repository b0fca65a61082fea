"""Baseline on the same images: common lines (ASPIRE ``CLSyncVoting``) against the learned distances.

For each noise level, the images are the first N noisy particles of the method case of
that level (``benchmarks.method``; run first when its outputs are not in
``benchmarks/cache/``), and our estimate uses the network trained in that case. Both
methods see exactly the same pixels; both estimates are raw (no refinement) and are scored
the same way: per-particle angle after the best O(4) alignment to the true poses, and
after the harmless rotation only (hand left free). Wall times cover the orientation
estimate only; the network's training time is in the method table (once per noise level,
whatever N).

ASPIRE is an optional benchmark dependency (``pip install -e .[bench]``); without it only
our rows are measured.

usage: python -m benchmarks.common_lines [--size small|full] [--volume sample|ribosome]
                                         [--snr clean 0 -6 -12 -16] [--n 100 200 500]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.particles import Particles
from napari_cryorient.io import read_particles
from napari_cryorient.io.checkpoint import load_model
from napari_cryorient.method import RecoverySettings, evaluate_poses, recover_poses

from . import method
from ._load import LoadSampler, shared_mark
from ._report import RESULTS, machine, machine_label, save_json, update_docs_section

DEFAULT_N = {"small": (100,), "full": (100, 200, 500)}
DEFAULT_SNR = ("clean", "0", "-6", "-12", "-16")


@dataclass
class Estimate:
    """One method's orientation estimate of one image set."""

    rotations: np.ndarray  # (n, 3, 3), this project's convention
    seconds: float


def _configure_aspire() -> None:
    """Point ASPIRE's configuration (``$ASPIREDIR``) at the cache: logs there, no progress bars.

    By default ASPIRE writes a ``logs/`` folder into the working directory at import.
    """
    if "ASPIREDIR" in os.environ:
        return
    conf = method.CACHE / "aspire_config"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "config.yaml").write_text(
        "logging:\n"
        f"    log_dir: {(method.CACHE / 'aspire_logs').as_posix()}\n"
        "    tqdm_disable: True\n"
        "    console_level: WARNING\n"
    )
    os.environ["ASPIREDIR"] = str(conf)


def aspire_available() -> bool:
    """Whether the optional ``aspire`` package can be imported."""
    _configure_aspire()
    try:
        import aspire  # noqa: F401
    except ImportError:
        return False
    return True


def estimate_aspire(images: np.ndarray, pixel_size_a: float) -> Estimate:
    """Common-lines orientations with ASPIRE's synchronization-voting estimator (defaults).

    ASPIRE's rotation of an image is the transpose of ours (checked on clean images,
    where the harmless-only alignment of the transpose is exact); it is returned in ours.
    """
    _configure_aspire()
    from aspire.abinitio import CLSyncVoting
    from aspire.source import ArrayImageSource

    t0 = time.perf_counter()
    src = ArrayImageSource(np.ascontiguousarray(images, dtype=np.float64), pixel_size=pixel_size_a)
    estimator = CLSyncVoting(src)
    estimator.estimate_rotations()
    rotations = np.asarray(estimator.rotations, dtype=np.float64).transpose(0, 2, 1)
    return Estimate(rotations, time.perf_counter() - t0)


def estimate_ours(images: np.ndarray, pixel_size_a: float, model_path: Path, seed: int = 0) -> Estimate:
    """Orientations recovered from the learned distances, ambiguity resolved from the images.

    The method's one path (:func:`napari_cryorient.method.recover_poses`) without the
    refinement, as ``cryorient recover --no-refine``.
    """
    t0 = time.perf_counter()
    particles = Particles(images, pixel_size_a, name="common-lines images")
    settings = RecoverySettings(refine=None, seed=seed)
    result = run_job(recover_poses(particles, load_model(model_path), settings))
    return Estimate(np.asarray(result.rotations), time.perf_counter() - t0)


def score(estimate: Estimate, truth: np.ndarray) -> dict:
    """O(4) and harmless-only errors (degrees) of an estimate against the true poses."""
    metrics = evaluate_poses(estimate.rotations, truth)
    return {
        "seconds": estimate.seconds,
        "error_mean_deg": metrics.o4.mean_deg,
        "error_median_deg": metrics.o4.median_deg,
        "error_harmless_mean_deg": metrics.harmless.mean_deg,
    }


def _case_outputs(volume: str, snr_db: float | None, size: str) -> Path | None:
    """The cached outputs of the method case at this noise level, running it if needed."""
    name = method.case_name(volume, snr_db)
    out = method.CACHE / method.result_name(name, size)
    if not (out / "model.pt").exists():
        print(f"{name} ({size}): no cached network and images, running benchmarks.method first")
        if method.run_case(name, size) is None:
            return None
    return out


def run(volume: str, size: str, snrs: list[float | None], ns: list[int], with_aspire: bool) -> list[dict]:
    """Measure every (noise level, N) cell; one row per method and cell."""
    rows = []
    for snr in snrs:
        out = _case_outputs(volume, snr, size)
        if out is None:
            continue
        table = read_particles(out / "particles_true.star")
        stack = table.images()
        truth = table.rotations()
        for n in ns:
            if n > len(table):
                print(f"skipping N={n}: the case has {len(table)} particles")
                continue
            images = np.asarray(stack[0:n], dtype=np.float32)
            estimates = {"learned distances (ours)": estimate_ours(images, table.pixel_size, out / "model.pt")}
            if with_aspire:
                estimates["common lines (ASPIRE CLSyncVoting)"] = estimate_aspire(images, table.pixel_size)
            for name, est in estimates.items():
                row = {"method": name, "snr_db": snr, "n": n, **score(est, truth[:n])}
                rows.append(row)
                print(json.dumps(row))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=method.SIZES, default="small",
                        help="network and image set of the method cases (default: small)")
    parser.add_argument("--volume", choices=("ribosome", "sample"), default="sample",
                        help="built-in sample (default) or the 70S ribosome map of ../shared")
    parser.add_argument("--snr", nargs="+", default=list(DEFAULT_SNR),
                        help="noise levels in dB, or 'clean' (default: %(default)s)")
    parser.add_argument("--n", nargs="+", type=int, default=None,
                        help="numbers of images (default: 100 small, 100 200 500 full)")
    parser.add_argument("--no-aspire", action="store_true", help="measure our method only")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for both methods (torch, BLAS/OpenMP); default: all")
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        _limit_threads(args.threads)
    try:
        snrs = [method.parse_snr(s) for s in args.snr]
    except ValueError:
        parser.error(f"--snr takes numbers in dB or 'clean', got {args.snr}")
    ns = args.n or list(DEFAULT_N[args.size])
    if any(n < 3 for n in ns):
        parser.error("--n must be at least 3")
    with_aspire = not args.no_aspire and aspire_available()
    if not args.no_aspire and not with_aspire:
        print("aspire is not installed (pip install -e .[bench]): measuring our method only")
    volume = args.volume
    if volume == "ribosome" and not method.RIBOSOME.exists():
        print(f"{method.RIBOSOME} not found: using the built-in sample")
        volume = "sample"
    with LoadSampler() as load:
        rows = run(volume, args.size, snrs, ns, with_aspire)
    if rows:
        record = {"machine": machine(), "aspire": _aspire_version() if with_aspire else None,
                  "load_average_mean": load.mean, "date": time.strftime("%Y-%m-%d")}
        for row in rows:  # each row keeps the run it came from
            row.update(record)
        stem = f"common_lines_{volume}_{args.size}"
        path = RESULTS / f"{stem}.json"
        kept = json.loads(path.read_text())["rows"] if path.exists() else []
        new_keys = {(r["method"], r["snr_db"], r["n"]) for r in rows}
        kept = [r for r in kept if (r["method"], r["snr_db"], r["n"]) not in new_keys]
        save_json(stem, {"benchmark": "common_lines", "volume": volume, "size": args.size, "rows": kept + rows})
    write_table()
    return 0


_THREAD_LIMITS = None


def _limit_threads(n: int) -> None:
    """Use ``n`` threads in torch and in the BLAS/OpenMP pools that numpy and ASPIRE use."""
    import torch

    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    global _THREAD_LIMITS
    _THREAD_LIMITS = threadpool_limits(n)  # kept: the limits hold while it lives


def _aspire_version() -> str:
    import aspire

    return aspire.__version__


def _deg(x: float) -> str:
    return f"{x:.2f}" if x < 1 else f"{x:.1f}"


def write_table() -> None:
    """Regenerate the docs section from every stored ``common_lines_*.json``."""
    lines = [
        "## Baseline on the same images: common lines (ASPIRE) vs learned distances",
        "",
        "Produced by `python -m benchmarks.common_lines` (`benchmarks/results/common_lines_*.json`). "
        "Both methods get exactly the same N noisy images (the first N particles of the method "
        "case at that noise level, 64 px, uniform orientations, no CTF). *Ours* = features of "
        "the network trained in that method case + orientation recovery + the choice of "
        "ambiguity branch by common lines (as `cryorient recover --no-refine`; no refinement); "
        "*ASPIRE* = `CLSyncVoting` with its defaults. Errors in degrees "
        "after the best O(4) alignment to the true poses (mean / median) and after the harmless "
        "rotation only (mean; the hand is left free); the lower mean error of each SNR and N "
        "is in bold. Times are the orientation estimate only; "
        "training our network took the *train* time of the method table, once per noise level. "
        "Times marked * ran while other work shared the CPU (both methods alike: they "
        "alternate within one run).",
        "",
        "| map | network | SNR (dB) | N | method | error mean / median (°) | harmless only: mean (°) "
        "| time (s) | machine |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("common_lines_*.json")):
        d = json.loads(path.read_text())
        rows = sorted(d["rows"], key=lambda r: (-(r["snr_db"] if r["snr_db"] is not None else 99), r["n"],
                                                r["method"]))
        best: dict[tuple, float] = {}
        for r in rows:
            key = (r["snr_db"], r["n"])
            best[key] = min(best.get(key, float("inf")), r["error_mean_deg"])
        for r in rows:
            snr = "clean" if r["snr_db"] is None else f"{r['snr_db']:g}"
            wins = r["error_mean_deg"] == best[(r["snr_db"], r["n"])]
            err = _deg(r["error_mean_deg"])
            err = f"**{err}**" if wins else err
            aspire = f" {r['aspire']}" if r.get("aspire") else ""
            name = r["method"].replace("ASPIRE CLSyncVoting", f"ASPIRE{aspire} CLSyncVoting")
            star = shared_mark(r)
            where = machine_label(r["machine"])
            lines.append(
                f"| {d['volume']} | {d['size']} | {snr} | {r['n']} | {name} | "
                f"{err} / {_deg(r['error_median_deg'])} | "
                f"{_deg(r['error_harmless_mean_deg'])} | {r['seconds']:.1f}{star} | {where} |"
            )
    update_docs_section("common_lines", "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
