"""Fourier-space helpers on images and volumes: shifts, cropping/padding, frequency grids.

Images are `(..., h, w)` arrays indexed ``[y, x]``; volumes `(d, d, d)` indexed ``[z, y, x]``.
The centre of a box of size ``n`` is the pixel ``n // 2`` along each axis (RELION's and
torch-fourier-slice's convention).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .frequencies import frequency_grid, frequency_norm

__all__ = [
    "fourier_resize_images",
    "fourier_resize_volume",
    "load_images",
    "phase_shift_rfft_2d",
    "prepare_rfft",
    "shift_images",
]


def phase_shift_rfft_2d(
    image_rfft: torch.Tensor, shifts_px: torch.Tensor, size: int
) -> torch.Tensor:
    """Translate images, given as unshifted rffts, by ``shifts_px``.

    Parameters
    ----------
    image_rfft
        `(..., size, size // 2 + 1)` rfft of images whose real-space origin is at
        index 0 (or any fixed origin: a translation is origin-free).
    shifts_px
        `(..., 2)` translations ``(dx, dy)`` in pixels; content moves by ``+shift``.
    size
        Real-space side length.
    """
    g = frequency_grid((size, size), device=image_rfft.device)
    fy, fx = g[..., 0], g[..., 1]
    sx = shifts_px[..., 0, None, None].to(fx.dtype)
    sy = shifts_px[..., 1, None, None].to(fx.dtype)
    phase = torch.exp(-2j * torch.pi * (fx * sx + fy * sy))
    return image_rfft * phase


def shift_images(images: torch.Tensor, shifts_px: torch.Tensor) -> torch.Tensor:
    """Sub-pixel (Fourier) translation of `(..., n, n)` images by `(..., 2)` ``(dx, dy)`` pixels.

    The translation is circular; content moves by ``+shift``.
    """
    n = images.shape[-1]
    f = torch.fft.rfft2(images)
    return torch.fft.irfft2(phase_shift_rfft_2d(f, shifts_px, n), s=images.shape[-2:])


def _crop_or_pad_centered_fft(ft: torch.Tensor, new: int, dims: tuple[int, ...]) -> torch.Tensor:
    """Crop or zero-pad the fftshifted full spectrum ``ft`` along ``dims`` to ``new``."""
    for d in dims:
        old = ft.shape[d]
        if new < old:
            start = old // 2 - new // 2
            ft = ft.narrow(d, start, new)
        elif new > old:
            pad_shape = list(ft.shape)
            pad_shape[d] = new
            out = ft.new_zeros(pad_shape)
            start = new // 2 - old // 2
            out.narrow(d, start, old).copy_(ft)
            ft = out
    return ft


def fourier_resize_volume(volume: torch.Tensor, new_size: int) -> torch.Tensor:
    """Fourier-crop (bin) or zero-pad (upsample) a cubic `(d, d, d)` volume to `new_size`.

    The field of view is kept: the pixel size becomes ``old_px * d / new_size``. Values are
    scaled so that voxel intensities (not sums) are preserved.
    """
    d = volume.shape[-1]
    if volume.ndim != 3 or len(set(volume.shape)) != 1:
        raise ValueError(f"volume must be cubic (d, d, d), got {tuple(volume.shape)}")
    if new_size < 2:
        raise ValueError("new_size must be >= 2")
    if new_size == d:
        return volume.clone()
    dims = (-3, -2, -1)
    ft = torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(volume, dim=dims), dim=dims), dim=dims)
    ft = _crop_or_pad_centered_fft(ft, new_size, dims)
    out = torch.fft.fftshift(torch.fft.ifftn(torch.fft.ifftshift(ft, dim=dims), dim=dims), dim=dims)
    return out.real * (new_size / d) ** 3


def fourier_resize_images(images: torch.Tensor, new_size: int) -> torch.Tensor:
    """Fourier-crop or zero-pad square `(..., n, n)` images to `(..., new_size, new_size)`.

    The field of view is kept (pixel size ``old_px * n / new_size``); intensities are kept.
    """
    n = images.shape[-1]
    if images.shape[-2] != n:
        raise ValueError(f"images must be square, got {tuple(images.shape[-2:])}")
    if new_size == n:
        return images.clone()
    dims = (-2, -1)
    ft = torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(images, dim=dims), dim=dims), dim=dims)
    ft = _crop_or_pad_centered_fft(ft, new_size, dims)
    out = torch.fft.fftshift(torch.fft.ifftn(torch.fft.ifftshift(ft, dim=dims), dim=dims), dim=dims)
    return out.real * (new_size / n) ** 2


def load_images(images: Any, index: slice | np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """`(b, n, n)` float32 tensor of ``images[index]`` (any sliceable stack), checked finite.

    Raises
    ------
    ValueError
        When a pixel is NaN or infinite (naming the first bad image, 1-based).
    """
    img = torch.as_tensor(np.asarray(images[index], dtype=np.float32), device=device)
    if not torch.isfinite(img).all():
        bad = int(torch.nonzero(~torch.isfinite(img).reshape(len(img), -1).all(1))[0])
        rows = np.arange(len(images))[index] if isinstance(index, slice) else np.asarray(index)
        raise ValueError(f"image {int(rows[bad]) + 1} contains NaN or infinite pixels")
    return img


def prepare_rfft(
    images: torch.Tensor,
    pixel_size_a: float,
    shifts_a: np.ndarray | None = None,
    pad: int = 0,
) -> torch.Tensor:
    """The one image preparation: zero-pad → centre to the origin → rfft → re-centre.

    Parameters
    ----------
    images
        `(b, n, n)` particle images, centre at pixel ``n // 2``.
    pixel_size_a
        Pixel size in Å.
    shifts_a
        `(b, 2)` RELION origins ``(x, y)`` in Å: each image is translated by ``+origin``
        (the particle's centre moves to the box centre); None or zeros: no translation.
    pad
        Zero padding on each side (pixels): the transform is on ``p = n + 2 · pad``.

    Returns
    -------
    torch.Tensor
        `(b, p, p // 2 + 1)` unshifted rfft whose real-space origin is the image centre
        (multiply by an unshifted CTF from :func:`~napari_cryorient.engine.ctf.compute_ctf_rfft`).
    """
    if pad:
        images = F.pad(images, [pad] * 4)
    p = images.shape[-1]
    f = torch.fft.rfft2(torch.fft.ifftshift(images, dim=(-2, -1)))
    if shifts_a is not None and np.any(shifts_a != 0):
        f = phase_shift_rfft_2d(f, torch.from_numpy(np.asarray(shifts_a) / pixel_size_a).to(f.device), p)
    return f


def lowpass_volume(volume: torch.Tensor | np.ndarray, resolution_a: float, pixel_size_a: float,
                   edge_shells: float = 2.0) -> torch.Tensor:
    """A `(d, d, d)` map low-pass filtered at ``resolution_a`` (Å), with a raised-cosine edge
    ``edge_shells`` Fourier shells wide; float32."""
    v = torch.as_tensor(volume, dtype=torch.float32)
    d = v.shape[-1]
    shell = frequency_norm(tuple(v.shape), rfft=True, dtype=torch.float32) * d  # radius in shells
    cut = d * pixel_size_a / resolution_a
    t = ((shell - cut) / max(edge_shells, 1e-6) + 0.5).clamp(0, 1)
    weight = 0.5 * (1 + torch.cos(torch.pi * t))
    return torch.fft.irfftn(torch.fft.rfftn(v) * weight, s=v.shape)
