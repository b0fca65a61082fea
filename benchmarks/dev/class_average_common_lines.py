"""dev: 2D class averages of one half of an ab-initio case, then common lines (ASPIRE
``CLSyncVoting``) on the averages, a map from the averages at those poses, and a global
search of the half's particles against that map; errors after the harmless rotation only.

The classes (the slow step) are cached in ``/tmp/cryorient_dev`` per setting, so that the
second step can be varied alone.

usage: python -m benchmarks.dev.class_average_common_lines CASE [N] [classes] [iterations] [min_count]
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.ab_initio import MAPS, _cases
from benchmarks.common_lines import estimate_aspire
from benchmarks.dev.classify2d import Classify2DConfig, classify_2d
from napari_cryorient.engine.fourier import fourier_resize_volume, lowpass_volume
from napari_cryorient.engine.global_search import GlobalSearchConfig, global_search
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.reconstruct import reconstruct_volume
from napari_cryorient.engine.simulate import SimulationConfig, simulate_particles
from napari_cryorient.method.demo import load_demo_volume
from napari_cryorient.method.evaluate import harmless_alignment

case = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
k = int(sys.argv[3]) if len(sys.argv) > 3 else 100
iters = int(sys.argv[4]) if len(sys.argv) > 4 else 16
min_count = int(sys.argv[5]) if len(sys.argv) > 5 else 5
volume_name, snr = _cases()[case]
vol, px = load_demo_volume(MAPS[volume_name])
sim = run_job(simulate_particles(vol, px, SimulationConfig(
    n_particles=n, snr_db=snr, ctf=True, defocus_range_um=(1.0, 2.5), shift_std_a=3.0 * px,
    amplitude_contrast=0.1, seed=0)))
cache = Path("/tmp/cryorient_dev") / f"classes_{case}_{n}_{k}_{iters}_split.npz"
t = time.perf_counter()
if cache.exists():
    z = np.load(cache)
    averages, counts, assignment, cpx = z["averages"], z["counts"], z["assignment"], float(z["pixel_size_a"])
else:
    classes = run_job(classify_2d(sim.images, px, None, sim.ctf, Classify2DConfig(
        n_classes=k, iterations=iters, resolution_a=15.0, split=True)), lambda e: print(e.message, flush=True))
    averages, counts, assignment, cpx = (classes.averages, classes.counts, classes.assignment,
                                         classes.pixel_size_a)
    cache.parent.mkdir(exist_ok=True)
    np.savez(cache, averages=averages, counts=counts, assignment=assignment, pixel_size_a=cpx)
t_cls = time.perf_counter() - t
keep = counts >= min_count
avg = np.asarray(averages[keep], dtype=np.float32)
print("classes kept", int(keep.sum()), "box", avg.shape[-1], "px", round(cpx, 2), flush=True)
t = time.perf_counter()
est = estimate_aspire(avg, cpx)
rec = run_job(reconstruct_volume(avg, est.rotations, cpx))
start_small = np.asarray(rec.volume, dtype=np.float32)
t_cl = time.perf_counter() - t
d = sim.images.shape[-1]
start = fourier_resize_volume(torch.from_numpy(start_small), d).numpy()
start = lowpass_volume(start, 12 * px, px)
g = run_job(global_search(sim.images, start, px, None, sim.ctf, GlobalSearchConfig(resolution_a=12 * px)))
a = harmless_alignment(g.rotations, sim.rotations)
# the truth, for scoring only: each class's true mean viewing direction against its common-lines pose
print(json.dumps({"case": case, "n": n, "classes": k, "iterations": iters, "kept": int(keep.sum()),
                  "classify_s": round(t_cls), "common_lines_s": round(t_cl),
                  "search_vs_class_map_harmless": [round(a.mean_deg, 1), round(a.median_deg, 1), round(a.p90_deg, 1)]}),
      flush=True)
