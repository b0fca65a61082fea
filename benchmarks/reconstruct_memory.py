"""Peak memory and speed of the streamed reconstruction at scale.

Simulates N particles of BOX² to a memory-mapped MRCS (child process 1), then
reconstructs them from the file (child process 2), recording each child's peak resident
memory (ru_maxrss) and wall time. Default: 20 000 particles of 128², the issue's target
(peak memory of the reconstruction < 4 GiB).

usage: python -m benchmarks.reconstruct_memory [--n 20000] [--box 128] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._report import machine, machine_label, save_json, update_docs_section

CHILD = r"""
import json, resource, sys, time, torch
from pathlib import Path
from napari_cryorient.engine import (SimulationConfig, make_pseudo_protein, reconstruct_volume,
                                     simulate_particles, run_job)
from napari_cryorient.io import StackWriter, read_stack
mode, folder, n, box, device = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
px = 128.0 / box * 2.0
vol = make_pseudo_protein(box, px)
t = time.perf_counter()
if mode == "simulate":
    cfg = SimulationConfig(n_particles=n, snr_db=0.0, seed=0)
    with StackWriter(folder / "p.mrcs", n, box, px) as w:
        sim = run_job(simulate_particles(vol, px, cfg, sink=w, device=device))
    import numpy as np
    np.save(folder / "rot.npy", sim.rotations)
else:
    import numpy as np
    stack = read_stack(folder / "p.mrcs", check_values=False).data
    rec = run_job(reconstruct_volume(stack, np.load(folder / "rot.npy"), px, device=device))
if device.startswith("cuda"):
    torch.cuda.synchronize()
wall = time.perf_counter() - t
peak_gpu = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
print(json.dumps({"wall_s": wall, "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  "peak_gpu_gib": peak_gpu}))
"""


def _child(mode: str, folder: Path, n: int, box: int, device: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(folder), str(n), str(box), device],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--box", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sim = _child("simulate", folder, args.n, args.box, args.device)
        rec = _child("reconstruct", folder, args.n, args.box, args.device)
        stack_gib = (folder / "p.mrcs").stat().st_size / 2**30
    row = {
        "n": args.n, "box": args.box, "device": args.device, "stack_file_gib": stack_gib,
        "simulate_wall_s": sim["wall_s"], "simulate_images_per_s": args.n / sim["wall_s"],
        "simulate_peak_rss_gib": sim["peak_rss_gib"],
        "reconstruct_wall_s": rec["wall_s"], "reconstruct_images_per_s": args.n / rec["wall_s"],
        "reconstruct_peak_rss_gib": rec["peak_rss_gib"], "reconstruct_peak_gpu_gib": rec["peak_gpu_gib"],
    }
    payload = {"benchmark": "reconstruct_memory", "machine": machine(), "date": time.strftime("%Y-%m-%d"),
               "rows": [row]}
    save_json(f"reconstruct_memory_{args.n}x{args.box}_{args.device}", payload)
    _write_table()
    print(json.dumps(row, indent=2))
    return 0


def _write_table() -> None:
    from ._report import RESULTS

    lines = [
        "## Streamed reconstruction: peak memory and speed",
        "",
        "Produced by `python -m benchmarks.reconstruct_memory` (one row per results file in "
        "`benchmarks/results/reconstruct_memory_*.json`). Images are simulated to a "
        "memory-mapped MRCS, then reconstructed from it in a separate process; peak memory is "
        "that process's maximum resident set size. It includes the Python/torch runtime and "
        "the pages of the memory-mapped stack that were read (file-backed, reclaimable by the "
        "OS), so the working memory proper is lower.",
        "",
        "| N | box | device | stack on disk (GiB) | reconstruct (s) | images/s | peak RSS (GiB) | simulate images/s | machine |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("reconstruct_memory_*.json")):
        d = json.loads(path.read_text())
        where = machine_label(d["machine"])
        for r in d["rows"]:
            lines.append(
                f"| {r['n']} | {r['box']} | {r['device']} | {r['stack_file_gib']:.2f} | "
                f"{r['reconstruct_wall_s']:.0f} | {r['reconstruct_images_per_s']:.0f} | "
                f"{r['reconstruct_peak_rss_gib']:.2f} | {r['simulate_images_per_s']:.0f} | {where} |"
            )
    update_docs_section("reconstruct_memory", "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
