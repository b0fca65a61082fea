"""Matplotlib figures of a run (loss curves, distances, errors, FSC), saved atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .engine import so3
from .engine.distance_eval import DistanceEvaluation
from .engine.fsc import FSCResult
from .io.atomic_write import atomic_path

__all__ = ["draw_fsc", "draw_viewing_directions", "plot_distances", "plot_errors", "plot_fsc", "plot_losses",
           "plot_viewing_directions"]


def _figure(width: float = 5.5, height: float = 3.8):
    """A stand-alone ``Figure`` (no pyplot, no global backend: safe from any thread)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120)
    return fig, fig.subplots()


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def draw_fsc(ax: Any, curves: dict[str, FSCResult]) -> None:
    """Draw FSC curves (label → result) on ``ax`` with the 0.143 and 0.5 thresholds labelled;
    used by the saved plots, the Reconstruct widget and the export report."""
    for label, f in curves.items():
        ax.plot(f.frequency_inv_a[1:], f.fsc[1:],  # shell 0 (DC) is a single ±1 product
                label=f"{label} ({f.resolution_05_a:.1f} Å @0.5, {f.resolution_0143_a:.1f} Å @0.143)")
    for t in (0.143, 0.5):
        ax.axhline(t, color="grey", lw=0.8, ls="--")
        ax.annotate(f"{t:g}", (1.0, t), xycoords=("axes fraction", "data"), xytext=(2, 0),
                    textcoords="offset points", va="center", fontsize=7, color="grey")
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC")
    ax.set_ylim(-0.1, 1.05)
    ax.legend(fontsize=7)


def plot_fsc(curves: dict[str, FSCResult], path: str | Path) -> None:
    """FSC curves (label → result) with the 0.143 and 0.5 thresholds, saved as PNG."""
    fig, ax = _figure()
    draw_fsc(ax, curves)
    _save(fig, Path(path))


def plot_losses(history: list[dict[str, Any]], path: str | Path,
                recovery_history: list[float] | None = None) -> None:
    """Training/validation loss per epoch (and the recovery loss if given)."""
    fig, ax = _figure()
    epochs = [h["epoch"] + 1 for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], label="train (last step)")
    ax.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("distance loss (rad²)")
    ax.set_yscale("log")
    if recovery_history:
        ax2 = ax.twiny()
        ax2.plot(np.linspace(1, max(epochs or [1]), len(recovery_history)), recovery_history,
                 color="C3", alpha=0.6, label="recovery")
        ax2.set_xticks([])
        ax2.legend(loc="lower left", fontsize=7)
    ax.legend(fontsize=7)
    _save(fig, Path(path))


def plot_distances(ev: DistanceEvaluation, path: str | Path) -> None:
    """2D histogram of predicted versus true distances with the identity line."""
    fig, ax = _figure(4.6, 4.2)
    edges = ev.bin_edges_deg
    ax.pcolormesh(edges, edges, np.log1p(ev.histogram.T), cmap="viridis")
    ax.plot([0, 180], [0, 180], color="white", lw=1, ls="--")
    ax.set_xlabel("true distance (°)")
    ax.set_ylabel("predicted distance (°)")
    ax.set_title(f"MAE {ev.mae_deg:.1f}°, RMSE {ev.rmse_deg:.1f}°, r = {ev.pearson_r:.3f}", fontsize=9)
    _save(fig, Path(path))


def plot_errors(errors: dict[str, np.ndarray], path: str | Path) -> None:
    """Histograms of per-particle orientation errors (label → `(n,)` degrees)."""
    fig, ax = _figure()
    bins = np.linspace(0, 180, 61)
    for label, e in errors.items():
        ax.hist(e, bins=bins, alpha=0.6, label=f"{label}: mean {np.mean(e):.1f}°, median {np.median(e):.1f}°")
    ax.set_xlabel("orientation error (°)")
    ax.set_ylabel("particles")
    ax.legend(fontsize=7)
    _save(fig, Path(path))


def draw_viewing_directions(ax: Any, rotations: np.ndarray, bins: tuple[int, int] = (36, 18)) -> None:
    """Heat map of the viewing directions (azimuth × elevation, as RELION and cryoSPARC
    show them) of `(n, 3, 3)` poses. Elevation bins are equal in ``sin(elevation)`` so that
    uniform directions give a flat map; bunched views show as hot spots."""
    v = so3.viewing_directions(np.asarray(rotations, dtype=np.float64))
    azimuth = np.degrees(np.arctan2(v[:, 1], v[:, 0]))
    sin_el = np.clip(v[:, 2], -1, 1)
    counts, _, _ = np.histogram2d(azimuth, sin_el, bins=bins, range=[[-180, 180], [-1, 1]])
    expected = len(v) / (bins[0] * bins[1])
    image = ax.imshow(counts.T / max(expected, 1e-12), origin="lower", aspect="auto", cmap="magma",
                      extent=(-180, 180, -1, 1))
    ticks = np.array([-90, -45, 0, 45, 90])
    ax.set_yticks(np.sin(np.radians(ticks)), [f"{t}°" for t in ticks])
    ax.set_xlabel("azimuth (°)")
    ax.set_ylabel("elevation")
    ax.figure.colorbar(image, ax=ax, label="particles / uniform")


def plot_viewing_directions(rotations: np.ndarray, path: str | Path) -> None:
    """:func:`draw_viewing_directions` saved as PNG."""
    fig, ax = _figure()
    draw_viewing_directions(ax, rotations)
    _save(fig, Path(path))
