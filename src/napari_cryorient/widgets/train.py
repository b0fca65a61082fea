"""Train widget: the Siamese distance network, with live loss curves and a live
predicted-versus-true distance histogram. Stop keeps the model; Start again resumes."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from magicgui.widgets import ComboBox, Container, FloatSpinBox, PushButton, SpinBox
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QFileDialog

from ..engine.device import resolve_device
from ..engine.jobs import Progress
from ..engine.siamese import EncoderConfig
from ..engine.train import DistanceTrainer, TrainConfig, prepare_training_data
from ..io.errors import InputError
from ..method.presets import METHOD_PRESETS
from ._base import JobWidget
from ._plots import PlotCanvas, plot_style

__all__ = ["TrainWidget"]


_WARM = False


def _warm_up_torch() -> None:
    """Run one tiny training step once per process.

    torch's first convolution backward on a CPU builds its kernels while holding the GIL
    (long enough to fail the 200 ms stall test), which would freeze the UI at the start of the first
    training run; paying it when the widget opens keeps the running UI responsive.
    """
    global _WARM
    if _WARM:
        return
    from ..engine.siamese import SiameseNet

    net = SiameseNet(EncoderConfig())
    x = torch.randn(16, 1, EncoderConfig().working_box, EncoderConfig().working_box).squeeze(1)
    torch.optim.AdamW(net.parameters())
    net(x[:8], x[8:]).sum().backward()
    _WARM = True


class TrainWidget(JobWidget):
    """Start / Stop / resume training on the session's data set."""

    section = "train"
    title = "Train distance network"
    #: the network outlives its data set (train on a simulation, recover a real stack): a
    #: run goes on, and its network is kept, when another data set is adopted meanwhile
    owns_dataset = False

    def __init__(self, napari_viewer: Any) -> None:
        d = TrainConfig()
        q = METHOD_PRESETS["quick"].train
        # the preset comes first: restored settings set it, then the values a user changed
        self.preset = ComboBox(name="preset", label="preset", choices=list(METHOD_PRESETS), value="quick")
        self.epochs = SpinBox(name="epochs", label="epochs", min=1, max=10000, value=q.epochs)
        self.steps = SpinBox(
            name="steps_per_epoch", label="steps / epoch", min=1, max=10000, value=q.steps_per_epoch
        )
        self.preset.changed.connect(self._apply_preset)
        self.anchors = SpinBox(
            name="anchors", label="anchors / batch", min=2, max=4096, value=d.anchors_per_batch
        )
        self.wbox = SpinBox(
            name="working_box", label="working box (px)", min=8, max=256, step=2, value=d.encoder.working_box
        )
        self.lr = FloatSpinBox(name="lr", label="learning rate", min=1e-5, max=1.0, step=1e-4, value=d.lr)
        self.val = FloatSpinBox(
            name="val_fraction",
            label="validation fraction",
            min=0.01,
            max=0.5,
            step=0.01,
            value=d.val_fraction,
        )
        self.device = ComboBox(name="device", label="device", choices=["auto", "cpu", "cuda"], value="auto")
        self.seed = SpinBox(name="seed", label="seed", min=0, max=2**31 - 1, value=0)
        form = Container(
            widgets=[
                self.preset,
                self.epochs,
                self.steps,
                self.anchors,
                self.wbox,
                self.lr,
                self.val,
                self.device,
                self.seed,
            ]
        )
        super().__init__(napari_viewer, form, start_text="Start / resume")
        self.save_button = PushButton(text="Save model…")
        self.load_button = PushButton(text="Load model…")
        self.save_button.changed.connect(lambda *_: self.save_model())
        self.load_button.changed.connect(lambda *_: self.load_model())
        files = Container(widgets=[self.save_button, self.load_button], layout="horizontal", labels=False)
        self.layout().insertWidget(2, files.native)
        self.loss_plot = PlotCanvas(style=plot_style(napari_viewer))
        self.dist_plot = PlotCanvas(style=plot_style(napari_viewer))
        self.layout().addWidget(self.loss_plot)
        self.layout().addWidget(self.dist_plot)
        self.session.events.dataset.connect(self._reset)
        _warm_up_torch()

    def _reset(self) -> None:
        self.loss_plot.clear()
        self.dist_plot.clear()

    def _apply_preset(self, name: str) -> None:
        """Fill the schedule of preset ``name`` (method/presets.py, shared with the CLI)."""
        train = METHOD_PRESETS[name].train
        self.epochs.value, self.steps.value = train.epochs, train.steps_per_epoch

    def _config(self) -> TrainConfig:
        return replace(
            METHOD_PRESETS[self.preset.value].train,
            encoder=EncoderConfig(working_box=self.wbox.value),
            epochs=self.epochs.value,
            steps_per_epoch=self.steps.value,
            anchors_per_batch=self.anchors.value,
            lr=self.lr.value,
            val_fraction=self.val.value,
            seed=self.seed.value,
            device=self.device.value,
        )

    def make_job(self):
        ds = self.require_dataset()
        if ds.truth is None:
            raise InputError(
                "training needs particles with known poses (a simulation, or a stack with its true poses)"
            )
        resolve_device(self.device.value)  # the engine's check: unavailable devices are refused here
        config = self._config()
        if config.encoder.working_box > ds.box:
            raise ValueError(f"working box {config.encoder.working_box} is larger than the images ({ds.box})")
        previous = self.session.trainer
        if previous is None or (previous.finished and config.epochs <= previous.config.epochs):
            config.validate(len(ds))

        def job():
            # everything heavy happens here, in the worker thread
            trainer = previous
            if trainer is not None and trainer.finished and config.epochs > trainer.config.epochs:
                trainer = DistanceTrainer.from_checkpoint(
                    trainer.checkpoint(), trainer.data, epochs=config.epochs
                )
            elif trainer is None or trainer.finished:
                images = ds.clean if ds.clean is not None else ds.images
                data = prepare_training_data(
                    images, ds.truth, config.encoder.working_box, noise_variance=ds.noise_variance,
                    pixel_size_a=ds.particles.pixel_size_a, shifts_a=ds.shifts_a, ctf=ds.ctf,
                    phase_flip=ds.ctf is not None,
                )
                trainer = DistanceTrainer(data, config)
            # the main thread adopts the trainer from this first event (stop keeps it)
            yield Progress("train", trainer.step, trainer.total_steps, "starting", {"trainer": trainer})
            yield from trainer.run()
            return trainer, trainer.checkpoint()

        return job

    def on_event(self, event) -> None:
        data = event.data
        if "trainer" in data:
            self._trainer = data["trainer"]
            if self.session.dataset is getattr(self, "_started_on", None):
                self.session.trainer = self._trainer  # Start resumes it while this data set stays
            return
        eta = data.get("eta_s")
        self.status.setText(
            f"step {event.done}/{event.total} ({event.message}), loss "
            f"{data.get('train_loss', float('nan')):.4f} rad², "
            f"{data.get('pairs_per_s', 0):.0f} pairs/s" + (f", ETA {eta:.0f} s" if eta is not None else "")
        )
        if "val_loss" in data:
            self._plot_history()
            self._plot_distances(data["evaluation"])

    def _plot_history(self) -> None:
        trainer = getattr(self, "_trainer", None) or self.session.trainer
        if trainer is None or not trainer.history:
            return
        self.loss_plot.plot(partial(_draw_history, list(trainer.history)))

    def _plot_distances(self, ev) -> None:
        self.dist_plot.plot(partial(_draw_distances, ev))

    def on_result(self, result: tuple[DistanceTrainer, dict]) -> None:
        trainer, self.session.checkpoint = result
        self._finish(trainer, checkpoint_ready=True)

    def _finished(self) -> None:
        super()._finished()
        trainer = getattr(self, "_trainer", None)  # the session's, unless another data set came since
        if trainer is not None and self.runner.stopped:
            # a stopped run keeps what it did; Start resumes it (on the same data set)
            self._finish(trainer, stopped=True)
        self._trainer = None

    def _finish(
        self, trainer: DistanceTrainer, stopped: bool = False, checkpoint_ready: bool = False
    ) -> None:
        if not checkpoint_ready:
            self.session.checkpoint = trainer.checkpoint()
        self.session.features = None
        self._plot_history()
        if trainer.history:
            last = trainer.history[-1]
            self.status.setText(
                ("stopped at" if stopped else "done:") + f" epoch {last['epoch'] + 1}, "
                f"validation MAE {last['val_mae_deg']:.1f}°" + (" (Start resumes)" if stopped else "")
            )

    def save_model(self, path: str | None = None) -> None:
        from ..io.checkpoint import save_model

        if self.session.checkpoint is None:
            show_error("Train: no model to save yet")
            return
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save model", "model.pt", "PyTorch model (*.pt)")
            if not path:
                return
        save_model(path, self.session.checkpoint)
        show_info(f"model saved to {path}")

    def load_model(self, path: str | None = None) -> None:
        from ..io.checkpoint import load_checkpoint

        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Load model", "", "PyTorch model (*.pt)")
            if not path:
                return
        try:
            checkpoint = load_checkpoint(Path(path))
        except (InputError, ValueError) as err:
            show_error(f"Train: {err}")
            return
        self.session.checkpoint = checkpoint
        self.session.trainer = None
        self.session.features = None
        self.status.setText(f"loaded {Path(path).name}")


def _draw_history(history: list[dict], figure: Any) -> None:
    """Training and validation loss per epoch (drawn in the plot thread)."""
    ax = figure.add_subplot()
    epochs = [h["epoch"] + 1 for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (rad²)")
    ax.legend(fontsize=7)
    figure.subplots_adjust(left=0.17, right=0.97, bottom=0.2, top=0.9)


def _draw_distances(ev: Any, figure: Any) -> None:
    """Predicted against true distance on validation pairs (drawn in the plot thread)."""
    ax = figure.add_subplot()
    edges = ev.bin_edges_deg
    data = np.log1p(ev.histogram.T)
    ax.imshow(data, origin="lower", extent=(edges[0], edges[-1], edges[0], edges[-1]), aspect="auto",
              cmap="magma", vmin=0, vmax=max(1e-6, float(data.max())))
    ax.plot([edges[0], edges[-1]], [edges[0], edges[-1]], "c--", lw=1)
    ax.set_xlabel("true distance (°)")
    ax.set_ylabel("predicted (°)")
    ax.set_title(f"MAE {ev.mae_deg:.1f}°, r = {ev.pearson_r:.3f}", fontsize=8)
    figure.subplots_adjust(left=0.17, right=0.97, bottom=0.2, top=0.88)
