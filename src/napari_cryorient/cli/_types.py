"""argparse types for every value that enters physics: finite and in a stated range.

A bad value is refused while the command line is parsed (exit 2, one line naming the
option), before any file is read or written.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["bounded_float", "bounded_int"]


def bounded_float(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
                  unit: str = "") -> Callable[[str], float]:
    """A finite float in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``); None: unbounded."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        below = lo is not None and (value <= lo if lo_open else value < lo)
        if below or (hi is not None and value > hi):
            left = "(" if lo_open else "["
            raise argparse.ArgumentTypeError(
                f"must be in {left}{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
                f"{' ' + unit if unit else ''}, got {text}")
        return value

    return parse


def bounded_int(lo: int | None = None, hi: int | None = None, unit: str = "") -> Callable[[str], int]:
    """An integer in ``[lo, hi]`` (None: unbounded)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(
                f"must be in [{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
                f"{' ' + unit if unit else ''}, got {text}")
        return value

    return parse


#: pixel sizes of real and simulated particles (Å): anything outside is a typo or a unit error
PIXEL_SIZE = bounded_float(0.05, 100.0, unit="Å")
SNR_DB = bounded_float(-60.0, 60.0, unit="dB")
SEED = bounded_int(0, 2**32 - 1)
