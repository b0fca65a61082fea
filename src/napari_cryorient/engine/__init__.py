"""The computational engine: torch and numpy only, no Qt, no file formats.

See :mod:`napari_cryorient.engine.so3` for the rotation convention used everywhere.
"""

from . import so3
from .ctf import CTFParams, compute_ctf_rfft
from .fourier import fourier_resize_images, fourier_resize_volume, shift_images
from .fsc import FSCResult, HandComparison, compare_with_reference, fourier_shell_correlation
from .jobs import EngineError, Progress, run_job
from .projector import FourierProjector
from .reconstruct import CTF_CORRECTIONS, ReconstructionResult, reconstruct_volume
from .simulate import (
    ProjectionResult,
    SimulationConfig,
    SimulationResult,
    noise_variance_from_snr_db,
    project_particles,
    simulate_particles,
    snr_db_from_noise_variance,
)
from .volumes import (
    SAMPLES,
    density_from_atoms,
    make_pseudo_protein,
    make_sample_volume,
    mirror_volume,
    normalise_volume,
)

__all__ = [
    "CTF_CORRECTIONS",
    "SAMPLES",
    "CTFParams",
    "EngineError",
    "FSCResult",
    "FourierProjector",
    "HandComparison",
    "Progress",
    "ProjectionResult",
    "ReconstructionResult",
    "SimulationConfig",
    "SimulationResult",
    "compare_with_reference",
    "compute_ctf_rfft",
    "density_from_atoms",
    "fourier_resize_images",
    "fourier_resize_volume",
    "fourier_shell_correlation",
    "make_pseudo_protein",
    "make_sample_volume",
    "mirror_volume",
    "noise_variance_from_snr_db",
    "normalise_volume",
    "project_particles",
    "reconstruct_volume",
    "run_job",
    "shift_images",
    "simulate_particles",
    "snr_db_from_noise_variance",
    "so3",
]
