"""dev: why far-off particles stay far off after the second chance.

Reads the poses saved by ``benchmarks.dev.tail_poses``; reconstructs the half-maps from the
final poses (aligned to the truth; scoring only), and for the particles still more than 20°
off compares their true and final poses (log-likelihood ratio at 15 and 10 Å), then runs the
second chance's global search and local search from their true origin and from an origin
3 px off.

usage: python -m benchmarks.dev.tail_origins CASE POSES.npz
"""
import sys

import numpy as np
import torch

from benchmarks.method import case_config
from napari_cryorient.engine.fourier import lowpass_volume
from napari_cryorient.engine.global_search import GlobalSearchConfig, global_search
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.matching import local_search, pose_scores
from napari_cryorient.engine.reconstruct import reconstruct_volume
from napari_cryorient.engine.so3 import relative_angle_deg
from napari_cryorient.method.demo import simulate_case
from napari_cryorient.method.evaluate import evaluate_poses

case, path = sys.argv[1], sys.argv[2]
z = np.load(path)
truth, halves = z["truth"], z["halves"]
ev = evaluate_poses(z["rotations"], truth, seed=0).o4
print("hand flipped", ev.hand_flipped, "conjugated", ev.conjugated)
rot, err = ev.rotations, ev.errors_deg
far = np.flatnonzero(err > 20)
print(f"{len(far) / len(err):.1%} of the particles more than 20° off; they make {err[far].sum() / len(err):.1f}° "
      f"of the {err.mean():.1f}° mean")
sim = run_job(simulate_case(case_config(case), {}))
images, px, shifts, ctf = np.asarray(sim.noisy.images), sim.pixel_size_a, sim.noisy.shifts_a, sim.noisy.ctf
rec = run_job(reconstruct_volume(images, rot, px, shifts_a=shifts, ctf=ctf, ctf_correction="wiener",
                                 half_maps=True, halves=halves))
for res in (15.0, 10.0):
    for h in (0, 1):
        rows = far[halves[far] == h]
        ref = lowpass_volume(torch.as_tensor(rec.half_maps[h]), res, px)
        s_true, power = pose_scores(images[rows], ref, truth[rows], px, shifts[rows], ctf.subset(rows), res,
                                    with_power=True)
        s_final = pose_scores(images[rows], ref, rot[rows], px, shifts[rows], ctf.subset(rows), res)
        llr = (s_true**2 - s_final**2) / (2 * power)
        print(f"{res} Å, half {h + 1}: {len(rows)} far-off; the true pose scores better in {np.mean(llr > 0):.0%}; "
              f"log-likelihood ratio 10/50/90 %: {np.quantile(llr, [0.1, 0.5, 0.9]).round(1)}")
res = 15.0
for h in (0, 1):
    rows = far[halves[far] == h]
    ref = lowpass_volume(torch.as_tensor(rec.half_maps[h]), res, px)
    for label, start in (("true origin", shifts[rows]), ("origin 3 px off", shifts[rows] + [3 * px, 0.0])):
        g = run_job(global_search(images[rows], ref, px, start, ctf.subset(rows),
                                  GlobalSearchConfig(n_rotations=4000, shift_range_px=0.0, resolution_a=res)))
        polished, _, _ = run_job(local_search(images[rows], ref, g.rotations, px, start, ctf.subset(rows), res))
        e = relative_angle_deg(polished, truth[rows])
        print(f"half {h + 1}, {label}: grid median {np.median(relative_angle_deg(g.rotations, truth[rows])):.1f}°, "
              f"polished median {np.median(e):.1f}°, {np.mean(e < 10):.0%} within 10°")
