"""dev: kNN feature smoothing (class-average-like) before distances.

usage: python -m benchmarks.dev.neighbour_averaged_features CASE K [K ...]  (K = 0: none)
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

torch.set_num_threads(1)
case = sys.argv[1]
ks = [int(k) for k in sys.argv[2:]]
folder = CACHE / f"method_{case}"
model = load_model(folder / "model.pt")
p = read_particle_set(folder / "particles_true.star")
truth = p.rotations
q = so3.matrix_to_quaternion(truth)
rng = np.random.default_rng(0)
n = len(p)
a, b = rng.integers(0, n, 200000), rng.integers(0, n, 200000)
true_d = so3.geodesic_distance(q[a], q[b])
close = np.degrees(true_d) < 20
f0 = run_job(image_features(model, p.images, pixel_size_a=p.pixel_size_a, ctf=p.ctf, rotations=4))
F = torch.nn.functional.normalize(torch.as_tensor(f0), dim=-1)
C = F @ F.T
order = torch.argsort(-C.abs(), dim=1)
Q = torch.as_tensor(q)
for k in ks:
    if k == 0:
        f = F
    else:
        nn = order[:, 1:k + 1]
        prec = float(np.degrees(so3.geodesic_distance(q[np.repeat(np.arange(n), k)], q[nn.reshape(-1).numpy()])).mean())
        sign = torch.sign(torch.gather(C, 1, nn))[..., None]
        f = (F + (sign * F[nn]).sum(1)) / (k + 1)
    pred = feature_distance(f[a], f[b]).numpy()
    err = np.degrees(np.abs(pred - true_d))
    print('mae', k, round(float(err.mean()), 2), round(float(err[close].mean()), 2), flush=True)
    f = torch.nn.functional.normalize(f, dim=-1)
    try:
        rec = run_job(recover_orientations(FeatureDistances(f.numpy()), RecoveryConfig(seed=0)))
    except Exception as e:
        print('recovery failed', e)
        continue
    o4 = evaluate_poses(rec.quaternions, truth, seed=0).o4
    print(json.dumps({'k': k, 'nn_true_dist_deg': None if k == 0 else round(prec, 1), 'mae': round(float(err.mean()), 2),
                      'mae_close': round(float(err[close].mean()), 2),
                      'rec': [round(o4.mean_deg, 2), round(o4.median_deg, 2), round(o4.p90_deg, 2)]}), flush=True)
