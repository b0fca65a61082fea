"""Reconstruct widget: a map from the data set's images at the chosen poses, shown as an
iso-surface, with FSC curves (half-maps, and against the ground truth when known)."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch
from magicgui.widgets import ComboBox, Container, FloatSpinBox

from ..engine.projector import FourierProjector
from ..engine.reconstruct import CTF_CORRECTIONS, reconstruct_volume
from ..io.errors import InputError
from ..method import random_pose_baseline, score_map
from ..plugin.layer_data import image_layer_data
from ._base import JobWidget
from ._layers import placeholder, retire_layers, show_layer
from ._plots import PlotCanvas, fsc_panel, plot_style
from ._session import HalfSplit

__all__ = ["ReconstructWidget"]

LAYER = "reconstruction"


def _halves_note(split: HalfSplit | None) -> str:
    """What the half-map FSC of a reconstruction is worth, given how its halves were kept."""
    if split is None:
        return "halves: a random split"
    if split.from_start:
        return "halves: those of the ab-initio run, independent from its first step (gold standard)"
    return ("halves: those of the refinement; recovery and the ambiguity step saw all particles "
            "together, so this figure can flatter (trust the random-pose baseline beside it)")


class ReconstructWidget(JobWidget):
    """Direct Fourier inversion with half-maps; FSC plot with resolutions."""

    section = "reconstruct"
    title = "Reconstruct"

    def __init__(self, napari_viewer: Any) -> None:
        self.poses = ComboBox(name="poses", label="poses", choices=["recovered", "true"], value="recovered")
        self.ctf = ComboBox(
            name="ctf_correction", label="CTF correction", choices=list(CTF_CORRECTIONS), value="none"
        )
        self.reg = FloatSpinBox(
            name="regularisation", label="regularisation", min=1e-6, max=1.0, step=1e-3, value=1e-3
        )
        form = Container(widgets=[self.poses, self.ctf, self.reg])
        super().__init__(napari_viewer, form, start_text="Reconstruct")
        self.fsc_plot = PlotCanvas(style=plot_style(napari_viewer))
        self._split: HalfSplit | None = None  # the halves of the last job's reconstruction
        self.layout().addWidget(self.fsc_plot)
        self.session.events.dataset.connect(self._drop_layer)

    def _drop_layer(self) -> None:
        """The map of an older data set is retired when another one is adopted."""
        retire_layers(self.viewer, (LAYER,))

    def result_layers(self) -> list[tuple]:
        """The map is shown in a layer made at Start."""
        ds = self.session.dataset
        return [] if ds is None else [placeholder(LAYER, "image", ds.box, ds.pixel_size_a)]

    def make_job(self):
        ds = self.require_dataset()
        poses = self.session.poses if self.poses.value == "recovered" else ds.truth
        if poses is None:
            raise InputError(
                f"no {self.poses.value} poses yet"
                + (": run the Recover widget first" if self.poses.value == "recovered" else "")
            )
        if self.ctf.value != "none" and ds.ctf is None:
            raise ValueError("CTF correction needs CTF parameters; this data set has none")
        ctf_mode, reg = self.ctf.value, self.reg.value
        shifts = self.session.origins_a() if self.poses.value == "recovered" else ds.shifts_a
        particles = ds.particles.with_images(ds.images, ds.pixel_size_a).with_poses(poses, shifts)
        split = self.session.halves if self.poses.value == "recovered" else None
        if split is not None and len(split.assignment) != len(ds):
            split = None
        self._split = split

        def job():
            rec = yield from reconstruct_volume(
                ds.images,
                poses,
                ds.pixel_size_a,
                shifts_a=shifts,
                ctf=ds.ctf,
                ctf_correction=ctf_mode,
                half_maps=True,
                halves=None if split is None else split.assignment,
                regularisation=reg,
            )
            # the FSCs, the random-pose baseline and the inspector's projector: off the main thread
            baseline = yield from random_pose_baseline(particles, ctf_mode, reg)
            return rec, score_map(rec, ds.volume), FourierProjector(torch.from_numpy(rec.volume)), baseline

        return job

    def on_result(self, result: Any) -> None:
        rec, score, projector, baseline = result
        px = rec.pixel_size_a
        half, truth = score.half_maps, score.truth
        self.session.fsc = (half, truth)
        self.session.projector = projector
        self.session.volume = rec.volume
        show_layer(self.viewer, image_layer_data(
            rec.volume, px, LAYER, rendering="iso",
            iso_threshold=float(np.percentile(rec.volume, 99.5)) * 0.7, colormap="gray"))
        curves = {"half-maps": half, "half-maps, random poses (baseline)": baseline}
        text = (f"half-map FSC 0.143: {half.resolution_0143_a:.1f} Å (random poses give "
                f"{baseline.resolution_0143_a:.1f} Å)")
        text += "; " + _halves_note(self._split)
        if half.resolution_0143_a >= 0.9 * baseline.resolution_0143_a:
            text = ("WARNING: these poses are no better than random poses — "
                    + text + "; do not trust this map")
        if truth is not None:
            best = truth.best
            curves[f"vs ground truth, {truth.hand} hand"] = best
            text += f"; vs ground truth FSC 0.5: {best.resolution_05_a:.1f} Å ({truth.hand} hand)"
        self.fsc_plot.plot(partial(fsc_panel, curves))
        self.status.setText(text)
        self.session.metrics.update(half_map_resolution_a=half.resolution_0143_a)
