"""dev: the stochastic soft-EM search (engine.soft_search) from nothing, on one half of an
ab-initio benchmark case; errors after the harmless rotation only.

usage: python -m benchmarks.dev.soft_search_start CASE [N] [key=value ...]  (SoftSearchConfig fields)
"""
import json
import sys
import time
from dataclasses import fields, replace

import numpy as np

from benchmarks.ab_initio import MAPS, _cases
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.simulate import SimulationConfig, simulate_particles
from napari_cryorient.engine.soft_search import SoftSearchConfig, soft_search
from napari_cryorient.method.demo import load_demo_volume
from napari_cryorient.method.evaluate import harmless_alignment

case = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 2500
types = {f.name: f.type for f in fields(SoftSearchConfig)}
changes = {}
start = None
snr_override = None
for arg in sys.argv[3:]:
    key, value = arg.split("=")
    if key == "snr_db":  # another noise level than the case's
        snr_override = float(value)
        continue
    if key == "truth_start_a":  # the true map low-passed: does the search keep a right start?
        start = float(value)
        continue
    if key == "ellipsoid_start":  # a Gaussian with the true map's second moments (how much start is needed?)
        start = "ellipsoid"
        continue
    changes[key] = {"int": int, "float": float, "bool": lambda v: v == "1"}[types[key]](value)
config = replace(SoftSearchConfig(), **changes)
volume_name, snr = _cases()[case]
vol, px = load_demo_volume(MAPS[volume_name])
snr = snr if snr_override is None else snr_override
sim = run_job(simulate_particles(vol, px, SimulationConfig(
    n_particles=n, snr_db=snr, ctf=True, defocus_range_um=(1.0, 2.5), shift_std_a=3.0 * px,
    amplitude_contrast=0.1, seed=0)))
t = time.perf_counter()
if start == "ellipsoid":
    v = np.clip(np.asarray(vol, dtype=np.float64), 0, None)
    d = v.shape[-1]
    grid = np.stack(np.meshgrid(*[np.arange(d) - d // 2] * 3, indexing="ij"), -1).reshape(-1, 3)
    w = v.reshape(-1) / v.sum()
    mean = w @ grid
    cov = (grid - mean).T @ ((grid - mean) * w[:, None])
    maha = np.einsum("ni,ij,nj->n", grid - mean, np.linalg.inv(cov), grid - mean)
    start = np.exp(-0.5 * maha).reshape(d, d, d).astype(np.float32)
    print("ellipsoid start: axes (px, sd)", np.sqrt(np.linalg.eigvalsh(cov)).round(1), flush=True)
elif start is not None:
    from napari_cryorient.engine.fourier import lowpass_volume
    start = lowpass_volume(vol, start, px)
job = soft_search(sim.images, px, None, sim.ctf, config, reference=start)
res = run_job(job)
sec = time.perf_counter() - t
a = harmless_alignment(res.rotations, sim.rotations)
print(json.dumps({"case": case, "n": n, "changes": changes, "args": sys.argv[3:], "seconds": round(sec),
                  "harmless": [round(a.mean_deg, 1), round(a.median_deg, 1), round(a.p90_deg, 1)],
                  "origin_err_px": round(float(np.linalg.norm(res.shifts_a - sim.shifts_a, axis=1).mean() / px), 2),
                  "confidence_median": round(float(np.median(res.confidence)), 3),
                  "log_evidence": round(res.log_evidence, 3)}), flush=True)
