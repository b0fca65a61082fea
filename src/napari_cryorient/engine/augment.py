"""In-plane rotation of images: the exact, free augmentation of the training."""

from __future__ import annotations

import torch

__all__ = ["rotate_images"]


def rotate_images(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Rotate `(b, W, W)` images about pixel ``W // 2`` by ``alpha`` (radians, x towards y).

    A point ``p`` of the content moves to ``Rz(alpha) p``; bilinear interpolation, zeros
    outside. Matches the pose update ``R -> Rz(alpha) R``.
    """
    b, w = x.shape[0], x.shape[-1]
    c, s = torch.cos(alpha), torch.sin(alpha)
    # output pixel p samples the input at Rz(-alpha) p; coordinates relative to W // 2
    rot = torch.stack([torch.stack([c, s], -1), torch.stack([-s, c], -1)], -2)  # Rz(-alpha)
    g = torch.arange(w, dtype=x.dtype) - w // 2
    yy, xx = torch.meshgrid(g, g, indexing="ij")
    pts = torch.stack([xx, yy], -1).reshape(-1, 2)  # (W², 2) as (x, y)
    src = pts @ rot.transpose(-1, -2)  # (b, W², 2)
    norm = (src + w // 2) / (w - 1) * 2 - 1
    out = torch.nn.functional.grid_sample(x[:, None], norm.reshape(b, w, w, 2), mode="bilinear",
                                          padding_mode="zeros", align_corners=True)
    return out[:, 0]
