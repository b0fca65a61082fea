"""Direct Fourier inversion, streamed over particles so memory does not grow with N.

For each chunk of particles the images are zero-padded (``pad_factor``), re-centred by
their RELION origins (shift by ``+origin``), Fourier transformed, optionally
CTF-corrected, and inserted as central slices (torch-fourier-slice,
``insert_central_slices_rfft_3d``) into running sums:

* numerator ``Σ w · c · F`` and denominator ``Σ w · c²`` (``w`` trilinear weights,
  ``c`` = 1 without CTF correction, ``sign(CTF)`` for phase flipping, ``CTF`` for Wiener);
* the map transform is ``numerator / (denominator + λ)`` with
  ``λ = regularisation × mean(denominator inside the Nyquist sphere)``;
* back in real space the trilinear gridding is corrected (``sinc²``) and the box cropped.

Only the two accumulators (and one chunk) are in memory: about
``12 · (pad · d)³ / 2`` bytes per map, independent of the number of particles.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch_fourier_slice import (
    insert_central_slices_rfft_3d,
    insert_central_slices_rfft_3d_multichannel,
)

from .ctf import CTFParams, compute_ctf_rfft
from .fourier import fourier_resize_images, fourier_resize_volume, load_images, prepare_rfft
from .frequencies import frequency_norm
from .jobs import EngineError, Progress
from .memory import check_memory
from .particles import checked_arrays
from .projector import radial_gridding_correction

__all__ = ["CTF_CORRECTIONS", "ReconstructionResult", "reconstruct_volume"]

CTF_CORRECTIONS = ("none", "phase-flip", "wiener")


@dataclass
class ReconstructionResult:
    """A reconstructed map.

    Attributes
    ----------
    volume
        `(d, d, d)` float32 map from all particles.
    half_maps
        Two `(d, d, d)` maps from the random halves, or ``None``.
    half_assignment
        `(n,)` 0/1 half of each particle (RELION ``rlnRandomSubset`` minus 1), or ``None``.
    pixel_size_a
        Voxel size in Å.
    """

    volume: np.ndarray
    half_maps: tuple[np.ndarray, np.ndarray] | None
    half_assignment: np.ndarray | None
    pixel_size_a: float


class _Accumulator:
    """Running numerator/denominator of one map on the padded rfft grid."""

    def __init__(self, padded: int, device: torch.device) -> None:
        shape = (padded, padded, padded // 2 + 1)
        self.num = torch.zeros(shape, dtype=torch.complex64, device=device)
        self.den = torch.zeros(shape, dtype=torch.float32, device=device)

    def add(self, other: _Accumulator) -> _Accumulator:
        out = _Accumulator.__new__(_Accumulator)
        out.num, out.den = self.num + other.num, self.den + other.den
        return out


def _auto_chunk_size(padded: int) -> int:
    # trilinear insertion keeps ~100 bytes of temporaries per Fourier sample: 2**20
    # samples per chunk bound them to ~100 MiB (measured: 5.5 GiB peak with 2**23)
    return max(4, (2**20) // (padded * (padded // 2 + 1)))


def _insert_chunk(
    acc: _Accumulator,
    image_rfft: torch.Tensor,
    weight: torch.Tensor | None,
    rotations: torch.Tensor,
    padded: int,
) -> None:
    shape = (padded, padded, padded)
    rot = rotations.transpose(-1, -2)  # image frame -> map frame (torch-fourier-slice)
    image_rfft = torch.fft.fftshift(image_rfft, dim=(-2,))
    if weight is None:
        dft, w = insert_central_slices_rfft_3d(image_rfft, shape, rot)
        acc.num += dft
        acc.den += w
    else:
        weight = torch.fft.fftshift(weight, dim=(-2,)).to(image_rfft.dtype)
        both = torch.stack([image_rfft, weight], dim=-3)  # (b, 2, p, p//2+1)
        dft, _ = insert_central_slices_rfft_3d_multichannel(both, shape, rot)
        acc.num += dft[0]
        acc.den += dft[1].real


def _finalise(acc: _Accumulator, size: int, padded: int, regularisation: float) -> np.ndarray:
    den = acc.den
    # mean sampling inside the Nyquist sphere (0.5 cycles/pixel) sets the regulariser
    inside = frequency_norm((padded,) * 3, rfft=True, fftshift=True, device=den.device) <= 0.5
    mean = den[inside].mean() if inside.any() else den.mean()
    lam = regularisation * float(mean) if float(mean) > 0 else 1.0
    ft = acc.num / (den + lam)
    ft = torch.fft.ifftshift(ft, dim=(-3, -2))
    vol = torch.fft.irfftn(ft, dim=(-3, -2, -1), s=(padded,) * 3)
    vol = torch.fft.fftshift(vol, dim=(-3, -2, -1))
    vol = vol / radial_gridding_correction(padded, 1.0, device=vol.device)
    p = (padded - size) // 2
    vol = vol[p : p + size, p : p + size, p : p + size]
    return vol.cpu().numpy().astype(np.float32)


def _at_box(volume: np.ndarray, size: int) -> np.ndarray:
    """``volume`` zero-padded in Fourier space to a `(size,)*3` box (unchanged when it is)."""
    if volume.shape[-1] == size:
        return volume
    return fourier_resize_volume(torch.from_numpy(volume), size).numpy().astype(np.float32)


def _checked_inputs(images: Any, rotations: np.ndarray, shifts_a: np.ndarray | None, ctf: CTFParams | None,
                    ctf_correction: str, pad_factor: float) -> tuple[np.ndarray, np.ndarray]:
    """`(n, 3, 3)` poses and `(n, 2)` origins as float64, every input checked (ValueError)."""
    if len(rotations) < 1:
        raise ValueError("no particles to reconstruct")
    if ctf_correction not in CTF_CORRECTIONS:
        raise ValueError(f"ctf_correction must be one of {CTF_CORRECTIONS}, got {ctf_correction!r}")
    if ctf_correction != "none" and ctf is None:
        raise ValueError(f"CTF correction {ctf_correction!r} needs CTF parameters")
    rotations, shifts_a = checked_arrays(images, rotations, shifts_a, ctf)
    if pad_factor < 1:
        raise ValueError("pad_factor must be >= 1")
    return rotations, shifts_a


def _image_size(images: Any) -> int:
    first = np.asarray(images[0:1])
    size = first.shape[-1]
    if first.shape[-2] != size:
        raise ValueError(f"images must be square, got {first.shape[-2]}x{size}")
    return int(size)


def _corrected_rfft(images: Any, index: slice, pixel_size_a: float, shifts_a: np.ndarray,
                    ctf: CTFParams | None, ctf_correction: str, pad: int, device: torch.device,
                    band_box: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The prepared rffts of ``images[index]`` (Fourier-cropped to ``band_box`` when given)
    times the CTF factor ``c``, and ``c²`` for Wiener (None otherwise: the trilinear
    weights are the denominator)."""
    img = load_images(images, index, device)
    if band_box is not None and band_box < img.shape[-1]:  # the band's frequencies, same spacing
        scale = band_box / img.shape[-1]
        pixel_size_a /= scale
        # a projection through band_box voxels sums scale × as many values as through d
        img = fourier_resize_images(img, band_box) * scale
    f = prepare_rfft(img, pixel_size_a, shifts_a[index], pad)
    if ctf_correction == "none":
        return f, None
    c = compute_ctf_rfft(ctf.subset(index), f.shape[-2], pixel_size_a, device)
    if ctf_correction == "phase-flip":
        return f * torch.sign(c), None
    return f * c, c * c


def reconstruct_volume(
    images: Any,
    rotations: np.ndarray,
    pixel_size_a: float,
    shifts_a: np.ndarray | None = None,
    ctf: CTFParams | None = None,
    ctf_correction: str = "none",
    half_maps: bool = False,
    seed: int = 0,
    pad_factor: float = 2.0,
    regularisation: float = 1e-3,
    chunk_size: int | None = None,
    device: torch.device | str = "cpu",
    halves: np.ndarray | None = None,
    band_box: int | None = None,
) -> Generator[Progress, None, ReconstructionResult]:
    """Reconstruct a map from particle images with known poses.

    Parameters
    ----------
    images
        `(n, d, d)` images, any object sliceable along the first axis that returns
        arrays (numpy array, memory-mapped MRC stack, lazy particle stack); read one
        chunk at a time.
    rotations
        `(n, 3, 3)` poses (package convention).
    pixel_size_a
        Pixel size in Å.
    shifts_a
        `(n, 2)` RELION origins ``(x, y)`` in Å, or None.
    ctf
        CTF parameters (needed unless ``ctf_correction == "none"``).
    ctf_correction
        ``"none"``, ``"phase-flip"`` or ``"wiener"``.
    half_maps
        Also reconstruct two half-maps from a random (seeded) split.
    seed
        Seed of the half split.
    pad_factor
        Oversampling of the Fourier grid (2 as RELION).
    regularisation
        Relative Tikhonov term ``λ`` (see module docstring).
    chunk_size
        Particles per chunk; chosen from the box size when None.
    halves
        `(n,)` half (0/1) of each particle for ``half_maps`` (a split fixed by the
        caller); None: a random split seeded by ``seed``.
    band_box
        Reconstruct only the frequencies of a ``band_box``-pixel box (the images are
        Fourier-cropped to it, so the frequency spacing is unchanged) and return the maps
        zero-padded back to the images' box: the maps hold nothing beyond
        ``band_box / 2`` Fourier shells, and the work falls as ``(band_box / d)²`` for the
        insertion and ``(band_box / d)³`` for the map. RELION's *current size*: a
        refinement reference needs no frequency beyond its resolution. The regulariser is
        the band's own (``λ`` from the mean sampling inside the band's Nyquist sphere).
        None (or ≥ d): the whole box.

    Yields
    ------
    Progress

    Returns
    -------
    ReconstructionResult
    """
    rotations, shifts_a = _checked_inputs(images, rotations, shifts_a, ctf, ctf_correction, pad_factor)
    n = len(rotations)
    full = _image_size(images)
    if band_box is not None and not 2 <= band_box:
        raise ValueError(f"band_box must be at least 2 pixels, got {band_box}")
    size = full if band_box is None else min(full, int(band_box))
    band = size if size < full else None
    padded = size + 2 * (int(size * (pad_factor - 1.0)) // 2)
    pad = (padded - size) // 2
    # each chunk is read and transformed at the whole box before it is cropped to the band
    chunk = chunk_size or min(_auto_chunk_size(padded), max(4, 2**22 // full**2))
    device = torch.device(device)
    if device.type == "cpu":  # accumulators: complex64 + float32 per sample, per map, plus one finalise
        maps = 3 if half_maps else 1
        check_memory((maps + 2) * 12 * padded**2 * (padded // 2 + 1), f"reconstructing a {size}³ map",
                     "use a smaller box (Fourier-crop the particles) or pad_factor 1")
    if half_maps and halves is not None:
        halves = np.asarray(halves, dtype=int)
        if halves.shape != (n,) or not np.isin(halves, (0, 1)).all():
            raise ValueError(f"halves must be {n} values of 0 or 1")
    elif half_maps:
        halves = np.random.default_rng(seed).permutation(n) % 2
    else:
        halves = np.zeros(n, int)

    try:
        accs = [_Accumulator(padded, device) for _ in range(2 if half_maps else 1)]
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            f, weight = _corrected_rfft(images, slice(start, stop), pixel_size_a, shifts_a, ctf,
                                        ctf_correction, pad, device, band)
            rot = torch.from_numpy(rotations[start:stop]).to(device, torch.float32)
            for h, acc in enumerate(accs):
                sel = torch.from_numpy(np.flatnonzero(halves[start:stop] == h)).to(device)
                if len(sel):
                    _insert_chunk(acc, f[sel], None if weight is None else weight[sel], rot[sel], padded)
            yield Progress("reconstruct", stop, n)
        total = accs[0] if len(accs) == 1 else accs[0].add(accs[1])
        volume = _at_box(_finalise(total, size, padded, regularisation), full)
        maps = tuple(_at_box(_finalise(a, size, padded, regularisation), full) for a in accs) \
            if half_maps else None
    except RuntimeError as err:
        raise EngineError(f"reconstruction failed: {err}") from err
    return ReconstructionResult(
        volume=volume,
        half_maps=maps,  # type: ignore[arg-type]
        half_assignment=halves if half_maps else None,
        pixel_size_a=float(pixel_size_a),
    )
