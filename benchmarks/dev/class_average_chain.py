"""dev: class averages → a start map → the soft search of the particles from that start.

Reads the classes cached by ``benchmarks.dev.class_average_common_lines`` (same case, N,
classes, iterations); makes a map from the averages (``soft``: the soft search on them;
``cl``: ASPIRE common lines), low-passes it to ``lowpass_a`` and runs the soft search of the
first half of the particles from it; errors after the harmless rotation only.

usage: python -m benchmarks.dev.class_average_chain CASE N CLASSES ITERATIONS {soft,cl} LOWPASS_A
"""
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.ab_initio import MAPS, _cases
from napari_cryorient.engine.fourier import fourier_resize_volume, lowpass_volume
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.reconstruct import reconstruct_volume
from napari_cryorient.engine.simulate import SimulationConfig, simulate_particles
from napari_cryorient.engine.soft_search import SoftSearchConfig, soft_search
from napari_cryorient.method.demo import load_demo_volume
from napari_cryorient.method.evaluate import harmless_alignment

case, n, k, iters, how, lowpass_a = sys.argv[1], *map(int, sys.argv[2:5]), sys.argv[5], float(sys.argv[6])
volume_name, snr = _cases()[case]
vol, px = load_demo_volume(MAPS[volume_name])
sim = run_job(simulate_particles(vol, px, SimulationConfig(
    n_particles=n, snr_db=snr, ctf=True, defocus_range_um=(1.0, 2.5), shift_std_a=3.0 * px,
    amplitude_contrast=0.1, seed=0)))
z = np.load(Path("/tmp/cryorient_dev") / f"classes_{case}_{n}_{k}_{iters}_split.npz")
keep = z["counts"] >= 5
avg, cpx = np.asarray(z["averages"][keep], dtype=np.float32), float(z["pixel_size_a"])
if how == "soft":
    found = run_job(soft_search(avg, cpx, None, None, replace(SoftSearchConfig(), epochs=20, batch_size=50,
                                                             shift_range_px=0.0, draw=False)))
    small = found.volume
else:
    from benchmarks.common_lines import estimate_aspire
    small = run_job(reconstruct_volume(avg, estimate_aspire(avg, cpx).rotations, cpx)).volume
start = fourier_resize_volume(torch.as_tensor(np.asarray(small, dtype=np.float32)), sim.images.shape[-1]).numpy()
start = lowpass_volume(start, lowpass_a, px)
half = np.arange(n // 2)
res = run_job(soft_search(sim.images[half], px, None, sim.ctf.subset(half), replace(SoftSearchConfig(), draw=False),
                          reference=start))
a = harmless_alignment(res.rotations, sim.rotations[half])
print(json.dumps({"case": case, "n": n, "classes": k, "how": how, "lowpass_a": lowpass_a,
                  "harmless": [round(a.mean_deg, 1), round(a.median_deg, 1), round(a.p90_deg, 1)]}), flush=True)
