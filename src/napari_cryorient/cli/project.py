"""Project a map at the poses of a STAR file, like relion_project.

Uses the STAR's rlnAngleRot/Tilt/Psi and rlnOriginX/YAngst (RELION conventions); the
pixel size comes from the STAR (rlnImagePixelSize) or the map header. Writes OUT.mrcs
and OUT.star (the input rows pointing at the new images).

examples:
  cryorient project --volume map.mrc --star particles.star --out proj.mrcs
  cryorient project --volume map.mrc --star particles.star --ctf --out proj.mrcs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ..engine.simulate import project_particles
from ..io import StackWriter, read_map, read_particles, write_particles
from ..io.errors import InputError
from ._common import add_device_arg, resolve_device, run_with_progress


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient project``."""
    parser.add_argument("--volume", type=Path, required=True, help="MRC map")
    parser.add_argument("--star", type=Path, required=True, help="STAR file with angles")
    parser.add_argument("--out", type=Path, required=True, help="output stack (.mrcs)")
    parser.add_argument("--ctf", action="store_true", help="apply the CTF of each particle")
    parser.add_argument("--pixel-size", type=float, default=None, help="pixel size in Å")
    add_device_arg(parser)


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient project``."""
    device = resolve_device(args)
    table = read_particles(args.star)
    rotations = table.rotations()
    vol = read_map(args.volume)
    if args.pixel_size is not None:
        px = args.pixel_size
    elif not np.all(np.isnan(table.pixel_size_a)):
        px = table.pixel_size
    elif vol.voxel_size_a:
        px = vol.voxel_size_a
    else:
        raise InputError("no pixel size in the STAR file or the map header; pass --pixel-size",
                         args.star)
    ctf = table.ctf() if args.ctf else None
    if args.ctf and ctf is None:
        raise InputError("--ctf needs rlnDefocusU, rlnVoltage, rlnSphericalAberration and "
                         "rlnAmplitudeContrast columns", args.star)
    out = args.out if args.out.suffix else args.out.with_suffix(".mrcs")
    box = vol.data.shape[-1]
    star_out = out.with_suffix(".star")
    with StackWriter(out, len(table), box, px) as writer:
        run_with_progress(
            project_particles(torch.from_numpy(vol.data), rotations, px, table.shifts_a(), ctf,
                              sink=writer, device=device),
            "project", unit="img",
        )
    table.particles = table.particles.drop(columns=["rlnImageName"], errors="ignore")
    write_particles(star_out, rotations, px, box, stack=out, shifts_a=table.shifts_a(),
                    ctf=table.ctf(), template=table if table.optics is not None else None)
    print(f"wrote {len(table)} projections ({box} px, {px:.3f} Å/px) to {out} and {star_out}")
    return 0
