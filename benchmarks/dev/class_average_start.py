"""dev: 2D class averages (engine.classify2d) of one half of an ab-initio case, then the soft
search on the averages; the map (resized back to the particles' box) scored by a global
search of the half's particles against it, errors after the harmless rotation only.

usage: python -m benchmarks.dev.class_average_start CASE [N] [classes] [iterations] [resolution_a] [draws] [split]
"""
import json
import sys
import time
from dataclasses import replace

import numpy as np
import torch

from benchmarks.ab_initio import MAPS, _cases
from benchmarks.dev.classify2d import Classify2DConfig, classify_2d
from napari_cryorient.engine.fourier import fourier_resize_volume, lowpass_volume
from napari_cryorient.engine.global_search import GlobalSearchConfig, global_search
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.simulate import SimulationConfig, simulate_particles
from napari_cryorient.engine.soft_search import SoftSearchConfig, soft_search
from napari_cryorient.method.demo import load_demo_volume
from napari_cryorient.method.evaluate import harmless_alignment

case = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 2500
k = int(sys.argv[3]) if len(sys.argv) > 3 else 100
iters = int(sys.argv[4]) if len(sys.argv) > 4 else 12
volume_name, snr = _cases()[case]
vol, px = load_demo_volume(MAPS[volume_name])
sim = run_job(simulate_particles(vol, px, SimulationConfig(
    n_particles=n, snr_db=snr, ctf=True, defocus_range_um=(1.0, 2.5), shift_std_a=3.0 * px,
    amplitude_contrast=0.1, seed=0)))
t = time.perf_counter()
classes = run_job(classify_2d(sim.images, px, None, sim.ctf, Classify2DConfig(n_classes=k, iterations=iters, resolution_a=float(sys.argv[5]) if len(sys.argv) > 5 else 15.0,
                                                           draws=int(sys.argv[6]) if len(sys.argv) > 6 else 0,
                                                           split=len(sys.argv) > 7 and sys.argv[7] == "split")),
                  lambda e: print(e.message, flush=True))
t_cls = time.perf_counter() - t
keep = classes.counts >= 5
# the truth, for scoring only: how close are the true viewing directions within a class
dirs = sim.rotations[:, 2, :]  # each particle's viewing direction (third row)
spread = []
for c in np.flatnonzero(keep):
    m = dirs[classes.assignment == c]
    mean = m.mean(0) / max(np.linalg.norm(m.mean(0)), 1e-12)
    spread.append(np.degrees(np.arccos(np.clip(m @ mean, -1, 1))).mean())
rand = dirs[np.random.default_rng(0).permutation(n)[:25]]
rmean = rand.mean(0) / np.linalg.norm(rand.mean(0))
print("class spread of true viewing directions (deg): median", round(float(np.median(spread)), 1),
      "random 25:", round(float(np.degrees(np.arccos(np.clip(rand @ rmean, -1, 1))).mean()), 1), flush=True)
avg = classes.averages[keep]
print("classes kept", int(keep.sum()), "box", avg.shape[-1], "px", round(classes.pixel_size_a, 2), flush=True)
soft = replace(SoftSearchConfig(), epochs=20, batch_size=50, shift_range_px=0.0)
found = run_job(soft_search(avg, classes.pixel_size_a, None, None, soft))
t_soft = time.perf_counter() - t - t_cls
d = sim.images.shape[-1]
start = fourier_resize_volume(torch.from_numpy(found.volume), d).numpy()
start = lowpass_volume(start, 12 * px, px)
g = run_job(global_search(sim.images, start, px, None, sim.ctf, GlobalSearchConfig(resolution_a=12 * px)))
a = harmless_alignment(g.rotations, sim.rotations)
print(json.dumps({"case": case, "n": n, "classes": k, "iterations": iters, "argv": sys.argv[1:], "kept": int(keep.sum()),
                  "classify_s": round(t_cls), "soft_s": round(t_soft),
                  "search_vs_class_map_harmless": [round(a.mean_deg, 1), round(a.median_deg, 1), round(a.p90_deg, 1)]}),
      flush=True)
