"""Train the Siamese distance network on particles with known poses.

The STAR file gives the images and their true orientations. If it was written by
`cryorient simulate --snr-db ... --keep-clean`, the clean images and noise levels next to
it are used and fresh noise is drawn at every step. Ctrl-C stops and still saves the
model (resume it with --resume).

examples:
  cryorient train --star sim/particles.star --out model.pt
  cryorient train --star sim/particles.star --epochs 40 --resume model.pt --out model.pt
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..engine.siamese import EncoderConfig
from ..engine.train import DistanceTrainer, prepare_training_data
from ..io import read_stack
from ..io.checkpoint import load_checkpoint, save_model
from ..io.errors import InputError
from ..io.fingerprint import file_sha256
from ..method.presets import METHOD_PRESETS
from ._common import (
    StageBars,
    add_device_arg,
    add_particle_args,
    check_paths,
    error,
    load_particles,
    particle_inputs,
    resolve_device,
)
from ._types import SEED, bounded_float, bounded_int

#: the preset of a new run when --preset is not given
DEFAULT_PRESET = "standard"


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient train``."""
    add_particle_args(parser, help="particles with true poses", pixel_size=False)
    parser.add_argument("--out", type=Path, required=True, help="model checkpoint (.pt)")
    parser.add_argument("--val-fraction", type=bounded_float(0, 0.9, lo_open=True), default=0.1)
    parser.add_argument("--preset", choices=list(METHOD_PRESETS), default=DEFAULT_PRESET,
                        help="training schedule, epochs × steps per epoch ("
                        + ", ".join(f"{k} {p.train.epochs}×{p.train.steps_per_epoch}"
                                    for k, p in METHOD_PRESETS.items()) + "; default %(default)s)")
    parser.add_argument("--epochs", type=bounded_int(1, 100_000), default=None,
                        help="epochs (default: the preset's; with --resume: the run's own schedule)")
    parser.add_argument("--steps-per-epoch", type=bounded_int(1, 1_000_000), default=None,
                        help="default: the preset's")
    parser.add_argument("--working-box", type=bounded_int(8, 512, "pixels"), default=16,
                        help="images are Fourier-cropped to this size for the network")
    parser.add_argument("--lr", type=bounded_float(0, 1, lo_open=True), default=2e-3)
    parser.add_argument("--resume", type=Path, default=None, help="continue from a checkpoint")
    parser.add_argument("--checkpoint-every", type=bounded_float(0, 1440), default=3.0, metavar="MIN",
                        help="also save the checkpoint every MIN minutes (0: only at the end; "
                             "default %(default)s)")
    parser.add_argument("--seed", type=SEED, default=0)
    add_device_arg(parser)


def _clean_link(star: Path, n: int) -> tuple[Path, Path] | None:
    """The clean images and noise levels a simulation recorded for exactly this STAR file
    (``simulation.json`` beside it names them with the STAR's SHA-256), or None."""
    info_path = star.parent / "simulation.json"
    if not info_path.is_file():
        return None
    try:
        link = json.loads(info_path.read_text()).get("clean_images")
    except (OSError, ValueError):
        return None
    if not isinstance(link, dict) or link.get("star") != star.name:
        return None
    if link.get("star_sha256") != file_sha256(star):
        print(f"note: {info_path} describes another {star.name} (changed since the simulation); "
              "training on the images the STAR names")
        return None
    clean, noise = star.parent / str(link.get("stack")), star.parent / str(link.get("noise_variance"))
    return (clean, noise) if clean.is_file() and noise.is_file() else None


def _load_data(args: argparse.Namespace, working_box: int):
    star = args.particles
    particles = load_particles(args, need_poses=True)
    rotations, images = particles.rotations, particles.images
    link = _clean_link(star, len(particles)) if star.suffix.lower() == ".star" else None
    # --resume and --out may be the same checkpoint (continuing it is the point)
    check_paths([*particle_inputs(particles, star), *(link or ())], [args.out])
    noise = None
    if link is not None:
        clean, noise = read_stack(link[0]).data, np.load(link[1], allow_pickle=False)
        if len(clean) != len(images) or noise.shape != (len(images),) or not np.all(noise >= 0):
            raise InputError(f"the clean images or noise levels recorded for {star.name} do not fit it "
                             f"({len(clean)} images, noise of shape {noise.shape})", link[0])
        images = clean
        print(f"using the clean images and per-image noise levels recorded with {star.name} "
              "(fresh noise at every step)")
    if working_box > images.shape[-1]:
        raise InputError(f"--working-box {working_box} is larger than the images "
                         f"({images.shape[-1]} px)", star)
    # as the network will see the particles: re-centred by their origins, phase-flipped
    # with their CTF (when they have one), per-image standardised
    return prepare_training_data(images, rotations, working_box, noise_variance=noise,
                                 pixel_size_a=particles.pixel_size_a, shifts_a=particles.shifts_a,
                                 ctf=particles.ctf, phase_flip=particles.ctf is not None)


def _run(trainer: DistanceTrainer, out: Path, every_s: float) -> bool:
    """Train; Ctrl-C and SIGTERM take effect between steps (so the saved state belongs to a
    step and a resumed run continues exactly), and the checkpoint is written every
    ``every_s`` seconds. Returns whether the run was interrupted."""
    requested: list[int] = []
    handlers = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handlers[sig] = signal.signal(sig, lambda signum, _frame: requested.append(signum))
    bars, last = StageBars(), time.monotonic()
    try:
        for event in trainer.run():
            bars(event)
            if requested:
                return True
            if every_s > 0 and time.monotonic() - last >= every_s:
                save_model(out, trainer.checkpoint())
                last = time.monotonic()
    finally:
        bars.close()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return False


def _save(out: Path, checkpoint: dict) -> Path | None:
    """Save; when that fails (full disk, folder gone read-only), keep the model in the
    temporary folder and return where (None when the save succeeded)."""
    try:
        save_model(out, checkpoint)
        return None
    except OSError as err:
        rescue = Path(tempfile.gettempdir()) / f"cryorient-model-{os.getpid()}-{int(time.time())}.pt"
        save_model(rescue, checkpoint)
        error(f"{out}: cannot be written ({err.strerror or err}); the model was saved to {rescue}")
        return rescue


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient train``."""
    device = resolve_device(args)
    if args.resume is not None:
        ckpt = load_checkpoint(args.resume)
        wb = int(ckpt["config"]["encoder"]["working_box"])
        data = _load_data(args, wb)
        try:
            trainer = DistanceTrainer.from_checkpoint(ckpt, data, epochs=args.epochs)
        except ValueError as err:  # another data set, another box
            raise InputError(str(err), args.resume) from err
        except (KeyError, TypeError, RuntimeError) as err:  # missing entries, tensors of other shapes
            raise InputError(f"the checkpoint is incomplete or does not fit the network ({err})",
                             args.resume) from err
    else:
        preset = METHOD_PRESETS[args.preset].train
        config = replace(preset, encoder=EncoderConfig(working_box=args.working_box),
                         epochs=args.epochs or preset.epochs,
                         steps_per_epoch=args.steps_per_epoch or preset.steps_per_epoch,
                         lr=args.lr, val_fraction=args.val_fraction, seed=args.seed, device=str(device))
        data = _load_data(args, args.working_box)
        trainer = DistanceTrainer(data, config)
    interrupted = _run(trainer, args.out, args.checkpoint_every * 60)
    rescued = _save(args.out, trainer.checkpoint())
    if trainer.history:
        last = trainer.history[-1]
        print(f"epoch {last['epoch'] + 1}: validation distance MAE {last['val_mae_deg']:.2f}° "
              f"(best loss {trainer.best_val:.4f} rad²)")
    if rescued is not None:
        return 1
    print(f"{'stopped; ' if interrupted else ''}wrote {args.out} (step {trainer.step}/{trainer.total_steps})")
    return 130 if interrupted else 0
