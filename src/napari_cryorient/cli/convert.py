"""Convert particle files between RELION STAR, cryoSPARC .cs and cryoDRGN pickles.

Input: .star (RELION 3.0-5), .cs (cryoSPARC; image paths relative to --images-dir or the
.cs folder) or .pkl (cryoDRGN poses; needs --images, optionally --ctf). Output: .star
(RELION 3.1+, image names relative to the output folder, untouched columns kept) or
.pkl (cryoDRGN poses; --ctf-out also writes the CTF pickle). Conventions:
docs/conventions.md.

examples:
  cryorient convert P12/J40_particles.cs particles.star --images-dir P12
  cryorient convert particles.star poses.pkl --ctf-out ctf.pkl
  cryorient convert poses.pkl particles.star --images particles.mrcs --ctf ctf.pkl
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..io import read_particle_file, write_cryodrgn_ctf, write_cryodrgn_poses, write_particles
from ..io.errors import InputError


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient convert``."""
    parser.add_argument("input", type=Path, help="particles: .star, .cs or .pkl")
    parser.add_argument("output", type=Path, help="particles: .star or .pkl")
    parser.add_argument("--images", type=Path, default=None, help="image stack of a cryoDRGN .pkl input")
    parser.add_argument("--ctf", type=Path, default=None, help="cryoDRGN CTF pickle of a .pkl input")
    parser.add_argument("--pixel-size", type=float, default=None, help="Å/pixel when the input lacks it")
    parser.add_argument("--images-dir", type=Path, default=None,
                        help="folder the .cs image paths are relative to (cryoSPARC project)")
    parser.add_argument("--ctf-out", type=Path, default=None, help="also write a cryoDRGN CTF pickle")


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient convert``."""
    out_suffix = args.output.suffix.lower()
    if out_suffix not in (".star", ".pkl"):
        raise InputError("output must be a .star or a cryoDRGN .pkl file", args.output)
    if args.output.resolve() == args.input.resolve():
        raise InputError("output would overwrite the input", args.output)
    table = read_particle_file(args.input, images=args.images, ctf=args.ctf,
                               pixel_size_a=args.pixel_size, images_dir=args.images_dir)
    px = args.pixel_size or table.pixel_size
    rotations = table.rotations() if table.has_angles else None
    has_origins = any(c in table.particles for c in ("rlnOriginXAngst", "rlnOriginX"))
    shifts = table.shifts_a() if has_origins else None
    ctf = table.ctf()
    indices, paths = table.image_locations()
    box = table.images(check_values=False).box
    if out_suffix == ".pkl":
        if rotations is None:
            raise InputError("no particle orientations to write to a cryoDRGN pose pickle", args.input)
        write_cryodrgn_poses(args.output, rotations, box, px, shifts_a=shifts)
        print(f"wrote {args.output} ({len(table)} poses, box {box}, {px:g} Å/px)")
    else:
        out_dir = args.output.resolve().parent
        table.particles["rlnImageName"] = [
            f"{i + 1:06d}@{os.path.relpath(p.resolve(), out_dir)}"
            for i, p in zip(indices, paths, strict=True)
        ]
        write_particles(args.output, rotations, px, box, shifts_a=shifts, ctf=ctf, template=table)
        print(f"wrote {args.output} ({len(table)} particles{'' if rotations is not None else ', no poses'})")
    if args.ctf_out is not None:
        if ctf is None:
            raise InputError("no CTF parameters to write", args.input)
        write_cryodrgn_ctf(args.ctf_out, ctf, box, px)
        print(f"wrote {args.ctf_out}")
    return 0
