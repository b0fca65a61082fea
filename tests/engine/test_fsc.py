import numpy as np
import pytest
import torch

from napari_cryorient.engine.fsc import compare_with_reference, fourier_shell_correlation
from napari_cryorient.engine.volumes import mirror_volume


def test_identical_maps_correlate_fully(small_map):
    f = fourier_shell_correlation(small_map, small_map, 4.0)
    np.testing.assert_allclose(f.fsc, 1.0, atol=1e-9)
    assert f.resolution_0143_at_nyquist and f.resolution_0143_a == pytest.approx(8.0)
    assert f.frequency_inv_a[-1] == pytest.approx(1 / 8.0)


def test_signal_plus_independent_noise_gives_snr_over_one_plus_snr():
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((48, 48, 48))
    a = signal + rng.standard_normal(signal.shape)
    b = signal + rng.standard_normal(signal.shape)
    f = fourier_shell_correlation(a, b)
    # white signal and noise of equal power: FSC = 1 / (1 + 1) = 0.5 in every shell
    assert abs(f.fsc[4:].mean() - 0.5) < 0.02
    g = fourier_shell_correlation(rng.standard_normal(signal.shape), rng.standard_normal(signal.shape))
    assert abs(g.fsc[4:].mean()) < 0.02


def test_resolution_is_interpolated_at_the_crossing():
    rng = np.random.default_rng(1)
    vol = torch.from_numpy(rng.standard_normal((64, 64, 64)))
    ft = torch.fft.rfftn(vol)
    fz = torch.fft.fftfreq(64)
    r = torch.sqrt(fz[:, None, None] ** 2 + fz[None, :, None] ** 2 + torch.fft.rfftfreq(64)[None, None] ** 2)
    low = torch.fft.irfftn(ft * (r < 0.25), s=vol.shape)  # sharp cut at 0.25 cycles/px
    f = fourier_shell_correlation(vol, low, pixel_size_a=1.5)
    assert f.resolution_05_a == pytest.approx(1.5 / 0.25, rel=0.05)


def test_mirror_image_is_detected(small_map):
    same = compare_with_reference(small_map, small_map, 4.0)
    assert same.hand == "same"
    flipped = compare_with_reference(mirror_volume(small_map), small_map, 4.0)
    assert flipped.hand == "opposite"
    assert flipped.best.fsc[1:].mean() > 0.99


def test_maps_of_different_size_are_rejected(small_map):
    with pytest.raises(ValueError, match="differ in shape"):
        fourier_shell_correlation(small_map, small_map[:-2, :-2, :-2].contiguous())
