"""A small matplotlib canvas for dock widgets (loss curves, distance histograms, FSC)."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

__all__ = ["PlotCanvas"]


class PlotCanvas(FigureCanvasQTAgg):
    """A figure with one axes, redrawn lazily (``draw_idle``)."""

    def __init__(self, width: float = 4.0, height: float = 2.6) -> None:
        # fixed margins: a constrained layout re-solves on every draw, on the main thread
        self.figure = Figure(figsize=(width, height))
        self.figure.subplots_adjust(left=0.17, right=0.97, bottom=0.2, top=0.88)
        super().__init__(self.figure)
        self.axes = self.figure.add_subplot(111)
        self.setMinimumHeight(180)

    def redraw(self) -> None:
        self.draw_idle()
