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
from pathlib import Path

from ..io import write_cryodrgn_ctf, write_cryodrgn_poses
from ..io.errors import InputError
from ..io.particles import write_particle_set
from ._common import add_particle_args, load_particles


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient convert``."""
    parser.add_argument("particles", type=Path, metavar="input",
                        help="particles: .star, .cs, cryoDRGN .pkl (with --images) or .mrcs")
    parser.add_argument("output", type=Path, help="particles: .star or .pkl")
    add_particle_args(parser, flag="", ctf_flags=("--ctf", "--ctf-pkl"))
    parser.add_argument("--ctf-out", type=Path, default=None, help="also write a cryoDRGN CTF pickle")


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient convert``."""
    out_suffix = args.output.suffix.lower()
    if out_suffix not in (".star", ".pkl"):
        raise InputError("output must be a .star or a cryoDRGN .pkl file", args.output)
    if args.output.resolve() == args.particles.resolve():
        raise InputError("output would overwrite the input", args.output)
    particles = load_particles(args, check_values=False)
    try:
        px = particles.require_pixel_size()
    except ValueError as err:
        raise InputError(str(err), args.particles) from err
    rotations, ctf, box = particles.rotations, particles.ctf, particles.box
    if out_suffix == ".pkl":
        if rotations is None:
            raise InputError("no particle orientations to write to a cryoDRGN pose pickle", args.particles)
        write_cryodrgn_poses(args.output, rotations, box, px, shifts_a=particles.shifts_a)
        print(f"wrote {args.output} ({len(particles)} poses, box {box}, {px:g} Å/px)")
    else:
        stack = args.particles if particles.source is None else None  # a bare .mrcs input
        write_particle_set(args.output, particles, stack=stack)
        poses = "" if rotations is not None else ", no poses"
        print(f"wrote {args.output} ({len(particles)} particles{poses})")
    if args.ctf_out is not None:
        if ctf is None:
            raise InputError("no CTF parameters to write", args.particles)
        write_cryodrgn_ctf(args.ctf_out, ctf, box, px)
        print(f"wrote {args.ctf_out}")
    return 0
