"""Particle inspector: one particle's image, its reprojection from the current
reconstruction at the recovered pose, its nearest neighbours by predicted distance, and
its true and recovered orientations (the recovered ones in the truth's frame) and its
confidence. Selection stays in sync with the stack slider and the points on the pose
sphere; *previous* / *next* walk the particles in the chosen order — by index, worst
error first (simulations) or least confident first — so the worst particles come first."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch
from magicgui.widgets import ComboBox, Container, PushButton, SpinBox
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..engine import so3
from ..engine.siamese import feature_distance
from ._plots import PlotCanvas, plot_style
from ._session import get_session
from ._view import install_view_rules

__all__ = ["InspectorWidget"]

N_NEIGHBOURS = 4
POSE_LAYER = "recovered poses"
BY_INDEX, WORST_FIRST, LEAST_CONFIDENT = "index", "worst error first", "least confident first"


class InspectorWidget(QWidget):
    """Select by index, by stepping, by the stack slider or by clicking a pose point."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = get_session(napari_viewer)
        install_view_rules(napari_viewer)
        self.index = SpinBox(name="index", label="particle", min=0, max=0, value=0)
        self.prev_button, self.next_button = PushButton(text="◀ previous"), PushButton(text="next ▶")
        self.index.changed.connect(lambda v: self.session.select(int(v)))
        self.prev_button.changed.connect(lambda *_: self.step(-1))
        self.next_button.changed.connect(lambda *_: self.step(+1))
        self.order = ComboBox(name="order", label="order", choices=[BY_INDEX, WORST_FIRST, LEAST_CONFIDENT],
                              value=BY_INDEX)
        self.order.changed.connect(self.refresh)
        controls = Container(widgets=[self.index, self.prev_button, self.next_button], layout="horizontal")
        ordering = Container(widgets=[self.order], layout="horizontal")
        self.info = QLabel("no data set yet")
        self.info.setWordWrap(True)
        self.canvas = PlotCanvas(width=4.8, height=3.4 * 4.8 / 4.0, style=plot_style(napari_viewer))
        layout = QVBoxLayout(self)
        layout.addWidget(controls.native)
        layout.addWidget(ordering.native)
        layout.addWidget(self.info)
        layout.addWidget(self.canvas)
        events = self.session.events
        events.current.connect(self._on_selected)
        events.dataset.connect(self._on_dataset)
        events.volume.connect(self.refresh)
        events.poses.connect(self.refresh)
        events.checkpoint.connect(self.refresh)
        events.confidence.connect(self.refresh)
        events.errors_deg.connect(self.refresh)
        napari_viewer.dims.events.current_step.connect(self._on_dims)
        self._on_dataset()

    # --- selection sources
    def ordering(self) -> np.ndarray:
        """The particles in the chosen order (by index when that order has no values yet)."""
        ds = self.session.dataset
        n = 0 if ds is None else len(ds)
        errors, confidence = self.session.errors_deg, self.session.confidence
        if self.order.value == WORST_FIRST and errors is not None and len(errors) == n:
            return np.argsort(-np.asarray(errors), kind="stable")
        if self.order.value == LEAST_CONFIDENT and confidence is not None and len(confidence) == n:
            return np.argsort(np.asarray(confidence), kind="stable")
        return np.arange(n)

    def step(self, delta: int) -> None:
        """Select the particle ``delta`` places away in the chosen order."""
        ds = self.session.dataset
        if ds is None:
            return
        order = self.ordering()
        rank = int(np.flatnonzero(order == self.session.current)[0])
        self.session.select(int(order[int(np.clip(rank + delta, 0, len(order) - 1))]))

    def _stack_layer(self) -> Any:
        """The layer that shows the data set's particles, when it is in the viewer."""
        ds = self.session.dataset
        name = None if ds is None else ds.layer
        return self.viewer.layers[name] if name is not None and name in self.viewer.layers else None

    def _on_dims(self, *_: Any) -> None:
        layer = self._stack_layer()
        if layer is None or self.viewer.dims.ndisplay != 2:
            return
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
        layer = self._stack_layer()
        if layer is not None and self.viewer.dims.ndisplay == 2:
            world = float(layer.data_to_world((index,) + (0,) * (layer.ndim - 1))[0])
            if int(round(layer.world_to_data(self.viewer.dims.point)[0])) != index:
                self.viewer.dims.set_point(0, world)
        layer = self.viewer.layers[POSE_LAYER] if POSE_LAYER in self.viewer.layers else None
        if layer is not None and "index" in layer.features:  # not an empty placeholder
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

    def _describe(self, i: int) -> list[str]:
        """Index, rank in the chosen order, angles (RELION rot, tilt, psi), error, confidence."""
        ds, s = self.session.dataset, self.session
        lines = [f"particle {i} of {len(ds)}"]
        if self.order.value != BY_INDEX:
            order = self.ordering()
            lines[0] += f" — {int(np.flatnonzero(order == i)[0]) + 1} in order '{self.order.value}'"

        def angles(r: np.ndarray) -> str:
            return ", ".join(f"{a:.1f}°" for a in so3.matrix_to_euler_relion(r))

        if ds.truth is not None:
            lines.append(f"true (rot, tilt, psi): {angles(ds.truth[i])}")
        if s.aligned_poses is not None and len(s.aligned_poses) == len(ds):
            lines.append(f"recovered, in the truth's frame: {angles(s.aligned_poses[i])}")
        elif s.poses is not None:
            lines.append(f"recovered (own frame): {angles(s.poses[i])}")
        if s.errors_deg is not None:
            lines.append(f"error: {s.errors_deg[i]:.1f}°")
        if s.confidence is not None and len(s.confidence) == len(ds):
            rank = float(np.mean(s.confidence < s.confidence[i]))
            lines.append(f"confidence (refinement score): {s.confidence[i]:.3g}, better than {rank:.0%} "
                         "of the particles")
        return lines

    def refresh(self, *_: Any) -> None:
        ds = self.session.dataset
        if ds is None:
            self.info.setText("no data set yet")
            self.canvas.clear()
            return
        i = min(self.session.current, len(ds) - 1)
        self.info.setText("\n".join(self._describe(i)))
        neigh = self.neighbours(i)
        reproj = self.reprojection(i)
        panels = [("image", np.array(ds.images[i]))]
        panels += [("reprojection", reproj)] if reproj is not None else []
        panels += [(f"neighbour {j}", np.array(ds.images[j])) for j in neigh]
        self.canvas.plot(partial(_draw_panels, panels))


def _draw_panels(panels: list[tuple[str, np.ndarray]], figure: Any) -> None:
    """The particle, its reprojection and its neighbours, three to a row (plot thread)."""
    cols = 3
    rows = int(np.ceil(len(panels) / cols))
    for k, (title, img) in enumerate(panels):
        ax = figure.add_subplot(rows, cols, k + 1)
        ax.imshow(img, cmap="gray")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    figure.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.93, wspace=0.05, hspace=0.2)
