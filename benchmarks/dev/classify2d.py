"""dev (not part of the product): reference-free 2D classification by hard EM, the first
form of a class-average start; measured in docs/method.md, not good enough yet.

Class averages lift the SNR of a particle stack.

Single particles at −12 dB carry too little signal for a start from nothing; averages of
a few dozen particles of the same view reach about 0 dB, where the soft search
(:mod:`~napari_cryorient.engine.soft_search`) finds a map. Classic hard
expectation–maximisation over classes, in-plane rotations and shifts:

1. the images are re-centred by their origins, phase-flipped with their CTFs and
   Fourier-cropped to the band compared (``resolution_a``), each standardised;
2. the start: each class is the average of a random subset, each image turned by a random
   in-plane angle;
3. each iteration scores every image against every class turned by ``n_angles`` in-plane
   angles, at every shift of a small window (one FFT cross-correlation per pair), takes the
   best, and averages each class's images turned and shifted back; a class left empty takes
   a random image.

Memory: `(chunk, k · n_angles, b, b)` correlations at a time (``b`` the band's box).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from napari_cryorient.engine.ctf import CTFParams
from napari_cryorient.engine.fourier import load_images, shift_images
from napari_cryorient.engine.inference import network_input
from napari_cryorient.engine.jobs import EngineError, Progress
from napari_cryorient.engine.masks import circular_mask
from napari_cryorient.engine.particles import checked_arrays

__all__ = ["ClassAverages", "Classify2DConfig", "classify_2d"]


@dataclass(frozen=True)
class Classify2DConfig:
    """Settings of :func:`classify_2d`.

    Attributes
    ----------
    n_classes
        Classes (None: one per ``particles_per_class`` particles, 10 to 200).
    particles_per_class
        Used when ``n_classes`` is None.
    iterations
        EM iterations.
    n_angles
        In-plane angles tried (360 / n_angles apart).
    resolution_a
        Highest resolution compared (Å): the images are Fourier-cropped to it.
    max_shift_px
        Shifts tried, in pixels of the band's box (every integer shift within it).
    draws
        0: each image takes its best class, angle and shift (hard EM). Above 0: that many
        candidates drawn from each image's posterior ``∝ exp(a·cc)`` (``a`` the median best
        correlation of the chunk: the class amplitude in units of the standardised noise),
        each averaged with weight ``1 / draws`` (soft EM).
    split
        Every iteration but the last two, the smallest class restarts from the mean of a
        random half of the largest one (k-means' remedy for two views merged in one class).
    chunk, seed
        Images per work chunk; seed of the start and of the draws.
    """

    n_classes: int | None = None
    particles_per_class: int = 25
    iterations: int = 12
    n_angles: int = 24
    resolution_a: float = 20.0
    max_shift_px: int = 2
    chunk: int = 64
    draws: int = 0
    split: bool = False
    seed: int = 0

    def validate(self) -> None:
        if ((self.n_classes is not None and self.n_classes < 1) or self.particles_per_class < 1
                or self.iterations < 1 or self.n_angles < 1 or self.resolution_a <= 0 or self.max_shift_px < 0):
            raise ValueError("invalid 2D classification settings (classes, iterations and angles >= 1, "
                             "resolution > 0 Å, shift >= 0)")


@dataclass
class ClassAverages:
    """The result of :func:`classify_2d`.

    Attributes
    ----------
    averages
        `(k, b, b)` class averages (phase-flipped, at the band's box).
    pixel_size_a
        Their pixel size (Å).
    counts
        `(k,)` particles per class.
    assignment
        `(n,)` class of each particle.
    """

    averages: np.ndarray
    pixel_size_a: float
    counts: np.ndarray
    assignment: np.ndarray


def _rotate(images: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """`(k, a, b, b)` each of `(k, b, b)` images turned by each of `(a,)` angles (radians)
    about pixel ``b // 2`` (the centre convention of the package)."""
    k, b = images.shape[0], images.shape[-1]
    c, s = torch.cos(angles), torch.sin(angles)
    o = (b // 2 - (b - 1) / 2) * 2 / b  # the centre pixel in grid units (align_corners=False)
    # x' = R (x − o) + o
    theta = torch.stack([torch.stack([c, -s, o - (c * o - s * o)], -1),
                         torch.stack([s, c, o - (s * o + c * o)], -1)], -2)  # (a, 2, 3)
    grid = F.affine_grid(theta, (len(angles), 1, b, b), align_corners=False)  # (a, b, b, 2)
    x = images[:, None].expand(k, len(angles), b, b).reshape(-1, 1, b, b)
    g = grid[None].expand(k, -1, -1, -1, -1).reshape(-1, b, b, 2)
    return F.grid_sample(x, g, mode="bilinear", align_corners=False).reshape(k, len(angles), b, b)


def _prepared(images: Any, pixel_size_a: float, shifts_a: np.ndarray, ctf: CTFParams | None, box: int,
              chunk: int) -> torch.Tensor:
    out = []
    for start in range(0, len(images), 256):
        idx = np.arange(start, min(len(images), start + 256))
        x = network_input(load_images(images, idx), box, pixel_size_a, shifts_a[idx],
                          ctf.subset(idx) if ctf is not None else None, phase_flip=ctf is not None)
        x = x - x.mean((-2, -1), keepdim=True)
        out.append(x / x.std((-2, -1), keepdim=True).clamp_min(1e-12))
    return torch.cat(out)


def classify_2d(
    images: Any,
    pixel_size_a: float,
    shifts_a: np.ndarray | None = None,
    ctf: CTFParams | None = None,
    config: Classify2DConfig | None = None,
) -> Generator[Progress, None, ClassAverages]:
    """Class averages of a particle stack (see the module docstring).

    Parameters
    ----------
    images
        `(n, d, d)` sliceable particle stack.
    pixel_size_a
        Pixel size (Å).
    shifts_a
        `(n, 2)` RELION origins (Å), or None.
    ctf
        Per-particle CTF (the images are phase-flipped with it), or None.
    config
        :class:`Classify2DConfig`.

    Yields
    ------
    Progress
        Stage ``"classify 2D"``, one unit per iteration.

    Returns
    -------
    ClassAverages
    """
    config = config or Classify2DConfig()
    config.validate()
    n = len(images)
    _, shifts_a = checked_arrays(images, np.broadcast_to(np.eye(3), (n, 3, 3)), shifts_a, ctf, minimum=2)
    d = int(np.asarray(images[0:1]).shape[-1])
    box = min(d, 2 * int(np.ceil(d * pixel_size_a / config.resolution_a / 2 + 1)))
    px = pixel_size_a * d / box
    k = config.n_classes or int(np.clip(n // config.particles_per_class, 10, 200))
    k = min(k, n)
    rng = np.random.default_rng(config.seed)
    try:
        x = _prepared(images, pixel_size_a, shifts_a, ctf, box, config.chunk)
        mask = circular_mask(box, box / 2 - 1, 1.0)
        angles = torch.arange(config.n_angles) * (2 * torch.pi / config.n_angles)
        assignment = rng.integers(0, k, n)
        turn = torch.from_numpy(rng.integers(0, config.n_angles, n))
        shift = torch.zeros(n, 2)
        gen = torch.Generator().manual_seed(config.seed)
        rows = torch.arange(n)
        for it in range(config.iterations):
            averages = _averages(x[rows], assignment, turn, shift, angles, k, rng) * mask
            if config.split and it < config.iterations - 2:
                averages = _split_largest(averages, x[rows], assignment, turn, shift, angles, rng) * mask
            assignment, turn, shift, rows = _assign(x, averages, angles, config, gen)
            yield Progress("classify 2D", it + 1, config.iterations,
                           f"iteration {it + 1}/{config.iterations}, {len(np.unique(assignment))} classes used")
        averages = _averages(x[rows], assignment, turn, shift, angles, k, rng) * mask
        if config.draws:  # each image's most frequent draw stands for its class
            per = assignment.reshape(n, config.draws)
            assignment = np.array([np.bincount(r).argmax() for r in per])
    except RuntimeError as err:
        raise EngineError(f"2D classification failed: {err}") from err
    counts = np.bincount(assignment, minlength=k)
    return ClassAverages(averages.numpy(), px, counts, assignment)


def _split_largest(averages: torch.Tensor, x: torch.Tensor, assignment: np.ndarray, turn: torch.Tensor,
                   shift: torch.Tensor, angles: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """``averages`` with the smallest class replaced by the mean of a random half of the
    largest class's images (in the class frame)."""
    counts = np.bincount(assignment, minlength=len(averages))
    big, small = int(counts.argmax()), int(counts.argmin())
    members = np.flatnonzero(assignment == big)
    if len(members) < 4 or big == small:
        return averages
    half = torch.from_numpy(rng.permutation(members)[: len(members) // 2])
    one = np.zeros(len(half), dtype=np.int64)
    out = averages.clone()
    out[small] = _averages(x[half], one, turn[half], shift[half], angles, 1, rng)[0]
    return out


def _averages(x: torch.Tensor, assignment: np.ndarray, turn: torch.Tensor, shift: torch.Tensor,
              angles: torch.Tensor, k: int, rng: np.random.Generator) -> torch.Tensor:
    """`(k, b, b)` class means of the images shifted and turned back into the class frame."""
    b = x.shape[-1]
    back = shift_images(x, -shift)
    out = torch.zeros(k, b, b)
    for a in range(len(angles)):  # turn back by each angle once, for the images that took it
        sel = torch.nonzero(turn == a).flatten()
        if len(sel):
            turned = _rotate(back[sel], -angles[a : a + 1])[:, 0]
            out.index_add_(0, torch.from_numpy(assignment[sel.numpy()]), turned)
    counts = torch.from_numpy(np.bincount(assignment, minlength=k)).float()
    empty = torch.nonzero(counts == 0).flatten()
    if len(empty):  # an empty class restarts from a random image
        out[empty] = x[torch.from_numpy(rng.integers(0, len(x), len(empty)))]
        counts[empty] = 1
    return out / counts[:, None, None]


def _assign(x: torch.Tensor, averages: torch.Tensor, angles: torch.Tensor, config: Classify2DConfig,
            gen: torch.Generator) -> tuple[np.ndarray, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class, angle index and shift of every image (best, or ``draws`` draws per image), and
    the image row of each (cross-correlation over shifts)."""
    k, b = averages.shape[0], averages.shape[-1]
    a = len(angles)
    templates = _rotate(averages, angles).reshape(k * a, b, b)
    templates = templates / templates.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None]
    tf = torch.fft.rfft2(templates).conj()
    s = config.max_shift_px
    window = torch.arange(-s, s + 1) % b
    w = len(window)
    picks, rows = [], []
    for start in range(0, len(x), config.chunk):
        xf = torch.fft.rfft2(x[start : start + config.chunk])
        cc = torch.fft.irfft2(xf[:, None] * tf[None], s=(b, b))  # (c, k·a, b, b): cc[dy, dx]
        cc = cc[:, :, window][:, :, :, window].flatten(1)  # (c, k·a·w·w)
        if config.draws:
            amp = cc.max(1).values.median().clamp_min(1e-6)
            g = -torch.log(-torch.log(torch.rand(cc.shape, generator=gen).clamp(1e-12, 1 - 1e-12)))
            best = (amp * cc + g).topk(config.draws, dim=1).indices  # (c, draws)
        else:
            best = cc.argmax(1)[:, None]
        picks.append(best.reshape(-1))
        rows.append(torch.arange(start, start + len(xf)).repeat_interleave(best.shape[1]))
    best, rows = torch.cat(picks), torch.cat(rows)
    ka, pos = best // (w * w), best % (w * w)
    dy, dx = pos // w - s, pos % w - s
    # image = template moved by (dx, dy)
    return (ka // a).numpy(), ka % a, torch.stack([dx, dy], -1).float(), rows
