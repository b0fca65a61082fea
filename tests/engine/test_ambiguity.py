"""The ambiguity step: a harmful left rotation and/or a transposition of the true poses is
undone from the images alone (common lines), with the branch named and the score gap clear."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryorient.engine import so3
from napari_cryorient.engine.align import align_harmless
from napari_cryorient.engine.ambiguity import resolve_ambiguity
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.simulate import SimulationConfig, simulate_particles


@pytest.fixture(scope="module")
def clean_set(small_map):
    return run_job(simulate_particles(small_map, 4.0, SimulationConfig(n_particles=200, seed=11)))


@pytest.mark.parametrize("transpose", [False, True])
def test_a_left_rotation_and_transposition_are_undone_from_the_images(clean_set, transpose):
    truth = clean_set.rotations
    g = so3.sample_uniform_so3(1, np.random.default_rng(5 + transpose))[0]
    estimate = g @ truth  # harmful: rotates every particle frame
    if transpose:
        estimate = np.swapaxes(estimate, -1, -2)
    amb = run_job(resolve_ambiguity(clean_set.images, estimate, pixel_size_a=4.0, n_images=200,
                                    n_pairs=3000, n_candidates=2000, seed=0))
    assert amb.conjugated == transpose
    corrected = amb.apply(estimate)
    # what is left is harmless (a right factor, possibly the hand flip): aligned, it is exact
    err = align_harmless(so3.matrix_to_quaternion(corrected), so3.matrix_to_quaternion(truth),
                         allow_hand_flip=True)
    assert err.mean_deg < 2.0
    # the true branch scores clearly above the other one
    assert amb.score > amb.runner_up_score + 0.05


def test_poses_that_need_no_correction_are_left_alone(clean_set):
    truth = clean_set.rotations
    amb = run_job(resolve_ambiguity(clean_set.images, truth, pixel_size_a=4.0, n_images=200,
                                    n_pairs=3000, n_candidates=2000, seed=0))
    assert not amb.conjugated
    err = align_harmless(so3.matrix_to_quaternion(amb.apply(truth)), so3.matrix_to_quaternion(truth),
                         allow_hand_flip=True)
    assert err.mean_deg < 2.0
