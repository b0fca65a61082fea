"""The computational engine: torch and numpy only, no Qt, no file formats.

See :mod:`napari_cryorient.engine.so3` for the rotation convention used everywhere.
"""

from . import so3
from .ctf import CTFParams, compute_ctf_rfft
from .device import resolve_device
from .fourier import fourier_resize_images, fourier_resize_volume, shift_images
from .fsc import FSCResult, HandComparison, compare_with_reference, fourier_shell_correlation
from .inference import DistanceModel, image_features
from .jobs import EngineError, Job, Progress, forward, run_job
from .particles import Particles
from .projector import FourierProjector
from .reconstruct import CTF_CORRECTIONS, ReconstructionResult, reconstruct_volume
from .recover import ExactDistances, FeatureDistances, RecoveryConfig, recover_orientations
from .refine import RefineConfig, refine_orientations
from .simulate import (
    ProjectionResult,
    SimulationConfig,
    SimulationResult,
    noise_variance_from_snr_db,
    project_particles,
    simulate_particles,
    snr_db_from_noise_variance,
)
from .train import DistanceTrainer, TrainConfig, prepare_training_data
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
    "DistanceModel",
    "DistanceTrainer",
    "EngineError",
    "ExactDistances",
    "FSCResult",
    "FeatureDistances",
    "FourierProjector",
    "HandComparison",
    "Job",
    "Particles",
    "Progress",
    "ProjectionResult",
    "ReconstructionResult",
    "RecoveryConfig",
    "RefineConfig",
    "SimulationConfig",
    "SimulationResult",
    "TrainConfig",
    "compare_with_reference",
    "compute_ctf_rfft",
    "density_from_atoms",
    "forward",
    "fourier_resize_images",
    "fourier_resize_volume",
    "fourier_shell_correlation",
    "image_features",
    "make_pseudo_protein",
    "make_sample_volume",
    "mirror_volume",
    "noise_variance_from_snr_db",
    "normalise_volume",
    "prepare_training_data",
    "project_particles",
    "reconstruct_volume",
    "recover_orientations",
    "refine_orientations",
    "resolve_device",
    "run_job",
    "shift_images",
    "simulate_particles",
    "snr_db_from_noise_variance",
    "so3",
]
