"""Pre-processing of real particle images, streamed in chunks.

Per image, in this order (each step optional):

1. re-centre: translate by ``+origin`` (RELION origins, Å), after which the origins are 0;
2. phase flip: multiply the transform by ``sign(CTF)``;
3. Fourier-crop to ``box`` pixels (pixel size ``× old_box / box``);
4. normalise on the background: subtract the mean and divide by the standard deviation
   of the pixels outside ``background_radius`` (RELION's ``--bg_radius``);
5. circular mask of radius ``mask_radius`` with a raised-cosine edge ``mask_edge`` wide.

Radii are in Å so that they do not depend on the box. Nothing is kept in memory beyond one
chunk: results go to a sink (e.g. :class:`~napari_cryorient.io.mrc.StackWriter`).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .ctf import CTFParams, compute_ctf_rfft
from .fourier import fourier_resize_images, load_images, prepare_rfft
from .jobs import EngineError, Progress
from .masks import circular_mask

__all__ = ["PreprocessConfig", "PreprocessResult", "circular_mask", "preprocess_particles"]


@dataclass(frozen=True)
class PreprocessConfig:
    """Pre-processing settings.

    Attributes
    ----------
    box
        Output box in pixels (Fourier crop); None keeps the input box.
    recentre
        Translate each image by its origin (then the origins are 0).
    phase_flip
        Flip the phases by the sign of the CTF (needs CTF parameters).
    normalise
        Zero mean, unit standard deviation of the background.
    background_radius_a
        Background starts at this radius (Å); None: 0.75 × half the box.
    mask_radius_a
        Circular mask radius (Å); None: no mask.
    mask_edge_a
        Width of the soft mask edge (Å).
    chunk_size
        Images per chunk.
    """

    box: int | None = None
    recentre: bool = False
    phase_flip: bool = False
    normalise: bool = True
    background_radius_a: float | None = None
    mask_radius_a: float | None = None
    mask_edge_a: float = 10.0
    chunk_size: int = 512

    def validate(self, in_box: int) -> None:
        """Raise ``ValueError`` for settings that cannot apply to ``in_box`` images."""
        if self.box is not None and not (8 <= self.box <= in_box):
            raise ValueError(f"output box must be between 8 and the input box {in_box}, got {self.box}")
        if self.box is not None and self.box % 2:
            raise ValueError(f"output box must be even, got {self.box}")
        for name in ("background_radius_a", "mask_radius_a"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0 Å")
        if self.mask_edge_a < 0:
            raise ValueError("mask_edge_a must be >= 0")
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")


@dataclass
class PreprocessResult:
    """What pre-processing produced (images went to the sink).

    Attributes
    ----------
    box, pixel_size_a
        Output image size and pixel size (Å).
    shifts_a
        `(n, 2)` origins of the output images (zeros when re-centred).
    phase_flipped
        Whether the images are phase-flipped.
    """

    box: int
    pixel_size_a: float
    shifts_a: np.ndarray
    phase_flipped: bool


def preprocess_particles(
    images: Any,
    pixel_size_a: float,
    sink: Callable[[int, np.ndarray], None],
    shifts_a: np.ndarray | None = None,
    ctf: CTFParams | None = None,
    config: PreprocessConfig | None = None,
) -> Generator[Progress, None, PreprocessResult]:
    """Pre-process a particle stack chunk by chunk.

    Parameters
    ----------
    images
        `(n, d, d)` images, sliceable along the first axis (memory-mapped stacks work).
    pixel_size_a
        Input pixel size (Å).
    sink
        Called as ``sink(start, chunk)`` with float32 `(b, box, box)` chunks in order.
    shifts_a
        `(n, 2)` RELION origins in Å (zeros when None).
    ctf
        Per-particle CTF (needed for ``phase_flip``).
    config
        :class:`PreprocessConfig`.

    Yields
    ------
    Progress
        Stage ``"preprocess"``, one unit per image.

    Returns
    -------
    PreprocessResult
    """
    config = config or PreprocessConfig()
    n = len(images)
    if n < 1:
        raise ValueError("no images to pre-process")
    first = np.asarray(images[0:1])
    d = first.shape[-1]
    if first.shape[-2] != d:
        raise ValueError(f"images must be square, got {first.shape[-2]}x{d}")
    config.validate(d)
    if config.phase_flip and ctf is None:
        raise ValueError("phase flipping needs CTF parameters")
    if ctf is not None and len(ctf) != n:
        raise ValueError(f"{len(ctf)} CTF parameter sets for {n} images")
    shifts_a = np.zeros((n, 2)) if shifts_a is None else np.asarray(shifts_a, dtype=np.float64)
    if shifts_a.shape != (n, 2):
        raise ValueError(f"shifts_a must have shape ({n}, 2), got {shifts_a.shape}")
    box = config.box or d
    px_out = pixel_size_a * d / box
    bg_radius_px = (config.background_radius_a / px_out if config.background_radius_a
                    else 0.75 * box / 2)
    background = circular_mask(box, bg_radius_px) < 0.5
    if config.normalise and int(background.sum()) < 10:
        raise ValueError("the background ring is empty: reduce background_radius_a")
    mask = None
    if config.mask_radius_a is not None:
        mask = circular_mask(box, config.mask_radius_a / px_out, config.mask_edge_a / px_out)
    try:
        for start in range(0, n, config.chunk_size):
            stop = min(n, start + config.chunk_size)
            img = load_images(images, slice(start, stop))
            if config.recentre or config.phase_flip:
                f = prepare_rfft(img, pixel_size_a, shifts_a[start:stop] if config.recentre else None)
                if config.phase_flip:
                    f = f * torch.sign(compute_ctf_rfft(ctf.subset(slice(start, stop)), d, pixel_size_a))
                img = torch.fft.fftshift(torch.fft.irfft2(f, s=(d, d)), dim=(-2, -1))
            if box != d:
                img = fourier_resize_images(img, box)
            if config.normalise:
                bg = img[:, background]
                img = (img - bg.mean(1)[:, None, None]) / bg.std(1).clamp_min(1e-12)[:, None, None]
            if mask is not None:
                img = img * mask
            sink(start, img.numpy().astype(np.float32))
            yield Progress("preprocess", stop, n)
    except RuntimeError as err:
        raise EngineError(f"pre-processing failed: {err}") from err
    out_shifts = np.zeros_like(shifts_a) if config.recentre else shifts_a
    return PreprocessResult(box=box, pixel_size_a=px_out, shifts_a=out_shifts,
                            phase_flipped=config.phase_flip)
