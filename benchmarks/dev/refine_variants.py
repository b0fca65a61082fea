"""dev: refinement variants (from the resolved poses, or from the true ones) on a cached case.

usage: python -m benchmarks.dev.refine_variants CASE [true|long|hard|longhard|default ...]
"""
import json
import sys
import time
from dataclasses import replace

import numpy as np

from benchmarks.method import CACHE, case_config
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.refine import refine_orientations
from napari_cryorient.io.checkpoint import load_model
from napari_cryorient.method.demo import simulate_case
from napari_cryorient.method.evaluate import evaluate_poses
from napari_cryorient.method.recover import RecoverySettings, recover_poses

case = sys.argv[1]
variants = sys.argv[2:]
config = case_config(case)
sim = run_job(simulate_case(config, {}))
p = sim.particles
truth = sim.clean.rotations
npz = CACHE / f'method_{case}' / 'dev_resolved.npz'  # the path up to the refinement, once
try:
    resolved = np.load(npz)['r']
except FileNotFoundError:
    model = load_model(CACHE / f"method_{case}" / "model.pt")
    s = RecoverySettings(recovery=config.recovery, refine=None, reassign=None, seed=config.seed)
    poses = run_job(recover_poses(p, model, s))
    resolved = poses.rotations
    np.savez(npz, r=resolved)
def err(r):
    o = evaluate_poses(r, truth, seed=0).o4
    return round(o.mean_deg, 2), round(o.median_deg, 2), round(o.p90_deg, 2)
print('resolved', err(resolved), flush=True)
base = config.refine
px = sim.pixel_size_a
for v in variants:
    cfg, start = base, resolved
    if v == 'true':
        start = truth
    elif v == 'hard':
        cfg = replace(base, assignment='hard')
    elif v == 'long':
        cfg = replace(base, radii_deg=(24.0, 24.0, 16.0, 16.0, 12.0, 12.0, 8.0, 8.0, 4.0, 2.0))
    elif v == 'longhard':
        cfg = replace(base, assignment='hard', radii_deg=(24.0, 24.0, 16.0, 16.0, 12.0, 12.0, 8.0, 8.0, 4.0, 2.0))
    elif v == 'default':
        pass
    t = time.perf_counter()
    res = run_job(refine_orientations(p.images, start, px, shifts_a=p.shifts_a, ctf=p.ctf,
                                      config=replace(cfg, seed=config.seed)))
    print(json.dumps({'variant': v, 'error': err(res.rotations), 's': round(time.perf_counter() - t),
                      'history': [(h['radius_deg'], round(h['resolution_a'], 1), round(h['mean_change_deg'], 1)) for h in res.history]}), flush=True)
