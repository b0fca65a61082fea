"""dev: calibrated distances: invert the network's response curve E[d_hat | d] (measured on pairs
with truth), or match quantiles to the uniform-rotation distance law
then recover.

usage: python -m benchmarks.dev.calibrated_distances CASE
"""
import json
import sys

import numpy as np
import torch

from benchmarks.method import CACHE
from napari_cryorient.engine import so3
from napari_cryorient.engine.inference import image_features
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.recover import FeatureDistances, RecoveryConfig, recover_orientations
from napari_cryorient.engine.siamese import feature_distance
from napari_cryorient.io.checkpoint import load_model
from napari_cryorient.io.particles import read_particle_set
from napari_cryorient.method.evaluate import evaluate_poses

case = sys.argv[1]
folder = CACHE / f"method_{case}"
model = load_model(folder / "model.pt")
p = read_particle_set(folder / "particles_true.star")
truth = p.rotations
q = so3.matrix_to_quaternion(truth)
n = len(p)
f = run_job(image_features(model, p.images, pixel_size_a=p.pixel_size_a, ctf=p.ctf, rotations=4))
F = torch.as_tensor(f)
rng = np.random.default_rng(1)
# response curve from 500 particles' pairs (as validation pairs would give it)
cal = rng.choice(n, 500, replace=False)
a, b = np.repeat(cal, 500), np.tile(cal, 500)
keep = a != b
a, b = a[keep], b[keep]
d = so3.geodesic_distance(q[a], q[b])
dh = feature_distance(F[a], F[b]).numpy()
bins = np.linspace(0, np.pi, 37)
idx = np.clip(np.digitize(d, bins) - 1, 0, 35)
centres = 0.5 * (bins[1:] + bins[:-1])
resp = np.array([dh[idx == k].mean() if (idx == k).sum() > 20 else np.nan for k in range(36)])
ok = np.isfinite(resp)
c_ok, r_ok = centres[ok], np.maximum.accumulate(resp[ok])  # monotone
print('response d -> E[dhat|d] (deg):', [(round(np.degrees(x)), round(np.degrees(y))) for x, y in zip(c_ok[::4], r_ok[::4], strict=True)])
def inv(x):  # d_hat -> d
    return np.interp(x, r_ok + np.arange(len(r_ok)) * 1e-9, c_ok)
# quantile matching to the law of uniform rotations: CDF(t) = (t - sin t) / pi
grid = np.linspace(0, np.pi, 2001)
cdf = (grid - np.sin(grid)) / np.pi
qs = np.sort(dh)
def qmatch(x):
    u = np.searchsorted(qs, x) / len(qs)
    return np.interp(u, cdf, grid)

class Mapped(FeatureDistances):
    def __init__(self, feats, fn):
        super().__init__(feats)
        self.fn = fn
    def pairs(self, i, j):
        out = super().pairs(i, j)
        if self._use_dense:  # the dense matrix is built from (mapped) blocks
            return out
        return torch.as_tensor(self.fn(out.numpy()), dtype=out.dtype)
    def block(self, rows, cols):
        out = super().block(rows, cols)
        return torch.as_tensor(self.fn(out.numpy()), dtype=out.dtype)

ta, tb = rng.integers(0, n, 200000), rng.integers(0, n, 200000)
td = so3.geodesic_distance(q[ta], q[tb])
close = np.degrees(td) < 20
for name, fn in (('raw', lambda x: x), ('inverse-response', inv), ('quantile', qmatch)):
    pred = fn(feature_distance(F[ta], F[tb]).numpy())
    err = np.degrees(np.abs(pred - td))
    print(name, 'mae', round(float(err.mean()), 2), 'close', round(float(err[close].mean()), 2), flush=True)
    if name == 'raw':
        continue
    try:
        rec = run_job(recover_orientations(Mapped(f, fn), RecoveryConfig(seed=0)))
        o4 = evaluate_poses(rec.quaternions, truth, seed=0).o4
        print(json.dumps({'variant': name, 'rec': [round(o4.mean_deg, 2), round(o4.median_deg, 2), round(o4.p90_deg, 2)]}), flush=True)
    except Exception as e:
        print(name, 'failed', repr(e))
