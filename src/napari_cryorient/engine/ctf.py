"""Contrast transfer function (RELION's definition, computed with torch-ctf).

``CTF(s) = -sin(chi(s))`` with RELION's sign conventions: positive defocus is underfocus,
``defocus_u`` lies along the direction ``defocus_angle_deg`` measured from the image x axis
towards y (rows), amplitude contrast as a phase, and an optional B-factor envelope
``exp(-B s^2 / 4)``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np
import torch
from torch_ctf import calculate_ctf_2d

from .frequencies import frequency_norm

__all__ = ["CTFParams", "compute_ctf_rfft"]


@dataclass(frozen=True)
class CTFParams:
    """Per-particle CTF parameters, each a `(n,)` float64 array (RELION units).

    Attributes
    ----------
    defocus_u_a, defocus_v_a
        Defocus along the major/minor axes in Å (``rlnDefocusU``/``V``), underfocus > 0.
    defocus_angle_deg
        Astigmatism angle in degrees (``rlnDefocusAngle``).
    voltage_kv
        Acceleration voltage in kV (``rlnVoltage``).
    cs_mm
        Spherical aberration in mm (``rlnSphericalAberration``).
    amplitude_contrast
        Fraction in [0, 1] (``rlnAmplitudeContrast``).
    b_factor
        Envelope B-factor in Å² (``rlnCtfBfactor``), 0 for none.
    phase_shift_deg
        Phase-plate shift in degrees (``rlnPhaseShift``).
    """

    defocus_u_a: np.ndarray
    defocus_v_a: np.ndarray
    defocus_angle_deg: np.ndarray
    voltage_kv: np.ndarray
    cs_mm: np.ndarray
    amplitude_contrast: np.ndarray
    b_factor: np.ndarray
    phase_shift_deg: np.ndarray

    def __post_init__(self) -> None:
        n = None
        for f in fields(self):
            value = np.atleast_1d(np.asarray(getattr(self, f.name), dtype=np.float64))
            object.__setattr__(self, f.name, value)
            if n is None:
                n = len(value)
            elif len(value) not in (1, n):
                raise ValueError(f"CTF field {f.name} has {len(value)} values, expected {n}")
        if n is not None:
            for f in fields(self):
                value = getattr(self, f.name)
                if len(value) == 1 and n > 1:
                    object.__setattr__(self, f.name, np.repeat(value, n))

    def __len__(self) -> int:
        return len(self.defocus_u_a)

    #: physically possible values of each field (RELION units), inclusive
    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "defocus_u_a": (-2e5, 2e5), "defocus_v_a": (-2e5, 2e5), "defocus_angle_deg": (-1e4, 1e4),
        "voltage_kv": (1.0, 3000.0), "cs_mm": (-20.0, 20.0), "amplitude_contrast": (0.0, 1.0),
        "b_factor": (-1e4, 1e4), "phase_shift_deg": (-1e4, 1e4),
    }

    def first_invalid(self) -> tuple[int, str, float] | None:
        """``(row, field, value)`` of the first non-finite or impossible value (0-based
        row), or None when every value is usable."""
        for name, (lo, hi) in self.LIMITS.items():
            v = getattr(self, name)
            bad = np.flatnonzero(~np.isfinite(v) | (v < lo) | (v > hi))
            if len(bad):
                return int(bad[0]), name, float(v[bad[0]])
        return None

    def subset(self, index: np.ndarray | slice) -> CTFParams:
        """The parameters of a subset of particles."""
        return CTFParams(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def constant(
        cls,
        n: int,
        defocus_u_a: float = 15000.0,
        defocus_v_a: float | None = None,
        defocus_angle_deg: float = 0.0,
        voltage_kv: float = 300.0,
        cs_mm: float = 2.7,
        amplitude_contrast: float = 0.1,
        b_factor: float = 0.0,
        phase_shift_deg: float = 0.0,
    ) -> CTFParams:
        """The same parameters for ``n`` particles."""
        v = defocus_u_a if defocus_v_a is None else defocus_v_a
        return cls(
            *(np.full(n, x, dtype=np.float64) for x in (
                defocus_u_a, v, defocus_angle_deg, voltage_kv, cs_mm,
                amplitude_contrast, b_factor, phase_shift_deg,
            ))
        )


def compute_ctf_rfft(
    params: CTFParams, size: int, pixel_size_a: float, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """CTF images on the unshifted rfft grid of square images.

    Parameters
    ----------
    params
        Parameters of ``n`` particles.
    size
        Image side length in pixels.
    pixel_size_a
        Pixel size in Å.

    Returns
    -------
    torch.Tensor
        `(n, size, size // 2 + 1)` float32 CTF values, layout of ``torch.fft.rfft2``.
    """
    def t(x: np.ndarray) -> torch.Tensor:
        return torch.tensor(np.asarray(x), dtype=torch.float32, device=device)

    mean_um = t((params.defocus_u_a + params.defocus_v_a) / 2e4)
    astig_um = t((params.defocus_u_a - params.defocus_v_a) / 2e4)
    ctf = calculate_ctf_2d(
        defocus=mean_um,
        astigmatism=astig_um,
        # torch-ctf measures the angle the other way round (checked in tests)
        astigmatism_angle=t(params.defocus_angle_deg),
        voltage=t(params.voltage_kv),
        spherical_aberration=t(params.cs_mm),
        amplitude_contrast=t(params.amplitude_contrast),
        phase_shift=t(params.phase_shift_deg),
        pixel_size=float(pixel_size_a),
        image_shape=(size, size),
        rfft=True,
        fftshift=False,
    )
    ctf = ctf.reshape(len(params), size, size // 2 + 1).to(torch.float32)
    if np.any(params.b_factor != 0):
        s2 = frequency_norm((size, size), spacing=pixel_size_a, device=device) ** 2
        ctf = ctf * torch.exp(-t(params.b_factor)[:, None, None] * s2 / 4)
    return ctf
