"""Pre-process real particle images: re-centre, phase flip, Fourier crop, normalise, mask.

Reads particles (.star, .cs or cryoDRGN .pkl with --images), writes OUT/particles.mrcs
and OUT/particles.star (pixel size updated, origins zeroed when re-centred, other
columns kept). Radii are in Å. All outputs or none are written.

examples:
  cryorient preprocess --star particles.star --out prep --box 64 --recentre
  cryorient preprocess --star J40_particles.cs --out prep --box 128 --phase-flip --mask-radius 150
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..engine.preprocess import PreprocessConfig, preprocess_particles
from ..io import ParticleTable, StackWriter, staged_outputs, write_particles
from ..io.errors import InputError
from ._common import add_particle_args, check_paths, load_particles, particle_inputs, run_with_progress
from ._types import bounded_float, bounded_int


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient preprocess``."""
    add_particle_args(parser)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--box", type=bounded_int(8, 4096, "pixels"), default=None,
                        help="Fourier-crop to this box (pixels)")
    parser.add_argument("--recentre", action="store_true", help="translate images by their origins")
    parser.add_argument("--phase-flip", action="store_true", help="flip phases by the sign of the CTF")
    parser.add_argument("--no-normalise", action="store_true", help="skip background normalisation")
    parser.add_argument("--background-radius", type=bounded_float(0, lo_open=True, unit="Å"), default=None,
                        help="background starts at this radius (Å; default 0.75 × half box)")
    parser.add_argument("--mask-radius", type=bounded_float(0, lo_open=True, unit="Å"), default=None,
                        help="circular mask radius (Å)")
    parser.add_argument("--mask-edge", type=bounded_float(0, unit="Å"), default=10.0,
                        help="soft mask edge width (Å)")


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient preprocess``."""
    particles = load_particles(args)
    check_paths(particle_inputs(particles, args.particles),
                [args.out / "particles.mrcs", args.out / "particles.star"], folders=[args.out])
    try:
        px = particles.require_pixel_size()
    except ValueError as err:
        raise InputError(str(err), args.particles) from err
    images, ctf = particles.images, particles.ctf
    if args.phase_flip and ctf is None:
        raise InputError("--phase-flip needs CTF columns (rlnDefocusU, rlnVoltage, ...)", args.particles)
    config = PreprocessConfig(box=args.box, recentre=args.recentre, phase_flip=args.phase_flip,
                              normalise=not args.no_normalise,
                              background_radius_a=args.background_radius,
                              mask_radius_a=args.mask_radius, mask_edge_a=args.mask_edge)
    config.validate(particles.box)
    box = args.box or particles.box
    with staged_outputs(args.out) as stage:
        stack = stage / "particles.mrcs"
        with StackWriter(stack, len(particles), box, px * particles.box / box) as writer:
            result = run_with_progress(
                preprocess_particles(images, px, writer, shifts_a=particles.shifts_a, ctf=ctf, config=config),
                unit="img")
        table = particles.source if isinstance(particles.source, ParticleTable) else None
        if table is not None:
            table.particles = table.particles.drop(columns=["rlnImageName"])
        if table is not None and table.optics is not None:
            table.optics["rlnImagePixelSize"] = result.pixel_size_a
            table.optics["rlnImageSize"] = result.box
            if result.phase_flipped:
                table.optics["rlnCtfDataArePhaseFlipped"] = 1
        extra = {"rlnCtfDataArePhaseFlipped": [1] * len(particles)} if (
            result.phase_flipped and (table is None or table.optics is None)) else None
        write_particles(stage / "particles.star", particles.rotations, result.pixel_size_a, result.box,
                        stack=stack, shifts_a=result.shifts_a, ctf=ctf, template=table, extra_columns=extra)
    print(f"wrote {args.out / 'particles.star'} and particles.mrcs ({len(particles)} images, "
          f"{result.box} px, {result.pixel_size_a:.4g} Å/px)")
    return 0
