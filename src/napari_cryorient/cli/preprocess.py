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
from ..io import StackWriter, read_particle_file, staged_outputs, write_particles
from ..io.errors import InputError
from ._common import run_with_progress


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient preprocess``."""
    parser.add_argument("--star", type=Path, required=True, help="particles: .star, .cs or .pkl")
    parser.add_argument("--images", type=Path, default=None, help="image stack of a cryoDRGN .pkl")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--box", type=int, default=None, help="Fourier-crop to this box (pixels)")
    parser.add_argument("--recentre", action="store_true", help="translate images by their origins")
    parser.add_argument("--phase-flip", action="store_true", help="flip phases by the sign of the CTF")
    parser.add_argument("--no-normalise", action="store_true", help="skip background normalisation")
    parser.add_argument("--background-radius", type=float, default=None,
                        help="background starts at this radius (Å; default 0.75 × half box)")
    parser.add_argument("--mask-radius", type=float, default=None, help="circular mask radius (Å)")
    parser.add_argument("--mask-edge", type=float, default=10.0, help="soft mask edge width (Å)")


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient preprocess``."""
    table = read_particle_file(args.star, images=args.images)
    px = table.pixel_size
    images = table.images()
    ctf = table.ctf()
    if args.phase_flip and ctf is None:
        raise InputError("--phase-flip needs CTF columns (rlnDefocusU, rlnVoltage, ...)", args.star)
    config = PreprocessConfig(box=args.box, recentre=args.recentre, phase_flip=args.phase_flip,
                              normalise=not args.no_normalise,
                              background_radius_a=args.background_radius,
                              mask_radius_a=args.mask_radius, mask_edge_a=args.mask_edge)
    config.validate(images.box)
    box = args.box or images.box
    with staged_outputs(args.out) as stage:
        with StackWriter(stage / "particles.mrcs", len(images), box, px * images.box / box) as writer:
            result = run_with_progress(
                preprocess_particles(images, px, writer, shifts_a=table.shifts_a(), ctf=ctf, config=config),
                "preprocess", unit="img")
        table.particles["rlnImageName"] = [f"{i + 1:06d}@particles.mrcs" for i in range(len(table))]
        if table.optics is not None:
            table.optics["rlnImagePixelSize"] = result.pixel_size_a
            table.optics["rlnImageSize"] = result.box
            if result.phase_flipped:
                table.optics["rlnCtfDataArePhaseFlipped"] = 1
        extra = {"rlnCtfDataArePhaseFlipped": [1] * len(table)} if (
            result.phase_flipped and table.optics is None) else None
        rotations = table.rotations() if table.has_angles else None
        write_particles(stage / "particles.star", rotations, result.pixel_size_a, result.box,
                        shifts_a=result.shifts_a, ctf=ctf, template=table, extra_columns=extra)
    print(f"wrote {args.out / 'particles.star'} and particles.mrcs ({len(table)} images, "
          f"{result.box} px, {result.pixel_size_a:.4g} Å/px)")
    return 0
