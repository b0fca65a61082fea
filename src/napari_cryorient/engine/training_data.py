"""Particles with known poses at the network's working box (what training consumes)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import so3
from .ctf import CTFParams
from .inference import network_input

__all__ = ["TrainingData", "fourier_crop_stack", "prepare_training_data"]


@dataclass
class TrainingData:
    """Particles at the network's working box.

    Attributes
    ----------
    images
        `(n, W, W)` float32: clean images when ``noise_std`` is given, else the data.
    quaternions
        `(n, 4)` true orientations.
    noise_std
        `(n,)` per-pixel noise standard deviation at the working box, or None (real data:
        the images already hold their noise).
    original_box
        Box of the images before cropping (the model checks it later).
    groups
        `(n,)` integer volume of each image, or None (one volume). Distances between
        images of different volumes mean nothing: training only pairs images of the same
        group, and validation holds out whole groups.
    phase_flipped
        The images were phase-flipped with their CTF (the model will expect it).
    any_box
        The images come from particles of many sizes and boxes (the model will accept any
        box).
    pixel_size_a
        Pixel size (Å) of the images before cropping, or None (unknown; any pixel size).
    """

    images: np.ndarray
    quaternions: np.ndarray
    noise_std: np.ndarray | None
    original_box: int
    groups: np.ndarray | None = None
    phase_flipped: bool = False
    any_box: bool = False
    pixel_size_a: float | None = None

    def __len__(self) -> int:
        return len(self.images)

    def fingerprint(self) -> str:
        """SHA-256 of the poses and the volume groups: exact, because both are read from a
        file or drawn from a seed, never computed with floating-point kernels whose last
        bits depend on the thread count."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.quaternions, dtype=np.float32).tobytes())
        if self.groups is not None:
            h.update(np.ascontiguousarray(self.groups, dtype=np.int64).tobytes())
        return h.hexdigest()

    def image_signature(self) -> np.ndarray:
        """`(k, 3)` float64 mean, standard deviation and noise level of every 1 in ~64 images.

        The prepared images (Fourier crop, phase flip) differ in their last bits with the
        number of threads, so a resumed training compares this signature with a tolerance
        (:meth:`matches_signature`) instead of hashing the pixels.
        """
        step = max(1, len(self.images) // 64)
        sample = np.asarray(self.images[::step], dtype=np.float64)
        noise = (np.zeros(len(sample)) if self.noise_std is None
                 else np.asarray(self.noise_std[::step], dtype=np.float64))
        flat = sample.reshape(len(sample), -1)
        return np.stack([flat.mean(axis=1), flat.std(axis=1), noise], axis=1)

    def matches_signature(self, signature: Any, rtol: float = 1e-3) -> bool:
        """Whether ``signature`` (from :meth:`image_signature`) describes these images, up
        to a relative tolerance of ``rtol`` of the images' typical scale."""
        mine = self.image_signature()
        other = np.asarray(signature, dtype=np.float64)
        if other.shape != mine.shape:
            return False
        scale = max(float(np.abs(mine).max()), 1e-12)
        return bool(np.all(np.abs(other - mine) <= rtol * scale))


def fourier_crop_stack(
    images: Any,
    working_box: int,
    chunk: int = 1024,
    pixel_size_a: float | None = None,
    shifts_a: np.ndarray | None = None,
    ctf: CTFParams | None = None,
    phase_flip: bool = False,
) -> np.ndarray:
    """`(n, W, W)` float32 copy of a sliceable `(n, B, B)` stack as the network takes it
    (:func:`~napari_cryorient.engine.inference.network_input`: re-centred by known origins,
    phase-flipped when asked, Fourier-cropped to ``W``), in chunks of ``chunk`` images."""
    n = len(images)
    out = np.empty((n, working_box, working_box), dtype=np.float32)
    for start in range(0, n, chunk):
        block = torch.from_numpy(np.array(images[start : start + chunk], dtype=np.float32))
        rows = slice(start, start + len(block))
        block = network_input(block, working_box, pixel_size_a,
                              None if shifts_a is None else np.asarray(shifts_a)[rows],
                              None if ctf is None else ctf.subset(rows), phase_flip)
        out[rows] = block.numpy()
    return out


def prepare_training_data(
    images: Any,
    rotations: np.ndarray,
    working_box: int,
    noise_variance: np.ndarray | None = None,
    pixel_size_a: float | None = None,
    shifts_a: np.ndarray | None = None,
    ctf: CTFParams | None = None,
    phase_flip: bool = False,
) -> TrainingData:
    """The network's view of `(n, B, B)` images (any sliceable stack) with known poses.

    Parameters
    ----------
    images
        Clean images when ``noise_variance`` is given (simulation), else the data.
    rotations
        `(n, 3, 3)` true poses.
    working_box
        ``W``: the images are Fourier-cropped to it.
    noise_variance
        `(n,)` per-pixel noise variance at box ``B`` (simulation) or None. Cropping white
        noise to ``W`` keeps it white with variance scaled by ``(W / B)²``; phase flipping
        keeps it white too.
    pixel_size_a, shifts_a, ctf, phase_flip
        Pixel size (Å), `(n, 2)` known RELION origins (Å; the images are re-centred) and
        CTFs; with ``phase_flip`` the images are phase-flipped with their CTF and the model
        trained on them will phase-flip its inputs too. The same function,
        :func:`~napari_cryorient.engine.inference.network_input`, prepares the images at
        use time.
    """
    n = len(images)
    if len(rotations) != n:
        raise ValueError(f"{n} images but {len(rotations)} poses")
    box = int(np.asarray(images[0:1]).shape[-1])
    if working_box > box:
        raise ValueError(f"working box {working_box} is larger than the images ({box})")
    flip = phase_flip and ctf is not None
    cropped = fourier_crop_stack(images, working_box, pixel_size_a=pixel_size_a, shifts_a=shifts_a,
                                 ctf=ctf, phase_flip=flip)
    if not np.isfinite(cropped).all():
        raise ValueError("images contain NaN or infinite values")
    std = None
    if noise_variance is not None:
        std = (np.sqrt(np.asarray(noise_variance, dtype=np.float64)) * working_box / box).astype(np.float32)
    return TrainingData(cropped, so3.matrix_to_quaternion(rotations), std, box, phase_flipped=flip,
                        pixel_size_a=None if pixel_size_a is None else float(pixel_size_a))
