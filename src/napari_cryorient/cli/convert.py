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
import sys
from pathlib import Path

import numpy as np

from ..engine.particles import Particles
from ..io import write_cryodrgn_ctf, write_cryodrgn_poses
from ..io.errors import InputError, MissingImagesError
from ..io.particles import particles_from_table, read_particle_file, write_particle_set
from ._common import add_particle_args, check_paths, load_particles, particle_inputs


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
    try:
        particles = load_particles(args, check_values=False)
    except MissingImagesError as err:
        particles = _metadata_only(args, err)
    check_paths([*particle_inputs(particles, args.particles), args.images, args.ctf_pkl],
                [args.output, args.ctf_out])
    try:
        px = particles.require_pixel_size()
    except ValueError as err:
        raise InputError(str(err), args.particles) from err
    rotations, ctf, box = particles.rotations, particles.ctf, particles.box
    # everything is checked before the first file is written
    if out_suffix == ".pkl" and rotations is None:
        raise InputError("no particle orientations to write to a cryoDRGN pose pickle", args.particles)
    if args.ctf_out is not None and ctf is None:
        raise InputError("no CTF parameters to write (--ctf-out)", args.particles)
    if out_suffix == ".pkl":
        write_cryodrgn_poses(args.output, rotations, box, px, shifts_a=particles.shifts_a)
        print(f"wrote {args.output} ({len(particles)} poses, box {box}, {px:g} Å/px)")
    else:
        stack = args.particles if particles.source is None else None  # a bare .mrcs input
        write_particle_set(args.output, particles, stack=stack)
        poses = "" if rotations is not None else ", no poses"
        print(f"wrote {args.output} ({len(particles)} particles{poses})")
    if args.ctf_out is not None:
        write_cryodrgn_ctf(args.ctf_out, ctf, box, px)
        print(f"wrote {args.ctf_out}")
    return 0


class _NoImages:
    """Stands in for the images of a table whose stacks are not on this machine: it has the
    shape the table states (``rlnImageSize``) and cannot be read."""

    def __init__(self, n: int, box: int) -> None:
        self.shape = (n, box, box)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        raise InputError("the particle images are not on this machine")


def _metadata_only(args: argparse.Namespace, missing: MissingImagesError) -> Particles:
    """The particle set of a table whose image files are absent: converting metadata alone
    is a normal job (pyem and cryoDRGN do it), so warn and go on."""
    table = read_particle_file(args.particles, images=args.images, ctf=args.ctf_pkl,
                               pixel_size_a=args.pixel_size, images_dir=args.images_dir)
    sizes = table.particles.get("rlnImageSize")
    if sizes is None or not len(sizes) or not np.isfinite(sizes.to_numpy(dtype=float)).all():
        raise missing
    box = int(sizes.iloc[0])
    print(f"cryorient: warning: {missing.problem}; converting the metadata only", file=sys.stderr)
    return particles_from_table(table, args.pixel_size, check_values=False,
                                images=_NoImages(len(table), box))
