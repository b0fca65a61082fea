"""Aligning recovered orientations to a reference, and the pose errors that result.

Pairwise distances ``d = 2 arccos |<q_i, q_j>|`` are invariant under every orthogonal map
of quaternion space, ``q ↦ M q`` with ``M ∈ O(4)``. In the package convention
(``x_particle = R x_reference``, :mod:`~napari_cryorient.engine.so3`):

* ``q ↦ q ⊗ h`` (``R_i ↦ R_i H``) rotates the reference: a **harmless** global rotation
  of the reconstructed map;
* ``q ↦ g ⊗ q`` (``R_i ↦ G R_i``) rotates every particle frame: it changes the projection
  geometry and must be resolved from the images;
* ``q ↦ q̄`` (``R_i ↦ R_iᵀ``) likewise changes the geometry.

``SO(4) = {q ↦ g ⊗ q ⊗ h}``, and ``O(4)`` adds the conjugation.

One left factor cannot be resolved from images by any method: ``G = Rz(π)`` turns every
image by 180° in-plane, which for real images only conjugates their Fourier transforms;
reconstructing with ``Rz(π) R_i`` gives the point-inverted map ``V(−x)`` — the mirror
image (the classic handedness ambiguity of single-particle cryo-EM). Hence
:func:`align_harmless` may also try that flip and reports which hand matched. Against a known truth
(simulations), :func:`align_to_reference` searches the whole ``O(4)``;
:func:`align_harmless` searches only the harmless right factor ``h`` (what a user without
a truth gets after the ambiguity has been resolved from the images).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import so3

__all__ = ["AlignmentResult", "align_harmless", "align_to_reference", "pose_errors_deg"]


@dataclass
class AlignmentResult:
    """Estimated poses mapped onto a reference, with per-particle errors.

    Attributes
    ----------
    quaternions
        `(n, 4)` aligned estimates (scalar-first, ``w >= 0``).
    errors_deg
        `(n,)` angle between each aligned estimate and its reference, in degrees.
    transform
        `(4, 4)` ``M``: aligned ``q = M^T q_est`` (up to sign).
    conjugated
        ``det M < 0``: the estimate is the conjugate (``R^T``, transposed) branch
        (:func:`align_to_reference`; always False for :func:`align_harmless`).
    hand_flipped
        The estimate matched after the hand flip ``Rz(π) R`` (the mirror-image map;
        :func:`align_harmless` with ``allow_hand_flip``; always False for
        :func:`align_to_reference`, whose O(4) search absorbs it).
    """

    quaternions: np.ndarray
    errors_deg: np.ndarray
    transform: np.ndarray
    conjugated: bool = False
    hand_flipped: bool = False

    @property
    def rotations(self) -> np.ndarray:
        """`(n, 3, 3)` aligned estimates as matrices (package convention): poses in the
        reference's frame, e.g. to reconstruct a map comparable with a true map."""
        return so3.quaternion_to_matrix(self.quaternions)

    @property
    def mean_deg(self) -> float:
        return float(np.mean(self.errors_deg))

    @property
    def median_deg(self) -> float:
        return float(np.median(self.errors_deg))

    @property
    def p90_deg(self) -> float:
        return float(np.percentile(self.errors_deg, 90))

    def summary(self) -> dict[str, float | bool]:
        """Mean, median and 90th percentile in degrees, the branch and the hand."""
        return {"mean_deg": self.mean_deg, "median_deg": self.median_deg, "p90_deg": self.p90_deg,
                "conjugated": self.conjugated, "hand_flipped": self.hand_flipped}


def pose_errors_deg(q_est: np.ndarray, q_ref: np.ndarray) -> np.ndarray:
    """`(n,)` angles in degrees between `(n, 4)` estimates and references."""
    return np.rad2deg(so3.geodesic_distance(so3.canonical_quaternions(q_est),
                                            so3.canonical_quaternions(q_ref)))


def _polar(c: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(c)
    return u @ vt


def _refine_mean_error(m: np.ndarray, q_est: np.ndarray, q_ref: np.ndarray, steps: int) -> np.ndarray:
    """Minimise the mean angular error over ``M`` near ``m`` (M = m · expm(skew))."""
    qe = torch.as_tensor(q_est, dtype=torch.float64)
    qr = torch.as_tensor(q_ref, dtype=torch.float64)
    m0 = torch.as_tensor(m, dtype=torch.float64)
    a = torch.zeros(4, 4, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([a], lr=2e-3)
    best, best_m = np.inf, m
    for _ in range(steps):
        mm = m0 @ torch.matrix_exp(a - a.T)
        loss = so3.geodesic_from_dot(((qe @ mm) * qr).sum(-1), max_cos=1 - 1e-12).mean()
        if loss.item() < best:
            best, best_m = loss.item(), mm.detach().numpy().copy()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return best_m


def _closed_form_starts(q_est: np.ndarray, q_ref: np.ndarray) -> list[np.ndarray]:
    """Starting maps ``M`` (aligned = q_est @ M) that undo a pure right or a pure left
    factor, for the direct and the conjugate branch (each solved in closed form)."""
    starts = []
    conj = np.diag([1.0, -1.0, -1.0, -1.0])
    for c in (np.eye(4), conj):
        qe = q_est @ c
        # right factor: qe ≈ q_ref ⊗ h  ->  aligned = qe ⊗ h̄
        a = so3.quaternion_multiply(so3.quaternion_conjugate(q_ref), qe)
        h = np.linalg.eigh(a.T @ a)[1][:, -1]
        h_bar = so3.quaternion_conjugate(h)
        starts.append(c @ np.stack([so3.quaternion_multiply(e, h_bar) for e in np.eye(4)]))
        # left factor: qe ≈ g ⊗ q_ref  ->  aligned = ḡ ⊗ qe
        b = so3.quaternion_multiply(qe, so3.quaternion_conjugate(q_ref))
        g = np.linalg.eigh(b.T @ b)[1][:, -1]
        g_bar = so3.quaternion_conjugate(g)
        starts.append(c @ np.stack([so3.quaternion_multiply(g_bar, e) for e in np.eye(4)]))
        # the harmless right factor after the hand flip Rz(π) on the left
        rz_pi = np.array([0.0, 0.0, 0.0, 1.0])
        qf = so3.quaternion_multiply(rz_pi, qe)
        a = so3.quaternion_multiply(so3.quaternion_conjugate(q_ref), qf)
        h = np.linalg.eigh(a.T @ a)[1][:, -1]
        h_bar = so3.quaternion_conjugate(h)
        starts.append(c @ np.stack([so3.quaternion_multiply(so3.quaternion_multiply(rz_pi, e), h_bar)
                                    for e in np.eye(4)]))
    return starts


def align_to_reference(
    q_est: np.ndarray,
    q_ref: np.ndarray,
    n_starts: int = 16,
    seed: int = 0,
    max_iter: int = 100,
    refine_steps: int = 200,
) -> AlignmentResult:
    """Best ``M ∈ O(4)`` mapping estimates onto references (whole ambiguity group).

    Maximises ``Σ |q_est_iᵀ M q_ref_i|`` by alternating the signs ``s_i`` and an
    orthogonal Procrustes step ``M = polar(Σ s_i q_est_i q_ref_iᵀ)``, from the identity, the
    closed-form solutions for a pure right and a pure left factor on both branches, and
    ``n_starts`` random orthogonal starts (deterministic for a given ``seed``); then refines
    the mean angular error by gradient descent on ``O(4)``. (Alternation from the identity
    alone gets stuck on noisy estimates — measured at -14 dB.)

    Parameters
    ----------
    q_est, q_ref
        `(n, 4)` unit quaternions (scalar-first).
    """
    q_est = so3.canonical_quaternions(q_est)
    q_ref = so3.canonical_quaternions(q_ref)
    if q_est.shape != q_ref.shape:
        raise ValueError(f"shapes differ: {q_est.shape} vs {q_ref.shape}")
    rng = np.random.default_rng(seed)
    closed = _closed_form_starts(q_est, q_ref)
    starts = [np.eye(4), *closed]
    starts += [_polar(rng.standard_normal((4, 4))) for _ in range(n_starts)]
    best_score, best_m = -np.inf, np.eye(4)
    for m in starts:
        prev = -np.inf
        for _ in range(max_iter):
            s = np.sign(np.einsum("ni,ij,nj->n", q_est, m, q_ref))
            s[s == 0] = 1
            m = _polar((q_est * s[:, None]).T @ q_ref)
            score = np.abs(np.einsum("ni,ij,nj->n", q_est, m, q_ref)).sum()
            if score - prev < 1e-10 * len(q_est):
                break
            prev = score
        if score > best_score:
            best_score, best_m = score, m
    if refine_steps:
        best_m = _refine_mean_error(best_m, q_est, q_ref, refine_steps)
    # the sign-agnostic score is only a proxy for the mean error: the closed-form maps
    # (themselves elements of O(4)) are kept when one of them is better (seen at -16 dB)
    best_err = pose_errors_deg(so3.canonical_quaternions(q_est @ best_m), q_ref).mean()
    for m in closed:
        err = pose_errors_deg(so3.canonical_quaternions(q_est @ m), q_ref).mean()
        if err < best_err:
            best_err, best_m = err, m
    aligned = so3.canonical_quaternions(q_est @ best_m)
    return AlignmentResult(aligned, pose_errors_deg(aligned, q_ref), best_m,
                           conjugated=bool(np.linalg.det(best_m) < 0))


def align_harmless(q_est: np.ndarray, q_ref: np.ndarray, allow_hand_flip: bool = False) -> AlignmentResult:
    """Align with the harmless global rotation only: ``q_est_i ≈ ± q_ref_i ⊗ h``.

    Closed form: ``<q_est, q_ref ⊗ h> = <q̄_ref ⊗ q_est, h>``, so ``h`` is the leading
    eigenvector of ``Σ a_i a_iᵀ`` with ``a_i = q̄_ref_i ⊗ q_est_i``.

    With ``allow_hand_flip``, the estimate with every pose turned by 180° in-plane
    (``Rz(π) R``, the opposite hand, see the module docstring) is tried too and the better
    one is returned with ``hand_flipped=True`` when it is the flipped one.
    """
    if allow_hand_flip:
        plain = align_harmless(q_est, q_ref)
        rz_pi = np.array([0.0, 0.0, 0.0, 1.0])
        flipped = align_harmless(so3.quaternion_multiply(rz_pi, q_est), q_ref)
        if flipped.mean_deg < plain.mean_deg:
            flipped.hand_flipped = True
            return flipped
        return plain
    q_est = so3.canonical_quaternions(q_est)
    q_ref = so3.canonical_quaternions(q_ref)
    a = so3.quaternion_multiply(so3.quaternion_conjugate(q_ref), q_est)
    _, vecs = np.linalg.eigh(a.T @ a)
    h = vecs[:, -1]
    aligned = so3.canonical_quaternions(so3.quaternion_multiply(q_est, so3.quaternion_conjugate(h)))
    # the equivalent 4x4 map: q_est ⊗ h̄ = right-multiplication matrix applied to q_est
    m = np.stack([so3.quaternion_multiply(e, so3.quaternion_conjugate(h)) for e in np.eye(4)])
    return AlignmentResult(aligned, pose_errors_deg(aligned, q_ref), m)
