"""The global second chance: far-off particles take a grid pose, good ones keep theirs."""

import numpy as np
import pytest

from napari_cryorient.engine import so3
from napari_cryorient.engine.global_search import GlobalSearchConfig
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.reassign import ReassignConfig, reassign_poses
from napari_cryorient.engine.simulate import SimulationConfig, simulate_particles
from napari_cryorient.engine.so3 import relative_angle_deg


@pytest.mark.parametrize("polish", [(), (12.0, 4.0)])
def test_scrambled_particles_move_close_and_good_ones_stay(small_map, polish):
    sim = run_job(simulate_particles(small_map, 4.0, SimulationConfig(n_particles=80, ctf=True, snr_db=0.0,
                                                                      seed=5)))
    rotations = sim.rotations.copy()
    scrambled = np.arange(80) % 3 == 0
    rotations[scrambled] = so3.sample_orientations(int(scrambled.sum()), "uniform", seed=9)
    halves = np.arange(80) % 2
    config = ReassignConfig(search=GlobalSearchConfig(n_rotations=3000, shift_range_px=0.0),
                            max_resolution_a=12.0, polish_radii_deg=polish,
                            polish_shift_steps_px=())
    result = run_job(reassign_poses(sim.images, (small_map, small_map), halves, rotations, 4.0,
                                    ctf=sim.ctf, config=config))
    err = relative_angle_deg(result.rotations, sim.rotations)
    assert result.moved[scrambled].mean() > 0.8
    assert result.moved[~scrambled].mean() < 0.2
    # the grid spacing without the local search of the grid poses, a few degrees with it
    assert np.median(err[scrambled]) < (4.0 if polish else 15.0)
    assert np.median(err[~scrambled]) < 1e-6  # untouched
    assert result.resolution_a == 12.0


def test_far_particles_with_wrong_origins_find_pose_and_origin(small_map):
    """A particle refined at a wrong pose has a wrong origin too: the default search tries
    offsets and the local search refines them."""
    sim = run_job(simulate_particles(small_map, 4.0, SimulationConfig(n_particles=60, ctf=True, snr_db=0.0,
                                                                      shift_std_a=4.0, seed=7)))
    rotations, shifts = sim.rotations.copy(), sim.shifts_a.copy()
    scrambled = np.arange(60) % 3 == 0
    rotations[scrambled] = so3.sample_orientations(int(scrambled.sum()), "uniform", seed=2)
    shifts[scrambled] += np.array([12.0, -8.0])  # 3 and 2 px off
    result = run_job(reassign_poses(sim.images, (small_map, small_map), np.arange(60) % 2, rotations, 4.0,
                                    shifts, sim.ctf, config=ReassignConfig(max_resolution_a=12.0)))
    err = relative_angle_deg(result.rotations, sim.rotations)
    origin_err = np.linalg.norm(result.shifts_a - sim.shifts_a, axis=1)
    assert result.moved[scrambled].mean() > 0.8 and result.moved[~scrambled].mean() < 0.2
    assert np.median(err[scrambled]) < 5.0
    assert np.median(origin_err[scrambled]) < 2.5  # Å, from 14.4


def test_halves_must_cover_every_particle(small_map):
    rot = so3.sample_orientations(4, "uniform", seed=1)
    with pytest.raises(ValueError, match="halves"):
        run_job(reassign_poses(np.zeros((4, 32, 32), np.float32), (small_map, small_map), np.array([0, 1, 2, 0]),
                               rot, 4.0))
    with pytest.raises(ValueError, match="polish"):
        ReassignConfig(polish_radii_deg=(0.0,)).validate()


def test_a_stronger_prior_moves_fewer_particles(small_map):
    """The evidence a grid pose needs grows with the prior that the current pose is right."""
    sim = run_job(simulate_particles(small_map, 4.0, SimulationConfig(n_particles=120, snr_db=-14.0, seed=6)))
    halves = np.arange(120) % 2
    moved = []
    for prior in (0.5, 0.999):
        config = ReassignConfig(search=GlobalSearchConfig(n_rotations=3000, shift_range_px=0.0),
                                max_resolution_a=12.0, prior_correct=prior)
        moved.append(run_job(reassign_poses(sim.images, (small_map, small_map), halves, sim.rotations, 4.0,
                                            config=config)).moved.mean())
    assert moved[1] < moved[0]
