"""dev: can the dev 2D classifier sort four clean views (10 dB, 32 px pseudo-protein, 40
images each at random in-plane angles) into pure classes? Purity for three seeds: hard
EM, 8 draws per image, and hard EM with the smallest class re-seeded from the largest.

usage: python -m benchmarks.dev.classify2d_views
"""
import numpy as np

from benchmarks.dev.classify2d import Classify2DConfig, classify_2d
from napari_cryorient.engine import so3
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.simulate import project_particles
from napari_cryorient.engine.volumes import make_pseudo_protein

volume = make_pseudo_protein(box=32, pixel_size_a=4.0, seed=3)
views = so3.sample_orientations(4, "uniform", seed=2)
rng = np.random.default_rng(0)
view = np.repeat(np.arange(4), 40)
turns = so3.rotvec_to_matrix(np.c_[np.zeros((160, 2)), rng.uniform(0, 2 * np.pi, 160)])  # in-plane only
proj = run_job(project_particles(volume, turns @ views[view], 4.0, None, None)).images
images = proj + rng.normal(0, proj.std() * 0.3, proj.shape).astype(np.float32)
for label, changes in [("hard", {}), ("8 draws", {"draws": 8}), ("hard, re-seeded", {"split": True})]:
    purities = []
    for seed in range(3):
        c = run_job(classify_2d(images, 4.0, None, None, Classify2DConfig(
            n_classes=4, iterations=10, n_angles=36, resolution_a=10.0, seed=seed, **changes)))
        purities.append(sum(np.bincount(view[c.assignment == k]).max() for k in range(4)
                            if (c.assignment == k).any()) / 160)
    print(label, [round(p, 3) for p in purities], flush=True)
