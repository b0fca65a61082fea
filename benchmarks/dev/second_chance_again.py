"""dev: the second chance twice on the cached ribosome -12 dB box-32 network.

usage: python -m benchmarks.dev.second_chance_again CASE
"""
import sys
import time
from dataclasses import replace

from benchmarks.method import CACHE, case_config
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.reassign import ReassignConfig
from napari_cryorient.io.checkpoint import load_model
from napari_cryorient.method import recover as R
from napari_cryorient.method.demo import simulate_case
from napari_cryorient.method.evaluate import evaluate_poses

case = sys.argv[1]
config = case_config(case)
config = replace(config, reassign=ReassignConfig())
sim = run_job(simulate_case(config, {}))
model = load_model(CACHE / f"method_{case}" / "model.pt")
s = R.RecoverySettings(recovery=config.recovery, refine=config.refine, reassign=config.reassign, seed=config.seed)
t = time.perf_counter()
poses = run_job(R.recover_poses(sim.particles, model, s))
def e(r):
    o = evaluate_poses(r, sim.clean.rotations, seed=0).o4
    return [round(o.mean_deg, 2), round(o.median_deg, 2), round(o.p90_deg, 2)]
print('once', e(poses.rotations), round(poses.reassignment.moved.mean(), 3), round(time.perf_counter() - t), flush=True)
for k in range(2):
    t = time.perf_counter()
    run_job(R._reassign(sim.particles, sim.pixel_size_a, s, poses, {}))
    print('again', k + 2, e(poses.rotations), round(poses.reassignment.moved.mean(), 3), round(time.perf_counter() - t), flush=True)
