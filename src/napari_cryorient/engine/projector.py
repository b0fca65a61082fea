"""RELION-style Fourier-slice projector with a cached volume transform.

Projection follows RELION's ``Projector`` (used by ``relion_project``): the map is
gridding-corrected by a radial ``sinc²`` (trilinear interpolation), zero-padded by
``pad_factor`` (2 by default, as RELION), Fourier transformed once, and each image is the
inverse transform of a trilinearly interpolated central slice (torch-fourier-slice's
``extract_central_slices_rfft_3d``). The slice for a pose ``R`` (package convention,
:mod:`~napari_cryorient.engine.so3`) samples the map transform at ``R^T (kx, ky, 0)``,
exactly as RELION samples ``A^T (kx, ky, 0)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch_fourier_slice import extract_central_slices_rfft_3d

__all__ = ["FourierProjector", "gridding_corrected_padded", "radial_gridding_correction"]


def gridding_corrected_padded(volume: torch.Tensor, pad_factor: float, device: torch.device | str
                              ) -> tuple[torch.Tensor, int]:
    """The one preparation of a map for Fourier-slice sampling (projector and refinement):
    divided by :func:`radial_gridding_correction`, zero-padded by ``pad_factor`` (RELION).

    Returns the `(p, p, p)` float32 padded map (centre at voxel ``p // 2``) and the padding
    on each side in voxels."""
    if volume.ndim != 3 or len(set(volume.shape)) != 1:
        raise ValueError(f"volume must be cubic (d, d, d), got {tuple(volume.shape)}")
    if pad_factor < 1.0:
        raise ValueError("pad_factor must be >= 1")
    d = volume.shape[-1]
    vol = volume.to(device, torch.float32) / radial_gridding_correction(d, pad_factor, device=device)
    pad = int(d * (pad_factor - 1.0)) // 2
    return (F.pad(vol, [pad] * 6) if pad else vol), pad


def radial_gridding_correction(size: int, pad_factor: float, device=None) -> torch.Tensor:
    """`(size, size, size)` ``sinc²(r / (pad · size))`` with ``r`` in voxels from the centre.

    Dividing a map by it before padding compensates the trilinear interpolation of the
    padded transform (RELION's ``griddingCorrect``).
    """
    c = torch.arange(size, device=device, dtype=torch.float32) - size // 2
    r = torch.sqrt(c[:, None, None] ** 2 + c[None, :, None] ** 2 + c[None, None, :] ** 2)
    return torch.sinc(r / (pad_factor * size)) ** 2


class FourierProjector:
    """Projects one cubic map at many poses, reusing its padded Fourier transform.

    Parameters
    ----------
    volume
        `(d, d, d)` map indexed ``[z, y, x]``, centre at voxel ``d // 2``.
    pad_factor
        Oversampling of the transform (>= 1; RELION uses 2).
    device
        Where the transform lives and projections are computed.
    """

    def __init__(
        self, volume: torch.Tensor, pad_factor: float = 2.0, device: torch.device | str = "cpu"
    ) -> None:
        self.size = volume.shape[-1]
        self.device = torch.device(device)
        vol, self._pad = gridding_corrected_padded(volume, pad_factor, self.device)
        self.padded_size = vol.shape[-1]
        dft = torch.fft.rfftn(torch.fft.ifftshift(vol, dim=(-3, -2, -1)), dim=(-3, -2, -1))
        self._dft = torch.fft.fftshift(dft, dim=(-3, -2))

    def project_rfft(self, rotations: torch.Tensor) -> torch.Tensor:
        """Central slices for `(n, 3, 3)` poses: `(n, p, p // 2 + 1)` fftshifted (dim -2) rffts
        on the padded grid ``p``."""
        r = rotations.to(self.device, torch.float32)
        return extract_central_slices_rfft_3d(self._dft, r.transpose(-1, -2))

    def project(self, rotations: torch.Tensor) -> torch.Tensor:
        """Project at `(n, 3, 3)` poses.

        Returns
        -------
        torch.Tensor
            `(n, d, d)` float32 images ``[y, x]``: line integrals of the map along the
            particle-frame z axis (voxel units), image centre at pixel ``d // 2``.
        """
        slices = self.project_rfft(rotations)
        slices = torch.fft.ifftshift(slices, dim=(-2,))
        p = self.padded_size
        images = torch.fft.irfftn(slices, dim=(-2, -1), s=(p, p))
        images = torch.fft.fftshift(images, dim=(-2, -1))
        if self._pad:
            images = images[..., self._pad : self._pad + self.size, self._pad : self._pad + self.size]
        return images.contiguous()
