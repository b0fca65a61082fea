"""Global projection matching over SO(3) and a grid of origins."""

import numpy as np

from napari_cryorient.engine.global_search import GlobalSearchConfig, global_search
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.simulate import SimulationConfig, simulate_particles
from napari_cryorient.engine.so3 import relative_angle_deg


def test_clean_particles_find_their_pose_to_the_grid_spacing(small_map):
    sim = run_job(simulate_particles(small_map, 4.0, SimulationConfig(n_particles=60, ctf=True, seed=1)))
    config = GlobalSearchConfig(n_rotations=3000, resolution_a=12.0, shift_range_px=0)
    found = run_job(global_search(sim.images, small_map, 4.0, None, sim.ctf, config))
    err = relative_angle_deg(found.rotations, sim.rotations)
    assert np.median(err) < 15.0  # 3 000 random poses are ~14° apart
    random = relative_angle_deg(found.rotations[::-1], sim.rotations)
    assert np.median(random) > 60.0


def test_origins_are_searched_and_draws_differ_from_the_best(small_map):
    sim = run_job(simulate_particles(small_map, 4.0, SimulationConfig(n_particles=40, shift_std_a=6.0, seed=2)))
    best = run_job(global_search(sim.images, small_map, 4.0, None, None,
                                 GlobalSearchConfig(n_rotations=2000, resolution_a=12.0, shift_step_px=1.0)))
    before = np.abs(sim.shifts_a).mean()
    assert np.abs(best.shifts_a - sim.shifts_a).mean() < 0.6 * before
    drawn = run_job(global_search(sim.images, small_map, 4.0, None, None,
                                  GlobalSearchConfig(n_rotations=2000, resolution_a=12.0, temperature=5.0)))
    assert np.median(relative_angle_deg(drawn.rotations, best.rotations)) > 5.0
