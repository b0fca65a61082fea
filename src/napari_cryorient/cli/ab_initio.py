"""Find orientations, origins and a map from the particle images alone (no poses, no map).

Gold-standard halves from the first step; a start from a soft search on half 1 (random
maps ranked by their evidence; the default), from the generalist network shipped with the
package (--start generalist; trained on procedural proteins only) or from --reference; global
search, local refinement of poses and origins, then self-training rounds in which the
network is fine-tuned on simulations of each half's own half-map. Writes, all or nothing:
OUT/particles.star (RELION 3.1, poses, origins, CTF, the half of each particle),
OUT/map.mrc, OUT/map_half1.mrc, OUT/map_half2.mrc, OUT/fsc.json (with the FSC that
random poses give: the figure to beat), OUT/rounds.json and OUT/network_half1.pt,
OUT/network_half2.pt.

examples:
  cryorient ab-initio --star particles.star --out abinitio/
  cryorient ab-initio --star particles.cs --out abinitio/ --rounds 1
  cryorient ab-initio --star particles.star --start generalist --out abinitio/
  cryorient ab-initio --star particles.star --reference homologue.mrc --out abinitio/
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..engine.fourier import fourier_resize_volume
from ..io import read_map, staged_outputs, write_map
from ..io.checkpoint import checkpoint_of_model, load_generalist, load_model, save_model
from ..io.errors import InputError
from ..io.particles import write_particle_set
from ..method.ab_initio import PRESETS, STARTS, AbInitioSettings, ab_initio
from ..method.evaluate import random_pose_baseline
from ._common import (
    add_device_arg,
    add_particle_args,
    check_paths,
    load_particles,
    particle_inputs,
    resolve_device,
    run_with_progress,
)
from ._types import SEED, bounded_int

OUTPUTS = ("particles.star", "map.mrc", "map_half1.mrc", "map_half2.mrc", "fsc.json", "rounds.json",
           "network_half1.pt", "network_half2.pt")


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient ab-initio``."""
    add_particle_args(parser, help="particles with CTF (.star, .cs, .pkl + stack)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--reference", type=Path, default=None,
                        help="a start map (e.g. a homologue), low-pass filtered before use")
    parser.add_argument("--start", choices=STARTS, default="soft-search",
                        help="where the start map comes from without --reference: a soft search "
                             "(stochastic EM over a pose grid from random maps; no network) on half 1, or "
                             "the generalist network's recovery (default %(default)s)")
    parser.add_argument("--model", type=Path, default=None,
                        help="distance network to start from (default: the shipped generalist)")
    parser.add_argument("--preset", choices=PRESETS, default="standard",
                        help="quick (a first look), standard or thorough (default %(default)s)")
    parser.add_argument("--rounds", type=bounded_int(0, 50), default=None,
                        help="self-training rounds at most (default: the preset's)")
    parser.add_argument("--no-ctf", action="store_true",
                        help="accept particles without CTF parameters (CTF-free images, e.g. simulations)")
    parser.add_argument("--start-resolution", type=float, default=None, metavar="Å",
                        help="low-pass of the start shared by the halves (default: 12 pixels)")
    parser.add_argument("--second-chance", action=argparse.BooleanOptionalAction, default=None,
                        help="after the refinement, a global search of every particle against its own "
                             "half-map, kept where the images prefer it (default: the preset's)")
    parser.add_argument("--seed", type=SEED, default=0)
    add_device_arg(parser)


def _reference(path: Path | None, box: int, pixel_size_a: float) -> np.ndarray | None:
    """The start map at the particles' box and pixel size (Fourier-resampled)."""
    if path is None:
        return None
    data = read_map(path)
    vol = np.asarray(data.data, dtype=np.float32)
    if vol.ndim != 3 or len(set(vol.shape)) != 1:
        raise InputError(f"the reference must be a cubic map, got shape {vol.shape}", path)
    if data.voxel_size_a is None:
        raise InputError("the reference map does not state its voxel size", path)
    import torch

    side = int(round(vol.shape[0] * data.voxel_size_a / pixel_size_a))
    out = fourier_resize_volume(torch.from_numpy(vol), side).numpy()
    if side >= box:  # crop the centre
        s = (side - box) // 2
        return np.ascontiguousarray(out[s : s + box, s : s + box, s : s + box])
    pad = box - side
    return np.pad(out, [(pad // 2, pad - pad // 2)] * 3)


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient ab-initio``."""
    device = resolve_device(args)
    if args.start_resolution is not None and not args.start_resolution > 0:
        raise InputError("--start-resolution must be a positive number of Å")
    particles = load_particles(args)
    check_paths([*particle_inputs(particles, args.particles), args.reference, args.model],
                [args.out / name for name in OUTPUTS], folders=[args.out])
    if particles.pixel_size_a is None:
        raise InputError("the pixel size is unknown: give --pixel-size", args.particles)
    if particles.ctf is None and not args.no_ctf:
        raise InputError("the particles have no CTF parameters (rlnDefocusU, rlnDefocusV, ...): ab initio "
                         "needs them; give --no-ctf for CTF-free images", args.particles)
    model = load_model(args.model) if args.model is not None else load_generalist()
    reference = _reference(args.reference, particles.box, particles.pixel_size_a)
    changes = {"rounds": args.rounds} if args.rounds is not None else {}
    if args.second_chance is not None:
        changes["second_chance"] = args.second_chance
    settings = AbInitioSettings.preset(args.preset, start_resolution_a=args.start_resolution, seed=args.seed,
                                       start=args.start, device=device, **changes)
    try:
        result = run_with_progress(ab_initio(particles.with_poses(None), model, settings, reference))
        base = run_with_progress(random_pose_baseline(particles, ctf_correction="wiener" if particles.ctf
                                                      is not None else "none", seed=args.seed))
    except ValueError as err:
        raise InputError(str(err), args.particles) from err
    fsc = result.fsc
    with staged_outputs(args.out) as stage:
        write_particle_set(stage / "particles.star", result.particles)
        rec = result.reconstruction
        write_map(stage / "map.mrc", rec.volume, rec.pixel_size_a)
        for h in (0, 1):
            write_map(stage / f"map_half{h + 1}.mrc", rec.half_maps[h], rec.pixel_size_a)
            if result.networks:
                save_model(stage / f"network_half{h + 1}.pt", checkpoint_of_model(result.networks[h]))
        record = {"half_maps": fsc.to_dict(), "random_poses": base.to_dict(),
                  "halves": result.halves.tolist()}
        (stage / "fsc.json").write_text(json.dumps(record, indent=1))
        (stage / "rounds.json").write_text(json.dumps(result.rounds, indent=1))
    beats = fsc.resolution_0143_a < 0.9 * base.resolution_0143_a
    print(f"half-map FSC 0.143: {fsc.resolution_0143_a:.1f} Å (0.5: {fsc.resolution_05_a:.1f} Å); "
          f"random poses give {base.resolution_0143_a:.1f} Å")
    if not beats:
        print("warning: the half-map FSC is no better than what random poses give: do not trust these poses")
    else:
        print("note: beating random poses is necessary, not sufficient: halves that share a start can "
              "agree on wrong features (see the user guide)")
    print(f"wrote {args.out}/ ({len(particles)} particles, {len(result.rounds)} steps)")
    return 0

