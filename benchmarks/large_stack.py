"""Large particle stacks through the command line: memory and throughput per stage.

Each stage is one ``cryorient`` command run in a fresh process (peak RSS of that process,
memory-mapped pages included): simulate N noisy particles of BOX² to disk (-12 dB) →
pre-process (Fourier crop to WORK px, normalise) → train the distance network briefly on
the cropped stack → recover (no refinement) → reconstruct with half-maps. The network is
trained for a few steps only: this measures the data path, not accuracy.

usage: python -m benchmarks.large_stack [--n 100000] [--box 128] [--work 64]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._report import RESULTS, machine, machine_label, save_json, update_docs_section


def _stage(name: str, args: list[str], tmp: Path) -> dict:
    result = tmp / f"{name}.json"
    cmd = [sys.executable, "-m", "benchmarks._peak", str(result), *args]
    proc = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"stage {name} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    d = json.loads(result.read_text())
    print(f"{name}: {d['wall_s']:.0f} s, peak {d['peak_rss_gib']:.2f} GiB", flush=True)
    return d


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--box", type=int, default=128)
    p.add_argument("--work", type=int, default=64)
    a = p.parse_args(argv)
    stages: dict[str, dict] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cryorient-large-") as tmpdir:
        tmp = Path(tmpdir)
        sim, prep = tmp / "sim", tmp / "prep"
        stages["simulate"] = _stage("simulate", ["simulate", "--sample", "pseudo-protein", "--n", str(a.n),
                                                 "--box", str(a.box), "--pixel-size", "1.0", "--snr-db", "-12",
                                                 "--out", str(sim)], tmp)
        stages["preprocess"] = _stage("preprocess", ["preprocess", "--star", str(sim / "particles.star"),
                                                     "--out", str(prep), "--box", str(a.work)], tmp)
        star = str(prep / "particles.star")
        stages["train"] = _stage("train", ["train", "--star", star, "--out", str(tmp / "model.pt"),
                                           "--epochs", "1", "--steps-per-epoch", "20"], tmp)
        stages["recover"] = _stage("recover", ["recover", "--star", star, "--model", str(tmp / "model.pt"),
                                               "--out", str(tmp / "recovered.star"), "--no-refine",
                                               "--restarts", "1"], tmp)
        stages["reconstruct"] = _stage("reconstruct", ["reconstruct", "--star", star, "--half-maps",
                                                       "--out", str(tmp / "map.mrc")], tmp)
    name = f"large_stack_{a.n}x{a.box}"
    save_json(name, {"benchmark": "large_stack", "n": a.n, "box": a.box, "work_box": a.work,
                     "machine": machine(), "date": time.strftime("%Y-%m-%d"), "stages": stages,
                     "total_s": time.perf_counter() - t0})
    _write_table()
    return 0


def _write_table() -> None:
    lines = [
        "## Large stacks through the command line",
        "",
        "Produced by `python -m benchmarks.large_stack --n N --box BOX` "
        "(`benchmarks/results/large_stack_*.json`). Each stage is a `cryorient` command in a "
        "fresh process; peak RSS includes memory-mapped stack pages. Simulated at -12 dB, "
        "pre-processed to 64 px; training is a few steps only (the data path, not accuracy); "
        "recovery without refinement.",
        "",
        "| N × box | stage | wall (s) | particles/s | peak RSS (GiB) | machine |",
        "|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("large_stack_*.json")):
        d = json.loads(path.read_text())
        for stage, s in d["stages"].items():
            rate = d["n"] / s["wall_s"] if stage != "train" else float("nan")
            lines.append(f"| {d['n']} × {d['box']}² | {stage} | {s['wall_s']:.0f} | "
                         f"{'—' if stage == 'train' else f'{rate:.0f}'} | {s['peak_rss_gib']:.2f} | "
                         f"{machine_label(d['machine'])} |")
    update_docs_section("large_stack", "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
