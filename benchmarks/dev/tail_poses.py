"""dev: the cached path of a method case (as ``benchmarks.cached_path CASE --second-chance``)
with the final and the true poses saved, to study the particles that stay far off.

usage: python -m benchmarks.dev.tail_poses CASE OUT.npz
"""
import sys
from dataclasses import replace

import numpy as np

from benchmarks.method import CACHE, case_config
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.reassign import ReassignConfig
from napari_cryorient.io.checkpoint import load_model
from napari_cryorient.method.demo import simulate_case
from napari_cryorient.method.recover import RecoverySettings, recover_poses

case, out = sys.argv[1], sys.argv[2]
config = case_config(case)
config = replace(config, reassign=config.reassign or ReassignConfig())
model = load_model(CACHE / f"method_{case}" / "model.pt")
sim = run_job(simulate_case(config, {}))
settings = RecoverySettings(recovery=config.recovery, refine=config.refine, reassign=config.reassign,
                            seed=config.seed)
poses = run_job(recover_poses(sim.particles, model, settings))
np.savez(out, truth=sim.clean.rotations, moved=poses.reassignment.moved,
         halves=poses.refinement.half_assignment,
         **{f"stage_{k}": v for k, v in poses.stage_rotations.items()}, rotations=poses.rotations)
print("saved", out)
