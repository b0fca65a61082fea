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

from ..io import atomic_path
from ..io.errors import InputError
from ..method import evaluate_poses
from ._common import add_particle_args, check_paths, load_particles


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient evaluate``."""
    add_particle_args(parser, help="recovered poses", pixel_size=False)
    parser.add_argument("--truth", type=Path, required=True,
                        help="true poses (same formats; a .pkl truth uses the same --images)")
    parser.add_argument("--json", type=Path, default=None, help="write metrics and per-particle errors")


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient evaluate``."""
    est = load_particles(args, check_values=False, need_poses=True)
    ref = load_particles(args, args.truth, check_values=False, need_poses=True)
    check_paths([args.particles, args.truth, args.images], [args.json])
    if len(est) != len(ref):
        raise InputError(f"{len(est)} particles but the truth has {len(ref)} ({args.truth})", args.particles)
    for p, path in ((est, args.particles), (ref, args.truth)):
        if not p.has_poses:
            raise InputError("no particle orientations", path)
    metrics = evaluate_poses(est.rotations, ref.rotations)
    full, harmless = metrics.o4, metrics.harmless
    report = {
        "n_particles": len(est),
        "full_alignment": full.summary(),
        "harmless_only": harmless.summary(),
        "errors_full_deg": full.errors_deg.tolist(),
        "errors_harmless_deg": harmless.errors_deg.tolist(),
    }
    print(f"after O(4) alignment:      mean {full.mean_deg:.2f}°, median {full.median_deg:.2f}°, "
          f"90% {full.p90_deg:.2f}°" + (" (transposed branch)" if full.conjugated else ""))
    print(f"harmless rotation only:    mean {harmless.mean_deg:.2f}°, median {harmless.median_deg:.2f}°, "
          f"90% {harmless.p90_deg:.2f}°" + (" (opposite hand)" if harmless.hand_flipped else ""))
    if args.json:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(report, indent=2))
    return 0
