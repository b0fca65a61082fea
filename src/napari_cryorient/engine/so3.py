"""Rotations: the one convention of napari-cryorient, and samplers on SO(3).

Convention (used everywhere in the package)
-------------------------------------------
* A pose is a rotation matrix ``R`` of shape `(..., 3, 3)` that left-multiplies **xyz
  column vectors** and maps reference (map) coordinates into the particle frame:
  ``x_particle = R @ x_reference``. The particle image is the projection of the rotated
  map along the particle-frame z axis (then shifted, CTF-filtered, noisy).
* ``R`` is **exactly RELION's** ``Euler_angles2matrix(rot, tilt, psi)`` (``src/euler.cpp``):
  ``R = Rz(psi) · Ry(tilt) · Rz(rot)`` written as passive (frame) rotations, i.e. the
  transpose of the intrinsic ZYZ active rotation ``Rz(rot) Ry(tilt) Rz(psi)``.
  Its third row is the viewing direction in the reference frame,
  ``(cos rot sin tilt, sin rot sin tilt, cos tilt)``.
* Quaternions are **scalar-first** ``(w, x, y, z)``, unit norm, and represent the same
  ``R``. ``q`` and ``-q`` are the same rotation; functions here return ``w >= 0``.
* Rotation vectors are ``angle * axis`` in radians and represent the same ``R``.
* Euler angles (RELION ``rot, tilt, psi`` in degrees) appear only at the I/O boundary.
* The geodesic distance between two poses is ``d = 2 arccos |<q_i, q_j>|`` in radians,
  in ``[0, pi]``; it equals the angle of ``R_i^T R_j``.

torch-fourier-slice expects matrices that map the *image* (slice) frame into the map
frame, so the engine passes ``R^T`` (``R.transpose(-1, -2)``) to it.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

__all__ = [
    "canonical_quaternions",
    "euler_relion_to_matrix",
    "geodesic_distance",
    "local_rotation_grid",
    "matrix_to_euler_relion",
    "matrix_to_quaternion",
    "matrix_to_rotvec",
    "quaternion_conjugate",
    "quaternion_multiply",
    "quaternion_to_matrix",
    "relative_angle_deg",
    "rotvec_to_matrix",
    "sample_orientations",
    "sample_preferred",
    "sample_uniform_euler",
    "sample_uniform_so3",
    "viewing_directions",
]

ORIENTATION_DISTRIBUTIONS = ("uniform", "euler", "preferred")


def _as_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy().astype(np.float64)
    return np.asarray(x, dtype=np.float64)


def _check_last_dims(x: np.ndarray, shape: tuple[int, ...], name: str) -> None:
    if x.ndim < len(shape) or tuple(x.shape[-len(shape) :]) != shape:
        raise ValueError(f"{name} must have shape (..., {', '.join(map(str, shape))}), got {x.shape}")


def euler_relion_to_matrix(euler_deg: np.ndarray | torch.Tensor) -> np.ndarray:
    """RELION Euler angles to rotation matrices.

    Parameters
    ----------
    euler_deg
        `(..., 3)` angles ``(rot, tilt, psi)`` in degrees (RELION ``rlnAngleRot``,
        ``rlnAngleTilt``, ``rlnAnglePsi``).

    Returns
    -------
    np.ndarray
        `(..., 3, 3)` float64 matrices, identical to RELION's ``Euler_angles2matrix``.
    """
    e = _as_numpy(euler_deg)
    _check_last_dims(e, (3,), "euler_deg")
    flat = e.reshape(-1, 3)
    m = Rotation.from_euler("ZYZ", flat, degrees=True).as_matrix().transpose(0, 2, 1)
    return m.reshape(*e.shape[:-1], 3, 3)


def matrix_to_euler_relion(matrices: np.ndarray | torch.Tensor) -> np.ndarray:
    """Rotation matrices to RELION Euler angles.

    Parameters
    ----------
    matrices
        `(..., 3, 3)` rotation matrices in the package convention.

    Returns
    -------
    np.ndarray
        `(..., 3)` ``(rot, tilt, psi)`` in degrees; ``tilt`` in [0, 180], ``rot`` and
        ``psi`` in (-180, 180]. At ``tilt`` = 0 or 180 (gimbal lock) ``rot`` absorbs the
        in-plane angle and ``psi`` is 0, as RELION's ``Euler_matrix2angles`` does.
    """
    m = _as_numpy(matrices)
    _check_last_dims(m, (3, 3), "matrices")
    flat = m.reshape(-1, 3, 3)
    out = np.empty((flat.shape[0], 3))
    # direct formulas (RELION's Euler_matrix2angles), robust at gimbal lock
    sb = np.hypot(flat[:, 2, 0], flat[:, 2, 1])
    tilt = np.arctan2(sb, flat[:, 2, 2])
    regular = sb > 16 * np.finfo(np.float64).eps
    rot = np.where(regular, np.arctan2(flat[:, 2, 1], flat[:, 2, 0]), 0.0)
    psi = np.where(regular, np.arctan2(flat[:, 1, 2], -flat[:, 0, 2]), 0.0)
    # gimbal lock: R = Rz(psi + rot) (tilt=0) -> put everything in rot
    # (tilt = 180: R = diag(-1, 1, -1) Rz(rot - psi), same formula with the sign of R22)
    locked_rot = np.arctan2(-flat[:, 1, 0], np.sign(flat[:, 2, 2]) * flat[:, 0, 0])
    rot = np.where(regular, rot, locked_rot)
    out[:, 0], out[:, 1], out[:, 2] = np.rad2deg(rot), np.rad2deg(tilt), np.rad2deg(psi)
    return out.reshape(*m.shape[:-2], 3)


def canonical_quaternions(q: np.ndarray) -> np.ndarray:
    """Normalise `(..., 4)` scalar-first quaternions and make ``w >= 0``."""
    q = _as_numpy(q)
    _check_last_dims(q, (4,), "quaternions")
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def matrix_to_quaternion(matrices: np.ndarray | torch.Tensor) -> np.ndarray:
    """`(..., 3, 3)` rotation matrices to `(..., 4)` unit quaternions ``(w, x, y, z)``, w >= 0."""
    m = _as_numpy(matrices)
    _check_last_dims(m, (3, 3), "matrices")
    q = Rotation.from_matrix(m.reshape(-1, 3, 3)).as_quat(scalar_first=True)
    return canonical_quaternions(q.reshape(*m.shape[:-2], 4))


def quaternion_to_matrix(quaternions: np.ndarray | torch.Tensor) -> np.ndarray:
    """`(..., 4)` scalar-first quaternions (normalised here) to `(..., 3, 3)` matrices."""
    q = _as_numpy(quaternions)
    _check_last_dims(q, (4,), "quaternions")
    m = Rotation.from_quat(q.reshape(-1, 4), scalar_first=True).as_matrix()
    return m.reshape(*q.shape[:-1], 3, 3)


def quaternion_multiply(q, p):
    """Hamilton product ``q ⊗ p`` of `(..., 4)` scalar-first quaternions (numpy or torch).

    ``R(q ⊗ p) = R(q) · R(p)``: right-multiplying every pose by a fixed ``p`` rotates the
    reference (harmless), left-multiplying changes the particle frames.
    """
    if isinstance(q, torch.Tensor) or isinstance(p, torch.Tensor):
        q, p = torch.broadcast_tensors(torch.as_tensor(q), torch.as_tensor(p))
        (w1, x1, y1, z1), (w2, x2, y2, z2) = q.unbind(-1), p.unbind(-1)
        stack = torch.stack
    else:
        q, p = np.broadcast_arrays(_as_numpy(q), _as_numpy(p))
        (w1, x1, y1, z1), (w2, x2, y2, z2) = np.moveaxis(q, -1, 0), np.moveaxis(p, -1, 0)
        stack = np.stack
    return stack([
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ], -1)


def quaternion_conjugate(q: np.ndarray) -> np.ndarray:
    """``q̄ = (w, -x, -y, -z)``: the inverse rotation ``R(q)^T`` for unit quaternions."""
    q = _as_numpy(q)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def rotvec_to_matrix(rotvec: np.ndarray | torch.Tensor) -> np.ndarray:
    """`(..., 3)` rotation vectors (axis × angle, radians) to `(..., 3, 3)` matrices."""
    v = _as_numpy(rotvec)
    _check_last_dims(v, (3,), "rotvec")
    return Rotation.from_rotvec(v.reshape(-1, 3)).as_matrix().reshape(*v.shape[:-1], 3, 3)


def matrix_to_rotvec(matrices: np.ndarray | torch.Tensor) -> np.ndarray:
    """`(..., 3, 3)` rotation matrices to `(..., 3)` rotation vectors (radians)."""
    m = _as_numpy(matrices)
    _check_last_dims(m, (3, 3), "matrices")
    return Rotation.from_matrix(m.reshape(-1, 3, 3)).as_rotvec().reshape(*m.shape[:-2], 3)


#: clamp of ``|cos|`` where gradients flow through the distance (arccos' slope is infinite at 1)
GRADIENT_SAFE_COS = 1 - 1e-6


def geodesic_from_dot(
    dot: np.ndarray | torch.Tensor, max_cos: float = 1.0
) -> np.ndarray | torch.Tensor:
    """The one formula of the method's distance: ``2 arccos min(|dot|, max_cos)``.

    Parameters
    ----------
    dot
        Inner products ``<q_i, q_j>`` of unit quaternions, or cosines between unit feature
        vectors (numpy or torch; the result has the same type, torch keeps autograd).
    max_cos
        Upper clamp of ``|dot|``: 1 for values, :data:`GRADIENT_SAFE_COS` where the
        distance is differentiated.

    Returns
    -------
    Distances in radians, in ``[0, π]``.
    """
    if isinstance(dot, torch.Tensor):
        return 2.0 * torch.arccos(dot.abs().clamp(max=max_cos))
    return 2.0 * np.arccos(np.clip(np.abs(dot), 0.0, max_cos))


def geodesic_distance(
    q1: np.ndarray | torch.Tensor, q2: np.ndarray | torch.Tensor
) -> np.ndarray | torch.Tensor:
    """Angle between orientations, ``d_q = 2 arccos |<q1, q2>|``.

    Parameters
    ----------
    q1, q2
        `(..., 4)` unit quaternions (broadcast against each other). numpy arrays or torch
        tensors; the result has the same type (torch keeps autograd).

    Returns
    -------
    `(...)` distances in radians, in ``[0, pi]``.
    """
    if isinstance(q1, torch.Tensor) or isinstance(q2, torch.Tensor):
        q1 = torch.as_tensor(q1)
        q2 = torch.as_tensor(q2, dtype=q1.dtype, device=q1.device)
        return geodesic_from_dot((q1 * q2).sum(-1))
    return geodesic_from_dot(np.sum(np.asarray(q1) * np.asarray(q2), axis=-1))


def relative_angle_deg(r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """Angle in degrees of ``R1^T R2`` for `(..., 3, 3)` matrices (per-pair pose error).

    Computed as ``2 atan2(sin(θ/2), cos(θ/2))`` with ``sin(θ/2) = ‖R1 − R2‖_F / (2√2)`` and
    ``cos(θ/2) = √(1 + tr(R1^T R2)) / 2``, accurate also for tiny angles (where ``arccos`` of
    the trace loses half the digits).
    """
    r1, r2 = _as_numpy(r1), _as_numpy(r2)
    trace = np.einsum("...ji,...ji->...", r1, r2)
    half_sin = np.sqrt(np.sum((r1 - r2) ** 2, axis=(-2, -1))) / (2.0 * np.sqrt(2.0))
    half_cos = np.sqrt(np.clip(1.0 + trace, 0.0, None)) / 2.0
    return np.rad2deg(2.0 * np.arctan2(half_sin, half_cos))


def viewing_directions(matrices: np.ndarray) -> np.ndarray:
    """`(..., 3)` unit viewing directions in the reference frame (third row of ``R``)."""
    m = _as_numpy(matrices)
    _check_last_dims(m, (3, 3), "matrices")
    return m[..., 2, :].copy()


def sample_uniform_so3(n: int, rng: np.random.Generator) -> np.ndarray:
    """`(n, 3, 3)` rotations drawn uniformly (Haar measure) on SO(3)."""
    q = rng.standard_normal((n, 4))
    return quaternion_to_matrix(canonical_quaternions(q))


def sample_uniform_euler(n: int, rng: np.random.Generator) -> np.ndarray:
    """`(n, 3, 3)` rotations with RELION angles uniform in their ranges.

    ``rot`` and ``psi`` uniform in [0, 360), ``tilt`` uniform in [0, 180]: the
    non-uniform distribution of the paper, denser near the poles (tilt 0 and 180).
    """
    euler = np.stack(
        [rng.uniform(0, 360, n), rng.uniform(0, 180, n), rng.uniform(0, 360, n)], axis=-1
    )
    return euler_relion_to_matrix(euler)


def sample_preferred(
    n: int,
    rng: np.random.Generator,
    n_directions: int = 3,
    spread_deg: float = 15.0,
    centres: np.ndarray | None = None,
) -> np.ndarray:
    """Preferred orientation: viewing directions clustered around a few directions.

    Each particle picks one of ``n_directions`` centre directions (uniform on the sphere
    unless ``centres`` `(k, 3)` is given) and tilts away from it by a 2D Gaussian in the
    tangent plane with standard deviation ``spread_deg`` per axis; the in-plane angle
    ``psi`` is uniform. Returns `(n, 3, 3)` matrices.
    """
    if n_directions < 1:
        raise ValueError("n_directions must be >= 1")
    if spread_deg < 0:
        raise ValueError("spread_deg must be >= 0")
    if centres is None:
        centres = rng.standard_normal((n_directions, 3))
    centres = np.asarray(centres, dtype=np.float64)
    centres /= np.linalg.norm(centres, axis=-1, keepdims=True)
    c = centres[rng.integers(0, len(centres), n)]
    # orthonormal tangent basis at each centre
    helper = np.where(np.abs(c[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    t1 = np.cross(c, helper)
    t1 /= np.linalg.norm(t1, axis=-1, keepdims=True)
    t2 = np.cross(c, t1)
    a, b = np.deg2rad(spread_deg) * rng.standard_normal((2, n))
    theta = np.hypot(a, b)
    u = (a[:, None] * t1 + b[:, None] * t2) / np.maximum(theta, 1e-12)[:, None]
    d = np.cos(theta)[:, None] * c + np.sin(theta)[:, None] * u
    rot = np.rad2deg(np.arctan2(d[:, 1], d[:, 0]))
    tilt = np.rad2deg(np.arccos(np.clip(d[:, 2], -1, 1)))
    psi = rng.uniform(0, 360, n)
    return euler_relion_to_matrix(np.stack([rot, tilt, psi], axis=-1))


def sample_orientations(
    n: int,
    distribution: str = "uniform",
    seed: int | None = 0,
    n_directions: int = 3,
    spread_deg: float = 15.0,
) -> np.ndarray:
    """Draw `(n, 3, 3)` poses from ``"uniform"`` (SO(3)), ``"euler"`` or ``"preferred"``."""
    if n < 1:
        raise ValueError(f"number of orientations must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    if distribution == "uniform":
        return sample_uniform_so3(n, rng)
    if distribution == "euler":
        return sample_uniform_euler(n, rng)
    if distribution == "preferred":
        return sample_preferred(n, rng, n_directions=n_directions, spread_deg=spread_deg)
    raise ValueError(
        f"unknown orientation distribution {distribution!r}; "
        f"choose one of {', '.join(ORIENTATION_DISTRIBUTIONS)}"
    )


def local_rotation_grid(radius_deg: float, steps: int) -> np.ndarray:
    """Small rotations on a cubic lattice of rotation vectors inside a ball.

    Parameters
    ----------
    radius_deg
        Largest rotation angle, in degrees.
    steps
        Lattice points per radius along each axis (spacing ``radius_deg / steps``).

    Returns
    -------
    numpy.ndarray
        `(k, 3, 3)` rotation matrices, the identity first.
    """
    r = np.arange(-steps, steps + 1)
    v = np.stack(np.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    v = v[(v**2).sum(1) <= steps**2 + 1e-9]
    v = v[np.argsort((v**2).sum(1), kind="stable")]
    return Rotation.from_rotvec(v * np.deg2rad(radius_deg) / steps).as_matrix()
