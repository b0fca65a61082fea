"""The one circular mask and its 3D twin (arrays indexed ``[(z,) y, x]``, centre at
``box // 2`` on every axis)."""

from __future__ import annotations

import torch

__all__ = ["circular_mask", "spherical_mask"]


def _radial_mask(box: int, ndim: int, radius_px: float, edge_px: float, dtype: torch.dtype,
                 device: torch.device | str | None) -> torch.Tensor:
    c = torch.arange(box, dtype=dtype, device=device) - box // 2
    grids = torch.meshgrid(*([c] * ndim), indexing="ij")
    r = torch.sqrt(sum(g**2 for g in grids))
    if edge_px <= 0:
        return (r <= radius_px).to(dtype)
    t = ((r - radius_px) / edge_px).clamp(0.0, 1.0)
    return 0.5 * (1.0 + torch.cos(torch.pi * t))


def circular_mask(
    box: int,
    radius_px: float,
    edge_px: float = 0.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """`(box, box)` mask: 1 inside ``radius_px`` of pixel ``box // 2``, a raised-cosine edge
    ``edge_px`` wide outside it, 0 beyond (a hard disc when ``edge_px <= 0``)."""
    return _radial_mask(box, 2, radius_px, edge_px, dtype, device)


def spherical_mask(
    box: int,
    radius_px: float,
    edge_px: float = 0.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """`(box, box, box)` mask: 1 inside ``radius_px`` of voxel ``box // 2``, a raised-cosine
    edge ``edge_px`` wide outside it, 0 beyond (a hard ball when ``edge_px <= 0``)."""
    return _radial_mask(box, 3, radius_px, edge_px, dtype, device)
