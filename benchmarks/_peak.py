"""Run one ``cryorient`` command in this process and record its wall time and peak memory.

usage: python -m benchmarks._peak RESULT.json cryorient-args...
"""

from __future__ import annotations

import json
import resource
import sys
import time

from napari_cryorient.cli import main as cli


def main() -> int:
    out, args = sys.argv[1], sys.argv[2:]
    t0 = time.perf_counter()
    code = cli(args)
    wall = time.perf_counter() - t0
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    with open(out, "w") as f:
        json.dump({"args": args, "exit_code": code, "wall_s": wall, "peak_rss_gib": peak_gib}, f)
    return code


if __name__ == "__main__":
    sys.exit(main())
