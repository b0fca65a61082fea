"""The particle's radius measured from its images alone."""

import numpy as np
import pytest

from napari_cryorient.engine.extent import particle_radius_px
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.simulate import SimulationConfig, simulate_particles
from napari_cryorient.engine.volumes import density_from_atoms, normalise_volume


def _blob(radius_px: float, box: int = 48, seed: int = 0):
    """Random 'atoms' filling a ball of ``radius_px`` (1 Å/px)."""
    rng = np.random.default_rng(seed)
    xyz = rng.normal(size=(400, 3))
    xyz *= (radius_px * rng.random(400) ** (1 / 3) / np.linalg.norm(xyz, axis=1))[:, None]
    return normalise_volume(density_from_atoms(xyz, box, 1.0, sigma_a=1.5))


def _images(volume, ctf: bool, snr_db: float = -6.0):
    return run_job(simulate_particles(volume, 1.0, SimulationConfig(
        n_particles=600, snr_db=snr_db, ctf=ctf, defocus_range_um=(0.5, 1.0), seed=1)))


@pytest.mark.parametrize("radius", [6.0, 14.0])
def test_the_radius_of_a_ball_is_found_from_noisy_images(radius):
    sim = _images(_blob(radius), ctf=False)
    found = particle_radius_px(sim.images, 1.0)
    assert radius - 2 <= found <= radius + 4  # 95 % of the variance: up to the ball's edge and its blur


def test_the_phase_flip_undoes_the_ctf_delocalisation():
    sim = _images(_blob(6.0), ctf=True)
    flipped = particle_radius_px(sim.images, 1.0, sim.ctf)
    raw = particle_radius_px(sim.images, 1.0)
    assert flipped <= 10 < raw  # the CTF spreads the signal far beyond the particle


def test_images_of_noise_alone_give_no_small_radius():
    noise = np.random.default_rng(0).normal(size=(400, 32, 32)).astype(np.float32)
    assert particle_radius_px(noise, 1.0) >= 8  # no particle: no confident small mask
