"""The one circular mask (images are indexed ``[y, x]``, centre at pixel ``box // 2``)."""

from __future__ import annotations

import torch

__all__ = ["circular_mask", "spherical_mask"]


def circular_mask(
    box: int,
    radius_px: float,
    edge_px: float = 0.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """`(box, box)` mask: 1 inside ``radius_px`` of pixel ``box // 2``, a raised-cosine edge
    ``edge_px`` wide outside it, 0 beyond (a hard disc when ``edge_px <= 0``)."""
    c = torch.arange(box, dtype=dtype, device=device) - box // 2
    r = torch.sqrt(c[:, None] ** 2 + c[None, :] ** 2)
    if edge_px <= 0:
        return (r <= radius_px).to(dtype)
    t = ((r - radius_px) / edge_px).clamp(0.0, 1.0)
    return 0.5 * (1.0 + torch.cos(torch.pi * t))


def spherical_mask(
    box: int,
    radius_px: float,
    edge_px: float = 0.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """`(box, box, box)` mask: 1 inside ``radius_px`` of voxel ``box // 2``, a raised-cosine
    edge ``edge_px`` wide outside it, 0 beyond (a hard ball when ``edge_px <= 0``)."""
    c = torch.arange(box, dtype=dtype, device=device) - box // 2
    r = torch.sqrt(c[:, None, None] ** 2 + c[None, :, None] ** 2 + c[None, None, :] ** 2)
    if edge_px <= 0:
        return (r <= radius_px).to(dtype)
    t = ((r - radius_px) / edge_px).clamp(0.0, 1.0)
    return 0.5 * (1.0 + torch.cos(torch.pi * t))
