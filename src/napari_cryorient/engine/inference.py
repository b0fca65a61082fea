"""Applying a trained distance network: image features, chunk by chunk.

What the network sees is fixed here, once, for training and for use: images
Fourier-cropped to the working box ``W``, standardised with the training set's
statistics and masked to a disc (:func:`normalise_for_network`).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .fourier import fourier_resize_images
from .jobs import EngineError, Progress
from .masks import circular_mask
from .siamese import SiameseNet

__all__ = ["DistanceModel", "compute_features", "image_features", "normalise_for_network"]


def normalise_for_network(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """Standardise `(b, W, W)` images with the training set's statistics and mask them to a
    disc of radius ``W / 2`` (1-pixel cosine edge), so that in-plane rotations never change
    what the network sees at the corners."""
    w = x.shape[-1]
    return (x - mean) / std * circular_mask(w, w / 2 - 1, 1.0, x.dtype, x.device)


@dataclass
class DistanceModel:
    """A trained network and what it expects of its input.

    Attributes
    ----------
    net
        The Siamese encoder (eval mode).
    norm
        ``(mean, std)`` of the training images at the working box.
    original_box
        Box (pixels) of the images it was trained on; inputs must have it.
    """

    net: SiameseNet
    norm: tuple[float, float]
    original_box: int

    @property
    def working_box(self) -> int:
        """Side (pixels) of the Fourier-cropped images the network sees."""
        return int(self.net.config.working_box)

    def check_box(self, box: int, what: str = "the images") -> None:
        """``ValueError`` unless ``box`` is the box the model was trained on."""
        if box != self.original_box:
            raise ValueError(f"the model was trained on {self.original_box} px images, "
                             f"{what} are {box} px")


@torch.no_grad()
def compute_features(
    model: SiameseNet,
    images: Any,
    norm: tuple[float, float],
    chunk: int = 512,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """`(n, f)` features of images already at the working box, in chunks (eval mode)."""
    model.eval()
    out = []
    for start in range(0, len(images), chunk):
        x = torch.as_tensor(np.asarray(images[start : start + chunk], dtype=np.float32), device=device)
        out.append(model.encode(normalise_for_network(x, *norm)).float().cpu())
    return torch.cat(out).numpy()


def image_features(
    model: DistanceModel,
    images: Any,
    chunk: int = 512,
    device: torch.device | str = "cpu",
) -> Generator[Progress, None, np.ndarray]:
    """Features of particle images at their original box, chunk by chunk.

    Parameters
    ----------
    model
        The trained network.
    images
        `(n, B, B)` sliceable stack with ``B == model.original_box``; read one chunk at a
        time (memory: the `(n, f)` features only).
    chunk
        Images per chunk.
    device
        Where the network runs.

    Yields
    ------
    Progress
        Stage ``"features"``, one unit per image.

    Returns
    -------
    numpy.ndarray
        `(n, f)` float32 features (distances: :func:`~napari_cryorient.engine.siamese.feature_distance`).
    """
    n = len(images)
    model.check_box(int(images.shape[-1]))
    net = model.net.to(device).eval()
    wb = model.working_box
    out: list[np.ndarray] = []
    try:
        for start in range(0, n, chunk):
            block = torch.from_numpy(np.array(images[start : start + chunk], dtype=np.float32))
            if not torch.isfinite(block).all():
                raise ValueError(f"images {start + 1}..{start + len(block)} contain NaN or infinite values")
            if block.shape[-1] != wb:
                block = fourier_resize_images(block, wb)
            out.append(compute_features(net, block.numpy(), model.norm, chunk=chunk, device=device))
            yield Progress("features", start + len(block), n)
    except RuntimeError as err:
        raise EngineError(f"computing image features failed: {err}") from err
    return np.concatenate(out)
