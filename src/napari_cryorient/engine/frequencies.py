"""Frequency grids of (r)ffts, Fourier shells and Friedel weights — built here once.

Grids follow torch's layout: a 2D `(h, w)` image has an rfft of shape `(h, w // 2 + 1)`,
a 3D `(d, d, d)` map one of `(d, d, d // 2 + 1)`; components are ordered like the axes
(``[..., 0]`` is z for volumes, y for images; the last is x). With ``fftshift`` the
non-halved axes are shifted so that frequency 0 sits at index ``n // 2`` (the rfft axis is
never shifted). Frequencies are in cycles per sample divided by ``spacing`` (cycles/Å
when ``spacing`` is the pixel size in Å).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["frequency_grid", "frequency_norm", "friedel_weights", "shell_indices"]


def frequency_grid(
    shape: tuple[int, ...],
    rfft: bool = True,
    fftshift: bool = False,
    spacing: float = 1.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """`(*fft_shape, ndim)` sample frequencies of an (r)fft of an image or volume of ``shape``."""
    axes = []
    for k, n in enumerate(shape):
        last = k == len(shape) - 1
        freq = torch.fft.rfftfreq if rfft and last else torch.fft.fftfreq
        f = freq(n, d=spacing, dtype=dtype, device=device)
        if fftshift and not (rfft and last):
            f = torch.fft.fftshift(f)
        axes.append(f)
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def frequency_norm(shape: tuple[int, ...], **options: Any) -> torch.Tensor:
    """`fft_shape` magnitude ``|k|`` of :func:`frequency_grid` (same ``options``)."""
    return frequency_grid(shape, **options).pow(2).sum(-1).sqrt()


def shell_indices(shape: tuple[int, ...], dtype: torch.dtype = torch.float64,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """`fft_shape` integer Fourier shell ``round(|k| · n)`` of each rfft sample (``n`` =
    ``shape[-1]``; shell ``s`` is the frequency ``s / (n · pixel size)``)."""
    return torch.round(frequency_norm(shape, dtype=dtype, device=device) * shape[-1]).long()


def friedel_weights(shape: tuple[int, ...], dtype: torch.dtype = torch.float64,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """`fft_shape` weights that make sums over an rfft equal sums over the full transform:
    2 for columns whose Friedel mates are not stored, 1 for the zero (and, for even sizes,
    the Nyquist) column."""
    n = shape[-1]
    w = torch.full((*shape[:-1], n // 2 + 1), 2.0, dtype=dtype, device=device)
    w[..., 0] = 1.0
    if n % 2 == 0:
        w[..., -1] = 1.0
    return w
