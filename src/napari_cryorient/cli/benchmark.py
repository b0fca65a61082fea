"""Benchmarks from the command line.

  cryorient benchmark recovery --n 5000 --exact [--json OUT]
      orientation recovery from exact distances of N random orientations: time and error.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..engine import so3
from ..engine.align import align_to_reference
from ..engine.recover import ExactDistances, RecoveryConfig, recover_orientations
from ..io import atomic_path
from ._common import run_with_progress


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient benchmark``."""
    parser.add_argument("name", choices=["recovery"])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--exact", action="store_true", required=True,
                        help="use exact distances (the method's own limit)")
    parser.add_argument("--steps", type=int, default=RecoveryConfig.n_steps)
    parser.add_argument("--restarts", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient benchmark``."""
    if args.n < 3:
        raise ValueError("--n must be >= 3")
    truth = so3.matrix_to_quaternion(so3.sample_orientations(args.n, seed=args.seed))
    t0 = time.perf_counter()
    result = run_with_progress(
        recover_orientations(ExactDistances(truth),
                             RecoveryConfig(n_steps=args.steps, n_restarts=args.restarts, seed=args.seed)),
        "recover",
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
