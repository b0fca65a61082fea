"""dev: the soft search from nothing on the tests' small map (32 px pseudo-protein at 4 Å/px,
400 particles, no CTF, centred), weighted against drawn candidates over three seeds; median
errors after the harmless rotation only.

usage: python -m benchmarks.dev.soft_search_toy [key=value ...]  (SoftSearchConfig fields, for all runs)
"""
import sys
from dataclasses import fields, replace

from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.simulate import SimulationConfig, simulate_particles
from napari_cryorient.engine.soft_search import SoftSearchConfig, soft_search
from napari_cryorient.engine.volumes import make_pseudo_protein
from napari_cryorient.method.evaluate import harmless_alignment

small_map = make_pseudo_protein(box=32, pixel_size_a=4.0, seed=3)
fast = SoftSearchConfig(batch_size=100, n_rotations=2000, start_resolution_a=24.0, end_resolution_a=12.0,
                        shift_range_px=0.0)
types = {f.name: f.type for f in fields(SoftSearchConfig)}
for arg in sys.argv[1:]:
    key, value = arg.split("=")
    fast = replace(fast, **{key: {"int": int, "float": float, "bool": lambda v: v == "1"}[types[key]](value)})
for snr in (10.0, 0.0):
    sim = run_job(simulate_particles(small_map, 4.0, SimulationConfig(n_particles=400, snr_db=snr, seed=4)))
    for draw in (False, True):
        medians = [round(harmless_alignment(run_job(soft_search(sim.images, 4.0, None, None, replace(
            fast, draw=draw, seed=seed))).rotations, sim.rotations).median_deg, 1) for seed in (0, 1, 2)]
        print(f"{snr:g} dB, {'drawn' if draw else 'weighted'}: medians {medians}", flush=True)
