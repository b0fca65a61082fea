"""dev: the second chance's origin steps on the tests' small map (32 px pseudo-protein, 4 Å/px,
60 particles at 0 dB with CTF, origins σ 4 Å); a third of them given random poses and
origins 3 and 2 px off. Median error of those, and of their origins, per offset grid.

usage: python -m benchmarks.dev.reassign_offset_steps
"""
import numpy as np

from napari_cryorient.engine import so3
from napari_cryorient.engine.global_search import GlobalSearchConfig
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.reassign import ReassignConfig, reassign_poses
from napari_cryorient.engine.simulate import SimulationConfig, simulate_particles
from napari_cryorient.engine.volumes import make_pseudo_protein

small_map = make_pseudo_protein(box=32, pixel_size_a=4.0, seed=3)
sim = run_job(simulate_particles(small_map, 4.0, SimulationConfig(n_particles=60, ctf=True, snr_db=0.0,
                                                                  shift_std_a=4.0, seed=7)))
rotations, shifts = sim.rotations.copy(), sim.shifts_a.copy()
far = np.arange(60) % 3 == 0
rotations[far] = so3.sample_orientations(int(far.sum()), "uniform", seed=2)
shifts[far] += np.array([12.0, -8.0])
for range_px, step_px in ((0, 2), (4, 2), (4, 1), (3, 1)):
    config = ReassignConfig(search=GlobalSearchConfig(n_rotations=4000, shift_range_px=range_px,
                                                      shift_step_px=step_px), max_resolution_a=12.0)
    r = run_job(reassign_poses(sim.images, (small_map, small_map), np.arange(60) % 2, rotations, 4.0, shifts,
                               sim.ctf, config=config))
    err = so3.relative_angle_deg(r.rotations, sim.rotations)[far]
    origin = np.linalg.norm(r.shifts_a - sim.shifts_a, axis=1)[far]
    print(f"±{range_px} px in {step_px} px steps: moved {r.moved[far].mean():.0%}, median error {np.median(err):.1f}°, "
          f"origin error {np.median(origin):.1f} Å", flush=True)
