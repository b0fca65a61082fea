"""Shared CLI plumbing: error reporting, progress bars, devices, volume loading."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TypeVar

import torch

from ..engine.jobs import EngineError, Progress
from ..io.errors import InputError

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def error(message: str) -> None:
    """Print one error line to stderr."""
    print(f"cryorient: error: {message}", file=sys.stderr)


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a subcommand, mapping user errors to exit 2 and engine failures to exit 1."""
    try:
        return func(args)
    except (InputError, ValueError) as err:
        error(str(err))
        return EXIT_USAGE
    except EngineError as err:
        error(str(err))
        return EXIT_FAILED
    except KeyboardInterrupt:
        error("interrupted; no output was written")
        return 130


def run_with_progress(job: Generator[Progress, None, T], description: str, unit: str = "it") -> T:
    """Drain an engine job with a tqdm progress bar on stderr."""
    from tqdm import tqdm

    bar = None
    try:
        while True:
            try:
                event = next(job)
            except StopIteration as stop:
                return stop.value
            if bar is None:
                bar = tqdm(total=event.total, desc=description, unit=unit, file=sys.stderr,
                           dynamic_ncols=True, leave=False)
            bar.update(event.done - bar.n)
    finally:
        if bar is not None:
            bar.close()


def add_device_arg(parser: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda`` and ``--threads``."""
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's choice)")


def resolve_device(args: argparse.Namespace) -> torch.device:
    """Apply ``--threads`` and turn ``--device`` into a torch device."""
    if getattr(args, "threads", None):
        if args.threads < 1:
            raise ValueError("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    name = getattr(args, "device", "auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but no CUDA device is available")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise ValueError(f"unknown device {name!r} (use auto, cpu or cuda)")
    return torch.device(name)


def positive_path(value: str) -> Path:
    """argparse type for paths."""
    return Path(value)
