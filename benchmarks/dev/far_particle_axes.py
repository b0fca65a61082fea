"""dev: how the far-off particles are wrong: the axis of their error rotation in the image
frame, and how far their viewing direction is off (final poses of a cached method case,
after its harmless alignment, against the true poses).

usage: python -m benchmarks.dev.far_particle_axes CASE [CASE ...]
"""
import sys

import numpy as np
import starfile
from scipy.spatial.transform import Rotation

from benchmarks.method import CACHE

COLS = ["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]


def _poses(path):
    table = starfile.read(path)
    table = table["particles"] if isinstance(table, dict) else table
    return Rotation.from_euler("ZYZ", table[COLS].values, degrees=True)


for case in sys.argv[1:]:
    folder = CACHE / f"method_{case}"
    found, truth = _poses(folder / "aligned.star"), _poses(folder / "particles_true.star")
    error = found.inv() * truth  # RELION's matrix is the transpose: this acts in the image frame
    angle = np.degrees(error.magnitude())
    far = angle > 60
    axes = error.as_rotvec()[far]
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    view_true, view_found = truth.inv().apply([0, 0, 1]), found.inv().apply([0, 0, 1])
    view_error = np.degrees(np.arccos(np.clip((view_true * view_found).sum(1), -1, 1)))[far]
    print(case, f"far (> 60°): {far.mean():.3f}",
          "|axis z| quartiles (random axes: .25/.5/.75):", np.quantile(np.abs(axes[:, 2]), [.25, .5, .75]).round(2),
          "viewing-direction error quantiles (10/25/50/75/90 %):", np.quantile(view_error, [.1, .25, .5, .75, .9]).round(0),
          f"antipodal (> 150°): {(view_error > 150).mean():.2f}")
