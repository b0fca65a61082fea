"""Scoring against a truth (simulations only): pose errors and map resolution.

Nothing here feeds back into the method: :func:`recover_poses` never sees a truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..engine import so3
from ..engine.align import AlignmentResult, align_harmless, align_to_reference
from ..engine.fsc import FSCResult, HandComparison, compare_with_reference, fourier_shell_correlation
from ..engine.jobs import Job, forward
from ..engine.particles import Particles
from ..engine.reconstruct import ReconstructionResult, reconstruct_volume
from ..engine.volumes import mirror_volume

__all__ = ["MapScore", "PoseMetrics", "evaluate_poses", "harmless_alignment", "random_pose_baseline",
           "score_map", "translate_to_reference"]


def _as_quaternions(poses: np.ndarray) -> np.ndarray:
    poses = np.asarray(poses, dtype=np.float64)
    return poses if poses.shape[-1] == 4 else so3.matrix_to_quaternion(poses)


@dataclass
class PoseMetrics:
    """Errors of estimated poses against the true ones.

    Attributes
    ----------
    o4
        After the best alignment over the whole ambiguity group O(4) (the method's limit).
    harmless
        After the harmless global rotation only, the hand left free (what a user gets once
        the ambiguity was resolved from the images).
    """

    o4: AlignmentResult
    harmless: AlignmentResult

    def summary(self) -> dict[str, Any]:
        return {"o4": self.o4.summary(), "harmless": self.harmless.summary()}


def harmless_alignment(poses: np.ndarray, truth: np.ndarray) -> AlignmentResult:
    """Errors after the harmless global rotation only, the hand left free (closed form:
    cheap enough for every display of poses)."""
    return align_harmless(_as_quaternions(poses), _as_quaternions(truth), allow_hand_flip=True)


def evaluate_poses(poses: np.ndarray, truth: np.ndarray, seed: int = 0) -> PoseMetrics:
    """Align `(n, 3, 3)` poses (or `(n, 4)` quaternions) to the truth both ways.

    Parameters
    ----------
    poses, truth
        Estimated and true orientations, same count, package convention.
    seed
        Seed of the O(4) search's random starts.
    """
    q, q_true = _as_quaternions(poses), _as_quaternions(truth)
    if q.shape != q_true.shape:
        raise ValueError(f"{len(q)} estimated poses but {len(q_true)} true ones")
    return PoseMetrics(align_to_reference(q, q_true, seed=seed), harmless_alignment(q, q_true))


@dataclass
class MapScore:
    """A reconstruction scored: gold-standard half-maps, and against the true map.

    Attributes
    ----------
    half_maps
        FSC between the two half-maps (what a user without a truth sees).
    truth
        FSC against the true map, both hands tried (None without a true map).
    """

    half_maps: FSCResult | None
    truth: HandComparison | None


def random_pose_baseline(particles: Particles, ctf_correction: str = "none", regularisation: float = 1e-3,
                         seed: int = 0) -> Job[FSCResult]:
    """The half-map FSC the same images give with uniformly random poses: what a half-map
    FSC without a truth must beat before it means anything (noise alone correlates at low
    frequency, and both halves share the reconstruction's regularisation and mask).

    Yields ``Progress`` (stage ``baseline``); returns the half-map FSC of the random poses.
    """
    poses = so3.sample_orientations(len(particles), "uniform", seed=seed + 12345)
    rec = yield from forward(
        reconstruct_volume(particles.images, poses, particles.require_pixel_size(),
                           shifts_a=particles.shifts_a, ctf=particles.ctf, ctf_correction=ctf_correction,
                           half_maps=True, seed=seed, regularisation=regularisation),
        "baseline", message="random poses")
    return fourier_shell_correlation(*rec.half_maps, rec.pixel_size_a)


def score_map(rec: ReconstructionResult, truth: np.ndarray | torch.Tensor | None = None) -> MapScore:
    """FSC of the half-maps (when reconstructed) and against the true map (when given)."""
    px = rec.pixel_size_a
    half = fourier_shell_correlation(*rec.half_maps, px) if rec.half_maps is not None else None
    vs_truth = compare_with_reference(rec.volume, truth, px) if truth is not None else None
    return MapScore(half, vs_truth)


def translate_to_reference(volume: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Move ``volume`` by the whole-voxel shift that best overlays it on ``reference``.

    A truth-free reconstruction fixes its frame only up to a global rotation (see
    :func:`harmless_alignment`) and a global translation: every particle's origin can
    absorb the same 3D shift. The shift is the peak of the cross-correlation of the two
    maps (circular, FFT) and of the correlation with the mirror image of ``reference``,
    the better of the two hands; the scorer applies it before an FSC against the truth.

    Parameters
    ----------
    volume, reference
        `(d, d, d)` maps on the same grid.

    Returns
    -------
    moved : np.ndarray
        `(d, d, d)` ``volume`` rolled by the shift.
    shift_px : np.ndarray
        `(3,)` the shift (voxels, ``[z, y, x]``, each in ``[-d/2, d/2)``).
    """
    vol = torch.as_tensor(np.asarray(volume), dtype=torch.float64)
    ref = torch.as_tensor(np.asarray(reference), dtype=torch.float64)
    fv = torch.fft.fftn(vol - vol.mean())
    best = None
    for target in (ref, mirror_volume(ref)):
        cc = torch.fft.ifftn(torch.fft.fftn(target - target.mean()) * fv.conj()).real
        peak = int(cc.argmax())
        if best is None or cc.reshape(-1)[peak] > best[0]:
            best = (cc.reshape(-1)[peak], np.unravel_index(peak, cc.shape))
    d = np.array(vol.shape)
    shift = (np.array(best[1]) + d // 2) % d - d // 2
    return np.roll(vol.numpy(), tuple(int(s) for s in shift), axis=(0, 1, 2)), shift
