import numpy as np
import pytest
import torch

from napari_cryorient.engine import so3


def relion_euler_matrix(rot: float, tilt: float, psi: float) -> np.ndarray:
    """RELION src/euler.cpp Euler_angles2matrix, transcribed term by term."""
    a, b, g = np.deg2rad([rot, tilt, psi])
    ca, cb, cg = np.cos([a, b, g])
    sa, sb, sg = np.sin([a, b, g])
    cc, cs, sc, ss = cb * ca, cb * sa, sb * ca, sb * sa
    return np.array([
        [cg * cc - sg * sa, cg * cs + sg * ca, -cg * sb],
        [-sg * cc - cg * sa, -sg * cs + cg * ca, sg * sb],
        [sc, ss, cb],
    ])


def test_euler_to_matrix_matches_relion_formula(rng):
    euler = rng.uniform([-180, 0, -180], [180, 180, 180], (200, 3))
    expected = np.stack([relion_euler_matrix(*e) for e in euler])
    np.testing.assert_allclose(so3.euler_relion_to_matrix(euler), expected, atol=1e-12)


def test_matrix_to_euler_round_trip_including_gimbal_lock(rng):
    euler = rng.uniform([-180, 0, -180], [180, 180, 180], (100, 3))
    special = np.array([[30.0, 0.0, 0.0], [-70.0, 180.0, 0.0], [0.0, 90.0, 45.0]])
    euler = np.concatenate([euler, special])
    m = so3.euler_relion_to_matrix(euler)
    back = so3.matrix_to_euler_relion(m)
    np.testing.assert_allclose(so3.euler_relion_to_matrix(back), m, atol=1e-9)
    assert np.all((back[:, 1] >= 0) & (back[:, 1] <= 180))


def test_quaternion_and_rotvec_round_trips(rng):
    m = so3.sample_uniform_so3(100, rng)
    q = so3.matrix_to_quaternion(m)
    assert np.all(q[:, 0] >= 0)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(so3.quaternion_to_matrix(q), m, atol=1e-12)
    np.testing.assert_allclose(so3.quaternion_to_matrix(-q), m, atol=1e-12)
    np.testing.assert_allclose(so3.rotvec_to_matrix(so3.matrix_to_rotvec(m)), m, atol=1e-12)


def test_quaternion_is_scalar_first():
    # 90 degrees about z: (w, x, y, z) = (cos 45, 0, 0, sin 45)
    m = so3.rotvec_to_matrix(np.array([0.0, 0.0, np.pi / 2]))
    np.testing.assert_allclose(so3.matrix_to_quaternion(m), [np.sqrt(0.5), 0, 0, np.sqrt(0.5)], atol=1e-12)


def test_geodesic_distance_is_the_relative_rotation_angle(rng):
    a, b = so3.sample_uniform_so3(50, rng), so3.sample_uniform_so3(50, rng)
    qa, qb = so3.matrix_to_quaternion(a), so3.matrix_to_quaternion(b)
    d = so3.geodesic_distance(qa, qb)
    np.testing.assert_allclose(np.rad2deg(d), so3.relative_angle_deg(a, b), atol=1e-6)
    np.testing.assert_allclose(so3.geodesic_distance(qa, -qa), 0.0, atol=1e-6)
    assert np.all((d >= 0) & (d <= np.pi))
    # torch version agrees and keeps gradients
    ta = torch.tensor(qa, requires_grad=True)
    dt = so3.geodesic_distance(ta, torch.tensor(qb))
    dt.sum().backward()
    np.testing.assert_allclose(dt.detach().numpy(), d, atol=1e-6)
    assert ta.grad is not None


def test_geodesic_distance_triangle_inequality(rng):
    q = so3.matrix_to_quaternion(so3.sample_uniform_so3(300, rng)).reshape(100, 3, 4)
    dab = so3.geodesic_distance(q[:, 0], q[:, 1])
    dbc = so3.geodesic_distance(q[:, 1], q[:, 2])
    dac = so3.geodesic_distance(q[:, 0], q[:, 2])
    assert np.all(dac <= dab + dbc + 1e-9)


def test_viewing_direction_follows_rot_and_tilt():
    rot, tilt = 40.0, 70.0
    m = so3.euler_relion_to_matrix(np.array([rot, tilt, 123.0]))
    r, t = np.deg2rad([rot, tilt])
    expected = [np.cos(r) * np.sin(t), np.sin(r) * np.sin(t), np.cos(t)]
    np.testing.assert_allclose(so3.viewing_directions(m), expected, atol=1e-12)


def test_uniform_sampler_has_zero_mean_matrix():
    m = so3.sample_orientations(20000, "uniform", seed=0)
    # the Haar measure has E[R] = 0
    assert np.abs(m.mean(axis=0)).max() < 0.02


def test_euler_sampler_is_uniform_in_tilt_not_on_the_sphere():
    m = so3.sample_orientations(20000, "euler", seed=0)
    tilt = so3.matrix_to_euler_relion(m)[:, 1]
    hist, _ = np.histogram(tilt, bins=6, range=(0, 180))
    assert hist.min() > 0.9 * hist.mean()  # flat in tilt
    uni = so3.matrix_to_euler_relion(so3.sample_orientations(20000, "uniform", seed=0))[:, 1]
    hist_u, _ = np.histogram(uni, bins=6, range=(0, 180))
    assert hist_u[0] < 0.5 * hist_u[3]  # uniform on SO(3) is sparse at the poles


def test_preferred_sampler_clusters_around_centres():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    m = so3.sample_preferred(5000, rng, spread_deg=10.0, centres=centres)
    d = so3.viewing_directions(m)
    angle = np.rad2deg(np.arccos(np.clip(d @ centres.T, -1, 1))).min(axis=1)
    # 2D Gaussian of 10 deg per axis: the radial median is 10 * sqrt(2 ln 2) = 11.8 deg
    assert 10.5 < np.median(angle) < 13.0


def test_unknown_distribution_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown orientation distribution"):
        so3.sample_orientations(10, "gaussian")
