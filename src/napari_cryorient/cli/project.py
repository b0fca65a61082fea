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

import torch

from ..engine.simulate import project_particles
from ..io import ParticleTable, StackWriter, read_map, staged_outputs, write_particles
from ..io.errors import InputError
from ._common import (
    add_device_arg,
    add_particle_args,
    check_paths,
    load_particles,
    particle_inputs,
    resolve_device,
    run_with_progress,
)


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient project``."""
    parser.add_argument("--volume", type=Path, required=True, help="MRC map")
    add_particle_args(parser, help="particles with poses")
    parser.add_argument("--out", type=Path, required=True, help="output stack (.mrcs)")
    parser.add_argument("--ctf", action="store_true", help="apply the CTF of each particle")
    add_device_arg(parser)


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient project``."""
    device = resolve_device(args)
    particles = load_particles(args, check_values=False, need_poses=True)
    if not particles.has_poses:
        raise InputError("no particle orientations to project at", args.particles)
    rotations = particles.rotations
    vol = read_map(args.volume)
    px = particles.pixel_size_a or vol.voxel_size_a
    if not px:
        raise InputError("no pixel size in the particle file or the map header; pass --pixel-size",
                         args.particles)
    ctf = particles.ctf if args.ctf else None
    if args.ctf and ctf is None:
        raise InputError("--ctf needs rlnDefocusU, rlnVoltage, rlnSphericalAberration and "
                         "rlnAmplitudeContrast columns", args.particles)
    out = args.out if args.out.suffix else args.out.with_suffix(".mrcs")
    if out.suffix.lower() not in (".mrcs", ".mrc"):
        raise InputError("the output is the image stack: give a .mrcs name (the STAR is written beside it)",
                         args.out)
    box = vol.data.shape[-1]
    star_out = out.with_suffix(".star")
    check_paths([args.volume, *particle_inputs(particles, args.particles)], [out, star_out])
    table = particles.source if isinstance(particles.source, ParticleTable) else None
    if table is not None:
        table.particles = table.particles.drop(columns=["rlnImageName"], errors="ignore")
    # stack and STAR are staged together: both are written, or neither
    with staged_outputs(out.parent if str(out.parent) else Path(".")) as stage:
        with StackWriter(stage / out.name, len(particles), box, px) as writer:
            run_with_progress(
                project_particles(torch.from_numpy(vol.data), rotations, px, particles.shifts_a, ctf,
                                  sink=writer, device=device),
                unit="img",
            )
        template = table if table is not None and table.optics is not None else None
        write_particles(stage / star_out.name, rotations, px, box, stack=stage / out.name,
                        shifts_a=particles.shifts_a, ctf=particles.ctf, template=template)
    print(f"wrote {len(particles)} projections ({box} px, {px:.3f} Å/px) to {out} and {star_out}")
    return 0
