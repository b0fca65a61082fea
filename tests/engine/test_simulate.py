import numpy as np
import pytest
import torch

from napari_cryorient.engine.ctf import CTFParams, compute_ctf_rfft
from napari_cryorient.engine.fourier import shift_images
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.simulate import (
    SimulationConfig,
    noise_variance_from_snr_db,
    project_particles,
    simulate_particles,
    snr_db_from_noise_variance,
)


def test_paper_noise_level_is_minus_12_db():
    assert snr_db_from_noise_variance(16.0) == pytest.approx(-12.04, abs=0.01)
    assert noise_variance_from_snr_db(-12.04) == pytest.approx(16.0, rel=1e-3)


def test_noise_gives_the_requested_per_image_snr(small_map):
    cfg = SimulationConfig(n_particles=40, snr_db=-6.0, seed=5)
    clean = run_job(simulate_particles(small_map, 4.0, SimulationConfig(n_particles=40, seed=5)))
    noisy = run_job(simulate_particles(small_map, 4.0, cfg))
    np.testing.assert_allclose(noisy.rotations, clean.rotations)
    noise = noisy.images - clean.images
    snr = clean.images.var(axis=(1, 2)) / noise.var(axis=(1, 2))
    # per image: sampling error of a variance over 32² pixels is about 0.2 dB
    np.testing.assert_allclose(10 * np.log10(snr), -6.0, atol=0.8)
    assert abs(10 * np.log10(snr).mean() - (-6.0)) < 0.1
    np.testing.assert_allclose(noisy.noise_variance, clean.images.var(axis=(1, 2)) / 10**-0.6, rtol=1e-4)


def test_simulation_does_not_depend_on_chunk_size(small_map):
    base = dict(n_particles=30, snr_db=0.0, shift_std_a=3.0, ctf=True, seed=2)
    a = run_job(simulate_particles(small_map, 4.0, SimulationConfig(**base, chunk_size=7)))
    b = run_job(simulate_particles(small_map, 4.0, SimulationConfig(**base, chunk_size=256)))
    np.testing.assert_allclose(a.images, b.images, atol=1e-5)


def test_simulation_is_seeded(small_map):
    a = run_job(simulate_particles(small_map, 4.0, SimulationConfig(n_particles=5, snr_db=0, seed=1)))
    b = run_job(simulate_particles(small_map, 4.0, SimulationConfig(n_particles=5, snr_db=0, seed=1)))
    c = run_job(simulate_particles(small_map, 4.0, SimulationConfig(n_particles=5, snr_db=0, seed=2)))
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.allclose(a.images, c.images)


def test_origin_shift_is_undone_by_shifting_by_plus_origin(small_map, rng):
    rot = np.repeat(np.eye(3)[None], 4, axis=0)
    origins = rng.uniform(-5, 5, (4, 2))
    centred = run_job(project_particles(small_map, rot, 4.0)).images
    shifted = run_job(project_particles(small_map, rot, 4.0, shifts_a=origins)).images
    back = shift_images(torch.from_numpy(shifted), torch.from_numpy(origins / 4.0)).numpy()
    # a sub-pixel shift cannot keep the (real) Nyquist terms: compare below 0.4 cycles/px
    def lowpass(x):
        f = np.fft.rfft2(x)
        fy, fx = np.fft.fftfreq(x.shape[-1])[:, None], np.fft.rfftfreq(x.shape[-1])[None]
        return np.fft.irfft2(f * (np.hypot(fx, fy) < 0.4), s=x.shape[-2:])
    np.testing.assert_allclose(lowpass(back), lowpass(centred), atol=1e-3 * np.abs(centred).max())
    assert np.abs(shifted - centred).max() > 0.1 * np.abs(centred).max()  # it did move


def relion_ctf(params: CTFParams, size: int, px: float) -> np.ndarray:
    """RELION's CTF::getCTF on the rfft grid (src/ctf.h), transcribed."""
    lam = 12.2643247 / np.sqrt(params.voltage_kv[0] * 1e3 * (1 + params.voltage_kv[0] * 1e3 * 0.978466e-6))
    cs = params.cs_mm[0] * 1e7
    k1, k2 = np.pi * lam, np.pi / 2 * cs * lam**3
    q0 = params.amplitude_contrast[0]
    k3 = np.arctan(q0 / np.sqrt(1 - q0**2))
    fy = np.fft.fftfreq(size, d=px)[:, None]
    fx = np.fft.rfftfreq(size, d=px)[None, :]
    u2 = fx**2 + fy**2
    ang = np.arctan2(fy, fx) - np.deg2rad(params.defocus_angle_deg[0])
    avg = -(params.defocus_u_a[0] + params.defocus_v_a[0]) / 2
    dev = -(params.defocus_u_a[0] - params.defocus_v_a[0]) / 2
    deltaf = avg + dev * np.cos(2 * ang)
    arg = k1 * deltaf * u2 + k2 * u2**2 - k3
    return -np.sin(arg)


@pytest.mark.parametrize("angle", [0.0, 30.0, -65.0])
def test_ctf_matches_relion_definition_and_astigmatism_direction(angle):
    p = CTFParams.constant(1, defocus_u_a=18000, defocus_v_a=14000, defocus_angle_deg=angle)
    ours = compute_ctf_rfft(p, 64, 1.5)[0].numpy()
    np.testing.assert_allclose(ours, relion_ctf(p, 64, 1.5), atol=2e-3)


def test_invalid_settings_are_rejected(small_map):
    with pytest.raises(ValueError, match="number of particles"):
        run_job(simulate_particles(small_map, 4.0, SimulationConfig(n_particles=0)))
    with pytest.raises(ValueError, match="defocus range"):
        run_job(simulate_particles(small_map, 4.0, SimulationConfig(ctf=True, defocus_range_um=(2, 1))))
