"""Progress events and errors shared by every long engine job.

A long job is a generator: it ``yield``\\ s :class:`Progress` events (often, so a GUI
worker can stop it at the next ``yield``) and ``return``\\ s its result. The CLI drains it
with a progress bar, the napari widgets run it in a ``thread_worker``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["EngineError", "Progress", "run_job"]

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
        Work units finished and expected (particles, steps...).
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


def run_job(
    job: Generator[Progress, None, T], callback: Callable[[Progress], None] | None = None
) -> T:
    """Drain a job generator, passing each event to ``callback``; return its result."""
    while True:
        try:
            event = next(job)
        except StopIteration as stop:
            return stop.value
        if callback is not None:
            callback(event)
