"""Local projection-matching refinement of orientations (gold standard, no truth used).

The learned distances give every particle a pose to within some 10–20°; the images hold
more information than that. This step is the classic local refinement of cryo-EM
packages, kept deliberately simple:

1. reconstruct the two half-maps (fixed random halves) from the images and current poses;
2. filter each half-map by its FSC against the other (``sqrt(2F / (1 + F))`` per shell,
   zero beyond the FSC = 0.143 shell), so the reference only holds what the data support;
3. for every particle, try the poses ``Δ_k R_i`` on a local grid of small rotations
   ``Δ_k`` (rotation vectors on a cubic lattice inside a ball of radius ``r``, in the
   particle frame) and keep the one whose projection — CTF applied when known — has the
   highest normalised correlation ``s_k = Re⟨C·P_k, X⟩ / ‖C·P_k‖`` with the image, over
   the frequencies the filter keeps — or, by default, the posterior mean of the
   candidates: with white Gaussian noise and a free scale, ``log p(Δ_k R_i | X) = s_k² /
   (2σ²) + const``, with ``σ²`` the per-coefficient power of the residual of the best
   candidate; candidates are averaged as sign-aligned quaternions with these weights. At
   SNR ≈ −12 dB a single image does not single out one of a few close poses, and the
   average is clearly closer to the truth than the best-scoring one;
4. shrink ``r`` and repeat.

Particles are only ever compared with the half-map reconstructed from *their own half*,
so the two halves stay independent and the half-map FSC remains an honest resolution
estimate. Shifts are taken as given (images are re-centred by their origins), or, with
``search_shifts``, refined too: after the rotation, each particle tries its origin moved
by ``{-1, 0, 1}² × shift_step_px`` and keeps the best (real picks are off-centre).
Memory is bounded: particles are processed in chunks, and the candidate
projections of one chunk are kept under ``max_samples`` Fourier samples.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .ctf import CTFParams, compute_ctf_rfft
from .frequencies import shell_indices
from .fsc import fourier_shell_correlation
from .jobs import EngineError, Progress, forward
from .matching import SliceMatcher, prepare_matching_images
from .particles import checked_arrays
from .reconstruct import reconstruct_volume
from .so3 import local_rotation_grid, matrix_to_quaternion, quaternion_to_matrix, relative_angle_deg

__all__ = ["RefineConfig", "RefinementResult", "local_rotation_grid", "reference_band_box",
           "refine_orientations"]


@dataclass(frozen=True)
class RefineConfig:
    """Settings of the local refinement.

    Attributes
    ----------
    radii_deg
        Search radius of each iteration, in degrees (one iteration per entry).
    grid_steps
        Lattice points per radius along each axis: the grid spacing is
        ``radius / grid_steps`` (2 → 33 candidates per particle, 3 → 123).
    assignment
        ``"soft"`` (posterior mean of the candidates) or ``"hard"`` (best candidate).
    pad_factor
        Oversampling of the reference transform (2 as RELION).
    max_samples
        Fourier samples of candidate projections held at once (bounds memory:
        about 8 bytes each, plus interpolation temporaries).
    search_shifts, shift_step_px, shift_range_px, max_shift_px
        Refine the origins too: the first iteration tries every offset of a grid of step
        ``shift_step_px`` pixels up to ``±shift_range_px`` per axis (picks are off by a few
        pixels; at least ±1 step, so 0 means the 3 × 3 grid); later ones a 3 × 3 grid of that
        step around the current origin (the step halved for radii under 6°). Origins never
        go beyond ``max_shift_px`` from the box centre.
    band_limited
        Reconstruct each reference after the first only up to a little beyond the
        resolution of the one before (:func:`reference_band_box`; RELION's *current size*):
        the references are filtered to their FSC anyway, and the half-maps cost
        ``(band / d)²`` of the whole box's insertion. False: every reference at the whole box.
    seed
        Seed of the half split.
    """

    radii_deg: tuple[float, ...] = (16.0, 12.0, 8.0, 4.0, 2.0)
    grid_steps: int = 2
    assignment: str = "soft"
    pad_factor: float = 2.0
    max_samples: int = 2**22
    search_shifts: bool = False
    shift_step_px: float = 1.0
    shift_range_px: float = 4.0
    max_shift_px: float = 12.0
    band_limited: bool = True
    seed: int = 0

    def validate(self) -> None:
        """Raise ``ValueError`` on settings that cannot run."""
        if not self.radii_deg:
            raise ValueError("radii_deg needs at least one search radius")
        if any(not (0 < r <= 90) for r in self.radii_deg):
            raise ValueError(f"search radii must be in (0, 90] degrees, got {self.radii_deg}")
        if self.assignment not in ("soft", "hard"):
            raise ValueError(f"assignment must be 'soft' or 'hard', got {self.assignment!r}")
        if self.grid_steps < 1:
            raise ValueError("grid_steps must be >= 1")
        if self.pad_factor < 1:
            raise ValueError("pad_factor must be >= 1")
        if self.max_samples < 1:
            raise ValueError("max_samples must be >= 1")
        if self.search_shifts and not (self.shift_step_px > 0 and self.shift_range_px >= 0
                                       and self.max_shift_px > 0):
            raise ValueError("shift search needs shift_step_px > 0, shift_range_px >= 0 and max_shift_px > 0")


@dataclass
class RefinementResult:
    """Refined poses and what each iteration did.

    Attributes
    ----------
    rotations
        `(n, 3, 3)` refined poses (package convention).
    history
        One dict per iteration: ``radius_deg``, ``resolution_a`` (half-map FSC 0.143 of
        the reference used), ``mean_change_deg`` / ``median_change_deg`` (how far the poses
        moved), ``mean_score``, ``band_box`` (the box whose frequencies the reference was
        reconstructed from).
    half_assignment
        `(n,)` half (0/1) of each particle.
    shifts_a
        `(n, 2)` RELION origins (Å): refined when ``search_shifts``, else the input's.
    scores
        `(n,)` each particle's correlation with its own half-map at the final pose (a
        per-particle confidence: low scores are the least trustworthy particles).
    """

    rotations: np.ndarray
    history: list[dict[str, float]] = field(default_factory=list)
    half_assignment: np.ndarray | None = None
    shifts_a: np.ndarray | None = None
    scores: np.ndarray | None = None


def _shell_filter(fsc: np.ndarray) -> np.ndarray:
    """Per-shell reference weights from a half-map FSC: ``sqrt(2F/(1+F))`` up to the first
    shell below 0.143, zero after."""
    f = np.clip(fsc, 0.0, 1.0)
    w = np.sqrt(2 * f / (1 + f))
    below = np.flatnonzero(fsc[1:] < 0.143)
    if len(below):
        w[below[0] + 1 :] = 0.0
    w[0] = 1.0
    return w


def reference_band_box(fsc: np.ndarray, size: int) -> int:
    """The box whose frequencies the next reference needs, from the current half-map FSC.

    The last shell the FSC filter keeps (:func:`_shell_filter`: up to FSC = 0.143), times
    1.5 plus 6 shells of room to improve, as an even box, or ``size`` itself when that is
    smaller; a reference whose FSC stays high to the band's edge makes the next band wider.

    Parameters
    ----------
    fsc
        Half-map FSC per Fourier shell (shell 0 first).
    size
        The images' box (pixels).

    Returns
    -------
    int
        Box size in pixels, ``<= size``.
    """
    last = int(np.flatnonzero(_shell_filter(np.asarray(fsc, dtype=float)) > 0).max())  # shell 0 is kept
    return int(min(size, 2 * np.ceil(1.5 * last + 6)))


def _filter_volume(volume: np.ndarray, weights: np.ndarray) -> torch.Tensor:
    """Multiply a `(d, d, d)` map's transform by per-shell ``weights`` (shell = round(|k|·d))."""
    v = torch.as_tensor(volume, dtype=torch.float32)
    d = v.shape[-1]
    ft = torch.fft.rfftn(v)
    shell = shell_indices((d, d, d), dtype=torch.float32).clamp_max(len(weights))
    w = torch.cat([torch.as_tensor(weights, dtype=torch.float32), torch.zeros(1)])
    return torch.fft.irfftn(ft * w[shell], s=v.shape)


def _posterior_mean(candidates: torch.Tensor, log_p: torch.Tensor) -> np.ndarray:
    """Weighted mean of `(b, k, 3, 3)` candidate poses as sign-aligned quaternions."""
    q = torch.from_numpy(matrix_to_quaternion(candidates.double().cpu().numpy()))  # (b, k, 4)
    q = q * torch.sign((q * q[:, :1]).sum(-1, keepdim=True) + 1e-30)
    w = torch.softmax(log_p.double().cpu(), dim=1)
    mean = (w[..., None] * q).sum(1)
    mean = mean / mean.norm(dim=-1, keepdim=True)
    return quaternion_to_matrix(mean.numpy())


@dataclass
class _Data:
    """The images of a refinement and what they need (shared by every iteration)."""

    images: Any
    pixel_size_a: float
    shifts_a: np.ndarray
    ctf: CTFParams | None
    device: torch.device
    size: int


def _match(data: _Data, rec: Any, fsc: np.ndarray, current: np.ndarray, radius: float,
           config: RefineConfig, shift_steps: int = 1
           ) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray]]:
    """One matching pass: each particle against the FSC-filtered half-map of its own half,
    over the local grid of radius ``radius``. Returns the new `(n, 3, 3)` poses
    (re-orthonormalised) and each particle's best score; yields one unit per particle.
    With ``search_shifts``, ``data.shifts_a`` is updated in place."""
    n, size, device = len(current), data.size, data.device
    weights = _shell_filter(fsc)
    kept = np.flatnonzero(weights > 0)
    fmax = (kept.max() + 0.5) / size if len(kept) > 1 else 1.5 / size
    grid = torch.from_numpy(local_rotation_grid(radius, config.grid_steps)).to(device, torch.float32)
    new, scores = current.copy(), np.zeros(n)
    done = 0
    for h in (0, 1):
        matcher = SliceMatcher(_filter_volume(rec.half_maps[h], weights), fmax, config.pad_factor, device)
        # candidates per particle: the rotations, or the origin offsets when more
        per = max(len(grid), (2 * shift_steps + 1) ** 2 if config.search_shifts else 0)
        chunk = max(1, config.max_samples // (per * max(1, int(matcher.mask.sum()))))
        members = np.flatnonzero(rec.half_assignment == h)
        for start in range(0, len(members), chunk):
            idx = members[start : start + chunk]
            new[idx], scores[idx] = _match_chunk(data, matcher, grid, current, idx, config, radius,
                                                 shift_steps)
            done += len(idx)
            yield Progress("refine", done, n)
    u, _, vt = np.linalg.svd(new)  # re-orthonormalise (float32 products drift slightly)
    return u @ vt, scores


def _match_chunk(data: _Data, matcher: SliceMatcher, grid: torch.Tensor, current: np.ndarray, idx: np.ndarray,
                 config: RefineConfig, radius: float, shift_steps: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """New poses `(b, 3, 3)` and best scores `(b,)` of the particles ``idx`` (and their
    shifts, in ``data.shifts_a``, with ``search_shifts``)."""
    p = matcher.p
    x = prepare_matching_images(data.images, idx, data.pixel_size_a, data.shifts_a, (p - data.size) // 2,
                                data.device)
    c = None
    if data.ctf is not None:
        c = torch.fft.fftshift(compute_ctf_rfft(data.ctf.subset(idx), p, data.pixel_size_a, data.device),
                               dim=(-2,))
    r0 = torch.from_numpy(current[idx]).to(data.device, torch.float32)
    cand = grid[None] @ r0[:, None]  # (b, k, 3, 3): Δ_k R_i
    s = matcher.scores(x, c, cand)
    best = s.argmax(1)
    rows = torch.arange(len(idx))
    if config.assignment == "soft":
        poses = _posterior_mean(cand, matcher.log_posterior(x, s))
    else:
        poses = cand[rows, best].double().cpu().numpy()
    if config.search_shifts:
        _refine_shifts(data, matcher, x, c, poses, idx, config.shift_step_px * (0.5 if radius < 6 else 1.0),
                       config.max_shift_px, shift_steps)
    return poses, s[rows, best].cpu().numpy()


def _refine_shifts(data: _Data, matcher: SliceMatcher, x: torch.Tensor, c: torch.Tensor | None,
                   poses: np.ndarray, idx: np.ndarray, step_px: float, max_shift_px: float,
                   steps: int = 1) -> None:
    """Move each origin by the best of a ``(2 steps + 1)²`` grid of ``step_px`` offsets,
    within bounds."""
    g = torch.arange(-steps, steps + 1, dtype=torch.float32) * step_px
    offsets = torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2).to(data.device)
    rot = torch.from_numpy(np.asarray(poses)).to(data.device, torch.float32)
    best = matcher.best_offsets(x, c, rot, offsets).cpu().numpy()
    moved = data.shifts_a[idx] + offsets.cpu().numpy()[best] * data.pixel_size_a
    limit = max_shift_px * data.pixel_size_a
    norm = np.linalg.norm(moved, axis=1, keepdims=True)
    data.shifts_a[idx] = np.where(norm > limit, moved * limit / np.maximum(norm, 1e-12), moved)


def refine_orientations(
    images: Any,
    rotations: np.ndarray,
    pixel_size_a: float,
    shifts_a: np.ndarray | None = None,
    ctf: CTFParams | None = None,
    config: RefineConfig | None = None,
    device: torch.device | str = "cpu",
    halves: np.ndarray | None = None,
) -> Generator[Progress, None, RefinementResult]:
    """Refine poses by local projection matching against gold-standard half-maps.

    Parameters
    ----------
    images
        `(n, d, d)` particle images (numpy array or memory-mapped stack; indexable by an
        integer array along the first axis).
    rotations
        `(n, 3, 3)` starting poses (package convention), e.g. recovered from the learned
        distances and with the ambiguity resolved.
    pixel_size_a
        Pixel size in Å.
    shifts_a
        `(n, 2)` RELION origins ``(x, y)`` in Å (kept fixed), or None.
    ctf
        Per-particle CTF; applied to the references (Wiener-corrected reconstruction).
    config
        :class:`RefineConfig`.
    device
        Torch device.
    halves
        `(n,)` half (0/1) of each particle, fixed by the caller (a gold-standard split
        made before anything was estimated); None: a seeded random split.

    Yields
    ------
    Progress
        Stage ``"refine"``, one unit per particle per iteration (reconstructions included).

    Returns
    -------
    RefinementResult
    """
    config = config or RefineConfig()
    config.validate()
    rotations, shifts_a = checked_arrays(images, rotations, shifts_a, ctf, minimum=2)
    n = len(rotations)
    data = _Data(images, pixel_size_a, shifts_a.copy(), ctf, torch.device(device),
                 np.asarray(images[0:1]).shape[-1])
    n_iter = len(config.radii_deg)
    total = 2 * n * n_iter
    current = rotations.copy()
    history: list[dict[str, float]] = []
    band = data.size
    try:
        for it, radius in enumerate(config.radii_deg):
            label = f"iteration {it + 1}/{n_iter}"
            rec_job = reconstruct_volume(images, current, pixel_size_a, shifts_a=data.shifts_a, ctf=ctf,
                                         ctf_correction="wiener" if ctf is not None else "none",
                                         half_maps=True, seed=config.seed, halves=halves,
                                         pad_factor=config.pad_factor, device=data.device, band_box=band)
            rec = yield from forward(rec_job, "refine", offset=2 * n * it, total=total,
                                     message=f"{label}: half-maps" + (f" (band {band} px)" if band < data.size
                                                                      else ""))
            halves = rec.half_assignment
            fsc = fourier_shell_correlation(*rec.half_maps, pixel_size_a)
            # a band's cube corners hold shells beyond band / 2 seen from a few directions only
            shells = fsc.fsc if band >= data.size else fsc.fsc[: band // 2]
            rec_band = band
            if config.band_limited:  # the next reference's band
                band = reference_band_box(shells, data.size)
            step = config.shift_step_px * (0.5 if radius < 6 else 1.0)  # as _match_chunk uses it
            steps = max(1, round(config.shift_range_px / step)) if it == 0 else 1
            new, scores = yield from forward(
                _match(data, rec, shells, current, radius, config, steps), "refine",
                offset=2 * n * it + n, total=total, message=f"{label}: matching (±{radius:g}°)")
            moved = relative_angle_deg(new, current)
            history.append({
                "radius_deg": float(radius), "resolution_a": float(fsc.resolution_0143_a),
                "band_box": int(rec_band),
                "mean_change_deg": float(moved.mean()), "median_change_deg": float(np.median(moved)),
                "mean_score": float(scores.mean()),
            })
            current = new
    except RuntimeError as err:
        raise EngineError(f"refinement failed: {err}") from err
    return RefinementResult(rotations=current, history=history, half_assignment=halves,
                            shifts_a=data.shifts_a, scores=scores)
