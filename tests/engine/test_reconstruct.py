import numpy as np
import pytest

from napari_cryorient.engine.fsc import fourier_shell_correlation
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.reconstruct import reconstruct_volume
from napari_cryorient.engine.simulate import SimulationConfig, simulate_particles
from napari_cryorient.engine.volumes import make_pseudo_protein


@pytest.fixture(scope="module")
def clean_set(small_map):
    cfg = SimulationConfig(n_particles=1500, shift_std_a=4.0, seed=11)
    return run_job(simulate_particles(small_map, 4.0, cfg))


def test_project_then_reconstruct_returns_the_map(small_map, clean_set):
    rec = run_job(reconstruct_volume(clean_set.images, clean_set.rotations, 4.0,
                                     shifts_a=clean_set.shifts_a))
    fsc = fourier_shell_correlation(rec.volume, small_map.numpy(), 4.0)
    assert fsc.fsc_at_fraction_of_nyquist(0.8) > 0.9


def test_ignoring_the_origins_degrades_the_map(small_map, clean_set):
    rec = run_job(reconstruct_volume(clean_set.images, clean_set.rotations, 4.0))
    fsc = fourier_shell_correlation(rec.volume, small_map.numpy(), 4.0)
    assert fsc.fsc_at_fraction_of_nyquist(0.8) < 0.5


def test_chunking_does_not_change_the_result(clean_set):
    imgs, rot, sh = clean_set.images[:200], clean_set.rotations[:200], clean_set.shifts_a[:200]
    a = run_job(reconstruct_volume(imgs, rot, 4.0, shifts_a=sh, chunk_size=13)).volume
    b = run_job(reconstruct_volume(imgs, rot, 4.0, shifts_a=sh, chunk_size=500)).volume
    np.testing.assert_allclose(a, b, atol=1e-4 * np.abs(b).max())


def test_a_band_limited_reconstruction_keeps_the_band_and_nothing_beyond(clean_set):
    """``band_box``: the frequencies of the smaller box as the whole box gives them, zeros
    outside, the map at the images' box."""
    imgs, rot, sh = clean_set.images[:600], clean_set.rotations[:600], clean_set.shifts_a[:600]
    whole = run_job(reconstruct_volume(imgs, rot, 4.0, shifts_a=sh)).volume
    band = run_job(reconstruct_volume(imgs, rot, 4.0, shifts_a=sh, band_box=16, half_maps=True))
    assert band.volume.shape == whole.shape == band.half_maps[0].shape
    fsc = fourier_shell_correlation(band.volume, whole, 4.0).fsc
    assert fsc[1:7].min() > 0.98  # inside the 16 px band (8 shells, edge excluded)
    ft = np.fft.fftshift(np.fft.fftn(band.volume))
    k = np.abs(np.stack(np.meshgrid(*[np.arange(32) - 16] * 3, indexing="ij"))).max(0)  # cube
    assert np.abs(ft[k > 8]).max() < 1e-4 * np.abs(ft).max()
    whole_ft = np.fft.fftshift(np.fft.fftn(whole))  # same amplitude, not only the same shape
    assert np.abs(ft[k <= 5]).sum() == pytest.approx(np.abs(whole_ft[k <= 5]).sum(), rel=0.05)


def test_half_maps_split_the_particles(clean_set):
    rec = run_job(reconstruct_volume(clean_set.images, clean_set.rotations, 4.0,
                                     shifts_a=clean_set.shifts_a, half_maps=True, seed=3))
    counts = np.bincount(rec.half_assignment)
    assert abs(counts[0] - counts[1]) <= 1
    fsc = fourier_shell_correlation(*rec.half_maps, 4.0)
    assert fsc.fsc_at_fraction_of_nyquist(0.5) > 0.9


def test_wiener_ctf_correction_beats_no_correction(small_map):
    cfg = SimulationConfig(n_particles=1500, ctf=True, defocus_range_um=(0.8, 2.0), seed=4)
    sim = run_job(simulate_particles(small_map, 4.0, cfg))
    scores = {}
    for mode in ("none", "phase-flip", "wiener"):
        rec = run_job(reconstruct_volume(sim.images, sim.rotations, 4.0, ctf=sim.ctf,
                                         ctf_correction=mode))
        scores[mode] = fourier_shell_correlation(rec.volume, small_map.numpy(), 4.0).fsc[1:].mean()
    assert scores["wiener"] > scores["phase-flip"] > scores["none"]
    assert scores["wiener"] > 0.8


def test_progress_is_reported_per_chunk(clean_set):
    job = reconstruct_volume(clean_set.images[:100], clean_set.rotations[:100], 4.0, chunk_size=30)
    events = []
    while True:
        try:
            events.append(next(job))
        except StopIteration:
            break
    assert [e.done for e in events] == [30, 60, 90, 100]


def test_bad_input_is_rejected(clean_set):
    with pytest.raises(ValueError, match="images but"):
        run_job(reconstruct_volume(clean_set.images[:5], clean_set.rotations[:6], 4.0))
    with pytest.raises(ValueError, match="needs CTF"):
        run_job(reconstruct_volume(clean_set.images[:5], clean_set.rotations[:5], 4.0,
                                   ctf_correction="wiener"))
    bad = clean_set.images[:5].copy()
    bad[2, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        run_job(reconstruct_volume(bad, clean_set.rotations[:5], 4.0))


@pytest.mark.slow
def test_acceptance_5000_clean_uniform_64px_reaches_08_nyquist():
    """Issue acceptance: noise-free sample, 64 px, 5 000 uniform poses, true poses."""
    vol = make_pseudo_protein(64, 2.0)
    sim = run_job(simulate_particles(vol, 2.0, SimulationConfig(n_particles=5000, seed=0)))
    rec = run_job(reconstruct_volume(sim.images, sim.rotations, 2.0))
    fsc = fourier_shell_correlation(rec.volume, vol.numpy(), 2.0)
    nyq = 0.5 / 2.0
    shells = (fsc.frequency_inv_a > 0) & (fsc.frequency_inv_a <= 0.8 * nyq)  # DC: sign of two ~0 means
    assert fsc.fsc[shells].min() >= 0.5


def test_poses_turned_180_in_plane_reconstruct_the_mirror_image(small_map, clean_set):
    """The handedness ambiguity: Rz(pi) R gives the point-inverted map."""
    from napari_cryorient.engine.fsc import compare_with_reference

    rz_pi = np.diag([-1.0, -1.0, 1.0])
    rec = run_job(reconstruct_volume(clean_set.images, rz_pi @ clean_set.rotations, 4.0,
                                     shifts_a=clean_set.shifts_a))
    hand = compare_with_reference(rec.volume, small_map, 4.0)
    assert hand.hand == "opposite"
    assert hand.best.fsc_at_fraction_of_nyquist(0.8) > 0.9
