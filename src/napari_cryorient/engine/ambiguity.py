"""Resolving the harmful part of the O(4) ambiguity from the images (common lines).

Recovered quaternions are known up to ``q ↦ g ⊗ q ⊗ h`` and conjugation (see
:mod:`~napari_cryorient.engine.align`). The right factor ``h`` only rotates the map; the
left factor ``G = R(g)`` and the conjugation (``R ↦ Rᵀ``) change the projection geometry.
Candidates are ``R̃_i = H · R̂_i`` and ``R̃_i = H · R̂_iᵀ`` for ``H ∈ SO(3)``; the right
candidate is the one under which the images agree along their **common lines**:

For poses ``R_i``, ``R_j`` (``x_particle = R x_reference``) the slice normals in the
reference frame are ``n_i = R_iᵀ e_z``; the common line is ``t = n_i × n_j`` and appears in
image ``i`` along ``R_i t`` and in image ``j`` along ``R_j t``, where the two Fourier
transforms must be equal (central slice theorem). The score of a candidate is the mean
normalised correlation of the two Fourier lines over many image pairs; a coarse search
over SO(3) (both branches) is followed by a local refinement.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import so3
from .ctf import CTFParams, compute_ctf_rfft
from .fourier import prepare_rfft
from .jobs import EngineError, Progress

__all__ = ["AmbiguityResult", "apply_correction", "polar_fourier_lines", "resolve_ambiguity"]


@dataclass
class AmbiguityResult:
    """The chosen correction.

    Attributes
    ----------
    left_rotation
        `(3, 3)` ``H`` applied on the left of every pose.
    conjugated
        Whether the poses were transposed (``R̂ᵀ``) first.
    score, runner_up_score
        Common-line score of the choice and of the best candidate on the other branch.
    """

    left_rotation: np.ndarray
    conjugated: bool
    score: float
    runner_up_score: float

    def apply(self, rotations: np.ndarray) -> np.ndarray:
        """Corrected `(n, 3, 3)` poses."""
        return apply_correction(rotations, self.left_rotation, self.conjugated)


def apply_correction(rotations: np.ndarray, left: np.ndarray, conjugate: bool) -> np.ndarray:
    """``left · R`` (or ``left · Rᵀ``) for `(n, 3, 3)` poses."""
    r = np.swapaxes(rotations, -1, -2) if conjugate else rotations
    return left @ r


def polar_fourier_lines(
    images: torch.Tensor,
    n_angles: int = 180,
    radii: tuple[int, int] = (2, 12),
    ctf_signs: torch.Tensor | None = None,
) -> torch.Tensor:
    """Central Fourier lines of `(n, d, d)` images on a polar grid.

    Returns `(n, n_angles, r)` complex lines at angles ``2π a / n_angles`` from the x axis
    (towards y), radii ``radii[0] … radii[1] - 1`` pixels of the d-point transform,
    each radius whitened by its mean power over the images, each line normalised.
    ``ctf_signs`` `(n, d, d // 2 + 1)` flips phases first (unshifted rfft layout).
    """
    n, d = images.shape[0], images.shape[-1]
    images = images.to(torch.float32)
    if ctf_signs is not None:  # phase-flipped, centre at the origin
        centred = torch.fft.irfft2(prepare_rfft(images, 1.0) * ctf_signs, s=(d, d))
    else:
        centred = torch.fft.ifftshift(images, dim=(-2, -1))  # centre -> origin
    full = torch.fft.fftshift(torch.fft.fft2(centred), dim=(-2, -1))  # DC at pixel d // 2
    theta = torch.arange(n_angles, dtype=torch.float32) * (2 * torch.pi / n_angles)
    r = torch.arange(*radii, dtype=torch.float32)
    kx = torch.cos(theta)[:, None] * r[None]
    ky = torch.sin(theta)[:, None] * r[None]
    c = d // 2
    # grid_sample coordinates in [-1, 1] (align_corners=True: -1 -> pixel 0, 1 -> pixel d-1)
    gx = (kx + c) / (d - 1) * 2 - 1
    gy = (ky + c) / (d - 1) * 2 - 1
    grid = torch.stack([gx, gy], dim=-1)[None].expand(n, -1, -1, -1)
    parts = torch.stack([full.real, full.imag], dim=1)  # (n, 2, d, d)
    sampled = F.grid_sample(parts, grid, mode="bilinear", align_corners=True)  # (n, 2, A, r)
    lines = torch.complex(sampled[:, 0], sampled[:, 1])
    power = (lines.abs() ** 2).mean(dim=(0, 1)).clamp_min(1e-20)
    lines = lines / power.sqrt()
    return lines / lines.norm(dim=-1, keepdim=True).clamp_min(1e-20)


def _line_angles(h: torch.Tensor, ri: torch.Tensor, rj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Angles of the common line in images i and j under the poses ``H · R̂``.

    ``h`` is `(c, 3, 3)` left rotations, ``ri`` and ``rj`` `(p, 3, 3)` the poses of the
    pairs' images; returns two `(c, p)` angles. Only ``H · R̂`` of the pairs is needed:
    the normals are ``n = R̂ᵀ h₃`` (``h₃`` the third row of ``H``), the common line
    ``t = n_i × n_j``, and its direction in image i is ``(h₁, h₂) · R̂_i t``.
    """
    h3 = h[:, 2]  # (c, 3)
    ni = torch.einsum("pab,ca->cpb", ri, h3)
    nj = torch.einsum("pab,ca->cpb", rj, h3)
    t = torch.linalg.cross(ni, nj)  # unnormalised: atan2 does not need the length
    vi = torch.einsum("pab,cpb->cpa", ri, t)
    vj = torch.einsum("pab,cpb->cpa", rj, t)
    hxy = h[:, :2]  # (c, 2, 3)
    ui = torch.einsum("cka,cpa->cpk", hxy, vi)
    uj = torch.einsum("cka,cpa->cpk", hxy, vj)
    return torch.atan2(ui[..., 1], ui[..., 0]), torch.atan2(uj[..., 1], uj[..., 0])


def _scores(candidates: torch.Tensor, base: torch.Tensor, lines: torch.Tensor,
            i: torch.Tensor, j: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """Mean common-line correlation for `(k, 3, 3)` left rotations applied to `(n, 3, 3)` poses."""
    n_angles = lines.shape[1]
    # Re(a · conj(b)) summed over radii is the dot product of [Re a, Im a] and [Re b, Im b]:
    # one row per (image, angle), gathered with index_select
    rows = torch.cat([lines.real, lines.imag], dim=-1).reshape(-1, 2 * lines.shape[-1])
    ri, rj = base[i], base[j]
    first_i, first_j = (i * n_angles)[None], (j * n_angles)[None]
    out = []
    for s in range(0, len(candidates), chunk):
        ti, tj = _line_angles(candidates[s : s + chunk], ri, rj)  # (c, p)
        ai = torch.round(ti * (n_angles / (2 * torch.pi))).long() % n_angles
        aj = torch.round(tj * (n_angles / (2 * torch.pi))).long() % n_angles
        li = rows.index_select(0, (first_i + ai).reshape(-1))
        lj = rows.index_select(0, (first_j + aj).reshape(-1))
        out.append((li * lj).sum(-1).reshape(ai.shape).mean(dim=1))
    return torch.cat(out)


def _local_grid(centre: np.ndarray, step_deg: float, n: int) -> np.ndarray:
    g = np.linspace(-1, 1, n) * step_deg * (n - 1) / 2 if n > 1 else np.zeros(1)
    d = np.deg2rad(np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3))
    return so3.rotvec_to_matrix(d) @ centre


def resolve_ambiguity(
    images: object,
    rotations: np.ndarray,
    ctf: CTFParams | None = None,
    pixel_size_a: float = 1.0,
    n_images: int = 600,
    n_pairs: int = 4000,
    n_candidates: int = 3000,
    max_radius_fraction: float = 0.35,
    seed: int = 0,
) -> Generator[Progress, None, AmbiguityResult]:
    """Choose ``H`` and the branch that make the images agree along common lines.

    Parameters
    ----------
    images
        `(n, d, d)` particle images (any sliceable stack); ``n_images`` of them are used.
    rotations
        `(n, 3, 3)` recovered poses (any element of the ambiguity group).
    ctf, pixel_size_a
        When given, images are phase-flipped before comparison.
    n_pairs, n_candidates
        Image pairs scored, and size of the coarse SO(3) grid per branch.
    max_radius_fraction
        Highest radius used, as a fraction of Nyquist (noise dominates beyond).

    Yields
    ------
    Progress

    Returns
    -------
    AmbiguityResult
    """
    rotations = np.asarray(rotations, dtype=np.float64)
    n = len(rotations)
    if n < 3:
        raise ValueError("need at least 3 particles to resolve the ambiguity")
    rng = np.random.default_rng(seed)
    sel = np.sort(rng.permutation(n)[: min(n, n_images)])
    try:
        imgs = torch.as_tensor(np.stack([np.asarray(images[int(k)]) for k in sel]), dtype=torch.float32)
        d = imgs.shape[-1]
        signs = None
        if ctf is not None:
            signs = torch.sign(compute_ctf_rfft(ctf.subset(sel), d, pixel_size_a))
        r_max = max(4, int(max_radius_fraction * d / 2))
        lines = polar_fourier_lines(imgs, radii=(2, r_max), ctf_signs=signs)
        m = len(sel)
        i = torch.as_tensor(rng.integers(0, m, n_pairs))
        j = torch.as_tensor((i.numpy() + rng.integers(1, m, n_pairs)) % m)
        coarse = torch.as_tensor(so3.sample_orientations(n_candidates, seed=seed + 7), dtype=torch.float32)
        best: dict[bool, tuple[float, np.ndarray]] = {}
        total = 4
        for step, conjugate in enumerate((False, True)):
            base_np = np.swapaxes(rotations[sel], -1, -2) if conjugate else rotations[sel]
            base = torch.as_tensor(base_np, dtype=torch.float32)
            s = _scores(coarse, base, lines, i, j)
            top = coarse[int(torch.argmax(s))].numpy().astype(np.float64)
            yield Progress("resolve", 2 * step + 1, total, f"branch {'Rᵀ' if conjugate else 'R'}: coarse")
            for step_deg in (4.0, 1.5, 0.5):
                cands = torch.as_tensor(_local_grid(top, step_deg, 5), dtype=torch.float32)
                s = _scores(cands, base, lines, i, j)
                top = cands[int(torch.argmax(s))].numpy().astype(np.float64)
                score = float(s.max())
            best[conjugate] = (score, top)
            yield Progress("resolve", 2 * step + 2, total, f"branch {'Rᵀ' if conjugate else 'R'}: refined")
    except RuntimeError as err:
        raise EngineError(f"ambiguity resolution failed: {err}") from err
    conj = best[True][0] > best[False][0]
    u, _, vt = np.linalg.svd(best[conj][1])
    h = u @ vt
    return AmbiguityResult(h, conj, best[conj][0], best[not conj][0])
