"""Throughput and peak memory of simulation, training and reconstruction vs N and box size.

For every (N, box): N particles of box² are simulated at -12 dB into a memory-mapped MRCS
(child process 1), a distance network trains for a fixed number of steps on them with
their poses (child 2, as ``cryorient train`` does), and the map is reconstructed from the
file (child 3). Each child is a fresh process, so its peak resident memory (ru_maxrss)
is its own; on a GPU the peak allocated GPU memory is recorded too. Each row records the
device it ran on.

usage: python -m benchmarks.throughput [--n 1000 2000] [--box 32 64 128] [--device cpu|cuda]
                                       [--train-steps 40]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._load import LoadSampler, shared_mark
from ._report import RESULTS, machine, machine_label, save_json, update_docs_section

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import numpy as np, torch
from napari_cryorient.engine import SimulationConfig, make_pseudo_protein, reconstruct_volume, simulate_particles, run_job
from napari_cryorient.engine.train import DistanceTrainer, TrainConfig, prepare_training_data
from napari_cryorient.io import StackWriter, read_stack
mode, folder, n, box, device, steps = (sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
                                       sys.argv[5], int(sys.argv[6]))
px = 128.0 / box * 2.0
result = {}
if mode == "simulate":
    vol = make_pseudo_protein(box, px)
    t = time.perf_counter()
    with StackWriter(folder / "p.mrcs", n, box, px) as w:
        sim = run_job(simulate_particles(vol, px, SimulationConfig(n_particles=n, snr_db=-12.0, seed=0),
                                         sink=w, device=device))
    np.save(folder / "rot.npy", sim.rotations)
    result["items_per_s"] = n / (time.perf_counter() - t)
elif mode == "train":
    stack = read_stack(folder / "p.mrcs", check_values=False).data
    cfg = TrainConfig(epochs=1, steps_per_epoch=steps, val_pairs=2000, device=device)
    data = prepare_training_data(stack, np.load(folder / "rot.npy"), min(cfg.encoder.working_box, box))
    trainer = DistanceTrainer(data, cfg)
    warm = 5  # the first steps include one-off set-up (allocations, kernel selection)
    t0 = t1 = None
    for event in trainer.run():
        step = event.data["step"]
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if step == warm:
            t0 = time.perf_counter()
        if step == steps - 1:  # before the validation at the epoch's end
            t1 = time.perf_counter()
    result["items_per_s"] = (steps - 1 - warm) * trainer.pairs_per_step / (t1 - t0)
    result["working_box"] = data.images.shape[-1]
else:
    stack = read_stack(folder / "p.mrcs", check_values=False).data
    t = time.perf_counter()
    run_job(reconstruct_volume(stack, np.load(folder / "rot.npy"), px, device=device))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    result["items_per_s"] = n / (time.perf_counter() - t)
result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
result["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
result["device_name"] = torch.cuda.get_device_name(0) if device.startswith("cuda") else f"CPU, {torch.get_num_threads()} threads"
print(json.dumps(result))
"""

STAGES = ("simulate", "train", "reconstruct")


def _child(stage: str, folder: Path, n: int, box: int, device: str, steps: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, stage, str(folder), str(n), str(box), device, str(steps)],
        capture_output=True, text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"{stage} N={n} box={box} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(n: int, box: int, device: str, steps: int) -> dict:
    """One row: every stage of N particles of box² on ``device``."""
    row: dict = {"n": n, "box": box, "device": device}
    with tempfile.TemporaryDirectory() as tmp:
        for stage in STAGES:
            r = _child(stage, Path(tmp), n, box, device, steps)
            row[stage] = r
            row["device_name"] = r["device_name"]
            print(f"N={n} box={box} {stage}: {r['items_per_s']:.0f}/s, peak RSS {r['peak_rss_gib']:.2f} GiB",
                  flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", nargs="+", type=int, default=[1000, 2000])
    parser.add_argument("--box", nargs="+", type=int, default=[32, 64, 128])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--train-steps", type=int, default=40)
    args = parser.parse_args(argv)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            parser.error("--device cuda: no CUDA device available")
    if any(n < 100 for n in args.n) or any(b < 16 for b in args.box) or args.train_steps < 10:
        parser.error("need --n >= 100, --box >= 16 and --train-steps >= 10")
    for n in args.n:
        for box in args.box:
            with LoadSampler(interval_s=5.0) as load:
                row = measure(n, box, args.device, args.train_steps)
            save_json(f"throughput_{n}x{box}_{args.device.replace(':', '')}", {
                "benchmark": "throughput", "machine": machine(), "date": time.strftime("%Y-%m-%d"),
                "train_steps": args.train_steps, "load_average_mean": load.mean, "row": row,
            })
    write_table()
    return 0


def write_table() -> None:
    """Regenerate the docs section from every stored ``throughput_*.json``."""
    lines = [
        "## Throughput and peak memory vs N and box size",
        "",
        "Produced by `python -m benchmarks.throughput` (`benchmarks/results/throughput_*.json`). "
        "Simulation at -12 dB streamed to a memory-mapped MRCS; training = steps of the default "
        "network (32 anchors × 4 images per batch, all 8 128 pairs of the batch in the loss) on "
        "the images Fourier-cropped to its working box, the first 5 steps excluded; "
        "reconstruction = direct Fourier inversion from the file. Each stage is a fresh "
        "process; peak RSS includes the runtime (about 0.4 GiB for Python and torch) and the "
        "pages of the memory-mapped stack it read. Rows whose N is marked * ran while other "
        "work shared the CPU: their rates are lower bounds.",
        "",
        "| N | box | device | simulate (images/s) | peak RSS (GiB) | train (pairs/s) | working box | "
        "peak RSS (GiB) | reconstruct (images/s) | peak RSS (GiB) | peak GPU (GiB) | machine |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [json.loads(p.read_text()) for p in RESULTS.glob("throughput_*.json")]
    rows.sort(key=lambda d: (d["row"]["device"], d["row"]["box"], d["row"]["n"]))
    for d in rows:
        r = d["row"]
        s, t, c = r["simulate"], r["train"], r["reconstruct"]
        gpu = f"{c['peak_gpu_gib']:.2f}" if c.get("peak_gpu_gib") is not None else "—"
        lines.append(
            f"| {r['n']}{shared_mark(d)} | {r['box']} | {r['device_name']} | {s['items_per_s']:.0f} | {s['peak_rss_gib']:.2f} | "
            f"{t['items_per_s']:.0f} | {t['working_box']} | {t['peak_rss_gib']:.2f} | "
            f"{c['items_per_s']:.0f} | {c['peak_rss_gib']:.2f} | {gpu} | {machine_label(d['machine'])} |"
        )
    update_docs_section("throughput", "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
