"""Simulated particle images: ``X = CTF * shift(project(R · V)) + noise``.

* Projection: :class:`~napari_cryorient.engine.projector.FourierProjector` (RELION-exact).
* Shifts follow RELION's origin convention: a particle with origin ``(ox, oy)`` Å
  (``rlnOriginXAngst``/``YAngst``) shows the map centre at ``centre - origin / pixel_size``;
  shifting the image by ``+origin`` re-centres it.
* CTF: :func:`~napari_cryorient.engine.ctf.compute_ctf_rfft` (RELION's definition).
* Noise: white Gaussian, per image ``SNR = var(clean image) / var(noise)`` over the whole
  box, given in dB: ``snr_db = 10 log10(SNR)``; noise variance ``σ² = var(clean) / SNR``.
  The paper's ``σ² = 16`` on unit-variance images is ``SNR = 1/16 ≈ -12.04 dB``.

Work is done in chunks of ``chunk_size`` particles, so memory does not grow with ``N``
beyond the output itself (which a caller can stream to disk through ``sink``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np
import torch

from . import so3
from .ctf import CTFParams, compute_ctf_rfft
from .fourier import prepare_rfft
from .jobs import EngineError, Progress, forward
from .projector import FourierProjector

__all__ = [
    "ProjectionResult",
    "SimulationConfig",
    "SimulationResult",
    "noise_variance_from_snr_db",
    "project_particles",
    "simulate_particles",
    "snr_db_from_noise_variance",
]

ImageSink = Callable[[int, np.ndarray], None]
"""Receives ``(start_index, images)`` with `(n_chunk, box, box)` float32 images."""


def snr_db_from_noise_variance(noise_variance: float, signal_variance: float = 1.0) -> float:
    """``10 log10(signal_variance / noise_variance)``; e.g. σ² = 16 on unit images → -12.04 dB."""
    return float(10.0 * np.log10(signal_variance / noise_variance))


def noise_variance_from_snr_db(snr_db: float, signal_variance: float = 1.0) -> float:
    """Noise variance giving ``snr_db`` for images of variance ``signal_variance``."""
    return float(signal_variance / 10.0 ** (snr_db / 10.0))


@dataclass(frozen=True)
class SimulationConfig:
    """Settings of a simulated data set.

    Attributes
    ----------
    n_particles
        Number of images.
    orientations
        ``"uniform"`` on SO(3), ``"euler"`` (uniform RELION angles) or ``"preferred"``.
    snr_db
        Per-image SNR in dB; ``None`` for noise-free images.
    shift_std_a
        Standard deviation (Å, per axis) of the random origins; 0 for centred particles.
    ctf
        Apply a CTF (defocus uniform in ``defocus_range_um``).
    defocus_range_um, astigmatism_um
        Mean defocus range (µm, underfocus > 0) and maximum ``(U - V) / 2`` (µm).
    voltage_kv, cs_mm, amplitude_contrast, b_factor
        Microscope (RELION units).
    n_directions, spread_deg
        Parameters of the ``"preferred"`` distribution.
    seed
        Seed of poses, shifts, CTF and noise.
    chunk_size
        Particles per chunk (memory bound).
    """

    n_particles: int = 1000
    orientations: str = "uniform"
    snr_db: float | None = None
    shift_std_a: float = 0.0
    ctf: bool = False
    defocus_range_um: tuple[float, float] = (1.0, 2.5)
    astigmatism_um: float = 0.05
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.1
    b_factor: float = 0.0
    n_directions: int = 3
    spread_deg: float = 15.0
    seed: int = 0
    chunk_size: int = 256

    def validate(self) -> None:
        """Raise ``ValueError`` for impossible settings."""
        if self.n_particles < 1:
            raise ValueError(f"number of particles must be >= 1, got {self.n_particles}")
        if self.orientations not in so3.ORIENTATION_DISTRIBUTIONS:
            raise ValueError(
                f"unknown orientation distribution {self.orientations!r}; choose one of "
                + ", ".join(so3.ORIENTATION_DISTRIBUTIONS)
            )
        if self.shift_std_a < 0:
            raise ValueError("shift standard deviation must be >= 0 Å")
        lo, hi = self.defocus_range_um
        if self.ctf and not (0 < lo <= hi):
            raise ValueError(f"defocus range must satisfy 0 < min <= max, got {lo}..{hi} µm")
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        if self.snr_db is not None and not np.isfinite(self.snr_db):
            raise ValueError("snr_db must be finite (use None for noise-free images)")


@dataclass
class ProjectionResult:
    """Images and the parameters they were made with.

    Attributes
    ----------
    images
        `(n, box, box)` float32, or ``None`` when they went to a sink.
    rotations
        `(n, 3, 3)` poses (package convention).
    shifts_a
        `(n, 2)` RELION origins ``(x, y)`` in Å.
    pixel_size_a
        Pixel size in Å.
    ctf
        CTF parameters or ``None``.
    """

    images: np.ndarray | None
    rotations: np.ndarray
    shifts_a: np.ndarray
    pixel_size_a: float
    ctf: CTFParams | None = None

    @property
    def euler_deg(self) -> np.ndarray:
        """`(n, 3)` RELION ``(rot, tilt, psi)`` in degrees."""
        return so3.matrix_to_euler_relion(self.rotations)


@dataclass
class SimulationResult(ProjectionResult):
    """A :class:`ProjectionResult` plus the noise that was added.

    Attributes
    ----------
    snr_db
        Requested SNR (``None`` for clean images).
    noise_variance
        `(n,)` variance of the noise added to each image (0 when clean).
    signal_variance
        `(n,)` variance of each clean image.
    """

    snr_db: float | None = None
    noise_variance: np.ndarray = field(default_factory=lambda: np.zeros(0))
    signal_variance: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _make_output(n: int, box: int, sink: ImageSink | None) -> tuple[np.ndarray | None, ImageSink]:
    if sink is not None:
        return None, sink
    out = np.empty((n, box, box), dtype=np.float32)

    def store(start: int, chunk: np.ndarray) -> None:
        out[start : start + len(chunk)] = chunk

    return out, store


def _apply_shift_and_ctf(
    images: torch.Tensor,
    pixel_size_a: float,
    shifts_a: np.ndarray | None,
    ctf: torch.Tensor | None,
) -> torch.Tensor:
    """The image formation after projection: translate by ``−origin`` (RELION: the image
    shows the projection moved by −origin) and multiply by the CTF — the inverse of the
    one image preparation :func:`~napari_cryorient.engine.fourier.prepare_rfft`."""
    if shifts_a is None and ctf is None:
        return images
    n = images.shape[-1]
    f = prepare_rfft(images, pixel_size_a, None if shifts_a is None else -shifts_a)
    if ctf is not None:
        f = f * ctf
    return torch.fft.fftshift(torch.fft.irfft2(f, s=(n, n)), dim=(-2, -1))


def project_particles(
    volume: torch.Tensor,
    rotations: np.ndarray,
    pixel_size_a: float,
    shifts_a: np.ndarray | None = None,
    ctf: CTFParams | None = None,
    chunk_size: int = 256,
    sink: ImageSink | None = None,
    device: torch.device | str = "cpu",
) -> Generator[Progress, None, ProjectionResult]:
    """Project a map at known poses (``relion_project``), in chunks.

    Parameters
    ----------
    volume
        `(d, d, d)` map.
    rotations
        `(n, 3, 3)` poses (package convention, see :mod:`~napari_cryorient.engine.so3`).
    pixel_size_a
        Pixel size of map and images in Å.
    shifts_a
        `(n, 2)` RELION origins in Å, or None.
    ctf
        CTF parameters of the ``n`` particles, or None.
    chunk_size
        Particles per chunk.
    sink
        Optional ``sink(start, images)`` receiving each chunk (e.g. an MRC writer);
        without it the images are returned in memory.

    Yields
    ------
    Progress
        After each chunk.

    Returns
    -------
    ProjectionResult
    """
    rotations = np.asarray(rotations, dtype=np.float64)
    n = len(rotations)
    if n < 1:
        raise ValueError("no poses to project")
    if shifts_a is None:
        shifts_a = np.zeros((n, 2))
    shifts_a = np.asarray(shifts_a, dtype=np.float64)
    if shifts_a.shape != (n, 2):
        raise ValueError(f"shifts_a must have shape ({n}, 2), got {shifts_a.shape}")
    if ctf is not None and len(ctf) != n:
        raise ValueError(f"{len(ctf)} CTF parameter sets for {n} poses")
    box = volume.shape[-1]
    try:
        projector = FourierProjector(volume, device=device)
        out, store = _make_output(n, box, sink)
        for start in range(0, n, chunk_size):
            stop = min(n, start + chunk_size)
            images = projector.project(torch.from_numpy(rotations[start:stop]))
            ctf_img = (
                compute_ctf_rfft(ctf.subset(slice(start, stop)), box, pixel_size_a, images.device)
                if ctf is not None
                else None
            )
            shifts = shifts_a[start:stop]
            has_shift = bool(np.any(shifts != 0))
            images = _apply_shift_and_ctf(images, pixel_size_a, shifts if has_shift else None, ctf_img)
            store(start, images.cpu().numpy().astype(np.float32, copy=False))
            yield Progress("project", stop, n)
    except EngineError:
        raise
    except RuntimeError as err:  # torch errors, out of memory
        raise EngineError(f"projection failed: {err}") from err
    return ProjectionResult(out, rotations, shifts_a, float(pixel_size_a), ctf)


def _draw_ctf(config: SimulationConfig, rng: np.random.Generator) -> CTFParams:
    n = config.n_particles
    lo, hi = config.defocus_range_um
    mean_a = rng.uniform(lo, hi, n) * 1e4
    astig_a = rng.uniform(0, config.astigmatism_um, n) * 1e4
    return CTFParams(
        defocus_u_a=mean_a + astig_a,
        defocus_v_a=mean_a - astig_a,
        defocus_angle_deg=rng.uniform(-180, 180, n),
        voltage_kv=np.full(n, config.voltage_kv),
        cs_mm=np.full(n, config.cs_mm),
        amplitude_contrast=np.full(n, config.amplitude_contrast),
        b_factor=np.full(n, config.b_factor),
        phase_shift_deg=np.zeros(n),
    )


def simulate_particles(
    volume: torch.Tensor,
    pixel_size_a: float,
    config: SimulationConfig,
    sink: ImageSink | None = None,
    device: torch.device | str = "cpu",
    clean_sink: ImageSink | None = None,
) -> Generator[Progress, None, SimulationResult]:
    """Simulate a particle data set from a map.

    Poses are drawn from ``config.orientations``, origins from a Gaussian of
    ``config.shift_std_a``, CTF parameters uniformly in the configured range, then
    white noise at ``config.snr_db`` (per-image SNR, see module docstring). Everything is
    seeded by ``config.seed``; the result does not depend on ``chunk_size``.

    Parameters
    ----------
    volume
        `(d, d, d)` map; images are `(d, d)`.
    pixel_size_a
        Pixel size in Å.
    config
        Simulation settings.
    sink
        Optional receiver of image chunks (see :func:`project_particles`).
    clean_sink
        Optional receiver of the noise-free chunks as well.

    Yields
    ------
    Progress

    Returns
    -------
    SimulationResult
        Images (unless streamed to ``sink``) and the ground truth.
    """
    config.validate()
    n = config.n_particles
    rng = np.random.default_rng(config.seed)
    rotations = so3.sample_orientations(
        n, config.orientations, seed=int(rng.integers(2**32)),
        n_directions=config.n_directions, spread_deg=config.spread_deg,
    )
    shifts_a = (
        rng.normal(0.0, config.shift_std_a, (n, 2)) if config.shift_std_a > 0 else np.zeros((n, 2))
    )
    ctf = _draw_ctf(config, rng) if config.ctf else None
    noise_rng = np.random.default_rng(rng.integers(2**32))
    noise_var = np.zeros(n)
    signal_var = np.zeros(n)
    box = volume.shape[-1]
    out, store = _make_output(n, box, sink)

    def noisy_store(start: int, clean: np.ndarray) -> None:
        if clean_sink is not None:
            clean_sink(start, clean)
        var = clean.reshape(len(clean), -1).var(axis=1, dtype=np.float64)
        signal_var[start : start + len(clean)] = var
        if config.snr_db is None:
            store(start, clean)
            return
        if np.any(var <= 0):
            raise EngineError("a clean projection is constant: is the map empty?")
        sigma2 = var / 10.0 ** (config.snr_db / 10.0)
        noise_var[start : start + len(clean)] = sigma2
        noise = noise_rng.standard_normal(clean.shape, dtype=np.float32)
        store(start, clean + noise * np.sqrt(sigma2).astype(np.float32)[:, None, None])

    projected = yield from forward(
        project_particles(volume, rotations, pixel_size_a, shifts_a, ctf,
                          chunk_size=config.chunk_size, sink=noisy_store, device=device),
        "simulate",
        message="clean" if config.snr_db is None else f"SNR {config.snr_db:g} dB",
    )
    return SimulationResult(
        images=out,
        rotations=projected.rotations,
        shifts_a=shifts_a,
        pixel_size_a=float(pixel_size_a),
        ctf=ctf,
        snr_db=config.snr_db,
        noise_variance=noise_var,
        signal_variance=signal_var,
    )
