"""Global projection matching: every particle against every pose of a coarse SO(3) grid.

Where the learned distances give no usable pose (a protein the network never saw), a map
— even a blurred one — still does: each particle is compared with the projections of a
reference at ``n_rotations`` poses spread over SO(3) and a small grid of origin offsets,
at low resolution only (up to ``resolution_a``, where a rough map is right), and keeps
the best. The score is the normalised correlation of
:class:`~napari_cryorient.engine.matching.SliceMatcher`; CTFs are applied to the
projections. The slices are computed once per block of poses and shared by all
particles, so a particle costs two small matrix products per block.

Memory: `(b · t, m)` image samples and `(k_block, m)` slices at a time, ``m`` the few
hundred Fourier samples inside the resolution limit.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .ctf import CTFParams
from .jobs import EngineError, Progress
from .matching import SliceMatcher, disc_samples, offset_grid
from .particles import checked_arrays
from .so3 import sample_orientations

__all__ = ["GlobalSearchConfig", "GlobalSearchResult", "global_search"]


@dataclass(frozen=True)
class GlobalSearchConfig:
    """Settings of :func:`global_search`.

    Attributes
    ----------
    n_rotations
        Poses of the random uniform SO(3) grid (4 000 ≈ 13° between neighbours).
    resolution_a
        Highest resolution compared (Å).
    shift_range_px, shift_step_px
        Origin offsets tried: a square grid of ``±shift_range_px`` in steps of
        ``shift_step_px`` (pixels), around each particle's current origin.
    particles_per_chunk, rotations_per_block
        Work sizes (memory bound).
    temperature
        0: each particle takes its best candidate. Above 0: it takes a candidate *drawn*
        from its posterior ``p_k ∝ exp(s_k² / (2 σ² T))`` (``σ²``: the image's power per
        Fourier coefficient, the noise level at low SNR; Gumbel-max sampling, block by
        block). Drawing instead of maximising lets an iterated search started from a
        featureless map break its symmetry gradually (annealing ``T`` towards 0).
    seed
        Seed of the rotation grid (and of the draws).
    """

    n_rotations: int = 4000
    resolution_a: float = 25.0
    shift_range_px: float = 4.0
    shift_step_px: float = 2.0
    particles_per_chunk: int = 128
    rotations_per_block: int = 2000
    pad_factor: float = 2.0
    temperature: float = 0.0
    seed: int = 0

    def validate(self) -> None:
        if (self.n_rotations < 1 or self.resolution_a <= 0 or self.shift_range_px < 0
                or self.shift_step_px <= 0):
            raise ValueError("invalid global search settings (n_rotations >= 1, resolution > 0 Å, "
                             "shift range >= 0, shift step > 0 px)")


@dataclass
class GlobalSearchResult:
    """Best pose of every particle on the grid.

    Attributes
    ----------
    rotations
        `(n, 3, 3)` poses (package convention).
    shifts_a
        `(n, 2)` RELION origins (Å).
    scores
        `(n,)` the best normalised correlation.
    """

    rotations: np.ndarray
    shifts_a: np.ndarray
    scores: np.ndarray


def global_search(
    images: Any,
    reference: torch.Tensor | np.ndarray,
    pixel_size_a: float,
    shifts_a: np.ndarray | None = None,
    ctf: CTFParams | None = None,
    config: GlobalSearchConfig | None = None,
    device: torch.device | str = "cpu",
) -> Generator[Progress, None, GlobalSearchResult]:
    """Find each particle's best pose and origin against ``reference`` over all of SO(3).

    Parameters
    ----------
    images
        `(n, d, d)` sliceable particle stack.
    reference
        `(d, d, d)` map (its frame defines the poses).
    pixel_size_a
        Pixel size (Å) of images and map.
    shifts_a
        `(n, 2)` current RELION origins (Å); offsets are searched around them.
    ctf
        Per-particle CTF, applied to the projections; None: none.
    config
        :class:`GlobalSearchConfig`.

    Yields
    ------
    Progress
        Stage ``"search"``, one unit per particle.

    Returns
    -------
    GlobalSearchResult
    """
    config = config or GlobalSearchConfig()
    config.validate()
    n = len(images)
    rot0 = np.broadcast_to(np.eye(3), (n, 3, 3))
    _, shifts_a = checked_arrays(images, rot0, shifts_a, ctf, minimum=1)
    device = torch.device(device)
    fmax = min(0.5, pixel_size_a / config.resolution_a)
    grid = torch.from_numpy(sample_orientations(config.n_rotations, "uniform", seed=config.seed)).to(
        device, torch.float32)
    offsets = offset_grid(config.shift_range_px, config.shift_step_px).to(device)
    t = len(offsets)
    gen = torch.Generator().manual_seed(config.seed + 1)
    try:
        ref = torch.as_tensor(reference, dtype=torch.float32)
        matcher = SliceMatcher(ref, fmax, config.pad_factor, device)
        w = matcher.weight
        phases = matcher.shift_phases(offsets)  # (t, m)
        blocks = [matcher.slices(grid[s : s + config.rotations_per_block])
                  for s in range(0, len(grid), config.rotations_per_block)]
        best_rot = np.zeros(n, dtype=np.int64)
        best_off = np.zeros(n, dtype=np.int64)
        best_score = np.full(n, -np.inf)
        for start in range(0, n, config.particles_per_chunk):
            idx = np.arange(start, min(n, start + config.particles_per_chunk))
            x, c = disc_samples(matcher, images, idx, pixel_size_a, shifts_a, ctf, device)  # (b, m)
            c2 = torch.ones_like(x.real)
            power = (w * x.abs() ** 2).sum(-1) / w.sum()  # per coefficient: the noise level at low SNR
            if c is not None:
                x, c2 = x * c, c * c
            xt = (x[:, None, :] * phases[None]).reshape(-1, x.shape[-1]) * w  # (b·t, m): C·X shifted
            b = len(idx)
            if config.temperature > 0:  # posterior scale per particle: 1 / (2 σ² T)
                beta = 1.0 / (2 * power.clamp_min(1e-20) * config.temperature)
            top = torch.full((b,), -torch.inf, device=device)
            arg = torch.zeros(b, dtype=torch.long, device=device)
            for k0, s in zip(range(0, len(grid), config.rotations_per_block), blocks, strict=True):
                num = (xt @ s.conj().T).real.reshape(b, t, -1)  # (b, t, k)
                den = torch.sqrt((c2 * w) @ (s.abs() ** 2).T).clamp_min(1e-20)  # (b, k)
                score = (num / den[:, None, :]).reshape(b, -1)
                if config.temperature > 0:
                    u = torch.rand(score.shape, generator=gen).to(device).clamp(1e-12, 1 - 1e-12)
                    score = beta[:, None] * score**2 - torch.log(-torch.log(u))  # Gumbel-max draw
                val, pos = score.max(1)
                better = val > top
                top = torch.where(better, val, top)
                kb = s.shape[0]
                arg = torch.where(better, (pos // kb) * len(grid) + k0 + pos % kb, arg)
            arg_cpu = arg.cpu().numpy()
            best_off[idx], best_rot[idx] = arg_cpu // len(grid), arg_cpu % len(grid)
            best_score[idx] = top.cpu().numpy()  # with a temperature: the drawn candidate's logit
            yield Progress("search", int(idx[-1]) + 1, n)
    except RuntimeError as err:
        raise EngineError(f"global search failed: {err}") from err
    new_shifts = shifts_a + offsets.cpu().numpy()[best_off] * pixel_size_a
    return GlobalSearchResult(grid.cpu().double().numpy()[best_rot], new_shifts, best_score)
