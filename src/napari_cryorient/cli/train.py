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
from pathlib import Path

import numpy as np

from ..engine.siamese import EncoderConfig
from ..engine.train import DistanceTrainer, TrainConfig, prepare_training_data
from ..io import read_stack
from ..io.checkpoint import load_checkpoint, save_model
from ..io.errors import InputError
from ._common import add_device_arg, add_particle_args, load_particles, resolve_device, run_with_progress


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient train``."""
    add_particle_args(parser, help="particles with true poses", pixel_size=False)
    parser.add_argument("--out", type=Path, required=True, help="model checkpoint (.pt)")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--steps-per-epoch", type=int, default=60)
    parser.add_argument("--working-box", type=int, default=16,
                        help="images are Fourier-cropped to this size for the network")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--resume", type=Path, default=None, help="continue from a checkpoint")
    parser.add_argument("--seed", type=int, default=0)
    add_device_arg(parser)


def _load_data(args: argparse.Namespace, working_box: int):
    star = args.particles
    particles = load_particles(args, need_poses=True)
    if not particles.has_poses:
        raise InputError("no particle orientations: training needs the true poses", star)
    rotations, images = particles.rotations, particles.images
    noise = None
    clean_path, noise_path = star.parent / "particles_clean.mrcs", star.parent / "noise_variance.npy"
    if clean_path.exists() and noise_path.exists():
        clean = read_stack(clean_path).data
        noise = np.load(noise_path)
        if len(clean) == len(images) and len(noise) == len(images):
            images = clean
            print(f"using clean images and per-image noise levels from {star.parent} "
                  "(fresh noise at every step)")
        else:
            noise = None
    if working_box > images.shape[-1]:
        raise InputError(f"--working-box {working_box} is larger than the images "
                         f"({images.shape[-1]} px)", star)
    return prepare_training_data(images, rotations, working_box, noise_variance=noise)


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient train``."""
    device = resolve_device(args)
    if args.resume is not None:
        ckpt = load_checkpoint(args.resume)
        wb = int(ckpt["config"]["encoder"]["working_box"])
        data = _load_data(args, wb)
        trainer = DistanceTrainer.from_checkpoint(ckpt, data, epochs=args.epochs)
    else:
        config = TrainConfig(encoder=EncoderConfig(working_box=args.working_box),
                             epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, lr=args.lr,
                             val_fraction=args.val_fraction, seed=args.seed, device=str(device))
        data = _load_data(args, args.working_box)
        trainer = DistanceTrainer(data, config)
    interrupted = False
    try:
        run_with_progress(trainer.run())
    except KeyboardInterrupt:
        interrupted = True
    save_model(args.out, trainer.checkpoint())
    if trainer.history:
        last = trainer.history[-1]
        print(f"epoch {last['epoch'] + 1}: validation distance MAE {last['val_mae_deg']:.2f}° "
              f"(best loss {trainer.best_val:.4f} rad²)")
    print(f"{'stopped; ' if interrupted else ''}wrote {args.out} (step {trainer.step}/{trainer.total_steps})")
    return 130 if interrupted else 0
