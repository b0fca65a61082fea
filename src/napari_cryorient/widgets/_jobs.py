"""Running engine jobs in a worker thread, safely.

* The engine generator runs in a napari ``thread_worker``; its :class:`Progress` events are
  throttled (at most ~10 per second reach the main thread) and rendered there.
* napari generator workers treat ``RuntimeError`` as "worker deleted" and drop it
  silently, and torch errors (out of memory included) are ``RuntimeError``\\ s: every
  exception is therefore re-raised as :class:`JobError`, which is not one.
* Stop = ``worker.quit()``: it takes effect at the next event (engine jobs yield often).
* User mistakes (:class:`~napari_cryorient.io.errors.InputError`, ``ValueError``) and
  failures become napari notifications; the widget is ready for the next run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

from napari.qt.threading import create_worker
from napari.utils import progress
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer

from ..engine.jobs import Progress, forward
from ._layers import pending_layers

__all__ = ["JobError", "JobRunner"]


class JobError(Exception):
    """An engine job failed; ``str()`` is the message to show."""


def _guarded(
    factory: Callable[[], Generator[Progress, None, Any]], interval_s: float
) -> Generator[Progress | None, None, Any]:
    """The job, with events thinned to one per ``interval_s`` (None in between, so that
    ``quit()`` still acts at once) and every exception turned into :class:`JobError`."""
    last = [0.0]

    def thin(event: Progress) -> Progress | None:
        now = time.monotonic()
        # stage ends, epoch ends (validation results) and complete rounds (a result to show)
        # are always forwarded
        if (now - last[0] >= interval_s or event.done >= event.total or "val_loss" in event.data
                or "result" in event.data):
            last[0] = now
            return event
        return None

    try:
        return (yield from forward(factory(), transform=thin))
    except Exception as err:
        raise JobError(str(err) or type(err).__name__) from err


class JobRunner:
    """One job at a time for one widget.

    Parameters
    ----------
    name
        Shown in the progress bar and notifications.
    on_event
        Main-thread callback for each (throttled) :class:`Progress`.
    on_result
        Main-thread callback with the job's return value.
    on_finished
        Main-thread callback once the job ends, however it ends (reset buttons here).
    """

    def __init__(
        self,
        name: str,
        on_event: Callable[[Progress], None] | None = None,
        on_result: Callable[[Any], None] | None = None,
        on_finished: Callable[[], None] | None = None,
        interval_s: float = 0.1,
    ) -> None:
        self.name = name
        self._on_event, self._on_result, self._on_finished = on_event, on_result, on_finished
        self.interval_s = interval_s
        self.worker = None
        self._bar: progress | None = None
        self.error: str | None = None
        self.stopped = False
        #: set by a widget between Start and the worker's start (while it prepares layers)
        self.reserved = False
        self._closing = False

    @property
    def outcome(self) -> str:
        """How the last job ended: ``failed``, ``stopped`` or ``finished``."""
        return "failed" if self.error else "stopped" if self.stopped else "finished"

    @property
    def running(self) -> bool:
        """A job is on its way: reserved, computing, or showing its result."""
        return self.worker is not None or self.reserved

    def start(self, factory: Callable[[], Generator[Progress, None, Any]]) -> None:
        """Run ``factory()`` (an engine job) in a worker thread."""
        if self.worker is not None:
            show_info(f"{self.name} is already running")
            return
        self.error, self.stopped = None, False
        worker = create_worker(_guarded, factory, self.interval_s, _ignore_errors=True)
        worker.yielded.connect(self._event)
        worker.returned.connect(self._result)
        worker.errored.connect(self._error)
        worker.finished.connect(self._finished)
        self.worker = worker
        self._bar = progress(total=0, desc=self.name)
        worker.start()

    def stop(self) -> None:
        """Ask the job to stop at its next event."""
        if self.worker is not None:
            self.stopped = True
            self.worker.quit()

    def wait(self, timeout_s: float = 60.0) -> None:
        """Block (processing Qt events) until the job ends; for tests and scripts."""
        from qtpy.QtCore import QCoreApplication

        t0 = time.monotonic()
        while self.running and time.monotonic() - t0 < timeout_s:
            QCoreApplication.processEvents()
            time.sleep(0.01)

    def _event(self, event: Progress | None) -> None:
        if event is None or self.worker is None or self._closing:
            return  # nothing to show, or a late event of a job that has already ended
        bar = self._bar
        if bar is not None:
            try:
                if bar.total != event.total:
                    bar.total = event.total
                description = f"{self.name}: {event.stage}"
                if bar.desc != description:
                    # napari's progress bar processes Qt events here: the job may end meanwhile
                    bar.set_description(description)
                bar.n = event.done
                bar.refresh()
            except (AttributeError, RuntimeError):
                pass  # the bar was closed meanwhile (job finished); nothing to update
        if self.worker is None or self._closing:
            return  # the job ended while the bar was updated; its last state is already shown
        if self._on_event is not None:
            self._on_event(event)

    def _result(self, value: Any) -> None:
        if self._on_result is not None:
            try:
                self._on_result(value)
            except Exception as err:
                self._error(err)

    def _error(self, err: BaseException) -> None:
        self.error = str(err)
        show_error(f"{self.name} failed: {err}")

    def _finished(self) -> None:
        if self.worker is None:
            return
        if not self._closing:
            # the widget's last words (status, a kept estimate) come while the job still
            # counts as running, so that whatever layers they ask for are part of it
            self._closing = True
            if self._on_finished is not None:
                self._on_finished()
        if pending_layers():
            # a job has ended when its result is shown: the layers it asked for come one
            # per turn of the event loop (see _layers)
            QTimer.singleShot(10, self._finished)
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self.worker = None
        self._closing = False
