"""Run a benchmark of this checkout (results to benchmarks/results, tables to docs/benchmarks.md).

examples:
  cryorient benchmark list                          the benchmarks and what they measure
  cryorient benchmark noise_sweep                   the method from clean to -16 dB (small size)
  cryorient benchmark common_lines --size full      ASPIRE common lines vs ours, same images
  cryorient benchmark NAME --help                   a benchmark's own options
  cryorient benchmark recovery --n 5000 --exact     recovery from exact distances (no checkout
                                                    needed; prints, and writes --json OUT)

Benchmarks other than ``recovery`` are the scripts in the ``benchmarks/`` folder of a
source checkout (they are not installed with the package): run this from the checkout,
or from an editable install of it (``make setup``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from ..engine import so3
from ..engine.align import align_to_reference
from ..engine.recover import ExactDistances, RecoveryConfig, recover_orientations
from ..io import atomic_path
from ..io.errors import InputError
from ._common import run_with_progress

#: benchmark modules of the checkout, with what each measures
BENCHMARKS = {
    "recovery_exact": "orientation recovery from exact distances vs N: time, memory, error",
    "noise_sweep": "the whole method on the sample and the ribosome map, clean to -16 dB",
    "common_lines": "ASPIRE common lines vs learned distances on the same images, across SNR and N",
    "method": "the whole method on named cases (non-uniform orientations, CTF + unknown origins)",
    "error_vs_n": "orientation error vs number of particles on realistic images (CTF, origins)",
    "throughput": "simulation, training and reconstruction speed and peak memory vs N and box",
    "reconstruct_quality": "reconstruction with the true poses: FSC against the truth",
    "reconstruct_memory": "streamed reconstruction of large stacks: peak memory and speed",
    "large_stack": "100 000-particle stacks through every CLI stage",
    "paper_comparison": "the paper's reported figures beside ours (from stored results)",
}


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient benchmark``."""
    parser.add_argument("name", help="a benchmark (see 'cryorient benchmark list'), or 'recovery'")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's own options")


def find_benchmarks() -> Path | None:
    """The ``benchmarks/`` folder of the source checkout, if there is one.

    Looked for beside the package's ``src/`` folder (editable install) and in the current
    directory.
    """
    here = Path(__file__).resolve()
    candidates = [here.parents[3] / "benchmarks", Path.cwd() / "benchmarks"]
    for folder in candidates:
        if (folder / "__init__.py").exists() and (folder / "_report.py").exists():
            return folder
    return None


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient benchmark``."""
    if args.name == "recovery":
        return _recovery(args.options)
    if args.name == "list":
        width = max(map(len, BENCHMARKS))
        for name, what in BENCHMARKS.items():
            print(f"{name:<{width}}  {what}")
        print(f"{'recovery':<{width}}  recovery from exact distances, one N (built in)")
        return 0
    if args.name not in BENCHMARKS:
        raise InputError(f"unknown benchmark {args.name!r}; 'cryorient benchmark list' shows them")
    folder = find_benchmarks()
    if folder is None:
        raise InputError("the benchmarks are scripts of the source checkout, not installed with the "
                         "package: run this command from a clone of napari-cryorient")
    root = str(folder.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    module = importlib.import_module(f"benchmarks.{args.name}")
    argv0, sys.argv[0] = sys.argv[0], f"cryorient benchmark {args.name}"  # the usage line's name
    try:
        return int(module.main(list(args.options)) or 0)
    finally:
        sys.argv[0] = argv0


def _recovery(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cryorient benchmark recovery",
                                     description="Recovery from exact distances of N random orientations.")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--exact", action="store_true", required=True,
                        help="use exact distances (the method's own limit)")
    parser.add_argument("--steps", type=int, default=RecoveryConfig.n_steps)
    parser.add_argument("--restarts", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.n < 3:
        raise ValueError("--n must be >= 3")
    truth = so3.matrix_to_quaternion(so3.sample_orientations(args.n, seed=args.seed))
    t0 = time.perf_counter()
    result = run_with_progress(
        recover_orientations(ExactDistances(truth),
                             RecoveryConfig(n_steps=args.steps, n_restarts=args.restarts, seed=args.seed)),
    )
    seconds = time.perf_counter() - t0
    aligned = align_to_reference(result.quaternions, truth, seed=args.seed)
    report = {"n": args.n, "exact": True, "seconds": seconds, "steps": args.steps,
              "restarts": args.restarts, **{f"error_{k}": v for k, v in aligned.summary().items()}}
    print(f"N={args.n}: {seconds:.1f} s, mean error {aligned.mean_deg:.4f}°, "
          f"median {aligned.median_deg:.4f}°, 90% {aligned.p90_deg:.4f}°")
    if args.json:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(report, indent=2))
    return 0
