"""Reconstruction quality with the true poses, and projector self-consistency.

Simulates the built-in sample (64 px, 2 Å/px) with N uniform poses, reconstructs it with
the true poses and reports the FSC against the truth (value at 0.8 × Nyquist, lowest value
up to 0.8 × Nyquist, resolutions). Cases: clean images; -12 dB with CTF (Wiener) and
4 Å shifts.

usage: python -m benchmarks.reconstruct_quality [--n 5000] [--box 64]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from napari_cryorient.engine import (
    SimulationConfig,
    fourier_shell_correlation,
    make_pseudo_protein,
    reconstruct_volume,
    run_job,
    simulate_particles,
)

from ._report import RESULTS, machine, machine_label, save_json, update_docs_section

CASES = {
    "clean": dict(snr_db=None),
    "-12 dB, CTF (Wiener), 4 Å shifts": dict(snr_db=-12.0, ctf=True, shift_std_a=4.0),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--box", type=int, default=64)
    args = parser.parse_args(argv)
    px = 2.0 * 64 / args.box
    vol = make_pseudo_protein(args.box, px)
    rows = []
    for name, kw in CASES.items():
        cfg = SimulationConfig(n_particles=args.n, seed=0, **kw)
        t0 = time.perf_counter()
        sim = run_job(simulate_particles(vol, px, cfg))
        t1 = time.perf_counter()
        rec = run_job(reconstruct_volume(sim.images, sim.rotations, px, shifts_a=sim.shifts_a,
                                         ctf=sim.ctf, ctf_correction="wiener" if cfg.ctf else "none"))
        t2 = time.perf_counter()
        f = fourier_shell_correlation(rec.volume, vol.numpy(), px)
        upto = (f.frequency_inv_a > 0) & (f.frequency_inv_a <= 0.8 * 0.5 / px)  # DC excluded
        rows.append({
            "case": name, "n": args.n, "box": args.box, "pixel_size_a": px,
            "fsc_at_0.8_nyquist": f.fsc_at_fraction_of_nyquist(0.8),
            "min_fsc_up_to_0.8_nyquist": float(f.fsc[upto].min()),
            "resolution_05_a": f.resolution_05_a, "resolution_0143_a": f.resolution_0143_a,
            "nyquist_a": 2 * px, "simulate_s": t1 - t0, "reconstruct_s": t2 - t1,
        })
        print(json.dumps(rows[-1]))
    save_json(f"reconstruct_quality_{args.n}x{args.box}",
              {"benchmark": "reconstruct_quality", "machine": machine(),
               "date": time.strftime("%Y-%m-%d"), "rows": rows})
    _write_table()
    return 0


def _write_table() -> None:
    lines = [
        "## Reconstruction with the true poses (FSC against the truth)",
        "",
        "Produced by `python -m benchmarks.reconstruct_quality` "
        "(`benchmarks/results/reconstruct_quality_*.json`): the built-in pseudo-protein, "
        "uniform poses, direct Fourier inversion with the true poses.",
        "",
        "| case | N | box | Nyquist (Å) | FSC at 0.8 Nyquist | min FSC, shells 1 … 0.8 Nyquist | FSC 0.5 (Å) | FSC 0.143 (Å) | simulate (s) | reconstruct (s) | machine |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("reconstruct_quality_*.json")):
        d = json.loads(path.read_text())
        where = machine_label(d["machine"])
        for r in d["rows"]:
            lines.append(
                f"| {r['case']} | {r['n']} | {r['box']} | {r['nyquist_a']:.1f} | "
                f"{r['fsc_at_0.8_nyquist']:.3f} | {r['min_fsc_up_to_0.8_nyquist']:.3f} | "
                f"{r['resolution_05_a']:.2f} | {r['resolution_0143_a']:.2f} | "
                f"{r['simulate_s']:.1f} | {r['reconstruct_s']:.1f} | {where} |"
            )
    update_docs_section("reconstruct_quality", "\n".join(lines))


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
