"""How far a particle reaches in its box, measured from the images alone.

Over a stack of images of one particle in random orientations, the variance of each pixel
is the noise's plus the signal's, and the signal's is zero where no view of the particle
ever reaches. After a phase flip (which undoes most of the CTF's delocalisation: at 1 Å/px
and 2.5 µm defocus the raw images spread the signal over the whole box) the excess variance
over the corners' level, ring by ring, says how far out the signal lives. No truth,
no map: a mask radius for searches that start from nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .ctf import CTFParams, compute_ctf_rfft
from .fourier import load_images, prepare_rfft

__all__ = ["particle_radius_px"]


def particle_radius_px(
    images: Any,
    pixel_size_a: float,
    ctf: CTFParams | None = None,
    z: float = 4.0,
    max_images: int = 5000,
    chunk: int = 500,
    device: torch.device | str = "cpu",
) -> float:
    """Radius (pixels) beyond which no ring of pixels has more variance than noise alone.

    Parameters
    ----------
    images
        `(n, d, d)` particle images (any sliceable stack), centre at pixel ``d // 2``.
    pixel_size_a
        Pixel size in Å.
    ctf
        The images' CTF parameters: the images are phase-flipped first (None: used as they are).
    z
        A ring counts as signal when its mean variance exceeds the noise level by ``z``
        standard errors (of a mean variance of white noise over that many pixels and images).
    max_images
        At most this many images are read, evenly spaced through the stack.
    chunk
        Images per chunk (memory: one chunk and two `(d, d)` sums).
    device
        Torch device.

    Returns
    -------
    float
        One past the outermost significant ring (at least 1, at most ``d / 2``; ``d / 2``
        when no ring is). The noise level is the median variance of the pixels beyond
        ``0.45 d`` of the centre, where no particle is expected; a particle that reaches them
        is measured too small. Origins spread the variance: the radius includes the picks'
        scatter, as a mask should. More images find fainter edges.
    """
    n = len(images)
    d = int(np.asarray(images[0:1]).shape[-1])
    rows = np.unique(np.linspace(0, n - 1, min(n, max_images)).round().astype(int))
    total = torch.zeros(d, d, dtype=torch.float64, device=device)
    squares = torch.zeros_like(total)
    for start in range(0, len(rows), chunk):
        idx = rows[start : start + chunk]
        x = load_images(images, idx, device)
        if ctf is not None:
            flip = torch.sign(compute_ctf_rfft(ctf.subset(idx), d, pixel_size_a, device))
            f = prepare_rfft(x, pixel_size_a) * flip
            x = torch.fft.fftshift(torch.fft.irfft2(f, s=(d, d)), dim=(-2, -1))
        x = x.double()
        total += x.sum(0)
        squares += (x * x).sum(0)
    m = len(rows)
    variance = (squares / m - (total / m) ** 2).cpu().numpy()
    c = np.arange(d) - d // 2
    r = np.hypot(c[:, None], c[None, :])
    noise = float(np.median(variance[r >= 0.45 * d]))
    ring = r.round().astype(int).ravel()
    count = np.bincount(ring)[: d // 2]
    excess = np.bincount(ring, variance.ravel() - noise)[: d // 2] / count
    # standard error of a ring's mean variance under white noise: noise · sqrt(2 / (m · pixels))
    significant = np.nonzero(excess > z * noise * np.sqrt(2.0 / (m * count)))[0]
    return float(np.clip(significant.max() + 1 if len(significant) else d / 2, 1, d / 2))
