"""dev: a viewing-direction search for every particle: candidates E R_i, E a rotation about an
in-plane axis (image frame), scored against its half's map
moved when the log-likelihood ratio
beats the prior odds of K candidates. Scored against the truth after O(4) alignment.

usage: python -m benchmarks.dev.viewing_direction_search CASE [RESOLUTION_A] [EXTRA_LOG_ODDS]
"""
import json
import sys
import time

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from benchmarks.method import CACHE
from napari_cryorient.engine.ctf import compute_ctf_rfft
from napari_cryorient.engine.fourier import lowpass_volume
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.matching import SliceMatcher, prepare_matching_images
from napari_cryorient.engine.reconstruct import reconstruct_volume
from napari_cryorient.io.particles import read_particle_set
from napari_cryorient.method.evaluate import evaluate_poses

case = sys.argv[1]
res = float(sys.argv[2]) if len(sys.argv) > 2 else 15.0
folder = CACHE / f"method_{case}"
p = read_particle_set(folder / "recovered.star")
truth = read_particle_set(folder / "particles_true.star").rotations
px = p.pixel_size_a
n = len(p)
R0 = p.rotations
sh = p.shifts_a
print('start', [round(x, 1) for x in (lambda o: (o.mean_deg, o.median_deg, o.p90_deg))(evaluate_poses(R0, truth).o4)], flush=True)
halves = np.random.default_rng(0).integers(0, 2, n)
rec = run_job(reconstruct_volume(p.images, R0, px, shifts_a=sh, ctf=p.ctf, ctf_correction="wiener",
                                 half_maps=True, halves=halves))
# candidates: rotations about in-plane axes (image frame), left-multiplied (package: R maps map -> image?)
phis = np.deg2rad(np.arange(0, 180, 15))
thetas = np.deg2rad(np.arange(20, 181, 20))
E = [np.eye(3)] + [Rotation.from_rotvec(t * np.array([np.cos(f), np.sin(f), 0])).as_matrix()
                   for f in phis for t in thetas]
E = np.stack(E)
K = len(E) - 1
print('candidates', K, flush=True)
for side in ('left', 'right'):
  new = R0.copy()
  moved = np.zeros(n, bool)
  t0 = time.perf_counter()
  for h in (0, 1):
    rows = np.flatnonzero(halves == h)
    ref = lowpass_volume(torch.as_tensor(rec.half_maps[h], dtype=torch.float32), res, px)
    m = SliceMatcher(ref, min(0.5, px / res), 2.0, 'cpu')
    for s in range(0, len(rows), 128):
        idx = rows[s:s + 128]
        x = prepare_matching_images(p.images, idx, px, sh, (m.p - 64) // 2, 'cpu')
        c = torch.fft.fftshift(compute_ctf_rfft(p.ctf.subset(idx), m.p, px, 'cpu'), dim=(-2,))
        cand = (E[None] @ R0[idx][:, None]) if side == 'left' else (R0[idx][:, None] @ E[None])
        sc = m.scores(x, c, torch.as_tensor(cand, dtype=torch.float32)).numpy()
        power = ((m.weight * x[..., m.mask].abs() ** 2).sum(-1) / m.weight.sum()).numpy()
        best = sc[:, 1:].argmax(1) + 1
        llr = (sc[np.arange(len(idx)), best] ** 2 - sc[:, 0] ** 2) / (2 * power)
        go = llr > np.log(K) + float(sys.argv[3] if len(sys.argv) > 3 else 0)
        new[idx[go]] = cand[np.arange(len(idx)), best][go]
        moved[idx[go]] = True
  o = evaluate_poses(new, truth).o4
  print(json.dumps({'side': side, 'moved': round(float(moved.mean()), 3), 'after': [round(o.mean_deg, 1), round(o.median_deg, 1), round(o.p90_deg, 1)],
                    's': round(time.perf_counter() - t0)}), flush=True)
