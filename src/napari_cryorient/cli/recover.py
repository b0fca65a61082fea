"""Recover particle orientations with a trained distance network.

Predicts distances between all particles (features of each image), finds orientations
that match them, resolves the projection-geometry ambiguity from the images (common
lines), refines the poses locally by projection matching against gold-standard half-maps,
and writes a STAR file with the recovered angles (other columns kept).

examples:
  cryorient recover --star particles.star --model model.pt --out recovered.star
  cryorient recover --star particles.star --model model.pt --out raw.star --no-refine
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..engine.ambiguity import resolve_ambiguity
from ..engine.recover import FeatureDistances, RecoveryConfig, recover_orientations
from ..engine.refine import RefineConfig, refine_orientations
from ..engine.train import compute_features, prepare_training_data
from ..io import read_particles, write_particles
from ..io.checkpoint import load_checkpoint, model_from_checkpoint
from ..io.errors import InputError
from ._common import add_device_arg, resolve_device, run_with_progress


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient recover``."""
    parser.add_argument("--star", type=Path, required=True, help="particles (images)")
    parser.add_argument("--model", type=Path, required=True, help="trained model (.pt)")
    parser.add_argument("--out", type=Path, required=True, help="output STAR file")
    parser.add_argument("--steps", type=int, default=RecoveryConfig.n_steps)
    parser.add_argument("--restarts", type=int, default=RecoveryConfig.n_restarts)
    parser.add_argument("--no-resolve", action="store_true",
                        help="skip resolving the ambiguity from the images (and the refinement)")
    parser.add_argument("--no-refine", action="store_true",
                        help="skip the local projection-matching refinement")
    parser.add_argument("--refine-radii", type=_radii, default=RefineConfig.radii_deg,
                        metavar="DEG,DEG,...",
                        help="search radius of each refinement iteration in degrees "
                             "(default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    add_device_arg(parser)


def _radii(text: str) -> tuple[float, ...]:
    try:
        radii = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected degrees separated by commas, got {text!r}") from None
    if not radii or any(not (0 < r <= 90) for r in radii):
        raise argparse.ArgumentTypeError(f"radii must be in (0, 90] degrees, got {text!r}")
    return radii


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient recover``."""
    device = resolve_device(args)
    model, norm, box = model_from_checkpoint(load_checkpoint(args.model))
    table = read_particles(args.star)
    if len(table) < 3:
        raise InputError(f"orientation recovery needs at least 3 particles, got {len(table)}", args.star)
    images = table.images()
    if images.box != box:
        raise InputError(f"the model was trained on {box} px images, these are {images.box} px "
                         f"({args.model})", args.star)
    wb = model.config.working_box
    small = prepare_training_data(images, np.repeat(np.eye(3)[None], len(images), 0), wb).images
    features = compute_features(model.to(device), small, norm, device=device)
    config = replace(RecoveryConfig(), n_steps=args.steps, n_restarts=args.restarts, seed=args.seed)
    result = run_with_progress(recover_orientations(FeatureDistances(features), config), "recover")
    rotations = result.rotations
    # one pixel size for the CTF of the common-line step and the output optics group
    px = table.pixel_size if not np.all(np.isnan(table.pixel_size_a)) else 1.0
    if not args.no_resolve:
        amb = run_with_progress(resolve_ambiguity(images, rotations, ctf=table.ctf(), pixel_size_a=px,
                                                  seed=args.seed), "resolve")
        rotations = amb.apply(rotations)
        print(f"ambiguity: {'transposed' if amb.conjugate else 'direct'} branch, common-line score "
              f"{amb.score:.3f} (other branch {amb.runner_up_score:.3f})")
        if not args.no_refine:
            config = RefineConfig(radii_deg=args.refine_radii, seed=args.seed)
            refined = run_with_progress(
                refine_orientations(images, rotations, px, shifts_a=table.shifts_a(), ctf=table.ctf(),
                                    config=config, device=device), "refine")
            rotations = refined.rotations
            last = refined.history[-1]
            print(f"refinement: half-map resolution {last['resolution_a']:.1f} Å, last iteration "
                  f"moved poses by {last['mean_change_deg']:.1f}° on average")
    write_particles(args.out, rotations, px, images.box, shifts_a=table.shifts_a(), ctf=table.ctf(),
                    template=table)
    print(f"wrote {args.out} ({len(table)} particles, recovery loss {result.loss:.4f} rad²)")
    return 0
