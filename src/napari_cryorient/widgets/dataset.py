"""Dataset widget: simulate particles from a map (the sample or an Image layer), or use an
opened particle stack (and its poses as the truth)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, SpinBox
from napari.layers import Image, Points

from ..engine.fourier import fourier_resize_volume
from ..engine.jobs import Progress
from ..engine.particles import Particles
from ..engine.preprocess import PreprocessConfig, preprocess_particles
from ..engine.simulate import SimulationConfig, simulate_particles
from ..engine.volumes import make_sample_volume, normalise_volume
from ..io.errors import InputError
from ..plugin.layer_data import (
    image_layer_data,
    is_stack_layer,
    particles_of_layer,
    pose_points_layer_data,
    rotations_from_features,
)
from ._base import JobWidget
from ._layers import retire_layers, show_layer
from ._session import Dataset

__all__ = ["DatasetWidget"]

SAMPLE = "built-in pseudo-protein"
#: the layers a simulation adds: its images, its map and its true poses
STACK_LAYER = "projections"
SIMULATION_LAYERS = (STACK_LAYER, "ground truth", "true poses")


class DatasetWidget(JobWidget):
    """Simulate a particle set (adds ``projections`` and ``ground truth`` layers) or adopt
    opened layers as the data set."""

    section = "dataset"
    owns_dataset = False

    @property
    def title(self) -> str:  # what the notifications of this widget are prefixed with
        return "Simulate particles" if self.source.value == "simulate" else "Use opened particles"

    def __init__(self, napari_viewer: Any) -> None:
        self.source = ComboBox(
            name="source", label="source", choices=["simulate", "use opened layers"], value="simulate"
        )
        self.volume = ComboBox(
            name="volume", label="map", choices=lambda *_: DatasetWidget._volume_choices(napari_viewer)
        )
        self.n = SpinBox(name="n", label="particles", min=10, max=1_000_000, value=2000, step=100)
        self.box = SpinBox(name="box", label="box (px)", min=16, max=512, value=64, step=2)
        self.pixel = FloatSpinBox(
            name="pixel_size", label="pixel size (Å)", min=0.1, max=50.0, value=2.0, step=0.1
        )
        self.orient = ComboBox(
            name="orientations",
            label="orientations",
            choices=["uniform", "euler", "preferred"],
            value="uniform",
        )
        self.noisy = CheckBox(name="noisy", label="add noise", value=True)
        self.snr = FloatSpinBox(name="snr_db", label="SNR (dB)", min=-30.0, max=30.0, value=-6.0, step=1.0)
        self.shift = FloatSpinBox(name="shift_a", label="shift σ (Å)", min=0.0, max=100.0, value=0.0)
        self.ctf = CheckBox(name="ctf", label="CTF", value=False)
        self.df_min = FloatSpinBox(name="defocus_min", label="defocus min (µm)", min=0.1, max=10.0, value=1.0)
        self.df_max = FloatSpinBox(name="defocus_max", label="defocus max (µm)", min=0.1, max=10.0, value=2.5)
        self.seed = SpinBox(name="seed", label="seed", min=0, max=2**31 - 1, value=0)
        self.stack = ComboBox(
            name="stack",
            label="particle stack",
            choices=lambda *_: DatasetWidget._stack_choices(napari_viewer),
        )
        self.crop = SpinBox(
            name="crop_box", label="Fourier-crop to (px, 0 = keep)", min=0, max=1024, step=2, value=0
        )
        self.normalise = CheckBox(name="normalise", label="normalise on background", value=False)
        self.poses = ComboBox(
            name="poses",
            label="true poses",
            choices=lambda *_: DatasetWidget._pose_choices(napari_viewer),
            nullable=True,
        )
        self._simulation_widgets = (
            self.volume, self.n, self.box, self.pixel, self.orient, self.noisy, self.snr, self.shift,
            self.ctf, self.df_min, self.df_max, self.seed,
        )  # fmt: skip
        self._layer_widgets = (self.stack, self.poses, self.crop, self.normalise)
        form = Container(widgets=[self.source, *self._simulation_widgets, *self._layer_widgets])
        super().__init__(napari_viewer, form, start_text="Make data set")
        self.source.changed.connect(self._update_visibility)
        self.volume.changed.connect(self._update_visibility)
        self._update_visibility()
        napari_viewer.layers.events.inserted.connect(lambda *_: form.reset_choices())
        napari_viewer.layers.events.removed.connect(lambda *_: form.reset_choices())
        form.reset_choices()

    # --- choices
    @staticmethod
    def _volume_choices(viewer: Any) -> list:
        layers = [
            (layer.name, layer)
            for layer in viewer.layers
            if isinstance(layer, Image)
            and layer.ndim == 3
            and not layer.rgb
            and len(set(layer.data.shape)) == 1
        ]
        return [(SAMPLE, SAMPLE), *layers]

    @staticmethod
    def _stack_choices(viewer: Any) -> list:
        return [(layer.name, layer) for layer in viewer.layers
                if isinstance(layer, Image) and is_stack_layer(layer)]

    @staticmethod
    def _pose_choices(viewer: Any) -> list:
        return [
            (layer.name, layer)
            for layer in viewer.layers
            if isinstance(layer, Points) and "rot" in layer.features
        ]

    def _update_visibility(self, *_: Any) -> None:
        sim = self.source.value == "simulate"
        for w in self._simulation_widgets:
            w.visible = sim
        for w in self._layer_widgets:
            w.visible = not sim
        # a map layer brings its own pixel size (rescaled to the box): the field is the sample's only
        self.pixel.visible = sim and self.volume.value in (SAMPLE, None)
        self.start_button.text = "Make data set" if sim else "Use these layers"

    # --- job
    def _volume_source(self) -> Callable[[], tuple[torch.Tensor, float]]:
        """A function (run in the worker) that makes the map to simulate and its pixel size;
        the widget's values and the layer's data are read now, on the main thread."""
        choice = self.volume.value
        box, px = self.box.value, self.pixel.value
        if choice == SAMPLE or choice is None:
            # the sample molecule is one molecule: the seed draws poses and noise, not a new protein
            return lambda: (make_sample_volume("pseudo-protein", box, px, 0), px)
        data = np.array(choice.data, dtype=np.float32)
        layer_px = float((choice.metadata or {}).get("pixel_size_a") or choice.scale[-1])

        def volume() -> tuple[torch.Tensor, float]:
            vol = normalise_volume(torch.from_numpy(data))
            if vol.shape[-1] != box:
                vol = fourier_resize_volume(vol, box)
            return vol, layer_px * data.shape[-1] / box

        return volume

    def _volume(self) -> tuple[torch.Tensor, float]:
        """The map to simulate and its pixel size (Å), made now."""
        return self._volume_source()()

    def make_job(self):
        if self.source.value != "simulate":
            return self._adopt_job()
        if self.df_min.value > self.df_max.value:
            raise ValueError("defocus min is larger than defocus max")
        make_volume = self._volume_source()
        cfg = SimulationConfig(
            n_particles=self.n.value,
            orientations=self.orient.value,
            shift_std_a=self.shift.value,
            ctf=self.ctf.value,
            defocus_range_um=(self.df_min.value, self.df_max.value),
            seed=self.seed.value,
        )
        cfg.validate()
        noisy = self.noisy.value
        snr = self.snr.value

        def job():
            vol, px = make_volume()
            clean = yield from simulate_particles(vol, px, cfg)
            result = clean
            if noisy:
                result = yield from simulate_particles(vol, px, replace(cfg, snr_db=snr))
            return clean, result, vol.numpy(), px

        return job

    def on_result(self, result: Any) -> None:
        if isinstance(result, Dataset):
            keep = {result.layer, getattr(self.poses.value, "name", None)}
            # a simulation's layers are not this data set's
            retire_layers(self.viewer, SIMULATION_LAYERS, keep)
            self.session.set_dataset(result)
            self.status.setText(
                f"using {result.source}: {len(result)} particles of {result.box}² at "
                f"{result.pixel_size_a:.3g} Å/px" + (", with true poses" if result.truth is not None else "")
            )
            return
        clean, noisy, vol, px = result
        has_noise = noisy is not clean
        particles = Particles(noisy.images, px, shifts_a=noisy.shifts_a, ctf=noisy.ctf, name="simulation")
        ds = Dataset(
            particles,
            truth=clean.rotations,
            clean=clean.images if has_noise else None,
            noise_variance=noisy.noise_variance if has_noise else None,
            volume=vol,
            layer=STACK_LAYER,
        )
        self.session.set_dataset(ds)
        self._show(ds)
        self.status.setText(
            f"{len(ds)} particles of {ds.box}² at {px:.3g} Å/px"
            + (f", SNR {self.snr.value:g} dB" if has_noise else ", noise-free")
        )

    def _show(self, ds: Dataset) -> None:
        """The simulation's images, map and true poses (layers updated in place)."""
        from ..plugin.layer_data import stack_layer_data

        show_layer(self.viewer, stack_layer_data(ds.images, ds.pixel_size_a, STACK_LAYER))
        if ds.volume is not None:
            show_layer(self.viewer, image_layer_data(ds.volume, ds.pixel_size_a, "ground truth",
                                                     rendering="iso", visible=False))
        if ds.truth is not None:
            data, kw, kind = pose_points_layer_data(
                ds.truth, name="true poses", pixel_size_a=ds.pixel_size_a, extra_metadata={"box": ds.box}
            )
            show_layer(self.viewer, (data, {**kw, "visible": False}, kind))

    def _adopt_job(self):
        stack = self.stack.value
        if stack is None:
            raise InputError("open a particle stack first (File > Open: .mrcs, .star or .cs)")
        particles = particles_of_layer(stack)
        px = particles.pixel_size_a or 1.0
        truth = None
        if self.poses.value is not None:
            truth = rotations_from_features(self.poses.value.features)
            if len(truth) != len(particles):
                raise InputError(f"{len(truth)} poses for {len(particles)} images")
        config = PreprocessConfig(box=self.crop.value or None, normalise=self.normalise.value)
        config.validate(particles.box)
        name = stack.name

        def job():
            yield Progress("adopt", 0, 1, f"reading {name}")
            images = np.asarray(particles.images, dtype=np.float32)  # a file-backed stack is read here
            if config.box is None and not config.normalise:
                if not np.isfinite(images).all():
                    raise ValueError(f"{name} contains NaN or infinite pixels")
                return Dataset(particles.with_images(images), truth=truth, layer=name)
            box = config.box or images.shape[-1]
            out = np.empty((len(images), box, box), np.float32)

            def sink(start, chunk):
                out[start : start + len(chunk)] = chunk

            res = yield from preprocess_particles(images, px, sink, shifts_a=particles.shifts_a,
                                                  ctf=particles.ctf, config=config)
            return Dataset(particles.with_images(out, res.pixel_size_a), truth=truth, layer=name)

        return job
