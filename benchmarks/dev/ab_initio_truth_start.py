"""dev: the ab-initio path (global search iterations + refinement) started from a truth-trained network.

usage: python -m benchmarks.dev.ab_initio_truth_start CASE [ROUNDS]
"""
import json
import sys
import time

from benchmarks.method import CACHE, case_config
from napari_cryorient.engine.jobs import Progress, run_job
from napari_cryorient.io.checkpoint import load_model
from napari_cryorient.method.ab_initio import AbInitioSettings, ab_initio
from napari_cryorient.method.demo import simulate_case
from napari_cryorient.method.evaluate import evaluate_poses

case = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 0
config = case_config(case)
sim = run_job(simulate_case(config, {}))
model = load_model(CACHE / f"method_{case}" / "model.pt")
t = time.perf_counter()
job = ab_initio(sim.particles, model, AbInitioSettings(rounds=rounds, seed=config.seed))
last = None
try:
    while True:
        ev = next(job)
        if isinstance(ev, Progress) and ev.stage != last:
            print(round(time.perf_counter() - t), ev.stage, ev.message, flush=True)
            last = ev.stage
except StopIteration as stop:
    res = stop.value
print('total s', round(time.perf_counter() - t))
for stage, r in res.stage_poses.items():
    o = evaluate_poses(r, sim.clean.rotations, seed=0)
    print(json.dumps({'stage': stage, 'o4': [round(o.o4.mean_deg, 1), round(o.o4.median_deg, 1), round(o.o4.p90_deg, 1)],
                      'harmless': round(o.harmless.mean_deg, 1)}), flush=True)
for r in res.rounds:
    print({k: v for k, v in r.items() if not hasattr(v, '__len__') or isinstance(v, str)})
