"""Scoring candidate poses of particle images against a map: the core of refinement and
global search.

:class:`SliceMatcher` samples central slices of a map's transform directly on the few
hundred Fourier samples of a disc (up to ``fmax``) and scores images against them with
the normalised correlation ``s = Re⟨C·P, X⟩ / ‖C·P‖`` (C: the particle's CTF).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .ctf import CTFParams, compute_ctf_rfft
from .fourier import load_images, prepare_rfft
from .frequencies import frequency_grid, friedel_weights
from .jobs import Progress
from .projector import gridding_corrected_padded
from .so3 import local_rotation_grid

__all__ = [
    "SliceMatcher", "disc_samples", "local_search", "offset_grid", "pose_scores", "prepare_matching_images",
]


class SliceMatcher:
    """Scores candidate poses of image chunks against one filtered half-map.

    Only the few hundred Fourier samples inside the search disc matter, so the candidate
    slices are sampled directly there (trilinear, ``grid_sample`` on the full centred
    transform of the padded map: no Friedel bookkeeping, no full-size slices). The map is
    prepared as in :class:`~napari_cryorient.engine.projector.FourierProjector` (``sinc²``
    gridding correction, zero padding), and the samples equal that projector's slices.
    """

    def __init__(self, volume: torch.Tensor, fmax: float, pad_factor: float, device: torch.device):
        vol, _ = gridding_corrected_padded(volume, pad_factor, device)
        p = vol.shape[-1]
        self.p = p
        dims = (-3, -2, -1)
        ft = torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(vol, dim=dims), dim=dims), dim=dims)
        self._ft = torch.stack([ft.real, ft.imag])[None].contiguous()  # (1, 2, p, p, p)
        # cycles per pixel: padding refines the sampling of the band, the band stays fmax
        g = frequency_grid((p, p), rfft=True, fftshift=True, device=device)  # (p, p//2+1, [y, x])
        gy, gx = g[..., 0], g[..., 1]
        self.mask = torch.sqrt(gx**2 + gy**2) <= fmax  # on the (p, p//2+1) image rfft
        self._k = torch.stack([gx[self.mask], gy[self.mask], torch.zeros_like(gx[self.mask])], -1)
        self.weight = friedel_weights((p, p), torch.float32, device)[self.mask]  # (m,)

    def slices(self, rotations: torch.Tensor) -> torch.Tensor:
        """`(n, m)` complex samples of the map transform on the disc, for `(n, 3, 3)` poses.

        The slice of pose ``R`` samples the map transform at ``R^T (kx, ky, 0)``.
        """
        coords = self._k @ rotations  # rows k^T R = (R^T k)^T: (n, m, 3) xyz, cycles/pixel
        p = self.p
        grid = (coords * p + p // 2) * (2.0 / (p - 1)) - 1.0  # align_corners=True
        out = F.grid_sample(self._ft, grid[None, None], mode="bilinear", align_corners=True)
        out = out[0, :, 0]  # (2, n, m)
        return torch.complex(out[0], out[1])

    def scores(self, images_rfft: torch.Tensor, ctf: torch.Tensor | None,
               rotations: torch.Tensor) -> torch.Tensor:
        """`(b, k)` scores ``s_k`` for `(b, p, p//2+1)` fftshifted image rffts, optional CTFs
        of the same shape and `(b, k, 3, 3)` candidate poses."""
        return self.disc_scores(images_rfft[..., self.mask], None if ctf is None else ctf[..., self.mask],
                                rotations)

    def disc_scores(self, x: torch.Tensor, ctf: torch.Tensor | None, rotations: torch.Tensor) -> torch.Tensor:
        """:meth:`scores` from the `(b, m)` disc samples of the images and CTFs."""
        b, k = rotations.shape[:2]
        proj = self.slices(rotations.reshape(-1, 3, 3)).reshape(b, k, -1)  # (b, k, m)
        x = x[:, None, :]  # (b, 1, m)
        if ctf is not None:
            proj = proj * ctf[:, None, :]
        num = (self.weight * (proj.conj() * x).real).sum(-1)
        den = torch.sqrt((self.weight * proj.abs() ** 2).sum(-1)).clamp_min(1e-20)
        return num / den

    def shift_phases(self, offsets_px: torch.Tensor) -> torch.Tensor:
        """`(t, m)` phase factors that translate the disc samples of an image by each of the
        `(t, 2)` offsets ``(dx, dy)`` (pixels; the content moves by ``+offset``, i.e. the
        particle's RELION origin grows by ``offset · pixel size``)."""
        kx, ky = self._k[:, 0], self._k[:, 1]
        off = offsets_px.to(kx.dtype)
        return torch.exp(-2j * torch.pi * (off[:, :1] * kx + off[:, 1:] * ky))

    def best_offsets(self, images_rfft: torch.Tensor, ctf: torch.Tensor | None, rotations: torch.Tensor,
                     offsets_px: torch.Tensor) -> torch.Tensor:
        """`(b,)` index of the best of `(t, 2)` offsets for `(b, 3, 3)` poses: the one whose
        translated image correlates best with the pose's projection."""
        c = None if ctf is None else ctf[..., self.mask]
        scores = self.offset_scores(images_rfft[..., self.mask], c, rotations[:, None], offsets_px)
        return scores[..., 0].argmax(1)

    def offset_scores(self, x: torch.Tensor, ctf: torch.Tensor | None, rotations: torch.Tensor,
                      offsets_px: torch.Tensor) -> torch.Tensor:
        """`(b, t, k)` scores of `(b, k, 3, 3)` candidate poses, each with every one of
        `(t, 2)` origin offsets, from the `(b, m)` disc samples of the images and CTFs (as
        :meth:`disc_scores`)."""
        b, k = rotations.shape[:2]
        proj = self.slices(rotations.reshape(-1, 3, 3)).reshape(b, k, -1)  # (b, k, m)
        if ctf is not None:
            proj = proj * ctf[:, None, :]
        x = x[:, None, :] * self.shift_phases(offsets_px)[None] * self.weight  # (b, t, m)
        num = (x @ proj.conj().transpose(1, 2)).real  # (b, t, k)
        den = torch.sqrt((self.weight * proj.abs() ** 2).sum(-1)).clamp_min(1e-20)  # (b, k)
        return num / den[:, None, :]

    def log_posterior(self, images_rfft: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """`(b, k)` log posterior (up to a constant per particle) of the candidates, from their
        scores: ``s_k² / (2σ²)`` with ``σ²`` the residual power per coefficient of the best."""
        xx = (self.weight * images_rfft[..., self.mask].abs() ** 2).sum(-1)
        best = scores.max(1).values
        sigma2 = ((xx - best**2) / self.weight.sum()).clamp_min(1e-20 * xx.clamp_min(1e-30))
        return (scores**2 - best[:, None] ** 2) / (2 * sigma2[:, None])


def disc_samples(matcher: SliceMatcher, images: Any, index: np.ndarray, pixel_size_a: float,
                 shifts_a: np.ndarray, ctf: CTFParams | None, device: torch.device
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`(b, m)` samples of the re-centred images ``index`` on ``matcher``'s disc, and of
    their CTFs (None without)."""
    size = int(np.asarray(images[0:1]).shape[-1])
    x = prepare_matching_images(images, index, pixel_size_a, shifts_a, (matcher.p - size) // 2, device)
    if ctf is None:
        return x[..., matcher.mask], None
    c = compute_ctf_rfft(ctf.subset(index), matcher.p, pixel_size_a, device)
    return x[..., matcher.mask], torch.fft.fftshift(c, dim=(-2,))[..., matcher.mask]


def offset_grid(range_px: float, step_px: float) -> torch.Tensor:
    """`(t, 2)` origin offsets ``(dx, dy)`` (pixels) of a square grid: ``±range_px`` in steps
    of ``step_px`` (``(0, 0)`` alone when the range is under one step)."""
    k = int(np.floor(range_px / step_px + 1e-9))
    g = torch.arange(-k, k + 1, dtype=torch.float32) * step_px
    return torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)


def prepare_matching_images(images: Any, index: np.ndarray, pixel_size_a: float, shifts_a: np.ndarray,
                    pad: int, device: torch.device) -> torch.Tensor:
    """Fftshifted (dim -2) rffts of the padded, re-centred images ``index``."""
    f = prepare_rfft(load_images(images, index, device), pixel_size_a, shifts_a[index], pad)
    return torch.fft.fftshift(f, dim=(-2,))


def pose_scores(
    images: Any,
    volume: torch.Tensor | np.ndarray,
    rotations: np.ndarray,
    pixel_size_a: float,
    shifts_a: np.ndarray,
    ctf: CTFParams | None,
    resolution_a: float,
    chunk: int = 256,
    device: torch.device | str = "cpu",
    with_power: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """`(n,)` normalised correlation of each image with the projection of ``volume`` at its
    pose and origin (CTF applied), up to ``resolution_a`` (Å).

    With ``with_power``, also the `(n,)` power per Fourier coefficient of each image in
    that band — the noise variance ``σ²`` of the scores at low SNR (an upper bound), so
    that ``(s_a² − s_b²) / (2σ²)`` is the log-likelihood ratio of two poses."""
    device = torch.device(device)
    size = int(np.asarray(images[0:1]).shape[-1])
    vol = torch.as_tensor(volume, dtype=torch.float32)
    matcher = SliceMatcher(vol, min(0.5, pixel_size_a / resolution_a), 2.0, device)
    out = np.empty(len(rotations))
    power = np.empty(len(rotations))
    for start in range(0, len(rotations), chunk):
        idx = np.arange(start, min(len(rotations), start + chunk))
        x = prepare_matching_images(images, idx, pixel_size_a, shifts_a, (matcher.p - size) // 2, device)
        c = None
        if ctf is not None:
            c = torch.fft.fftshift(compute_ctf_rfft(ctf.subset(idx), matcher.p, pixel_size_a, device),
                                   dim=(-2,))
        rot = torch.from_numpy(rotations[idx]).to(device, torch.float32)[:, None]
        out[idx] = matcher.scores(x, c, rot)[:, 0].cpu().numpy()
        if with_power:
            w = matcher.weight
            power[idx] = ((w * x[..., matcher.mask].abs() ** 2).sum(-1) / w.sum()).cpu().numpy()
    return (out, power) if with_power else out


def local_search(
    images: Any,
    volume: torch.Tensor | np.ndarray,
    rotations: np.ndarray,
    pixel_size_a: float,
    shifts_a: np.ndarray,
    ctf: CTFParams | None,
    resolution_a: float,
    radii_deg: tuple[float, ...] = (12.0, 4.0),
    steps: int = 3,
    shift_steps_px: tuple[float, ...] = (),
    max_samples: int = 2**22,
    device: torch.device | str = "cpu",
) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Move each pose to the best of a local grid around it, against one fixed map.

    For each radius in turn, every particle tries the rotations of
    :func:`~napari_cryorient.engine.so3.local_rotation_grid` ``(radius, steps)`` around its
    current pose (the current pose among them, so no score falls) and keeps the best; with
    ``shift_steps_px``, jointly with the best of a 3 × 3 grid of origin offsets of that
    radius's step around its origin (the current origin among them). Scores as
    :func:`pose_scores` (same band, same padding).

    Parameters
    ----------
    images
        `(n, d, d)` sliceable particle stack.
    volume
        `(d, d, d)` map (its frame defines the poses).
    rotations, shifts_a
        `(n, 3, 3)` start poses and `(n, 2)` RELION origins (Å).
    pixel_size_a
        Pixel size (Å).
    ctf
        Per-particle CTF applied to the projections, or None.
    resolution_a
        Finest resolution compared (Å).
    radii_deg, steps
        Search radii (degrees), coarse to fine, and lattice points per radius.
    shift_steps_px
        One origin step (pixels) per radius; empty: origins kept.
    max_samples
        Bound on the complex slice samples held at once (chunks of particles).
    device
        Where the search runs.

    Yields
    ------
    Progress
        Stage ``"local search"``, one unit per particle and radius.

    Returns
    -------
    rotations, shifts_a, scores
        `(n, 3, 3)` poses, `(n, 2)` origins (Å) and the `(n,)` normalised correlations.
    """
    if shift_steps_px and len(shift_steps_px) != len(radii_deg):
        raise ValueError("give one origin step per search radius")
    device = torch.device(device)
    n = len(rotations)
    fmax = min(0.5, pixel_size_a / resolution_a)
    matcher = SliceMatcher(torch.as_tensor(volume, dtype=torch.float32), fmax, 2.0, device)
    current = np.array(rotations, dtype=np.float64, copy=True)
    shifts = np.array(shifts_a, dtype=np.float64, copy=True)
    scores = np.empty(n)
    for r, radius in enumerate(radii_deg):
        grid = torch.from_numpy(local_rotation_grid(radius, steps)).to(device, torch.float32)
        # (t, 2) offsets, (0, 0) among them; (0, 0) alone without origin steps
        offsets = (offset_grid(shift_steps_px[r], shift_steps_px[r]) if shift_steps_px
                   else torch.zeros(1, 2)).to(device)
        offsets_a = offsets.cpu().numpy() * pixel_size_a
        chunk = max(1, max_samples // ((len(grid) + len(offsets)) * max(1, int(matcher.mask.sum()))))
        for start in range(0, n, chunk):
            idx = np.arange(start, min(n, start + chunk))
            x, c = disc_samples(matcher, images, idx, pixel_size_a, shifts, ctf, device)
            r0 = torch.from_numpy(current[idx]).to(device, torch.float32)
            cand = grid[None] @ r0[:, None]  # (b, k, 3, 3): Δ_k R_i
            s = matcher.offset_scores(x, c, cand, offsets).reshape(len(idx), -1)  # (b, t·k)
            val, arg = s.max(1)
            arg = arg.cpu().numpy()
            t_best, k_best = arg // len(grid), arg % len(grid)
            current[idx] = cand[torch.arange(len(idx)), torch.from_numpy(k_best)].double().cpu().numpy()
            shifts[idx] += offsets_a[t_best]
            scores[idx] = val.cpu().numpy()
            yield Progress("local search", r * n + int(idx[-1]) + 1, n * len(radii_deg),
                           f"radius {radius:g}°")
    u, _, vt = np.linalg.svd(current)  # re-orthonormalise (float32 products drift slightly)
    return u @ vt, shifts, scores
