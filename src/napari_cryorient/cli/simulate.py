"""Simulate a particle data set (images + true poses) from a map, a model or the sample.

Writes OUT/particles.mrcs, OUT/particles.star (RELION 3.1, true poses, origins and CTF),
OUT/volume.mrc (the map at the simulated box and pixel size) and OUT/simulation.json.
Nothing is written unless the whole simulation succeeds.

examples:
  cryorient simulate --sample pseudo-protein --n 5000 --box 64 --out sim
  cryorient simulate --volume map.mrc --n 2000 --box 96 --snr-db -12 --ctf --shifts-A 4 --out sim
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

import numpy as np
import torch

from ..engine import so3
from ..engine.fourier import fourier_resize_volume
from ..engine.simulate import SimulationConfig, noise_variance_from_snr_db, simulate_particles
from ..engine.volumes import SAMPLES, make_sample_volume, normalise_volume
from ..io import StackWriter, map_from_atomic_model, read_map, staged_outputs, write_map, write_particles
from ..io.errors import InputError
from ..io.fingerprint import file_sha256
from ._common import add_device_arg, check_paths, resolve_device, run_with_progress
from ._types import PIXEL_SIZE, SEED, SNR_DB, bounded_float, bounded_int


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient simulate``."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--volume", type=Path, help="MRC map to project")
    src.add_argument("--sample", choices=SAMPLES, help="built-in sample map")
    src.add_argument("--model", type=Path, help="atomic model (PDB/mmCIF) to render")
    parser.add_argument("--pixel-size", type=PIXEL_SIZE, default=None,
                        help="pixel size of the input in Å (map: overrides the header; "
                        "sample: default 2.0; model: default 2.0)")
    parser.add_argument("--n", type=bounded_int(1, 10_000_000), default=1000, help="number of particles")
    parser.add_argument("--box", type=bounded_int(16, 1024, "pixels"), default=64,
                        help="image size in pixels (the map is Fourier-cropped/padded to it)")
    parser.add_argument("--snr-db", type=SNR_DB, default=None,
                        help="per-image SNR in dB (var(clean)/var(noise)); omit for clean images")
    parser.add_argument("--shifts-A", dest="shifts_a", type=bounded_float(0, 1000, unit="Å"), default=0.0,
                        help="standard deviation of random origins in Å (per axis)")
    parser.add_argument("--ctf", action="store_true", help="apply a CTF")
    parser.add_argument("--defocus-um", type=bounded_float(0.01, 20, unit="µm"), nargs=2, default=(1.0, 2.5),
                        metavar=("MIN", "MAX"), help="defocus range in µm (with --ctf)")
    parser.add_argument("--orientations", choices=so3.ORIENTATION_DISTRIBUTIONS,
                        default="uniform", help="pose distribution")
    parser.add_argument("--keep-clean", action="store_true",
                        help="also write particles_clean.mrcs and noise_variance.npy (with "
                        "--snr-db): `cryorient train` then draws fresh noise at every step")
    parser.add_argument("--seed", type=SEED, default=0)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    add_device_arg(parser)


def load_input_volume(args: argparse.Namespace) -> tuple[torch.Tensor, float]:
    """The map to simulate from, at ``args.box`` voxels, and its voxel size in Å."""
    if args.box < 16:
        raise ValueError(f"--box must be >= 16 pixels, got {args.box}")
    if args.pixel_size is not None and args.pixel_size <= 0:
        raise ValueError("--pixel-size must be > 0")
    if args.sample:
        px = args.pixel_size or 2.0
        return make_sample_volume(args.sample, box=args.box, pixel_size_a=px, seed=args.seed), px
    if args.model:
        px = args.pixel_size or 2.0
        return normalise_volume(map_from_atomic_model(args.model, args.box, px)), px
    data = read_map(args.volume)
    px = args.pixel_size or data.voxel_size_a
    if px is None:
        raise InputError("the map header has no voxel size; pass --pixel-size", args.volume)
    vol = torch.from_numpy(data.data)
    try:
        vol = normalise_volume(vol)
    except ValueError as err:
        raise InputError(str(err), args.volume) from err
    d = vol.shape[-1]
    if d != args.box:
        vol = fourier_resize_volume(vol, args.box)
        px = px * d / args.box
    return vol, float(px)


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient simulate``."""
    device = resolve_device(args)
    keep_clean = args.keep_clean and args.snr_db is not None
    names = ["particles.mrcs", "particles.star", "volume.mrc", "simulation.json"]
    names += ["particles_clean.mrcs", "noise_variance.npy"] if keep_clean else []
    check_paths([args.volume, args.model], [args.out / n for n in names], folders=[args.out])
    volume, px = load_input_volume(args)
    config = SimulationConfig(
        n_particles=args.n, orientations=args.orientations, snr_db=args.snr_db,
        shift_std_a=args.shifts_a, ctf=args.ctf, defocus_range_um=tuple(args.defocus_um),
        seed=args.seed,
    )
    config.validate()
    with staged_outputs(args.out) as stage, contextlib.ExitStack() as stack:
        writer = stack.enter_context(StackWriter(stage / "particles.mrcs", args.n, args.box, px))
        clean_writer = (
            stack.enter_context(StackWriter(stage / "particles_clean.mrcs", args.n, args.box, px))
            if keep_clean else None
        )
        result = run_with_progress(
            simulate_particles(volume, px, config, sink=writer, device=device,
                               clean_sink=clean_writer), unit="img"
        )
        stack.close()
        if keep_clean:
            np.save(stage / "noise_variance.npy", result.noise_variance)
        write_particles(stage / "particles.star", result.rotations, px, args.box,
                        stack=stage / "particles.mrcs", shifts_a=result.shifts_a, ctf=result.ctf)
        write_map(stage / "volume.mrc", volume.numpy(), px)
        info = {
            "n_particles": args.n, "box": args.box, "pixel_size_a": px,
            "orientations": args.orientations, "snr_db": args.snr_db,
            "noise_variance_unit_signal": (
                None if args.snr_db is None else noise_variance_from_snr_db(args.snr_db)
            ),
            "mean_noise_variance": float(np.mean(result.noise_variance)),
            "mean_signal_variance": float(np.mean(result.signal_variance)),
            "shift_std_a": args.shifts_a, "ctf": args.ctf,
            "defocus_range_um": list(args.defocus_um) if args.ctf else None,
            "seed": args.seed,
            "source": str(args.volume or args.model or f"sample:{args.sample}"),
        }
        if keep_clean:  # the explicit, verifiable link `cryorient train` follows (never file names alone)
            info["clean_images"] = {
                "stack": "particles_clean.mrcs", "noise_variance": "noise_variance.npy",
                "star": "particles.star", "star_sha256": file_sha256(stage / "particles.star"),
            }
        (stage / "simulation.json").write_text(json.dumps(info, indent=2))
    print(f"wrote {args.n} particles ({args.box} px, {px:.3f} Å/px) to {args.out}/: "
          "particles.mrcs, particles.star, volume.mrc, simulation.json")
    return 0
