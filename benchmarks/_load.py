"""Sample the system load while a benchmark runs, so contended timings can be flagged."""

from __future__ import annotations

import os
import threading


class LoadSampler:
    """Average of the 1-minute load average, sampled every ``interval_s`` seconds.

    A benchmark alone on the machine adds about its own thread count to the load; a mean
    load well above the CPU count means the wall times of that run are upper bounds.
    """

    def __init__(self, interval_s: float = 15.0) -> None:
        self.interval_s = interval_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples) if self.samples else float("nan")


def contended(load_mean: float | None, cpu_count: int | None, shared_cpu: bool = False) -> bool:
    """Whether a run shared the machine: mean load above CPU count + 0.5.

    ``shared_cpu`` marks records from before the load was sampled that are known to have
    shared the machine.
    """
    if shared_cpu:
        return True
    return load_mean is not None and cpu_count is not None and load_mean > cpu_count + 0.5


def shared_mark(record: dict) -> str:
    """``*`` for a stored benchmark record whose run shared the CPU, else empty."""
    shared = contended(record.get("load_average_mean"), record.get("machine", {}).get("cpu_count"),
                       record.get("shared_cpu", False))
    return "*" if shared else ""
