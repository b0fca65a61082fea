"""Plots for dock widgets, drawn off the main thread and in napari's theme.

Drawing a matplotlib figure with its ticks and labels took 50–250 ms on the 2-core CPU
while a job ran (an ad-hoc measurement during development): on the main thread that
freezes the viewer. So a :class:`PlotCanvas` never draws on the main thread.
``canvas.plot(draw)`` makes a *new* figure in a single background thread shared by every
canvas, lets ``draw(figure)`` fill it, renders it with Agg and hands the finished picture
to the main thread, which only shows it. Each draw owns its figure (no state is shared
between threads); a newer request supersedes an older one that has not started yet. The
data a ``draw`` function reads must not change afterwards: pass copies.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from qtpy.QtCore import QCoreApplication, QSize, Qt, Signal
from qtpy.QtGui import QImage, QPixmap
from qtpy.QtWidgets import QLabel, QSizePolicy

__all__ = ["PlotCanvas", "PlotStyle", "fsc_panel", "plot_style"]

_log = logging.getLogger(__name__)
_RENDERER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cryorient-plots")
DPI = 100


@dataclass(frozen=True)
class PlotStyle:
    """Colours of a plot: figure background, axes background and text/lines."""

    background: str = "#ffffff"
    axes: str = "#ffffff"
    text: str = "#000000"


def plot_style(viewer: Any) -> PlotStyle:
    """The colours of ``viewer``'s napari theme (light defaults when it has none)."""
    try:
        from napari.utils.theme import get_theme

        theme = get_theme(viewer.theme)
        return PlotStyle(theme.foreground.as_hex(), theme.background.as_hex(), theme.text.as_hex())
    except Exception:  # no theme (a bare model in tests, an old napari): readable defaults
        return PlotStyle()


def _apply_style(figure: Figure, style: PlotStyle) -> None:
    """Recolour everything a draw made: backgrounds, spines, ticks, labels, titles, legends."""
    figure.set_facecolor(style.background)
    for ax in figure.axes:
        ax.set_facecolor(style.axes)
        for spine in ax.spines.values():
            spine.set_color(style.text)
        ax.tick_params(colors=style.text, which="both")
        for text in (ax.title, ax.xaxis.label, ax.yaxis.label):
            text.set_color(style.text)
        legend = ax.get_legend()
        if legend is not None:
            legend.get_frame().set_facecolor(style.axes)
            legend.get_frame().set_edgecolor(style.text)
            for text in legend.get_texts():
                text.set_color(style.text)
    for text in figure.texts:
        text.set_color(style.text)
    for legend in figure.legends:
        for text in legend.get_texts():
            text.set_color(style.text)


class PlotCanvas(QLabel):
    """A plot panel whose figures are drawn in a background thread.

    Parameters
    ----------
    width, height
        Figure size in inches (at 100 dpi).
    style
        Colours (:func:`plot_style` of the viewer: the napari theme).

    Attributes
    ----------
    figure
        The figure shown now (None before the first), for reading what was drawn.
    """

    _rendered = Signal(object)

    def __init__(self, width: float = 4.0, height: float = 2.6, style: PlotStyle | None = None) -> None:
        super().__init__()
        self.size_in = (width, height)
        self.style = style or PlotStyle()
        self.figure: Figure | None = None
        self._requested = self._shown = 0
        self._lock = threading.Lock()
        self._picture: QPixmap | None = None
        self.setMinimumHeight(180)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._rendered.connect(self._show)

    @property
    def axes(self) -> Any:
        """The first axes of the figure shown now (None before the first draw)."""
        return self.figure.axes[0] if self.figure is not None and self.figure.axes else None

    def plot(self, draw: Callable[[Figure], Any]) -> None:
        """Draw a new figure with ``draw(figure)`` off the main thread, then show it."""
        with self._lock:
            self._requested += 1
            ticket = self._requested
        _RENDERER.submit(self._render, ticket, draw)

    def clear(self) -> None:
        """Show an empty panel."""
        self.plot(lambda figure: None)

    @property
    def idle(self) -> bool:
        """Whether the last requested figure is the one shown."""
        return self._shown == self._requested

    def wait(self, timeout_s: float = 30.0) -> None:
        """Process Qt events until the last requested figure is shown (tests, scripts)."""
        t0 = time.monotonic()
        while not self.idle and time.monotonic() - t0 < timeout_s:
            QCoreApplication.processEvents()
            time.sleep(0.005)

    def _render(self, ticket: int, draw: Callable[[Figure], Any]) -> None:
        if ticket != self._requested:
            return  # a newer figure was asked for meanwhile
        try:
            figure = Figure(figsize=self.size_in, dpi=DPI)
            draw(figure)
            _apply_style(figure, self.style)
            canvas = FigureCanvasAgg(figure)
            canvas.draw()
            rgba = np.array(canvas.buffer_rgba(), copy=True)
        except Exception:  # a plot must never take a job down; say it in the log
            _log.exception("a plot could not be drawn")
            figure, rgba = None, None
        try:
            self._rendered.emit((ticket, rgba, figure))
        except RuntimeError:
            pass  # the panel was closed meanwhile

    def _show(self, payload: tuple[int, np.ndarray | None, Figure | None]) -> None:
        ticket, rgba, figure = payload
        if ticket < self._shown:
            return
        self._shown = ticket
        if rgba is None:
            return
        h, w = rgba.shape[:2]
        image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
        self._picture = QPixmap.fromImage(image)
        self._fit()
        self.figure = figure

    def _fit(self) -> None:
        """Show the whole picture, scaled down to the panel (never cropped: the labels are
        at its edges)."""
        if self._picture is None:
            return
        picture = self._picture
        if picture.width() > self.width() or picture.height() > self.height():
            picture = picture.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                     Qt.TransformationMode.SmoothTransformation)
        self.setPixmap(picture)

    def sizeHint(self) -> QSize:
        """The figure's own size (not the shown picture's, which follows the panel)."""
        return QSize(int(self.size_in[0] * DPI), int(self.size_in[1] * DPI))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit()


def fsc_panel(curves: dict[str, Any], figure: Figure) -> None:
    """FSC curves with both thresholds, laid out for a dock panel (legend below the axes)."""
    from ..plots import draw_fsc

    ax = figure.add_subplot()
    draw_fsc(ax, curves)
    legend = ax.get_legend()
    if legend is not None:
        legend.remove()
    figure.legend(*ax.get_legend_handles_labels(), loc="lower center", fontsize=6, frameon=False)
    figure.subplots_adjust(left=0.15, right=0.9, top=0.95, bottom=0.22 + 0.06 * len(curves))
