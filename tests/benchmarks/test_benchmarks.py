"""The benchmark scripts: command-line dispatch, results records, generated tables.

Benchmarks run in subprocesses with their results and docs redirected to a temporary
folder, so the checkout's records are never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["CRYORIENT_BENCHMARK_RESULTS"] = str(tmp_path / "results")
    env["CRYORIENT_BENCHMARK_DOCS"] = str(tmp_path / "benchmarks.md")
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_cli_runs_a_checkout_benchmark_from_anywhere(tmp_path):
    cryorient = Path(sys.executable).with_name("cryorient")
    out = subprocess.run([str(cryorient), "benchmark", "recovery_exact", "--n", "60"], cwd=tmp_path,
                         env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "results" / "recovery_exact.json").read_text())
    assert record["machine"]["cpu_count"] == os.cpu_count()
    assert record["machine"]["torch"] and "gpu" in record["machine"]
    (row,) = record["rows"]
    assert row["n"] == 60 and row["mean_deg"] < 1.0
    table = (tmp_path / "benchmarks.md").read_text()
    assert "<!-- recovery_exact:start -->" in table and "| 60 |" in table


def test_cli_benchmark_errors_are_one_line(tmp_path):
    cryorient = Path(sys.executable).with_name("cryorient")
    out = subprocess.run([str(cryorient), "benchmark", "no_such_thing"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "unknown benchmark" in out.stderr and "Traceback" not in out.stderr


def _method_record(case: str, snr: float | None, load: float, size: str = "full") -> dict:
    metrics = {
        "n_particles": 5000 if size == "full" else 1000, "snr_db": snr, "orientations": "uniform",
        "distance_mae_deg": 13.0, "orientation_error_recovered_mean_deg": 15.0,
        "orientation_error_recovered_median_deg": 11.0, "orientation_error_mean_deg": 12.5,
        "orientation_error_median_deg": 9.0, "orientation_error_p90_deg": 20.0, "refined": True,
        "orientation_error_harmless_only_mean_deg": 12.6, "fsc_resolution_recovered_A": 9.5,
        "fsc_resolution_true_A": 8.0, "nyquist_A": 4.0, "timings_s": {"train": 1.0}, "total_s": 700.0,
    }
    return {"benchmark": "method", "case": case, "size": size, "load_average_mean": load,
            "machine": {"cpu_count": 2, "torch": "2.x", "gpu": None}, "metrics": metrics}


def test_noise_sweep_table_lists_stored_cells_and_flags_shared_cpu(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "method_sample-12db.json").write_text(json.dumps(_method_record("sample-12db", -12.0, 2.1)))
    (results / "method_ribosome-clean.json").write_text(json.dumps(_method_record("ribosome-clean", None, 4.5)))
    (results / "method_sample-6db_small.json").write_text(
        json.dumps(_method_record("sample-6db", -6.0, 2.0, size="small")))
    out = subprocess.run([sys.executable, "-m", "benchmarks.noise_sweep", "--table-only"], cwd=ROOT,
                         env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    section = (tmp_path / "benchmarks.md").read_text().split("<!-- noise_sweep:start -->")[1]
    rows = [line for line in section.splitlines() if line.startswith("| sample") or line.startswith("| ribo")]
    assert len(rows) == 3
    assert rows[0].startswith("| sample | full | -12 | 5000 |") and "| 700 |" in rows[0]
    assert rows[1].startswith("| sample | small | -6 | 1000 |")
    assert rows[2].startswith("| ribosome | full | clean |") and "| 700* |" in rows[2]


def test_aspire_rotations_are_returned_in_our_convention():
    from benchmarks.common_lines import aspire_available, estimate_aspire, score

    if not aspire_available():  # (configures ASPIRE's log folder before its first import)
        pytest.skip("aspire is not installed")

    from napari_cryorient.engine import make_pseudo_protein, run_job, simulate_particles
    from napari_cryorient.engine.simulate import SimulationConfig

    vol = make_pseudo_protein(32, 4.0)
    sim = run_job(simulate_particles(vol, 4.0, SimulationConfig(n_particles=40, seed=1)))
    est = estimate_aspire(np.asarray(sim.images), 4.0)
    s = score(est, np.asarray(sim.rotations))
    # clean images: common lines are nearly exact, and in our convention the harmless
    # rotation (plus the free hand) alone aligns them
    assert s["error_mean_deg"] < 5.0
    assert s["error_harmless_mean_deg"] < 5.0


def test_throughput_measures_every_stage_in_its_own_process(tmp_path):
    out = subprocess.run([sys.executable, "-m", "benchmarks.throughput", "--n", "100", "--box", "32",
                          "--train-steps", "12"], cwd=ROOT, env=_env(tmp_path), capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "results" / "throughput_100x32_cpu.json").read_text())
    row = record["row"]
    for stage in ("simulate", "train", "reconstruct"):
        assert row[stage]["items_per_s"] > 0 and row[stage]["peak_rss_gib"] > 0.1
    assert row["train"]["working_box"] == 16
    assert "| 100" in (tmp_path / "benchmarks.md").read_text()


def test_cached_path_names_what_it_needs(tmp_path):
    """An unknown case, or a case never run, is one line, not a traceback."""
    unknown = subprocess.run([sys.executable, "-m", "benchmarks.cached_path", "no-such-case"], cwd=ROOT,
                             env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 2 and "unknown method case" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    cache = ROOT / "benchmarks" / "cache" / "method_sample-20db-ctf-box32"
    if (cache / "model.pt").exists():
        pytest.skip("this checkout has run that case")
    never = subprocess.run([sys.executable, "-m", "benchmarks.cached_path", "sample-20db-ctf-box32"], cwd=ROOT,
                           env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert never.returncode == 1 and "run python -m benchmarks.method" in never.stderr
    assert "Traceback" not in never.stderr


def test_error_vs_n_stores_a_record_and_its_table(tmp_path, monkeypatch):
    """One small N end to end (an untrained network stands in for the trained one): the
    record is stored as JSON and the table lists its row."""
    import torch
    from benchmarks import _report, error_vs_n

    from napari_cryorient.engine.inference import DistanceModel
    from napari_cryorient.engine.recover import RecoveryConfig
    from napari_cryorient.engine.siamese import EncoderConfig, SiameseNet

    for module in (_report, error_vs_n):
        monkeypatch.setattr(module, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(_report, "DOCS", tmp_path / "benchmarks.md")
    torch.manual_seed(0)
    net = SiameseNet(EncoderConfig(working_box=16, channels=(8, 16), feature_dim=8)).eval()
    model = DistanceModel(net, None, 64, phase_flip=True, pixel_size_a=2.0)
    monkeypatch.setattr(error_vs_n, "_network", lambda config, case, timings: (model, "untrained (test)"))

    def tiny(volume, snr_db, size):  # no refinement, a short recovery: the record is what is tested
        base = error_vs_n.small(error_vs_n.realistic(error_vs_n.DemoConfig(snr_db=snr_db), second_chance=False))
        return replace(base, refine=None, recovery=RecoveryConfig(n_restarts=1, n_steps=30, screen_candidates=1))

    monkeypatch.setattr(error_vs_n, "_config", tiny)
    error_vs_n.run("sample", -6.0, [100], size="small")
    error_vs_n.write_table()
    record = json.loads((tmp_path / "results" / "error_vs_n_sample_6db_small.json").read_text())
    assert record["case"] is None and [r["n_particles"] for r in record["rows"]] == [100]
    assert np.isfinite(record["rows"][0]["error_mean_deg"])
    assert "| sample (small network) | -6 | 100 |" in (tmp_path / "benchmarks.md").read_text()
