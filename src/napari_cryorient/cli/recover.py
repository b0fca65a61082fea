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
import sys
from dataclasses import replace
from pathlib import Path

from ..engine.reassign import ReassignConfig
from ..io.checkpoint import load_model
from ..io.errors import InputError
from ..io.particles import write_particle_set
from ..method import RecoverySettings, recover_poses
from ..method.presets import METHOD_PRESETS
from ._common import (
    add_device_arg,
    add_particle_args,
    check_paths,
    load_particles,
    particle_inputs,
    resolve_device,
    run_with_progress,
    write_or_rescue,
)
from ._types import SEED, bounded_int


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient recover``."""
    add_particle_args(parser, help="particles (images)")
    parser.add_argument("--model", type=Path, required=True, help="trained model (.pt)")
    parser.add_argument("--out", type=Path, required=True, help="output STAR file")
    parser.add_argument("--preset", choices=list(METHOD_PRESETS), default="standard",
                        help="recovery restarts and steps, refinement radii and the global second "
                        "chance (thorough only) (default %(default)s)")
    parser.add_argument("--steps", type=bounded_int(1, 10_000_000), default=None,
                        help="optimiser steps of the recovery on SO(3) (default: the preset's)")
    parser.add_argument("--restarts", type=bounded_int(1, 1000), default=None,
                        help="independent recovery runs (default: the preset's)")
    parser.add_argument("--no-resolve", action="store_true",
                        help="skip resolving the ambiguity from the images (and the refinement)")
    parser.add_argument("--no-refine", action="store_true",
                        help="skip the local projection-matching refinement")
    parser.add_argument("--refine-radii", type=_radii, default=None, metavar="DEG,DEG,...",
                        help="search radius of each refinement iteration in degrees "
                             "(default: the preset's)")
    parser.add_argument("--second-chance", action=argparse.BooleanOptionalAction, default=None,
                        help="after the refinement, search every particle globally against its half's "
                             "map and keep the grid pose where the images clearly prefer it "
                             "(default: the preset's; thorough only)")
    parser.add_argument("--search-origins", action="store_true",
                        help="refine the particles' origins too (picks off-centre by a few pixels)")
    parser.add_argument("--seed", type=SEED, default=0)
    add_device_arg(parser)


def _radii(text: str) -> tuple[float, ...]:
    try:
        radii = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected degrees separated by commas, got {text!r}") from None
    if not radii or any(not (0 < r <= 90) for r in radii):
        raise argparse.ArgumentTypeError(f"radii must be in (0, 90] degrees, got {text!r}")
    return radii


def _settings(args: argparse.Namespace, device) -> RecoverySettings:
    """The preset, with what the flags change."""
    p = METHOD_PRESETS[args.preset]
    recovery = replace(p.recovery, n_steps=args.steps or p.recovery.n_steps,
                       n_restarts=args.restarts or p.recovery.n_restarts)
    refine = None
    if not (args.no_resolve or args.no_refine):
        refine = replace(p.refine, radii_deg=args.refine_radii or p.refine.radii_deg,
                         search_shifts=args.search_origins)
    chance = p.reassign is not None if args.second_chance is None else args.second_chance
    reassign = (p.reassign or ReassignConfig()) if refine is not None and chance else None
    return RecoverySettings(recovery=recovery, resolve=not args.no_resolve, refine=refine, reassign=reassign,
                            seed=args.seed, device=device)


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient recover``."""
    device = resolve_device(args)
    particles = load_particles(args)
    check_paths([*particle_inputs(particles, args.particles), args.model], [args.out])
    model = load_model(args.model)
    settings = _settings(args, device)
    try:
        result = run_with_progress(recover_poses(particles, model, settings))
    except ValueError as err:
        raise InputError(str(err), args.particles) from err
    if result.ambiguity is not None:
        amb = result.ambiguity
        print(f"ambiguity: {'transposed (conjugated)' if amb.conjugated else 'direct'} branch, "
              f"common-line score {amb.score:.3f} (other branch {amb.runner_up_score:.3f})")
    if result.refinement is not None:
        last = result.refinement.history[-1]
        print(f"refinement: half-map resolution {last['resolution_a']:.1f} Å, last iteration "
              f"moved poses by {last['mean_change_deg']:.1f}° on average")
    if result.reassignment is not None:
        print(f"second chance: {result.reassignment.moved.mean():.0%} of the particles took a pose of the "
              f"global search ({result.reassignment.resolution_a:.0f} Å)")
    stack = args.particles if particles.source is None else None  # a bare .mrcs input
    shifts = result.refinement.shifts_a if result.refinement is not None and args.search_origins else None
    recovered = particles.with_poses(result.rotations, shifts)
    write_or_rescue(lambda folder: write_particle_set(folder / args.out.name, recovered, stack=stack),
                    args.out.parent, "recovered poses")
    print(f"wrote {args.out} ({len(particles)} particles, recovery loss {result.recovery.loss:.4f} rad²)")
    for line in result.diagnostics.warnings if result.diagnostics is not None else ():
        print(f"warning: {line}", file=sys.stderr)
    return 0
