import numpy as np
import pytest

from napari_cryorient.engine import so3
from napari_cryorient.engine.align import align_harmless, align_to_reference


def _random_unit(rng):
    q = rng.standard_normal(4)
    return q / np.linalg.norm(q)


@pytest.mark.parametrize("conjugate", [False, True])
def test_alignment_recovers_a_known_global_transform_and_mirror(rng, conjugate):
    q = so3.matrix_to_quaternion(so3.sample_uniform_so3(300, rng))
    g, h = _random_unit(rng), _random_unit(rng)
    est = so3.quaternion_conjugate(q) if conjugate else q
    est = so3.quaternion_multiply(so3.quaternion_multiply(g, est), h)
    est *= rng.choice([-1, 1], (len(est), 1))  # arbitrary signs
    res = align_to_reference(est, q)
    assert res.conjugated == conjugate
    assert res.errors_deg.max() < 1e-3


def test_alignment_reports_noise_level(rng):
    q = so3.matrix_to_quaternion(so3.sample_uniform_so3(500, rng))
    noise = so3.matrix_to_quaternion(so3.rotvec_to_matrix(rng.normal(0, np.deg2rad(3), (500, 3))))
    est = so3.quaternion_multiply(_random_unit(rng), so3.quaternion_multiply(q, noise))
    res = align_to_reference(est, q)
    # 3 deg per axis: the mean angle of an isotropic Gaussian rotation is about 3*sqrt(8/pi) deg
    assert res.mean_deg == pytest.approx(3 * np.sqrt(8 / np.pi), rel=0.15)
    assert res.median_deg <= res.p90_deg


def test_harmless_alignment_only_removes_the_right_factor(rng):
    q = so3.matrix_to_quaternion(so3.sample_uniform_so3(200, rng))
    h = _random_unit(rng)
    right = so3.quaternion_multiply(q, h)
    assert align_harmless(right, q).errors_deg.max() < 1e-4
    # a left factor cannot be undone by the harmless alignment
    left = so3.quaternion_multiply(h, q)
    assert align_harmless(left, q).mean_deg > 20
    assert align_to_reference(left, q).mean_deg < 1e-3
    # and the matrices say the same: R(q ⊗ h) = R(q) R(h)
    np.testing.assert_allclose(so3.quaternion_to_matrix(right),
                               so3.quaternion_to_matrix(q) @ so3.quaternion_to_matrix(h), atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alignment_of_very_noisy_estimates_is_at_least_as_good_as_the_true_transform(seed):
    rng = np.random.default_rng(seed)
    q = so3.matrix_to_quaternion(so3.sample_uniform_so3(2000, rng))
    noise = so3.matrix_to_quaternion(so3.rotvec_to_matrix(rng.normal(0, np.deg2rad(20), (2000, 3))))
    g, h = _random_unit(rng), _random_unit(rng)
    est = so3.quaternion_multiply(so3.quaternion_multiply(g, so3.quaternion_multiply(q, noise)), h)
    undone = so3.quaternion_multiply(so3.quaternion_multiply(so3.quaternion_conjugate(g), est),
                                     so3.quaternion_conjugate(h))
    truth_transform_error = np.mean(np.rad2deg(so3.geodesic_distance(undone, q)))
    assert align_to_reference(est, q).mean_deg <= truth_transform_error + 0.05


def test_full_alignment_is_never_worse_than_the_harmless_one():
    """O(4) contains the harmless rotation and the hand flip: its error can only be lower."""
    from napari_cryorient.engine.align import align_harmless, align_to_reference

    rng = np.random.default_rng(7)
    truth = so3.matrix_to_quaternion(so3.sample_uniform_so3(400, rng))
    h = so3.matrix_to_quaternion(so3.sample_uniform_so3(1, rng))[0]
    rz_pi = np.array([0.0, 0.0, 0.0, 1.0])
    est = so3.quaternion_multiply(rz_pi, so3.quaternion_multiply(truth, h))
    # heavy noise on half of the particles (a poor estimate, as at -16 dB)
    noise = so3.matrix_to_quaternion(so3.sample_uniform_so3(200, rng))
    est[:200] = noise
    full = align_to_reference(est, truth, seed=0)
    harmless = align_harmless(est, truth, allow_hand_flip=True)
    assert full.mean_deg <= harmless.mean_deg + 1e-6
    assert np.median(full.errors_deg[200:]) < 0.1
