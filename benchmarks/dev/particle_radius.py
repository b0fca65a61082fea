"""dev: the particle radius measured from the images (engine.extent) on the ab-initio maps.

usage: python -m benchmarks.dev.particle_radius [N]
"""
import sys

from benchmarks.ab_initio import MAPS
from napari_cryorient.engine.extent import particle_radius_px
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.simulate import SimulationConfig, simulate_particles
from napari_cryorient.method.demo import load_demo_volume

n = int(sys.argv[1]) if len(sys.argv) > 1 else 2500
for name in ("hand", "ribosome", "unc18"):
    vol, px = load_demo_volume(MAPS[name])
    for snr in (-12.0, -16.0):
        sim = run_job(simulate_particles(vol, px, SimulationConfig(
            n_particles=n, snr_db=snr, ctf=True, defocus_range_um=(1.0, 2.5), shift_std_a=3.0 * px,
            amplitude_contrast=0.1, seed=0)))
        print(name, snr, "phase-flipped", particle_radius_px(sim.images, px, sim.ctf),
              "raw", particle_radius_px(sim.images, px), flush=True)
