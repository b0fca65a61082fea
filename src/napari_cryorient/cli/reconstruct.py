"""Reconstruct a map from particles and the poses in their STAR file.

Direct Fourier inversion, streamed in chunks (memory does not grow with the number of
particles). With --half-maps, also writes OUT_half1.mrc and OUT_half2.mrc from a random
split and prints their FSC resolution.

examples:
  cryorient reconstruct --star sim/particles.star --out sim/recon.mrc
  cryorient reconstruct --star particles.star --ctf-correction wiener --half-maps --out map.mrc
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..engine.fsc import fourier_shell_correlation
from ..engine.reconstruct import CTF_CORRECTIONS, reconstruct_volume
from ..io import staged_outputs, write_map
from ..io.errors import InputError
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
from ._types import SEED


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient reconstruct``."""
    add_particle_args(parser, help="particles with poses")
    parser.add_argument("--out", type=Path, required=True, help="output map (.mrc)")
    parser.add_argument("--half-maps", action="store_true", help="also write two half-maps")
    parser.add_argument("--ctf-correction", choices=CTF_CORRECTIONS, default="none")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of the half-map split")
    add_device_arg(parser)


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient reconstruct``."""
    device = resolve_device(args)
    particles = load_particles(args, need_poses=True)
    out = args.out if args.out.suffix else args.out.with_suffix(".mrc")
    outputs = [out]
    if args.half_maps:
        outputs += [out.with_name(f"{out.stem}_{n}") for n in ("half1.mrc", "half2.mrc", "halves_fsc.json")]
    check_paths(particle_inputs(particles, args.particles), outputs)
    try:
        rotations, px = particles.require_poses(), particles.require_pixel_size()
    except ValueError as err:
        raise InputError(str(err), args.particles) from err
    images, ctf = particles.images, particles.ctf
    if args.ctf_correction != "none" and ctf is None:
        raise InputError(f"--ctf-correction {args.ctf_correction} needs CTF columns", args.particles)
    result = run_with_progress(
        reconstruct_volume(images, rotations, px, shifts_a=particles.shifts_a, ctf=ctf,
                           ctf_correction=args.ctf_correction, half_maps=args.half_maps,
                           seed=args.seed, device=device),
        unit="img",
    )
    fsc = fourier_shell_correlation(*result.half_maps, px) if result.half_maps is not None else None

    def write(folder: Path) -> None:
        with staged_outputs(folder) as stage:
            write_map(stage / out.name, result.volume, px)
            if result.half_maps is not None:
                h1, h2 = result.half_maps
                write_map(stage / f"{out.stem}_half1.mrc", h1, px)
                write_map(stage / f"{out.stem}_half2.mrc", h2, px)
                (stage / f"{out.stem}_halves_fsc.json").write_text(json.dumps(fsc.to_dict(), indent=2))

    write_or_rescue(write, out.parent if str(out.parent) else Path("."), "maps")
    print(f"wrote {out} ({len(particles)} particles, {particles.box} px, {px:.3f} Å/px)")
    if result.half_maps is not None:
        print(f"half-map FSC: {fsc.resolution_0143_a:.2f} Å at 0.143, "
              f"{fsc.resolution_05_a:.2f} Å at 0.5")
    return 0
