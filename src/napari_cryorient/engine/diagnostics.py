"""Warning signs of a failed recovery that need no truth.

A network applied to images unlike those it was trained on (another scale, pixel size,
CTF or protein) predicts nearly the same small distance for every pair; recovery then
fits that happily (a tiny loss) and the views bunch together on the sphere. Both show
without a truth:

* **collapsed distances** — the median predicted distance over random pairs. For any
  particle set with a uniform in-plane angle, random pairs of poses are far apart (the
  median angle between two uniform random rotations is about 130°); a median below
  :data:`COLLAPSED_DEG` means the network sees no difference between the images.
* **bunched views** — the mean resultant length of the viewing directions: about
  ``1 / √n`` for uniform views, 1 when all views are the same. Even strongly preferred
  views of a real protein rarely exceed :data:`BUNCHED_LENGTH`.
* **no better than random poses** — the mean squared difference between the predicted
  distances and the distances of the recovered poses, over random pairs, divided by the
  same for uniformly random poses: 0 for poses that match the predictions exactly, about
  1 for poses unrelated to them. Above :data:`RANDOM_FIT_RATIO` the poses explain the
  predictions hardly better than random poses would, and no success should be claimed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from . import so3
from .siamese import feature_distance

__all__ = ["BUNCHED_LENGTH", "COLLAPSED_DEG", "RANDOM_FIT_RATIO", "RecoveryDiagnostics",
           "recovery_diagnostics"]

#: median predicted distance (degrees) below which the distances have collapsed
COLLAPSED_DEG = 30.0
#: mean resultant length of the viewing directions above which the views bunch
BUNCHED_LENGTH = 0.7
#: residual of the recovered poses / residual of random poses above which they are no better
RANDOM_FIT_RATIO = 0.8


@dataclass
class RecoveryDiagnostics:
    """What :func:`recovery_diagnostics` found.

    Attributes
    ----------
    median_predicted_deg
        Median predicted distance over random pairs (degrees).
    view_resultant_length
        Mean resultant length of the recovered viewing directions (0 … 1).
    random_fit_ratio
        Mean squared residual of the predicted distances with the recovered poses,
        divided by the same with uniformly random poses (0: a perfect fit; about 1: no
        better than random poses).
    warnings
        One sentence per warning sign (empty: none).
    """

    median_predicted_deg: float
    view_resultant_length: float
    random_fit_ratio: float = 0.0
    warnings: list[str] = field(default_factory=list)


def recovery_diagnostics(features: np.ndarray, rotations: np.ndarray, n_pairs: int = 20000,
                         seed: int = 0) -> RecoveryDiagnostics:
    """Check predicted distances and recovered views for the signs of a failed recovery.

    Parameters
    ----------
    features
        `(n, f)` image features of the network.
    rotations
        `(n, 3, 3)` recovered poses (package convention: the viewing direction in the
        map's frame is the third row).
    n_pairs
        Random pairs for the distance median.
    seed
        Seed of the pairs.
    """
    n = len(features)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, n_pairs)
    j = (i + rng.integers(1, max(n, 2), n_pairs)) % n
    f = torch.as_tensor(np.asarray(features, dtype=np.float32))
    predicted = feature_distance(f[i], f[j]).double().numpy()
    median = float(np.degrees(np.median(predicted)))
    directions = np.asarray(rotations)[:, 2, :]
    length = float(np.linalg.norm(directions.mean(0)))
    q = so3.matrix_to_quaternion(np.asarray(rotations, dtype=np.float64))
    q_random = so3.matrix_to_quaternion(so3.sample_orientations(n, "uniform", seed=seed + 1))
    fit = np.mean((so3.geodesic_distance(q[i], q[j]) - predicted) ** 2)
    chance = np.mean((so3.geodesic_distance(q_random[i], q_random[j]) - predicted) ** 2)
    ratio = float(fit / max(chance, 1e-12))
    warnings = []
    if median < COLLAPSED_DEG:
        warnings.append(f"the predicted distances have collapsed (median {median:.1f}° over random pairs; "
                        "random poses are about 130° apart): the network does not tell these images "
                        "apart — was it trained on images like them (pixel size, box, CTF, protein)?")
    if length > BUNCHED_LENGTH:
        warnings.append(f"the recovered views bunch on the sphere (mean resultant length {length:.2f}; "
                        f"uniform views give about {1 / np.sqrt(n):.2f}): the poses are probably wrong")
    if ratio > RANDOM_FIT_RATIO:
        warnings.append(f"the recovered poses fit the predicted distances hardly better than random poses "
                        f"(residual {ratio:.2f} of theirs): do not trust these poses")
    return RecoveryDiagnostics(median, length, ratio, warnings)
