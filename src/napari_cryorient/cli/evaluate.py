"""Compare recovered orientations with the truth (simulations).

Aligns over the whole ambiguity group O(4) and, separately, over the harmless global
rotation only (with the undeterminable hand), and reports mean, median and 90th
percentile angular errors in degrees.

examples:
  cryorient evaluate --star recovered.star --truth sim/particles.star --json errors.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..engine import so3
from ..engine.align import align_harmless, align_to_reference
from ..io import atomic_path, read_particles
from ..io.errors import InputError


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient evaluate``."""
    parser.add_argument("--star", type=Path, required=True, help="recovered poses")
    parser.add_argument("--truth", type=Path, required=True, help="true poses")
    parser.add_argument("--json", type=Path, default=None, help="write metrics and per-particle errors")


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient evaluate``."""
    est, ref = read_particles(args.star), read_particles(args.truth)
    if len(est) != len(ref):
        raise InputError(f"{len(est)} particles but the truth has {len(ref)} ({args.truth})", args.star)
    q_est = so3.matrix_to_quaternion(est.rotations())
    q_ref = so3.matrix_to_quaternion(ref.rotations())
    full = align_to_reference(q_est, q_ref)
    harmless = align_harmless(q_est, q_ref, allow_hand_flip=True)
    report = {
        "n_particles": len(est),
        "full_alignment": full.summary(),
        "harmless_only": harmless.summary(),
        "errors_full_deg": full.errors_deg.tolist(),
        "errors_harmless_deg": harmless.errors_deg.tolist(),
    }
    print(f"after O(4) alignment:      mean {full.mean_deg:.2f}°, median {full.median_deg:.2f}°, "
          f"90% {full.p90_deg:.2f}°" + (" (transposed branch)" if full.mirrored else ""))
    print(f"harmless rotation only:    mean {harmless.mean_deg:.2f}°, median {harmless.median_deg:.2f}°, "
          f"90% {harmless.p90_deg:.2f}°" + (" (opposite hand)" if harmless.mirrored else ""))
    if args.json:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(report, indent=2))
    return 0
