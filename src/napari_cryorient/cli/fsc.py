"""Fourier shell correlation between two maps, with resolutions at 0.143 and 0.5.

examples:
  cryorient fsc half1.mrc half2.mrc
  cryorient fsc recon.mrc truth.mrc --json fsc.json --png fsc.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..engine.fsc import fourier_shell_correlation
from ..io import atomic_path, read_map
from ..io.errors import InputError
from ..plots import plot_fsc
from ._common import check_paths
from ._types import PIXEL_SIZE


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient fsc``."""
    parser.add_argument("map1", type=Path)
    parser.add_argument("map2", type=Path)
    parser.add_argument("--pixel-size", type=PIXEL_SIZE, default=None,
                        help="voxel size in Å (default: from the headers)")
    parser.add_argument("--json", type=Path, default=None, help="write the curve as JSON")
    parser.add_argument("--png", type=Path, default=None, help="plot the curve")


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient fsc``."""
    check_paths([args.map1, args.map2], [args.json, args.png])
    m1, m2 = read_map(args.map1), read_map(args.map2)
    if m1.data.shape != m2.data.shape:
        raise InputError(f"maps differ in size: {m1.data.shape} vs {m2.data.shape} "
                         f"({args.map2})", args.map1)
    v1, v2 = m1.voxel_size_a, m2.voxel_size_a
    if args.pixel_size is None and v1 and v2 and abs(v1 - v2) > 1e-3 * max(v1, v2):
        raise InputError(f"the maps have different voxel sizes ({v1:g} Å vs {v2:g} Å in {args.map2}); "
                         "resample one to the other first", args.map1)
    px = args.pixel_size or v1 or v2
    if px is None:
        raise InputError("no voxel size in the headers; pass --pixel-size", args.map1)
    for m, path in ((m1, args.map1), (m2, args.map2)):
        if float(m.data.max()) == float(m.data.min()):
            raise InputError(f"the map is constant ({float(m.data.max()):g} everywhere): it has no FSC", path)
    result = fourier_shell_correlation(m1.data, m2.data, px)
    flag = lambda at_nyq: " (not reached: Nyquist)" if at_nyq else ""  # noqa: E731
    print(f"FSC 0.143: {result.resolution_0143_a:.2f} Å{flag(result.resolution_0143_at_nyquist)}")
    print(f"FSC 0.5:   {result.resolution_05_a:.2f} Å{flag(result.resolution_05_at_nyquist)}")
    if args.json:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(result.to_dict(), indent=2))
    if args.png:
        plot_fsc({f"{args.map1.name} vs {args.map2.name}": result}, args.png)
    return 0
