"""A small matplotlib canvas for dock widgets (loss curves, distance histograms, FSC)."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

__all__ = ["PlotCanvas"]


class PlotCanvas(FigureCanvasQTAgg):
    """A figure with one axes, redrawn lazily (``draw_idle``)."""

    def __init__(self, width: float = 4.0, height: float = 2.6) -> None:
        self.figure = Figure(figsize=(width, height), layout="constrained")
        super().__init__(self.figure)
        self.axes = self.figure.add_subplot(111)
        self.setMinimumHeight(180)

    def redraw(self) -> None:
        self.draw_idle()
