"""The Siamese distance network: a shared CNN encoder and an angular distance head.

``G_w`` maps a `(1, W, W)` normalised projection to a feature vector ``f``; the predicted
distance between two projections is ``d̂ = 2 arccos |cos ∠(f_i, f_j)|`` in ``[0, π]``,
the same form as the distance between unit quaternions (with 4 features it is exactly
that metric), so the loss ``(d̂ − d_q)²`` compares like with like.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .so3 import GRADIENT_SAFE_COS, geodesic_from_dot

__all__ = ["EncoderConfig", "SiameseNet", "feature_distance", "pairwise_feature_distance"]


@dataclass(frozen=True)
class EncoderConfig:
    """Size of the encoder.

    Attributes
    ----------
    working_box
        Images are Fourier-cropped to this size before the network (pixels). At low SNR
        a small box is both faster and better (the high frequencies are mostly noise);
        ``benchmarks/method.py`` compares working boxes.
    channels
        Output channels of each conv block (each block halves the image size).
    feature_dim
        Length of the feature vector.
    """

    working_box: int = 16
    channels: tuple[int, ...] = (32, 64, 128)
    feature_dim: int = 64

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EncoderConfig:
        return cls(working_box=int(d["working_box"]), channels=tuple(d["channels"]),
                   feature_dim=int(d["feature_dim"]))


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


def feature_distance(fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """``2 arccos |cos ∠(fa, fb)|`` for `(..., f)` features; radians in ``[0, π]``."""
    cos = nn.functional.cosine_similarity(fa, fb, dim=-1, eps=1e-8)
    return geodesic_from_dot(cos, GRADIENT_SAFE_COS)


def pairwise_feature_distance(f: torch.Tensor) -> torch.Tensor:
    """`(b, b)` distances between all rows of `(b, f)` features."""
    fn = nn.functional.normalize(f, dim=-1, eps=1e-8)
    return geodesic_from_dot(fn @ fn.T, GRADIENT_SAFE_COS)


class SiameseNet(nn.Module):
    """Shared encoder + angular distance head.

    Parameters
    ----------
    config
        Encoder size; the input must be `(b, 1, W, W)` with ``W = config.working_box``.
    """

    def __init__(self, config: EncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config or EncoderConfig()
        c = self.config
        if c.working_box < 2 ** len(c.channels):
            raise ValueError(f"working box {c.working_box} is too small for {len(c.channels)} blocks")
        blocks, c_in = [], 1
        for c_out in c.channels:
            blocks.append(_block(c_in, c_out))
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        side = c.working_box // 2 ** len(c.channels)
        # the final map is flattened, not pooled: where things are encodes the orientation
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(c_in * side * side, 4 * c.feature_dim), nn.ReLU(inplace=True),
            nn.Linear(4 * c.feature_dim, c.feature_dim),
        )

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """`(b, W, W)` or `(b, 1, W, W)` normalised images to `(b, f)` features."""
        if images.ndim == 3:
            images = images[:, None]
        return self.head(self.features(images))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Predicted distances `(b,)` between image batches ``a`` and ``b``."""
        return feature_distance(self.encode(a), self.encode(b))
