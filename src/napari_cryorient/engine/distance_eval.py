"""Predicted versus true distances: the figures of merit of a distance network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DistanceEvaluation", "evaluate_distances"]


@dataclass
class DistanceEvaluation:
    """Predicted versus true distances on held-out pairs.

    Attributes
    ----------
    mae_deg, rmse_deg, pearson_r
        Mean absolute and root-mean-square error (degrees), correlation.
    histogram
        `(bins, bins)` counts: rows = true distance bin, columns = predicted bin.
    bin_edges_deg
        `(bins + 1,)` edges in degrees (0 … 180) for both axes.
    true_deg, predicted_deg
        A subsample (at most 5 000) of the pairs, for scatter plots.
    """

    mae_deg: float
    rmse_deg: float
    pearson_r: float
    histogram: np.ndarray
    bin_edges_deg: np.ndarray
    true_deg: np.ndarray
    predicted_deg: np.ndarray

    def summary(self) -> dict[str, float]:
        return {"mae_deg": self.mae_deg, "rmse_deg": self.rmse_deg, "pearson_r": self.pearson_r}


def evaluate_distances(true_rad: np.ndarray, pred_rad: np.ndarray, bins: int = 36) -> DistanceEvaluation:
    """Metrics and the binned predicted-vs-true data from two `(m,)` arrays (radians)."""
    t, p = np.rad2deg(np.asarray(true_rad)), np.rad2deg(np.asarray(pred_rad))
    err = p - t
    edges = np.linspace(0, 180, bins + 1)
    hist, _, _ = np.histogram2d(t, p, bins=[edges, edges])
    r = float(np.corrcoef(t, p)[0, 1]) if t.std() > 0 and p.std() > 0 else float("nan")
    sub = np.random.default_rng(0).permutation(len(t))[:5000]
    return DistanceEvaluation(float(np.abs(err).mean()), float(np.sqrt((err**2).mean())), r,
                              hist, edges, t[sub], p[sub])
