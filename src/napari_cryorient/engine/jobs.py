"""Progress events and errors shared by every long engine job.

A long job is a generator: it ``yield``\\ s :class:`Progress` events (often, so a GUI
worker can stop it at the next ``yield``) and ``return``\\ s its result. Two helpers are
the only places that drive one:

* :func:`forward` — inside another job: ``result = yield from forward(sub_job, ...)``
  passes the sub-job's events on (optionally relabelled, rescaled into a parent's range,
  thinned or timed) and returns its result;
* :func:`run_job` — at the top: drains a job, handing each event to a callback.

Closing the outer generator closes the sub-job (so a stopped job stops where it is).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

__all__ = ["EngineError", "Job", "Progress", "StageClock", "format_duration", "forward", "run_job"]

T = TypeVar("T")


class EngineError(RuntimeError):
    """A computation failed (torch error, out of memory, numerical failure).

    Raised instead of torch's bare ``RuntimeError`` so that callers can tell our failures
    from programming errors, and so napari generator workers do not swallow them.
    """


@dataclass(frozen=True)
class Progress:
    """One progress event of a long job.

    Attributes
    ----------
    stage
        Short name of the stage (``"simulate"``, ``"reconstruct"``...).
    done, total
        Work units finished and expected (particles, steps...), within the stage.
    message
        Optional human-readable detail.
    data
        Optional small payload already on the CPU (losses, previews).
    """

    stage: str
    done: int
    total: int
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """Fraction done in [0, 1]."""
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)


Job = Generator[Progress, None, T]
"""A long engine job: yields :class:`Progress`, returns its result."""


class StageClock:
    """Elapsed time and ETA of the current stage of a job, from its events.

    The clock restarts whenever the stage changes (or its count goes back); the ETA is
    the remaining units at the stage's mean pace so far (None before any progress).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._stage: str | None = None
        self._t0 = 0.0
        self._done0 = 0

    def update(self, event: Progress) -> tuple[float, float | None]:
        """``(elapsed_s, eta_s)`` of ``event``'s stage."""
        now = self._clock()
        if event.stage != self._stage or event.done < self._done0:
            self._stage, self._t0, self._done0 = event.stage, now, event.done
        elapsed = now - self._t0
        progressed = event.done - self._done0
        if progressed <= 0 or not event.total:
            return elapsed, None
        return elapsed, elapsed / progressed * max(0, event.total - event.done)


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def forward(
    job: Generator[Any, None, T],
    stage: str | None = None,
    *,
    offset: int = 0,
    total: int | None = None,
    message: str | None = None,
    transform: Callable[[Progress], Any] | None = None,
    timings: dict[str, float] | None = None,
) -> Generator[Any, None, T]:
    """Pass a sub-job's events on; return its result (use with ``yield from``).

    Parameters
    ----------
    job
        The sub-job.
    stage
        New stage name of every event (None: keep it).
    offset, total
        Place the sub-job's ``done`` at ``offset + done`` out of ``total`` (a parent
        stage made of several sub-jobs); None keeps the sub-job's own total.
    message
        Replaces each event's message (the sub-job's message is appended after ``: ``).
    transform
        Applied last to each event; its return value is yielded instead (any value,
        e.g. None to thin a stream of events).
    timings
        Adds the wall time of the sub-job under ``stage`` (or the first event's stage).
    """
    t0 = time.perf_counter()
    result: list[T] = []
    key = stage

    def capture() -> Generator[Any, None, None]:
        result.append((yield from job))

    inner = capture()
    try:
        for event in inner:
            if isinstance(event, Progress):
                key = key or event.stage
                changes: dict[str, Any] = {}
                if stage is not None:
                    changes["stage"] = stage
                if offset or total is not None:
                    changes["done"] = offset + event.done
                    changes["total"] = event.total if total is None else total
                if message is not None:
                    changes["message"] = f"{message}: {event.message}" if event.message else message
                if changes:
                    event = replace(event, **changes)
            yield transform(event) if transform is not None else event
    finally:
        inner.close()
        getattr(job, "close", lambda: None)()
        if timings is not None and key is not None:
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
    return result[0]


def run_job(job: Generator[Any, None, T], callback: Callable[[Any], None] | None = None) -> T:
    """Drain a job generator, passing each event to ``callback``; return its result."""
    result: list[T] = []

    def capture() -> Generator[Any, None, None]:
        result.append((yield from job))

    for event in capture():
        if callback is not None:
            callback(event)
    return result[0]
