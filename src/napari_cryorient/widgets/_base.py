"""The common frame of a job widget: a settings form, Start/Stop, a status line."""

from __future__ import annotations

import time
from typing import Any

from magicgui.widgets import Container, PushButton
from napari.utils.notifications import show_error
from qtpy.QtCore import QEvent, QTimer
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..engine.inference import DistanceModel
from ..engine.jobs import Progress, StageClock, format_duration
from ..io.checkpoint import model_from_checkpoint
from ..io.errors import InputError
from ._jobs import JobRunner
from ._layers import pending_layers, show_layer
from ._project import save_record
from ._session import Dataset, JobRecord, get_session
from ._settings import load_settings, save_settings
from ._view import install_view_rules

__all__ = ["JobWidget"]

DISCARDED = "stopped and discarded: the data set changed while the job ran; start it again"


class JobWidget(QWidget):
    """Base class: subclasses fill ``self.form`` and implement :meth:`make_job` and
    :meth:`on_result` (and optionally :meth:`on_event`)."""

    section = "job"
    title = "Job"
    #: a job's result belongs to the data set it started on: when another one is adopted
    #: while it runs, the job is stopped and whatever it yields afterwards is discarded (the
    #: Dataset widget, which makes data sets, and Train, whose network outlives its data
    #: set, opt out)
    owns_dataset = True

    def __init__(self, napari_viewer: Any, form: Container, start_text: str = "Start") -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = get_session(napari_viewer)
        install_view_rules(napari_viewer)
        self.form = form
        load_settings(self.section, form)
        self.start_button = PushButton(text=start_text)
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.start_button.changed.connect(self.start)
        self.stop_button.changed.connect(self.stop)
        self.buttons = Container(
            widgets=[self.start_button, self.stop_button], layout="horizontal", labels=False
        )
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(form.native)
        layout.addWidget(self.buttons.native)
        layout.addWidget(self.status)
        self.runner = JobRunner(
            self.title, on_event=self.on_job_event, on_result=self._result, on_finished=self._finished
        )
        runner = self.runner
        self.destroyed.connect(lambda *_: runner.stop())
        self.session.events.dataset.connect(self._on_dataset_changed)

    def _on_dataset_changed(self, *_: Any) -> None:
        """A job owns its inputs: another data set adopted while it runs stops it."""
        if self.owns_dataset and self.runner.running and not self.is_current():
            self.stop()

    def is_current(self) -> bool:
        """Whether the job (running or last run) belongs to the session's data set: its
        events and result may be shown only then."""
        return not self.owns_dataset or self.session.dataset is getattr(self, "_started_on", None)

    # --- preconditions shared by the job widgets (one message each)
    def require_dataset(self) -> Dataset:
        """The session's data set; :class:`InputError` when there is none yet."""
        ds = self.session.dataset
        if ds is None:
            raise InputError("no data set: make one in the Dataset widget first")
        return ds

    def require_model(self) -> DistanceModel:
        """The session's distance network; :class:`InputError` when there is none yet."""
        if self.session.checkpoint is None:
            raise InputError("no distance network: train or load one in the Train widget first")
        return model_from_checkpoint(self.session.checkpoint)

    # --- for subclasses
    def make_job(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def on_event(self, event: Progress) -> None:
        self.status.setText(f"{event.stage}: {event.done}/{event.total} {event.message}"
                            f"{self.timing(event)}")

    def timing(self, event: Progress) -> str:
        """`` — 12 s elapsed, ETA 40 s`` for the event's stage (from the stage's start)."""
        if not hasattr(self, "_clock"):
            self._clock = StageClock()
        elapsed, eta = self._clock.update(event)
        text = f" — {format_duration(elapsed)} elapsed"
        return text + (f", ETA {format_duration(eta)}" if eta is not None else "")

    def on_result(self, result: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- machinery
    def start(self) -> None:
        """Validate the settings, save them, and start the job."""
        if self.runner.running:
            return
        try:
            factory = self.make_job()
        except (InputError, ValueError) as err:
            show_error(f"{self.title}: {err}")
            return
        save_settings(self.section, self.form)
        self._started_on = self.session.dataset
        self.start_button.enabled = False
        self.stop_button.enabled = True
        self._summary = ""
        self._clock = StageClock()
        self._record_start = (time.strftime("%Y-%m-%dT%H:%M:%S"), time.monotonic(),
                              {w.name: getattr(w, "value", None) for w in self.form
                               if isinstance(getattr(w, "value", None), (bool, int, float, str))})
        self._log: list[str] = []
        self._log_key, self._log_t = None, 0.0
        self.status.setText("running…")
        missing = [data for data in self.result_layers() if data[1]["name"] not in self.viewer.layers]
        for data in missing:
            show_layer(self.viewer, data)
        self.runner.reserved = True
        self._start_when_layers_exist(factory)

    def _start_when_layers_exist(self, factory) -> None:
        """Start the job once the result layers asked for at Start exist: they are made
        before the job computes, so that making them never competes with it."""
        if not self.runner.reserved:
            return  # stopped before it started
        if pending_layers():
            QTimer.singleShot(10, lambda: self._start_when_layers_exist(factory))
            return
        self.runner.reserved = False
        self.runner.start(factory)

    def result_layers(self) -> list[tuple]:
        """Layers (``(data, kwargs, kind)``, hidden placeholders) that the job's results will
        fill in place; made at Start when missing. None by default."""
        return []

    def stop(self) -> None:
        if self.runner.reserved:  # still making its layers: it never starts
            self.runner.reserved = False
            self.start_button.enabled, self.stop_button.enabled = True, False
            self.status.setText("stopped")
            self._record_start = None
            return
        self.runner.stop()

    def _result(self, result: Any) -> None:
        if not self.is_current():
            self._summary = DISCARDED
            self.status.setText(self._summary)
            return
        self.on_result(result)
        self._summary = self.status.text()

    def _finished(self) -> None:
        self.start_button.enabled = True
        self.stop_button.enabled = False
        if self.runner.error:
            self.status.setText(f"failed: {self.runner.error}")
        elif not self.is_current():
            self.status.setText(DISCARDED)
        elif self.runner.stopped:
            self.status.setText("stopped")
        elif getattr(self, "_summary", ""):
            self.status.setText(self._summary)  # the result, not the last progress line
        self._record()

    def _record(self) -> None:
        """Keep this run in the session's job history."""
        start = getattr(self, "_record_start", None)
        if start is None:
            return
        started, t0, parameters = start
        status = self.runner.outcome
        ds = self.session.dataset  # the one the job ran on, or the one it made
        name = ds.source if ds is not None else ""
        log = [*self._log, f"{time.monotonic() - t0:+8.1f} s  {status}: {self.status.text()}"]
        record = JobRecord(job=self.section, parameters=parameters, started=started,
                           duration_s=time.monotonic() - t0, status=status,
                           summary=self.status.text(), dataset=name, log=tuple(log))
        self.session.record(record)
        self._record_start = None
        save_record(self.session, record)

    def closeEvent(self, event) -> None:
        self.stop()
        super().closeEvent(event)

    def on_job_event(self, event: Progress) -> None:
        """Every event reaches :meth:`on_event` only while the job's data set is current;
        each goes into the run's log."""
        self._log_event(event)
        if self.is_current():
            self.on_event(event)

    #: most lines a job's log keeps (the first and the last halves)
    LOG_LINES = 2000

    def _log_event(self, event: Progress) -> None:
        """One log line per new stage or message, and at most one a second otherwise."""
        start = getattr(self, "_record_start", None)
        if start is None:
            return
        t = time.monotonic() - start[1]
        key = (event.stage, event.message)
        if key == self._log_key and t - self._log_t < 1.0 and event.done != event.total:
            return
        self._log_key, self._log_t = key, t
        self._log.append(f"{t:+8.1f} s  {event.stage} {event.done}/{event.total}  {event.message}".rstrip())
        if len(self._log) > self.LOG_LINES:
            half = self.LOG_LINES // 2
            self._log[half:-half + 1] = ["…"]

    def event(self, event: QEvent) -> bool:
        """napari's × on a dock widget does not close the panel: it takes it out of its dock
        (``setParent(None)``). A panel that leaves its dock stops its job."""
        if event.type() == QEvent.Type.ParentChange:
            if self.parent() is not None:
                self._docked = True
            elif getattr(self, "_docked", False):
                self.stop()
        return super().event(event)
