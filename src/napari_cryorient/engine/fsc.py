"""Fourier shell correlation and resolution estimates.

Shells are one Fourier voxel thick: shell ``i`` holds frequencies with
``round(|k| · d) == i`` (``k`` in cycles/pixel), ``i = 0 … d // 2``; its frequency in 1/Å is
``i / (d · pixel_size)``. The resolution at a threshold is where the curve first drops
below it (linear interpolation between shells), skipping the DC shell.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from .frequencies import friedel_weights, shell_indices
from .volumes import mirror_volume

__all__ = ["FSCResult", "HandComparison", "compare_with_reference", "fourier_shell_correlation"]


@dataclass
class FSCResult:
    """An FSC curve and the resolutions it gives.

    Attributes
    ----------
    frequency_inv_a
        `(d // 2 + 1,)` shell frequencies in 1/Å.
    fsc
        `(d // 2 + 1,)` correlation per shell, in [-1, 1].
    pixel_size_a
        Voxel size in Å (Nyquist resolution is twice this).
    resolution_0143_a, resolution_05_a
        Resolution in Å where the FSC first falls below 0.143 and 0.5; the Nyquist
        resolution when it never does (then ``*_at_nyquist`` is True).
    """

    frequency_inv_a: np.ndarray
    fsc: np.ndarray
    pixel_size_a: float
    resolution_0143_a: float
    resolution_05_a: float
    resolution_0143_at_nyquist: bool
    resolution_05_at_nyquist: bool

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        d = asdict(self)
        d["frequency_inv_a"] = self.frequency_inv_a.tolist()
        d["fsc"] = self.fsc.tolist()
        return d

    def fsc_at_fraction_of_nyquist(self, fraction: float) -> float:
        """FSC interpolated at ``fraction`` × Nyquist."""
        nyquist = 0.5 / self.pixel_size_a
        return float(np.interp(fraction * nyquist, self.frequency_inv_a, self.fsc))


def _crossing(freq: np.ndarray, fsc: np.ndarray, threshold: float) -> tuple[float, bool]:
    below = np.flatnonzero(fsc[1:] < threshold)
    if len(below) == 0:
        return float(freq[-1]), True
    i = below[0] + 1  # first shell below
    f0, f1, c0, c1 = freq[i - 1], freq[i], fsc[i - 1], fsc[i]
    f = f0 + (c0 - threshold) / (c0 - c1) * (f1 - f0) if c0 != c1 else f1
    return float(f), False


def shell_correlation(fa: torch.Tensor, fb: torch.Tensor, shell: torch.Tensor, n_shells: int,
                      weight: torch.Tensor | None = None) -> torch.Tensor:
    """`(n_shells,)` correlation of two flat complex transforms ``fa``, ``fb`` shell by shell
    (``shell``: the integer shell of each sample; ``weight``: optional Friedel weights);
    0 where a shell holds no power."""
    w = torch.ones_like(fa.real) if weight is None else weight
    real = fa.real.dtype

    def total(values: torch.Tensor) -> torch.Tensor:
        return torch.zeros(n_shells, dtype=real, device=fa.device).index_add_(0, shell, w * values)

    cross, pa, pb = total((fa * fb.conj()).real), total(fa.abs() ** 2), total(fb.abs() ** 2)
    denom = torch.sqrt(pa * pb)
    return torch.where(denom > 0, cross / denom.clamp_min(torch.finfo(real).tiny), torch.zeros_like(cross))


def fourier_shell_correlation(
    map1: np.ndarray | torch.Tensor,
    map2: np.ndarray | torch.Tensor,
    pixel_size_a: float = 1.0,
    mask: np.ndarray | torch.Tensor | None = None,
) -> FSCResult:
    """FSC between two maps of the same cubic box.

    Parameters
    ----------
    map1, map2
        `(d, d, d)` maps.
    pixel_size_a
        Voxel size in Å.
    mask
        Optional `(d, d, d)` real-space mask multiplied into both maps.
    """
    a = torch.as_tensor(np.asarray(map1), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(map2), dtype=torch.float64)
    if a.ndim != 3 or len(set(a.shape)) != 1:
        raise ValueError(f"maps must be cubic (d, d, d), got {tuple(a.shape)}")
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if pixel_size_a <= 0:
        raise ValueError("pixel_size_a must be > 0")
    if mask is not None:
        m = torch.as_tensor(np.asarray(mask), dtype=torch.float64)
        a, b = a * m, b * m
    d = a.shape[-1]
    fa, fb = torch.fft.rfftn(a), torch.fft.rfftn(b)
    shell = shell_indices(tuple(a.shape)).flatten()
    n_shells = d // 2 + 1
    keep = shell < n_shells
    shell = shell[keep]
    w = friedel_weights(tuple(a.shape)).flatten()[keep]
    fa, fb = fa.flatten()[keep], fb.flatten()[keep]
    fsc = shell_correlation(fa, fb, shell, n_shells, w).numpy()
    freq = np.arange(n_shells) / (d * pixel_size_a)
    f143, n143 = _crossing(freq, fsc, 0.143)
    f05, n05 = _crossing(freq, fsc, 0.5)
    return FSCResult(
        frequency_inv_a=freq,
        fsc=fsc,
        pixel_size_a=float(pixel_size_a),
        resolution_0143_a=1.0 / f143 if f143 > 0 else float("inf"),
        resolution_05_a=1.0 / f05 if f05 > 0 else float("inf"),
        resolution_0143_at_nyquist=n143,
        resolution_05_at_nyquist=n05,
    )


@dataclass
class HandComparison:
    """FSC of a map against a reference and against the reference's mirror image.

    Attributes
    ----------
    same_hand, opposite_hand
        FSC against the reference and against its mirror image (the opposite hand).
    hand
        ``"same"`` or ``"opposite"``: which one agrees better (mean FSC up to Nyquist).
    """

    same_hand: FSCResult
    opposite_hand: FSCResult
    hand: str

    @property
    def best(self) -> FSCResult:
        """The FSC of the matching hand."""
        return self.same_hand if self.hand == "same" else self.opposite_hand


def compare_with_reference(
    volume: np.ndarray | torch.Tensor,
    reference: np.ndarray | torch.Tensor,
    pixel_size_a: float = 1.0,
    mask: np.ndarray | torch.Tensor | None = None,
) -> HandComparison:
    """FSC of ``volume`` against a ground truth and its mirror image; report the hand.

    The mirror image is the point inversion :func:`~napari_cryorient.engine.volumes.mirror_volume`
    (what a reconstruction of the opposite hand looks like in the same frame).
    """
    ref = torch.as_tensor(np.asarray(reference), dtype=torch.float32)
    same = fourier_shell_correlation(volume, ref, pixel_size_a, mask)
    mirror = fourier_shell_correlation(volume, mirror_volume(ref), pixel_size_a, mask)
    hand = "same" if same.fsc[1:].mean() >= mirror.fsc[1:].mean() else "opposite"
    return HandComparison(same, mirror, hand)
