"""Warning signs of a failed recovery, without a truth."""

import numpy as np

from napari_cryorient.engine import so3
from napari_cryorient.engine.diagnostics import recovery_diagnostics


def test_good_recovery_gives_no_warning():
    rot = so3.sample_orientations(2000, "uniform", seed=1)
    d = recovery_diagnostics(so3.matrix_to_quaternion(rot), rot)  # exact features: quaternions
    assert d.warnings == []
    assert 110 < d.median_predicted_deg < 150
    assert d.view_resultant_length < 0.1


def test_preferred_views_are_not_mistaken_for_a_collapse():
    rot = so3.sample_orientations(2000, "preferred", seed=2)
    assert recovery_diagnostics(so3.matrix_to_quaternion(rot), rot).warnings == []


def test_collapsed_distances_and_bunched_views_are_named(rng):
    n = 500
    features = np.ones((n, 8)) + 0.01 * rng.normal(size=(n, 8))  # nearly the same for every image
    q = np.array([1.0, 0, 0, 0]) + 0.05 * rng.normal(size=(n, 4))  # all within a few degrees
    bunched = so3.quaternion_to_matrix(q / np.linalg.norm(q, axis=1, keepdims=True))
    d = recovery_diagnostics(features, bunched)
    assert len(d.warnings) == 2
    assert "collapsed" in d.warnings[0] and "bunch" in d.warnings[1]
    assert d.median_predicted_deg < 5 and d.view_resultant_length > 0.9


def test_poses_no_better_than_random_are_named(rng):
    """Features that know the poses, paired with random poses: the fit is no better than
    chance and the diagnostics say so; the true poses fit far better than chance."""
    rot = so3.sample_orientations(1000, "uniform", seed=4)
    features = so3.matrix_to_quaternion(rot)  # exact distances
    right = recovery_diagnostics(features, rot)
    assert right.random_fit_ratio < 0.05 and right.warnings == []
    wrong = recovery_diagnostics(features, so3.sample_orientations(1000, "uniform", seed=9))
    assert wrong.random_fit_ratio > 0.8
    assert len(wrong.warnings) == 1 and "random poses" in wrong.warnings[0]
