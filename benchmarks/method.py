"""The whole method (cryorient demo) on reference settings: accuracy, resolution, time.

Each named case runs :func:`napari_cryorient.pipeline.run_demo` in a temporary folder and
keeps its metrics in ``benchmarks/results/method_<case>.json``; the table in
docs/benchmarks.md lists every stored case.

usage: python -m benchmarks.method [CASE ...]        (default: sample-12db)
       python -m benchmarks.method --list
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.siamese import EncoderConfig
from napari_cryorient.pipeline import DemoConfig, run_demo

from ._report import RESULTS, machine, machine_label, save_json, update_docs_section

RIBOSOME = Path(__file__).resolve().parents[2] / "shared" / "data" / "volumes" / "clean70SRibosome_vol_65p.mrc"


def _cases() -> dict[str, DemoConfig]:
    base = DemoConfig()
    wide = replace(base.train, encoder=EncoderConfig(channels=(64, 128, 256)))
    return {
        "sample-12db": base,
        "sample-12db-box32": replace(base, train=replace(base.train, encoder=EncoderConfig(
            working_box=32, channels=(32, 64, 128, 128)))),
        "sample-12db-wide": replace(base, train=wide),
        "sample-14db": replace(base, snr_db=-14.0),
        "sample-16db": replace(base, snr_db=-16.0),
        "sample-12db-euler": replace(base, orientations="euler"),
        "sample-12db-preferred": replace(base, orientations="preferred"),
        # the ribosome map has no voxel size in its header: we assume 3.05 Å/px at 65 px
        # (3.09 Å/px once Fourier-cropped to 64 px; only relative resolutions matter here)
        "ribosome-12db": replace(base, volume=RIBOSOME, pixel_size_a=3.0 * 65 / 64),
        "quick": DemoConfig.quick(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=["sample-12db"])
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    cases = _cases()
    if args.list:
        print("\n".join(cases))
        return 0
    for name in args.cases:
        if name not in cases:
            parser.error(f"unknown case {name!r}; --list shows them")
        config = cases[name]
        if config.volume is not None and not Path(config.volume).exists():
            print(f"skipping {name}: {config.volume} not found")
            continue
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            metrics = run_job(run_demo(config, tmp))
        metrics["total_s"] = time.perf_counter() - t0
        save_json(f"method_{name}", {"benchmark": "method", "case": name, "machine": machine(),
                                     "date": time.strftime("%Y-%m-%d"), "metrics": metrics})
        print(name, json.dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)}))
    _write_table()
    return 0


def _write_table() -> None:
    lines = [
        "## The method end to end (`cryorient demo` settings)",
        "",
        "Produced by `python -m benchmarks.method CASE` (`benchmarks/results/method_*.json`). "
        "Simulated data (64 px, 5 000 particles unless noted), Siamese network trained with "
        "fresh noise at every step, recovery from its predicted distances, ambiguity resolved "
        "from the images by common lines, then local refinement by projection matching "
        "against gold-standard half-maps; reconstructions from the *noisy* images. "
        "Orientation errors in degrees: *recovered* = straight from the learned distances, "
        "after O(4) alignment to the truth; *refined* = the final poses, after O(4) alignment "
        "and after only the harmless rotation (what a user gets; the hand of the map is not "
        "determined by projections). FSC 0.5 against the ground-truth map, from the final poses "
        "and from the true poses.",
        "",
        "| case | N | SNR (dB) | orientations | distance MAE (°) | recovered: error mean / median (°) "
        "| refined: error mean / median / p90 (°) | refined, harmless only: mean (°) "
        "| FSC 0.5 final poses (Å) | FSC 0.5 true poses (Å) | Nyquist (Å) | train (s) | recover (s) "
        "| refine (s) | total (s) | machine |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("method_*.json")):
        d = json.loads(path.read_text())
        m = d["metrics"]
        if "orientation_error_recovered_mean_deg" not in m:
            continue  # written before the refinement existed
        where = machine_label(d["machine"])
        t = m["timings_s"]
        refined = (f"{m['orientation_error_mean_deg']:.1f} / {m['orientation_error_median_deg']:.1f} / "
                   f"{m['orientation_error_p90_deg']:.1f}") if m.get("refined") else "—"
        lines.append(
            f"| {d['case']} | {m['n_particles']} | {m['snr_db']} | {m['orientations']} | "
            f"{m['distance_mae_deg']:.1f} | {m['orientation_error_recovered_mean_deg']:.1f} / "
            f"{m['orientation_error_recovered_median_deg']:.1f} | {refined} | "
            f"{m['orientation_error_harmless_only_mean_deg']:.1f} | "
            f"{m['fsc_resolution_recovered_A']:.1f} | {m['fsc_resolution_true_A']:.1f} | {m['nyquist_A']:.1f} | "
            f"{t.get('train', 0):.0f} | {t.get('recover', 0):.0f} | {t.get('refine', 0):.0f} | "
            f"{m['total_s']:.0f} | {where} |"
        )
    update_docs_section("method", "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
