"""The whole method (cryorient demo) on reference settings: accuracy, resolution, time.

Each named case runs :func:`napari_cryorient.method.run_demo` and keeps its metrics in
``benchmarks/results/method_<case>.json`` (``method_<case>_small.json`` with
``--size small``); the table in docs/benchmarks.md lists every stored case. The run's
outputs (model, noisy particle stack, true poses) stay in ``benchmarks/cache/`` (not
tracked) so that the common-lines comparison can reuse the same images and network.

usage: python -m benchmarks.method [CASE ...] [--size small|full]   (default: sample-12db)
       python -m benchmarks.method --list
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.reassign import ReassignConfig
from napari_cryorient.engine.recover import RecoveryConfig
from napari_cryorient.engine.refine import RefineConfig
from napari_cryorient.engine.siamese import EncoderConfig
from napari_cryorient.method import DemoConfig, run_demo

from ._load import LoadSampler, shared_mark
from ._report import RESULTS, machine, machine_label, save_json, update_docs_section

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / "cache"
RIBOSOME = ROOT.parent / "shared" / "data" / "volumes" / "clean70SRibosome_vol_65p.mrc"
SIZES = ("full", "small")
#: the noise levels of the sweep (dB; None: clean images)
SWEEP_SNR_DB: tuple[float | None, ...] = (None, 0.0, -6.0, -12.0, -14.0, -16.0)
#: the noise levels of the realistic cases (CTF and off-centre picks)
REALISTIC_SNR_DB: tuple[float, ...] = (0.0, -6.0, -12.0, -16.0, -20.0)
#: origins of the realistic cases: σ per axis (pixels); the method is not told them
REALISTIC_SHIFT_STD_PX = 3.0


def realistic(config: DemoConfig, second_chance: bool = True) -> DemoConfig:
    """``config`` with what real picks have: a CTF (defocus 1–2.5 µm, astigmatism,
    amplitude contrast 0.1) and unknown origins (σ 3 px), found by the refinement; with
    ``second_chance``, the global reassignment after the refinement."""
    refine = replace(config.refine or RefineConfig(), search_shifts=True)
    return replace(config, ctf=True, shift_std_px=REALISTIC_SHIFT_STD_PX, refine=refine,
                   reassign=ReassignConfig() if second_chance else None)


def with_working_box(config: DemoConfig, working_box: int = 32) -> DemoConfig:
    """``config`` with the network seeing a larger working box (four conv blocks of
    16–128 channels, so that a step costs about 1.7× the default's rather than 4×)."""
    encoder = EncoderConfig(working_box=working_box, channels=(16, 32, 64, 128))
    return replace(config, train=replace(config.train, encoder=encoder))


def parse_snr(text: str) -> float | None:
    """A noise level from the command line: dB, or ``clean`` (None)."""
    return None if text == "clean" else float(text)


def snr_label(snr_db: float | None) -> str:
    """``clean``, ``0db``, ``12db`` (for -12 dB): the case-name suffix of a noise level."""
    return "clean" if snr_db is None else f"{abs(snr_db):.0f}db"


def case_name(volume: str, snr_db: float | None) -> str:
    """Name of the sweep case of ``volume`` (``sample`` or ``ribosome``) at ``snr_db``."""
    return f"{volume}-{snr_label(snr_db)}"


def small(config: DemoConfig) -> DemoConfig:
    """The ``--size small`` version of a case: 1 000 particles, a short training."""
    return replace(
        config,
        n_particles=1000,
        train=replace(config.train, epochs=15, steps_per_epoch=40),
        recovery=RecoveryConfig(n_restarts=1),
        refine=None if config.refine is None else replace(config.refine, radii_deg=(12.0, 6.0, 3.0)),
    )


def result_name(case: str, size: str) -> str:
    """File stem of a case's results (and of its cache folder)."""
    return f"method_{case}" + ("_small" if size == "small" else "")


def _cases() -> dict[str, DemoConfig]:
    base = DemoConfig()
    wide = replace(base.train, encoder=EncoderConfig(channels=(64, 128, 256)))
    # the ribosome map has no voxel size in its header: we assume 3.05 Å/px at 65 px
    # (3.09 Å/px once Fourier-cropped to 64 px; only relative resolutions matter here)
    ribosome = replace(base, volume=RIBOSOME, pixel_size_a=3.0 * 65 / 64)
    sweep = {}
    for snr in SWEEP_SNR_DB:
        sweep[case_name("sample", snr)] = replace(base, snr_db=snr)
        sweep[case_name("ribosome", snr)] = replace(ribosome, snr_db=snr)
    for snr in REALISTIC_SNR_DB:
        sweep[case_name("sample", snr) + "-ctf"] = realistic(replace(base, snr_db=snr))
        sweep[case_name("ribosome", snr) + "-ctf"] = realistic(replace(ribosome, snr_db=snr))
        for volume, cfg in (("sample", base), ("ribosome", ribosome)):  # without the second chance
            sweep[case_name(volume, snr) + "-ctf-local"] = realistic(replace(cfg, snr_db=snr), False)
            sweep[case_name(volume, snr) + "-ctf-local-box32"] = with_working_box(
                realistic(replace(cfg, snr_db=snr), False))
            sweep[case_name(volume, snr) + "-ctf-box32"] = with_working_box(realistic(replace(cfg, snr_db=snr)))
            local32 = sweep[case_name(volume, snr) + "-ctf-local-box32"]  # + a 10 dB noise warm-up
            sweep[case_name(volume, snr) + "-ctf-local-box32-warmup"] = replace(
                local32, train=replace(local32.train, noise_warmup_db=10.0))
            warm = sweep[case_name(volume, snr) + "-ctf-local-box32-warmup"]  # twice the steps
            sweep[case_name(volume, snr) + "-ctf-local-box32-warmup-long"] = replace(
                warm, train=replace(warm.train, epochs=2 * warm.train.epochs))
    return {
        **sweep,
        "sample-12db-box32": replace(base, train=replace(base.train, encoder=EncoderConfig(
            working_box=32, channels=(32, 64, 128, 128)))),
        "sample-12db-wide": replace(base, train=wide),
        "sample-12db-euler": replace(base, orientations="euler"),
        "sample-12db-preferred": replace(base, orientations="preferred"),
        "quick": DemoConfig.quick(),
    }


def case_config(name: str) -> DemoConfig:
    """The configuration of the method case ``name`` (``KeyError`` for an unknown one)."""
    return _cases()[name]


def run_case(name: str, size: str = "full") -> dict | None:
    """Run one case, store its JSON and keep its outputs in the cache; None if skipped."""
    config = case_config(name)
    if size == "small":
        config = small(config)
    if config.volume is not None and not Path(config.volume).exists():
        print(f"skipping {name}: {config.volume} not found")
        return None
    stem = result_name(name, size)
    out = CACHE / stem
    who = machine()  # the code as it was when the run started
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    with LoadSampler() as load:
        metrics = run_job(run_demo(config, out))
    metrics["total_s"] = time.perf_counter() - t0
    payload = {"benchmark": "method", "case": name, "size": size, "machine": who,
               "load_average_mean": load.mean, "date": time.strftime("%Y-%m-%d"), "metrics": metrics}
    save_json(stem, payload)
    print(name, size, json.dumps({k: v for k, v in metrics.items() if not isinstance(v, dict)}))
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", default=["sample-12db"])
    parser.add_argument("--size", choices=SIZES, default="full",
                        help="full: the reference setting (5 000 particles, 120 epochs); "
                        "small: 1 000 particles, 15 epochs (a check that runs in minutes)")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    cases = _cases()
    if args.list:
        print("\n".join(cases))
        return 0
    unknown = [n for n in args.cases if n not in cases]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; --list shows them")
    for name in args.cases:
        run_case(name, args.size)
    write_table()
    return 0


def write_table() -> None:
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
        "and from the true poses. Total times marked * ran while other work shared the CPU "
        "(mean load above CPU count + 0.5): upper bounds.",
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
        label = d["case"] + (" (small)" if d.get("size") == "small" else "")
        star = shared_mark(d)
        lines.append(
            f"| {label} | {m['n_particles']} | {m['snr_db']} | {m['orientations']} | "
            f"{m['distance_mae_deg']:.1f} | {m['orientation_error_recovered_mean_deg']:.1f} / "
            f"{m['orientation_error_recovered_median_deg']:.1f} | {refined} | "
            f"{m['orientation_error_harmless_only_mean_deg']:.1f} | "
            f"{m['fsc_resolution_recovered_A']:.1f} | {m['fsc_resolution_true_A']:.1f} | {m['nyquist_A']:.1f} | "
            f"{t.get('train', 0):.0f} | {t.get('recover', 0):.0f} | {t.get('refine', 0):.0f} | "
            f"{m['total_s']:.0f}{star} | {where} |"
        )
    update_docs_section("method", "\n".join(lines))
    _write_orientation_table()
    _write_realistic_table()


def _write_orientation_table() -> None:
    """The non-uniform cases beside the uniform one (same pipeline, same metrics)."""
    lines = [
        "## Non-uniform orientations",
        "",
        "Produced by `python -m benchmarks.method sample-12db sample-12db-euler "
        "sample-12db-preferred` (the same stored results as the method table). *uniform*: "
        "uniform on SO(3); *euler*: the three RELION Euler angles drawn uniformly (views "
        "crowd at the poles); *preferred*: viewing directions in 3 clusters, 15° spread per "
        "axis, uniform in-plane angle. Built-in sample, 5 000 particles, -12 dB.",
        "",
        "| orientations | distance MAE (°) | recovered: mean / median (°) | final: mean / median / p90 (°) "
        "| final, harmless only: mean (°) | FSC 0.5 final / true poses (Å) | machine |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in ("sample-12db", "sample-12db-euler", "sample-12db-preferred"):
        path = RESULTS / f"method_{case}.json"
        if not path.exists():
            continue
        d = json.loads(path.read_text())
        m = d["metrics"]
        lines.append(
            f"| {m['orientations']} | {m['distance_mae_deg']:.1f} | "
            f"{m['orientation_error_recovered_mean_deg']:.1f} / {m['orientation_error_recovered_median_deg']:.1f} | "
            f"{m['orientation_error_mean_deg']:.1f} / {m['orientation_error_median_deg']:.1f} / "
            f"{m['orientation_error_p90_deg']:.1f} | {m['orientation_error_harmless_only_mean_deg']:.1f} | "
            f"{m['fsc_resolution_recovered_A']:.1f} / {m['fsc_resolution_true_A']:.1f} | "
            f"{machine_label(d['machine'])} |"
        )
    update_docs_section("orientations", "\n".join(lines))


def _stage(m: dict, stage: str) -> str:
    e = m.get("stage_errors_deg", {}).get(stage)
    return "—" if e is None else f"{e['mean']:.1f} / {e['median']:.1f} / {e['p90']:.1f}"


def _write_realistic_table() -> None:
    """The cases with CTF and unknown origins beside the same map and noise without them."""
    lines = [
        "## Realistic images: CTF and off-centre picks",
        "",
        "Produced by `python -m benchmarks.method CASE` (cases `sample-12db-ctf`, "
        "`ribosome-16db-ctf`, …; the same stored results as the method table). The images carry a "
        "CTF (300 kV, Cs 2.7 mm, amplitude contrast 0.1, defocus uniform in 1–2.5 µm, "
        "astigmatism up to 0.05 µm) and origins drawn with σ = 3 px per axis. The method is "
        "told the CTF but not the origins: the truth-trained network is trained on "
        "phase-flipped, off-centre images and applied to them, and the refinement searches "
        "the origins (±4 px in its first iteration, then ±1 px steps). `-ctf` cases then run "
        "the global second chance and a shorter refinement (`-ctf-local` cases stop after the "
        "first refinement); errors after O(4) alignment, mean / median / p90 in degrees, after "
        "each stage. *Origin error* is the mean distance of the found origins to the true ones; "
        "*at centre* is what not searching gives. *No CTF, centred* repeats the final mean error "
        "of the same map and noise from the method table. *Working box*: the size the network's "
        "images are Fourier-cropped to (`-box32` cases: 32 px and four conv blocks of 16–128 "
        "channels; otherwise 16 px); *turns*: the test-time quarter turns averaged into the "
        "features (4 by default since they were measured; see the table of turns); `-warmup` "
        "cases train with a noise curriculum (10 dB less noise at the start, falling to the "
        "case's noise over the first 30 % of the steps), `-long` ones twice as many steps. The "
        "sample-16db-ctf row ran the first form of the second chance (a plain better-score rule; "
        "see docs/method.md).",
        "",
        "| case | N | SNR (dB) | working box (px), test-time turns | distance MAE (°) | recovered "
        "| refined | second chance (moved) "
        "| final, harmless only: mean (°) | no CTF, centred: final mean (°) "
        "| origin error found / at centre (px) | FSC 0.5 final / true poses (Å) | total (s) | machine |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("method_*-ctf*.json")):
        d = json.loads(path.read_text())
        m = d["metrics"]
        small_run = d.get("size") == "small"
        plain = RESULTS / re.sub(r"-ctf(-local)?(-box\d+)?(-warmup)?(-long)?", "", path.name)
        base = json.loads(plain.read_text())["metrics"]["orientation_error_mean_deg"] if plain.exists() else None
        moved = m.get("reassigned_fraction")
        chance = "—" if moved is None else f"{_stage(m, 'reassign')} ({moved:.0%})"
        lines.append(
            f"| {d['case']}{' (small)' if small_run else ''} | {m['n_particles']} | {m['snr_db']} | "
            f"{m['training'].get('working_box', 16)}, {m.get('feature_rotations', 1)} | "
            f"{m['distance_mae_deg']:.1f} | {_stage(m, 'recover')} | {_stage(m, 'refine')} | {chance} | "
            f"{m['orientation_error_harmless_only_mean_deg']:.1f} | "
            f"{'—' if base is None else f'{base:.1f}'} | "
            f"{m['origin_error_px_mean']:.2f} / {m['origin_error_px_unsearched']:.2f} | "
            f"{m['fsc_resolution_recovered_A']:.1f} / {m['fsc_resolution_true_A']:.1f} | "
            f"{m['total_s']:.0f}{shared_mark(d)} | {machine_label(d['machine'])} |"
        )
    update_docs_section("realistic", "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
