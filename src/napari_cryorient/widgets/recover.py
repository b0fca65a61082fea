"""Recover widget: orientations from the learned distances, ambiguity resolved from the
images, optional local refinement; the result as points on the sphere of viewing
directions (coloured by error when the truth is known) and an error histogram.

The "no truth (ab initio)" mode runs the truth-free pipeline on any adopted stack with the
shipped generalist network (or the session's network): gold-standard halves, global
search, refinement of poses and origins, self-training rounds; the poses on the sphere
and the map are updated after every round, and the half-map FSC is shown beside the FSC
that random poses give."""

from __future__ import annotations

import weakref
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, SpinBox
from napari.layers import Points

from ..engine import so3
from ..engine.align import AlignmentResult
from ..engine.reassign import ReassignConfig
from ..io.checkpoint import load_generalist
from ..method import RecoverySettings, recover_poses
from ..method.ab_initio import STARTS, AbInitioResult, AbInitioSettings, ab_initio
from ..method.evaluate import harmless_alignment, random_pose_baseline
from ..method.presets import METHOD_PRESETS
from ..method.recover import MIN_PARTICLES
from ..plots import draw_viewing_directions
from ..plugin.layer_data import SPHERE_RADIUS, image_layer_data, pose_points_layer_data
from ._base import JobWidget
from ._layers import placeholder, retire_layers, show_layer
from ._plots import PlotCanvas, fsc_panel, plot_style
from ._session import HalfSplit

__all__ = ["RecoverWidget"]

LAYER = "recovered poses"
VECTORS = "in-plane directions"
MAP = "ab-initio map"
LEARNED, NO_TRUTH = "learned distance (trained network)", "no truth (ab initio)"


class RecoverWidget(JobWidget):
    """Recover, resolve, refine; render poses, errors and the loss curve."""

    section = "recover"
    title = "Recover orientations"

    def __init__(self, napari_viewer: Any) -> None:
        d = METHOD_PRESETS["standard"].recovery
        self.mode = ComboBox(name="mode", label="mode", choices=[LEARNED, NO_TRUTH], value=LEARNED)
        # one preset menu for both modes (method/presets.py and ab_initio.PRESETS share names);
        # it comes before the values it fills, so restored settings keep a user's changes
        self.preset = ComboBox(name="preset", label="preset", choices=list(METHOD_PRESETS), value="standard")
        self.steps = SpinBox(name="steps", label="recovery optimiser steps", min=0, max=100000,
                             value=d.n_steps)
        self.restarts = SpinBox(name="restarts", label="restarts", min=1, max=50, value=d.n_restarts)
        self.resolve = CheckBox(name="resolve", label="resolve ambiguity from images", value=True)
        self.refine = CheckBox(name="refine", label="refine by projection matching", value=True)
        self.origins = CheckBox(name="origins", label="refine origins too (off-centre picks)", value=False)
        self.second_chance = CheckBox(name="second_chance", label="global second chance after refinement",
                                      value=METHOD_PRESETS["standard"].reassign is not None)
        # no truth: where the start map comes from (the network's recovery, or a soft search)
        self.start_from = ComboBox(name="start_from", label="start (no truth)", choices=list(STARTS),
                                   value="soft-search")
        self.preset.changed.connect(self._apply_preset)
        self._searched_origins = False
        self.inplane = CheckBox(name="inplane", label="show in-plane directions (vectors)", value=False)
        self.seed = SpinBox(name="seed", label="seed", min=0, max=2**31 - 1, value=0)
        form = Container(
            widgets=[self.mode, self.preset, self.start_from, self.steps, self.restarts, self.resolve,
                     self.refine, self.origins, self.second_chance, self.inplane, self.seed]
        )
        super().__init__(napari_viewer, form, start_text="Recover")
        style = plot_style(napari_viewer)
        self.loss_plot = PlotCanvas(style=style)
        self.error_plot = PlotCanvas(style=style)
        self.fsc_plot = PlotCanvas(style=style)
        self.directions_plot = PlotCanvas(style=style)
        self.layout().addWidget(self.loss_plot)
        self.layout().addWidget(self.directions_plot)
        self.layout().addWidget(self.error_plot)
        self.layout().addWidget(self.fsc_plot)
        self._losses: list[float] = []
        self._watched: weakref.WeakSet = weakref.WeakSet()
        self.session.events.dataset.connect(self._drop_layers)

    def _drop_layers(self) -> None:
        """Poses and map of an older data set are retired when another one is adopted."""
        retire_layers(self.viewer, (LAYER, VECTORS, MAP))

    def result_layers(self) -> list[tuple]:
        """The poses (and, without a truth, the map) are shown in layers made at Start."""
        ds = self.session.dataset
        layers = [placeholder(LAYER, "points")]
        if self.mode.value == NO_TRUTH and ds is not None:
            layers.append(placeholder(MAP, "image", ds.box, ds.pixel_size_a))
        return layers

    def _apply_preset(self, name: str) -> None:
        """Fill the recovery values of preset ``name`` (the no-truth mode reads its own
        preset of that name when it starts)."""
        p = METHOD_PRESETS[name]
        self.steps.value, self.restarts.value = p.recovery.n_steps, p.recovery.n_restarts
        self.second_chance.value = p.reassign is not None

    def make_job(self):
        if self.mode.value == NO_TRUTH:
            return self._ab_initio_job()
        ds = self.require_dataset()
        model = self.require_model()
        particles = ds.particles
        particles.require_count(MIN_PARTICLES, "orientation recovery")
        model.check_box(particles.box, "the data set's images")
        model.check_pixel_size(particles.pixel_size_a, "the data set's images")
        do_resolve = self.resolve.value
        p = METHOD_PRESETS[self.preset.value]
        refine = None
        if do_resolve and self.refine.value:
            refine = replace(p.refine, search_shifts=self.origins.value)
        chance = refine is not None and self.second_chance.value
        self._searched_origins = refine is not None and refine.search_shifts
        settings = RecoverySettings(
            recovery=replace(p.recovery, n_steps=self.steps.value, n_restarts=self.restarts.value),
            resolve=do_resolve,
            refine=refine,
            reassign=(p.reassign or ReassignConfig()) if chance else None,
            seed=self.seed.value,
        )
        self._losses = []
        self._estimate = None
        truth = ds.truth

        def job():
            result = yield from recover_poses(particles, model, settings)
            return result, _harmless_errors(result.rotations, truth)  # scored in the worker too

        return job

    def _ab_initio_job(self):
        ds = self.require_dataset()
        # a simulation's origins are its truth: the method starts from centred picks then
        particles = replace(ds.particles, rotations=None,
                            shifts_a=None if ds.truth is not None else ds.particles.shifts_a)
        particles.require_pixel_size()
        # the session's network when it accepts these images, else the shipped generalist
        model = self.require_model() if self.session.checkpoint is not None else load_generalist()
        if not model.any_box and model.original_box != particles.box:
            model = load_generalist()
        settings = AbInitioSettings.preset(self.preset.value, seed=self.seed.value,
                                           start=self.start_from.value,
                                           second_chance=self.second_chance.value)
        ctf_mode = "wiener" if particles.ctf is not None else "none"
        self._losses, self._estimate = [], None
        truth = ds.truth

        def job():
            result = yield from ab_initio(particles, model, settings)
            baseline = yield from random_pose_baseline(particles, ctf_mode, seed=self.seed.value)
            return result, baseline, _harmless_errors(result.particles.rotations, truth)

        return job

    def on_event(self, event) -> None:
        super().on_event(event)
        if event.stage == "round" and isinstance(event.data.get("result"), AbInitioResult):
            self._show_round(event.data["result"])  # a complete round: show it now
            return
        if event.stage == "recover" and event.data.get("estimate") is not None:
            self._estimate = event.data["estimate"]
        loss = event.data.get("loss")
        if event.stage == "recover" and loss is not None:
            self._losses.append(float(loss))
            if len(self._losses) % 5 == 1:
                self._plot_losses()

    def _plot_losses(self) -> None:
        if self._losses:
            self.loss_plot.plot(partial(_draw_losses, list(self._losses)))

    def _show_round(self, result: AbInitioResult, baseline=None, aligned=None) -> None:
        """Poses, origins and map of a complete ab-initio round, and its half-map FSC."""
        rec = result.reconstruction
        self.session.shifts_a = result.particles.shifts_a
        self.session.halves = HalfSplit(np.asarray(result.halves), from_start=True)
        summary = self._show_poses(result.particles.rotations, aligned, result.scores)
        self.session.volume = rec.volume
        show_layer(self.viewer, image_layer_data(
            rec.volume, rec.pixel_size_a, MAP, rendering="iso",
            iso_threshold=float(np.percentile(rec.volume, 99.5)) * 0.7, colormap="gray"))
        last = result.rounds[-1]
        curves = {"half-maps (gold standard)": result.fsc}
        text = f"{last['stage']}: half-map FSC 0.143 {result.fsc.resolution_0143_a:.1f} Å"
        if baseline is not None:
            curves["half-maps, random poses (baseline)"] = baseline
            text += f" (random poses give {baseline.resolution_0143_a:.1f} Å)"
            if result.fsc.resolution_0143_a >= 0.9 * baseline.resolution_0143_a:
                text = "WARNING: no better than random poses — do not trust this result; " + text
        self.fsc_plot.plot(partial(fsc_panel, curves))
        self.status.setText(text + summary)

    def on_result(self, outcome) -> None:
        if isinstance(outcome[0], AbInitioResult):
            result, baseline, aligned = outcome
            self._show_round(result, baseline, aligned)
            self.session.metrics.update(half_map_resolution_a=result.fsc.resolution_0143_a,
                                        random_pose_resolution_a=baseline.resolution_0143_a)
            return
        result, aligned = outcome
        self.session.features = result.features
        # the origins the poses were refined with (None: the data set's own)
        refined = result.refinement
        searched = refined is not None and self._searched_origins
        self.session.shifts_a = refined.shifts_a if searched else None
        scores = result.refinement.scores if result.refinement is not None else None
        self.session.halves = (None if refined is None or refined.half_assignment is None
                               else HalfSplit(np.asarray(refined.half_assignment), from_start=False))
        summary = self._show_poses(result.rotations, aligned, scores)
        warnings = result.diagnostics.warnings if result.diagnostics is not None else []
        head = "".join(f"WARNING: {w}\n" for w in warnings)
        outcome = (f"poses of {len(result.rotations)} particles NOT to be trusted (see the warnings)"
                   if warnings else f"recovered {len(result.rotations)} poses")
        self.status.setText(f"{head}{outcome}, recovery loss {result.recovery.loss:.4f} rad²{summary}")

    def _show_poses(self, poses: np.ndarray, aligned: AlignmentResult | None = None,
                    confidence: np.ndarray | None = None) -> str:
        """Store and render poses (points, optional in-plane vectors, error histogram);
        returns the error summary (empty without a truth). ``aligned``: the harmless
        alignment to the truth, when the job already computed it."""
        ds = self.session.dataset
        errors, summary = None, ""
        if aligned is None and ds is not None:
            aligned = _harmless_errors(poses, ds.truth)  # closed form: milliseconds
        self.session.aligned_poses = None
        if aligned is not None:
            errors = aligned.errors_deg
            self.session.aligned_poses = aligned.rotations
            summary = (
                f"; error vs truth (harmless rotation aligned): mean {aligned.mean_deg:.1f}°, "
                f"median {aligned.median_deg:.1f}°, p90 {aligned.p90_deg:.1f}°"
            )
            self.session.metrics.update(aligned.summary())
        self.session.errors_deg = errors
        self.session.confidence = confidence
        self.session.poses = poses
        layer_data = pose_points_layer_data(
            poses,
            errors,
            name=LAYER,
            pixel_size_a=ds.pixel_size_a if ds else None,
            extra_metadata={"box": ds.box, "particles": ds.particles} if ds else {"box": 0},
            confidence=confidence,
        )
        data, kw, _ = layer_data
        layer = show_layer(self.viewer, layer_data, on_created=self._watch_picks)
        if layer is not None:
            self._watch_picks(layer)
        if self.inplane.value:
            # the particle's image x axis, in the reference frame: first row of R
            tangent = poses[:, 0, ::-1] * 0.08 * SPHERE_RADIUS  # napari (z, y, x)
            vectors = np.stack([data, tangent], axis=1)
            show_layer(self.viewer, (vectors, {"name": VECTORS, "edge_width": 0.3, "length": 1.0,
                                               "scale": kw.get("scale"), "translate": kw.get("translate")},
                                     "vectors"))
        elif VECTORS in self.viewer.layers:
            self.viewer.layers.remove(VECTORS)  # the user turned them off
        self._plot_losses()
        if errors is not None:
            self.error_plot.plot(partial(_draw_errors, errors.copy()))
        else:
            self.error_plot.clear()
        frozen = np.array(poses, copy=True)
        self.directions_plot.plot(lambda figure: draw_viewing_directions(figure.add_subplot(), frozen))
        return summary

    def _finished(self) -> None:
        super()._finished()
        if self.runner.stopped and self.is_current() and getattr(self, "_estimate", None) is not None:
            # keep the best estimate so far (not resolved nor refined)
            summary = self._show_poses(so3.quaternion_to_matrix(self._estimate))
            self.status.setText(
                "stopped: kept the best estimate so far (ambiguity not resolved, not refined)" + summary
            )

    def _watch_picks(self, layer: Points) -> None:
        """A click on a point selects its particle (once per layer)."""
        if layer in self._watched:
            return
        self._watched.add(layer)
        layer.selected_data.events.items_changed.connect(lambda *_: self._on_pick(layer))
        layer.mouse_drag_callbacks.append(_select_on_click)

    def _on_pick(self, layer: Points) -> None:
        sel = sorted(layer.selected_data)
        if sel and "index" in layer.features:
            self.session.select(int(layer.features["index"].iloc[sel[0]]))


def _select_on_click(layer: Points, event: Any) -> None:
    """In napari's default pan/zoom mode a click does not select points; here a click on a
    point (2D or 3D) selects it, so its particle is picked as in the select mode."""
    if layer.mode != "pan_zoom" or "index" not in layer.features:
        return
    hit = layer.get_value(event.position, view_direction=event.view_direction,
                          dims_displayed=list(event.dims_displayed), world=True)
    if hit is not None:
        layer.selected_data = {int(hit)}


def _draw_losses(losses: list[float], figure: Any) -> None:
    """The recovery loss as the optimiser reported it (drawn in the plot thread)."""
    ax = figure.add_subplot()
    ax.plot(losses)
    ax.set_xlabel("progress report")
    ax.set_ylabel("recovery loss (rad²)")
    figure.subplots_adjust(left=0.17, right=0.97, bottom=0.2, top=0.9)


def _draw_errors(errors: np.ndarray, figure: Any) -> None:
    """Histogram of the errors, its bars in the colours of the points on the sphere (so it
    is also their colour bar: same colour map, same limits; drawn in the plot thread)."""
    import matplotlib

    ax = figure.add_subplot()
    _, edges, bars = ax.hist(errors, bins=60)
    limit = max(1.0, float(np.percentile(errors, 95)))  # the layer's contrast limits
    cmap = matplotlib.colormaps["plasma"]
    for bar, left, right in zip(bars, edges[:-1], edges[1:], strict=True):
        bar.set_facecolor(cmap(min(1.0, 0.5 * (left + right) / limit)))
    ax.set_xlabel("angular error (°) — colours as on the sphere")
    ax.set_ylabel("particles")
    figure.subplots_adjust(left=0.17, right=0.97, bottom=0.2, top=0.9)


def _harmless_errors(poses: np.ndarray, truth: np.ndarray | None) -> AlignmentResult | None:
    """Errors against the truth after the harmless rotation; None without a truth."""
    return None if truth is None else harmless_alignment(poses, truth)
