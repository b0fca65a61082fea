"""Shared CLI plumbing: error reporting, progress bars, devices, volume loading."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TypeVar

import torch

from ..engine.jobs import EngineError, Progress, run_job
from ..io.errors import InputError

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def error(message: str) -> None:
    """Print one error line to stderr."""
    print(f"cryorient: error: {message}", file=sys.stderr)


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a subcommand, mapping user errors to exit 2 and engine failures to exit 1."""
    previous = _sigterm_as_interrupt()
    try:
        return func(args)
    except (InputError, ValueError) as err:
        error(str(err))
        return EXIT_USAGE
    except EngineError as err:
        error(str(err))
        return EXIT_FAILED
    except MemoryError:
        error("out of memory: use a smaller box, fewer particles, or a machine with more memory")
        return EXIT_FAILED
    except OSError as err:  # a full disk, a folder that became read-only, ...
        where = f"{err.filename}: " if err.filename else ""
        error(f"{where}{err.strerror or err}; no partial output was left")
        return EXIT_USAGE  # the environment the user gave (disk, folder), not a failure of the method
    except KeyboardInterrupt:
        error("interrupted; no output was written")
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _sigterm_as_interrupt():
    """SIGTERM (what schedulers send at a time limit) acts like Ctrl-C: the command stops
    at once, cleans up its staging and saves what it saves on Ctrl-C. Returns the previous
    handler (None off the main thread, where signals cannot be set)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, signal.default_int_handler)


class StageBars:
    """tqdm bars on stderr, one per stage: a bar is labelled with its stage, shows the
    event's message, and is replaced when the stage changes or starts over."""

    def __init__(self, unit: str = "it") -> None:
        self.unit = unit
        self.bar = None
        self.stage: str | None = None

    def __call__(self, event: Progress) -> None:
        from tqdm import tqdm

        if not isinstance(event, Progress):
            return
        bar = self.bar
        if bar is None or event.stage != self.stage or event.done < bar.n:
            self.close()
            bar = self.bar = tqdm(total=event.total, desc=event.stage, unit=self.unit, file=sys.stderr,
                                  dynamic_ncols=True, leave=False)
            self.stage = event.stage
        if bar.total != event.total:
            bar.total = event.total
        if event.message:
            bar.set_postfix_str(event.message, refresh=False)
        bar.update(min(event.done, event.total) - bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run_with_progress(job: Generator[Progress, None, T], unit: str = "it") -> T:
    """Drain an engine job with a progress bar per stage (see :class:`StageBars`)."""
    bars = StageBars(unit)
    try:
        return run_job(job, bars)
    finally:
        bars.close()


def add_device_arg(parser: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda`` and ``--threads``."""
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N or mps")
    from ._types import bounded_int

    parser.add_argument("--threads", type=bounded_int(1, 1024), default=None,
                        help="CPU threads for torch (default: torch's choice)")


def resolve_device(args: argparse.Namespace) -> torch.device:
    """Apply ``--threads`` and turn ``--device`` into a checked torch device."""
    from ..engine.device import resolve_device as engine_device

    threads = getattr(args, "threads", None)  # bounded by its argparse type
    if threads is not None:
        torch.set_num_threads(threads)
    return engine_device(getattr(args, "device", "auto"))


def positive_path(value: str) -> Path:
    """argparse type for paths."""
    return Path(value)


def add_particle_args(parser: argparse.ArgumentParser, flag: str = "--star", required: bool = True,
                      help: str = "particles", ctf_flags: tuple[str, ...] = ("--ctf-pkl",),
                      pixel_size: bool = True) -> None:
    """The particle input of every command: one file of any format, and what it may need.

    ``flag`` takes ``.star`` (RELION 3.0–5), ``.cs`` (cryoSPARC), ``.pkl`` (cryoDRGN poses,
    with ``--images``) or a bare ``.mrcs`` stack.
    """
    if flag:  # "" when the caller declares the particle file itself (a positional)
        parser.add_argument(flag, type=Path, required=required, dest="particles",
                            help=f"{help}: .star, .cs, cryoDRGN .pkl (with --images) or .mrcs")
    parser.add_argument("--images", type=Path, default=None, help="image stack of a cryoDRGN .pkl")
    parser.add_argument(*ctf_flags, dest="ctf_pkl", type=Path, default=None,
                        help="cryoDRGN CTF pickle of a .pkl input")
    parser.add_argument("--images-dir", type=Path, default=None,
                        help="folder the .cs image paths are relative to (cryoSPARC project)")
    if pixel_size:
        from ._types import PIXEL_SIZE

        parser.add_argument("--pixel-size", type=PIXEL_SIZE, default=None,
                            help="pixel size in Å (overrides the file's)")


def load_particles(args: argparse.Namespace, path: Path | None = None, check_values: bool = True,
                   need_poses: bool = False):
    """Read the particles named by :func:`add_particle_args` (one dispatch for every format);
    ``need_poses``: the command needs orientations (refused before the images are read)."""
    from ..io.particles import read_particle_set

    return read_particle_set(path or args.particles, images=args.images, ctf=args.ctf_pkl,
                             pixel_size_a=getattr(args, "pixel_size", None), images_dir=args.images_dir,
                             check_values=check_values, need_poses=need_poses)


def check_paths(inputs: list, outputs: list, folders: list | tuple = ()) -> None:
    """Before any work: outputs writable, none of them an input, inputs regular files
    (:func:`~napari_cryorient.io.output_guard.check_outputs`)."""
    from ..io.output_guard import check_outputs

    check_outputs(inputs, outputs, folders)


def particle_inputs(particles, path: Path) -> list[Path]:
    """The files a command read its particles from (table and image stacks)."""
    from ..io.output_guard import particle_files

    return particle_files(particles, path)


def write_or_rescue(write: Callable[[Path], object], folder: Path, what: str) -> None:
    """``write(folder)``; when that fails (a full disk, a folder gone read-only), write the
    same files into a new temporary folder instead and report both in one ``OSError``, so
    the result of a long computation is never lost."""
    try:
        write(folder)
    except OSError as err:
        import tempfile

        rescue = Path(tempfile.mkdtemp(prefix="cryorient-rescue-"))
        try:
            write(rescue)
        except OSError:
            raise err from None
        raise OSError(err.errno, f"{err.strerror or err}; the {what} were saved to {rescue} instead",
                      err.filename) from err
