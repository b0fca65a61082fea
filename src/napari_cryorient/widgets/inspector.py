"""Particle inspector: one particle's image, its reprojection from the current
reconstruction at the recovered pose, its nearest neighbours by predicted distance, and
its true and recovered orientations. Selection stays in sync with the stack slider and
the points on the pose sphere."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from magicgui.widgets import Container, PushButton, SpinBox
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..engine import so3
from ..engine.siamese import feature_distance
from ._plots import PlotCanvas
from ._session import get_session

__all__ = ["InspectorWidget"]

N_NEIGHBOURS = 4
STACK_LAYER = "projections"
POSE_LAYER = "recovered poses"


class InspectorWidget(QWidget):
    """Select by index, by stepping, by the stack slider or by clicking a pose point."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = get_session(napari_viewer)
        self.index = SpinBox(name="index", label="particle", min=0, max=0, value=0)
        self.prev_button, self.next_button = PushButton(text="◀ previous"), PushButton(text="next ▶")
        self.index.changed.connect(lambda v: self.session.select(int(v)))
        self.prev_button.changed.connect(lambda *_: self.step(-1))
        self.next_button.changed.connect(lambda *_: self.step(+1))
        controls = Container(widgets=[self.index, self.prev_button, self.next_button], layout="horizontal")
        self.info = QLabel("no data set yet")
        self.info.setWordWrap(True)
        self.canvas = PlotCanvas(width=4.0, height=3.6)
        layout = QVBoxLayout(self)
        layout.addWidget(controls.native)
        layout.addWidget(self.info)
        layout.addWidget(self.canvas)
        events = self.session.events
        events.current.connect(self._on_selected)
        events.dataset.connect(self._on_dataset)
        events.volume.connect(self.refresh)
        events.poses.connect(self.refresh)
        events.checkpoint.connect(self.refresh)
        napari_viewer.dims.events.current_step.connect(self._on_dims)
        self._on_dataset()

    # --- selection sources
    def step(self, delta: int) -> None:
        ds = self.session.dataset
        if ds is not None:
            self.session.select(int(np.clip(self.session.current + delta, 0, len(ds) - 1)))

    def _on_dims(self, *_: Any) -> None:
        if STACK_LAYER not in self.viewer.layers or self.viewer.dims.ndisplay != 2:
            return
        layer = self.viewer.layers[STACK_LAYER]
        i = int(round(layer.world_to_data(self.viewer.dims.point)[0]))
        self.session.select(i)

    # --- rendering
    def _on_dataset(self, *_: Any) -> None:
        ds = self.session.dataset
        self.index.max = max(0, len(ds) - 1) if ds is not None else 0
        self.refresh()

    def _on_selected(self, index: int) -> None:
        if self.index.value != index:
            self.index.value = index
        if STACK_LAYER in self.viewer.layers and self.viewer.dims.ndisplay == 2:
            layer = self.viewer.layers[STACK_LAYER]
            world = float(layer.data_to_world((index, 0, 0))[0])
            if int(round(layer.world_to_data(self.viewer.dims.point)[0])) != index:
                self.viewer.dims.set_point(0, world)
        if POSE_LAYER in self.viewer.layers:
            layer = self.viewer.layers[POSE_LAYER]
            rows = np.flatnonzero(layer.features["index"].to_numpy() == index)
            if len(rows) and set(layer.selected_data) != {int(rows[0])}:
                layer.selected_data = {int(rows[0])}
        self.refresh()

    def neighbours(self, index: int, k: int = N_NEIGHBOURS) -> np.ndarray:
        """The ``k`` particles nearest to ``index`` by predicted distance (empty without features)."""
        f = self.session.features
        if f is None:
            return np.zeros(0, dtype=int)
        ft = torch.as_tensor(f)
        d = feature_distance(ft[index : index + 1].expand_as(ft), ft).numpy().reshape(-1)
        d[index] = np.inf
        return np.argsort(d)[:k]

    def reprojection(self, index: int) -> np.ndarray | None:
        """The current reconstruction projected at the particle's recovered pose."""
        projector = self.session.projector  # built with the reconstruction, in its worker
        if projector is None or self.session.poses is None:
            return None
        pose = torch.from_numpy(self.session.poses[index : index + 1]).float()
        return projector.project(pose)[0].numpy()

    def refresh(self, *_: Any) -> None:
        ds = self.session.dataset
        fig = self.canvas.figure
        fig.clear()
        if ds is None:
            self.info.setText("no data set yet")
            self.canvas.redraw()
            return
        i = min(self.session.current, len(ds) - 1)
        lines = [f"particle {i} of {len(ds)}"]
        if ds.truth is not None:
            lines.append(
                "true (rot, tilt, psi): "
                + ", ".join(f"{a:.1f}°" for a in so3.matrix_to_euler_relion(ds.truth[i]))
            )
        if self.session.poses is not None:
            lines.append(
                "recovered: "
                + ", ".join(f"{a:.1f}°" for a in so3.matrix_to_euler_relion(self.session.poses[i]))
            )
        if self.session.errors_deg is not None:
            lines.append(f"error: {self.session.errors_deg[i]:.1f}°")
        self.info.setText("\n".join(lines))
        neigh = self.neighbours(i)
        reproj = self.reprojection(i)
        panels = [("image", ds.images[i]), *([("reprojection", reproj)] if reproj is not None else [])]
        panels += [(f"neighbour {j}", ds.images[j]) for j in neigh]
        cols = 3
        rows = int(np.ceil(len(panels) / cols))
        for k, (title, img) in enumerate(panels):
            ax = fig.add_subplot(rows, cols, k + 1)
            ax.imshow(img, cmap="gray")
            ax.set_title(title, fontsize=7)
            ax.axis("off")
        self.canvas.redraw()
