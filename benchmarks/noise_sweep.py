"""Noise sweep: the whole method on the built-in sample and the ribosome map, clean to -16 dB.

Every cell is a case of ``benchmarks.method`` (``sample-12db``, ``ribosome-clean``, ...):
this script runs the cells that have no stored result (all of them with ``--rerun``) and
writes the sweep table from the stored method results. ``--size small`` (the default)
is a short check, 1 000 particles and a 15-epoch network per cell (about a minute each
on 2 CPU cores); ``--size full`` is the reference setting of the method table (5 000
particles, 120 epochs; 8 to 26 minutes per cell measured on 2 CPU cores).

The ribosome map is read from ``../shared/data/volumes`` when present (skipped otherwise).

usage: python -m benchmarks.noise_sweep [--size small|full] [--volumes sample ribosome]
                                        [--snr clean 0 -6 -12 -16] [--rerun]
"""

from __future__ import annotations

import argparse
import json
import sys

from . import method
from ._load import shared_mark
from ._report import RESULTS, machine_label, update_docs_section

VOLUMES = ("sample", "ribosome")
DEFAULT_SNR = ("clean", "0", "-6", "-12", "-16")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=method.SIZES, default="small")
    parser.add_argument("--volumes", nargs="+", choices=VOLUMES, default=["sample"])
    parser.add_argument("--snr", nargs="+", default=list(DEFAULT_SNR),
                        help="noise levels in dB, or 'clean' (default: %(default)s)")
    parser.add_argument("--rerun", action="store_true", help="run cells that already have results")
    parser.add_argument("--table-only", action="store_true", help="only rewrite the table")
    args = parser.parse_args(argv)
    try:
        snrs = [method.parse_snr(s) for s in args.snr]
    except ValueError:
        parser.error(f"--snr takes numbers in dB or 'clean', got {args.snr}")
    cases = method._cases()
    if not args.table_only:
        for volume in args.volumes:
            for snr in snrs:
                name = method.case_name(volume, snr)
                if name not in cases:
                    parser.error(f"no method case for {volume} at {snr} dB (known levels: "
                                 f"{', '.join(method.snr_label(s) for s in method.SWEEP_SNR_DB)})")
                stored = RESULTS / f"{method.result_name(name, args.size)}.json"
                if stored.exists() and not args.rerun:
                    print(f"{name} ({args.size}): stored result kept ({stored.name}; --rerun to redo)")
                    continue
                method.run_case(name, args.size)
        method.write_table()
    write_table()
    return 0


def _load(volume: str, snr: float | None, size: str) -> dict | None:
    path = RESULTS / f"{method.result_name(method.case_name(volume, snr), size)}.json"
    if not path.exists():
        return None
    d = json.loads(path.read_text())
    return d if "orientation_error_recovered_mean_deg" in d["metrics"] else None


def write_table() -> None:
    """Regenerate the noise-sweep section from the stored method results."""
    lines = [
        "## Noise sweep: built-in sample and 70S ribosome map",
        "",
        "Produced by `python -m benchmarks.noise_sweep --size full --volumes sample ribosome` "
        "(and `--size small`), from the method results it stores (`benchmarks/results/"
        "method_<map>-<noise>[_small].json`; one row per stored cell). Same pipeline and "
        "columns as the method table: errors in degrees after O(4) alignment (recovered = "
        "straight from the learned distances; final = after refinement) and after the "
        "harmless rotation only; FSC 0.5 against the true map of reconstructions from the "
        "noisy images with the final and with the true poses. SNR is per image, signal "
        "variance over noise variance. Times marked * ran while other work shared the CPU.",
        "",
        "| map | size | SNR (dB) | N | distance MAE (°) | recovered: mean (°) | final: mean / median (°) "
        "| final, harmless only: mean (°) | FSC 0.5 final / true poses (Å) | total (s) | machine |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for volume in VOLUMES:
        for size in ("full", "small"):
            for snr in method.SWEEP_SNR_DB:
                d = _load(volume, snr, size)
                if d is None:
                    continue
                m = d["metrics"]
                star = shared_mark(d)
                label = "clean" if snr is None else f"{snr:g}"
                lines.append(
                    f"| {volume} | {size} | {label} | {m['n_particles']} | {m['distance_mae_deg']:.1f} | "
                    f"{m['orientation_error_recovered_mean_deg']:.1f} | "
                    f"{m['orientation_error_mean_deg']:.1f} / {m['orientation_error_median_deg']:.1f} | "
                    f"{m['orientation_error_harmless_only_mean_deg']:.1f} | "
                    f"{m['fsc_resolution_recovered_A']:.1f} / {m['fsc_resolution_true_A']:.1f} | "
                    f"{m['total_s']:.0f}{star} | {machine_label(d['machine'])} |"
                )
    update_docs_section("noise_sweep", "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
