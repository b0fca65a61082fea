"""Applying a trained distance network: image features, chunk by chunk.

What the network sees is fixed here, once, for training and for use
(:func:`network_input`, then :func:`normalise_for_network`): images re-centred by their
origins when known, phase-flipped with their own CTF when the model asks for it,
Fourier-cropped to the working box ``W``, standardised — with the training set's
statistics, or each image on its own (the generalist network: the same for simulations
and real stacks) — and masked to a disc.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .ctf import CTFParams, compute_ctf_rfft
from .fourier import fourier_resize_images, prepare_rfft
from .jobs import EngineError, Progress
from .masks import circular_mask
from .siamese import SiameseNet

__all__ = ["DistanceModel", "compute_features", "image_features", "network_input", "normalise_for_network"]

Norm = tuple[float, float] | None
"""``(mean, std)`` of the training images, or None: each image standardised on its own."""


def normalise_for_network(x: torch.Tensor, norm: Norm) -> torch.Tensor:
    """Standardise `(b, W, W)` images — with the training set's ``(mean, std)``, or each
    image by its own mean and standard deviation when ``norm`` is None — and mask them to
    a disc of radius ``W / 2`` (1-pixel cosine edge), so that in-plane rotations never
    change what the network sees at the corners."""
    w = x.shape[-1]
    if norm is None:
        flat = x.reshape(len(x), -1)
        mean = flat.mean(1)[:, None, None]
        std = flat.std(1).clamp_min(1e-8)[:, None, None]
    else:
        mean, std = norm
    return (x - mean) / std * circular_mask(w, w / 2 - 1, 1.0, x.dtype, x.device)


def network_input(
    images: torch.Tensor,
    working_box: int,
    pixel_size_a: float | None = None,
    shifts_a: np.ndarray | None = None,
    ctf: CTFParams | None = None,
    phase_flip: bool = False,
) -> torch.Tensor:
    """`(b, W, W)` images as the network takes them, before normalisation.

    Parameters
    ----------
    images
        `(b, B, B)` particle images.
    working_box
        ``W``: the images are Fourier-cropped to it.
    pixel_size_a
        Pixel size (Å); needed for shifts and CTF.
    shifts_a
        `(b, 2)` RELION origins (Å): the images are re-centred, or None.
    ctf
        The `b` particles' CTFs; used when ``phase_flip`` (the Fourier coefficients are
        multiplied by the sign of their CTF, which removes the contrast inversions and
        keeps white noise white).
    phase_flip
        Whether the model was trained on phase-flipped images.
    """
    n = images.shape[-1]
    flip = phase_flip and ctf is not None
    has_shift = shifts_a is not None and bool(np.any(np.asarray(shifts_a) != 0))
    if flip or has_shift:
        if pixel_size_a is None:
            raise ValueError("the pixel size is needed to re-centre or phase-flip images")
        f = prepare_rfft(images, pixel_size_a, shifts_a if has_shift else None)
        if flip:
            f = f * torch.sign(compute_ctf_rfft(ctf, n, pixel_size_a, images.device))
        images = torch.fft.fftshift(torch.fft.irfft2(f, s=(n, n)), dim=(-2, -1))
    return fourier_resize_images(images, working_box) if n != working_box else images


@dataclass
class DistanceModel:
    """A trained network and what it expects of its input.

    Attributes
    ----------
    net
        The Siamese encoder (eval mode).
    norm
        ``(mean, std)`` of the training images at the working box, or None: each image is
        standardised on its own.
    original_box
        Box (pixels) of the images it was trained on; inputs must have it, unless
        ``any_box``.
    phase_flip
        The network takes phase-flipped images (see :func:`network_input`).
    any_box
        The network was trained on particles of many sizes and pixel sizes (the
        generalist): any box is accepted and Fourier-resized to the working box.
    pixel_size_a
        Pixel size (Å) of the training images, or None (not recorded): images of another
        pixel size show the protein at another scale, and are refused.
    """

    net: SiameseNet
    norm: Norm
    original_box: int
    phase_flip: bool = False
    any_box: bool = False
    pixel_size_a: float | None = None

    @property
    def working_box(self) -> int:
        """Side (pixels) of the Fourier-cropped images the network sees."""
        return int(self.net.config.working_box)

    def check_box(self, box: int, what: str = "the images") -> None:
        """``ValueError`` unless ``box`` is the box the model was trained on (or the model
        accepts any box, and this one is at least the working box)."""
        if self.any_box:
            if box < self.working_box:
                raise ValueError(f"{what} are {box} px, smaller than the network's working box "
                                 f"({self.working_box} px)")
            return
        if box != self.original_box:
            raise ValueError(f"the model was trained on {self.original_box} px images, "
                             f"{what} are {box} px")

    def check_pixel_size(self, pixel_size_a: float | None, what: str = "the images") -> None:
        """``ValueError`` when both pixel sizes are known and differ by more than 2 % (the
        generalist accepts any)."""
        if self.any_box or self.pixel_size_a is None or pixel_size_a is None:
            return
        if abs(pixel_size_a / self.pixel_size_a - 1) > 0.02:
            raise ValueError(f"the model was trained on images of {self.pixel_size_a:.4g} Å/px, {what} are "
                             f"{pixel_size_a:.4g} Å/px: train a model on images of this pixel size")


def quarter_turn(images: torch.Tensor, k: int) -> torch.Tensor:
    """`(..., W, W)` images turned by ``k`` quarter turns about pixel ``W // 2`` (the
    Fourier centre, where the particle's centre is), exactly: ``torch.rot90`` turns about
    ``(W - 1) / 2``, so for even ``W`` the result is rolled back by one pixel (a row or
    column that wraps around is outside the network's disc mask)."""
    k %= 4
    out = torch.rot90(images, k, dims=(-2, -1))
    if images.shape[-1] % 2:
        return out
    roll = {0: (0, 0), 1: (1, 0), 2: (1, 1), 3: (0, 1)}[k]
    return torch.roll(out, shifts=roll, dims=(-2, -1))


@torch.no_grad()
def compute_features(
    model: SiameseNet,
    images: Any,
    norm: Norm,
    chunk: int = 512,
    device: torch.device | str = "cpu",
    rotations: int = 1,
) -> np.ndarray:
    """`(n, f · rotations)` features of images already at the working box, in chunks (eval mode).

    With ``rotations = K > 1`` (1, 2 or 4) each image is also turned in-plane by multiples
    of 360°/K (exact quarter turns of the masked image), and the unit features of the K
    turns are concatenated, each scaled by ``1/√K``: the cosine of two such vectors is the
    mean of the K cosines. Turning *both* images of a pair by the same angle changes both
    poses by the same left factor, which leaves their distance unchanged, so this averages
    the network's error over K views of the same pair (test-time augmentation).
    """
    if rotations not in (1, 2, 4):
        raise ValueError(f"rotations must be 1, 2 or 4 (quarter turns), not {rotations}")
    model.eval()
    out = []
    step = 4 // rotations
    for start in range(0, len(images), chunk):
        x = torch.as_tensor(np.asarray(images[start : start + chunk], dtype=np.float32), device=device)
        x = normalise_for_network(x, norm)
        if rotations == 1:
            out.append(model.encode(x).float().cpu())
            continue
        turns = [torch.nn.functional.normalize(model.encode(quarter_turn(x, k * step)).float(), dim=-1)
                 for k in range(rotations)]
        out.append((torch.cat(turns, dim=-1) / rotations**0.5).cpu())
    return torch.cat(out).numpy()


def image_features(
    model: DistanceModel,
    images: Any,
    chunk: int = 512,
    device: torch.device | str = "cpu",
    pixel_size_a: float | None = None,
    shifts_a: np.ndarray | None = None,
    ctf: CTFParams | None = None,
    rotations: int = 1,
) -> Generator[Progress, None, np.ndarray]:
    """Features of particle images at their original box, chunk by chunk.

    Parameters
    ----------
    model
        The trained network.
    images
        `(n, B, B)` sliceable stack with ``B == model.original_box`` (any ``B`` for a
        generalist model); read one chunk at a time (memory: the `(n, f)` features only).
    pixel_size_a, shifts_a, ctf
        Pixel size (Å), `(n, 2)` origins (Å) and CTFs of the particles: the images are
        re-centred by known origins, and phase-flipped when the model takes them so
        (see :func:`network_input`).
    chunk
        Images per chunk.
    device
        Where the network runs.
    rotations
        Test-time in-plane turns averaged into the features (1, 2 or 4; see
        :func:`compute_features`).

    Yields
    ------
    Progress
        Stage ``"features"``, one unit per image.

    Returns
    -------
    numpy.ndarray
        `(n, f · rotations)` float32 features (distances:
        :func:`~napari_cryorient.engine.siamese.feature_distance`).
    """
    n = len(images)
    model.check_box(int(images.shape[-1]))
    if model.phase_flip and ctf is None:
        raise ValueError("the network was trained on phase-flipped images and these particles have no "
                         "CTF parameters: give the particles' CTF (a STAR with defocus columns, or "
                         "--ctf-pkl)")
    net = model.net.to(device).eval()
    wb = model.working_box
    out: list[np.ndarray] = []
    try:
        for start in range(0, n, chunk):
            block = torch.from_numpy(np.array(images[start : start + chunk], dtype=np.float32))
            if not torch.isfinite(block).all():
                raise ValueError(f"images {start + 1}..{start + len(block)} contain NaN or infinite values")
            rows = slice(start, start + len(block))
            block = network_input(block, wb, pixel_size_a, None if shifts_a is None else shifts_a[rows],
                                  None if ctf is None else ctf.subset(rows), model.phase_flip)
            out.append(compute_features(net, block.numpy(), model.norm, chunk=chunk, device=device,
                                        rotations=rotations))
            yield Progress("features", start + len(block), n)
    except RuntimeError as err:
        raise EngineError(f"computing image features failed: {err}") from err
    return np.concatenate(out)
