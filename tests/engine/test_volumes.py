import numpy as np
import pytest
import torch

from napari_cryorient.engine.fourier import fourier_resize_volume
from napari_cryorient.engine.fsc import fourier_shell_correlation
from napari_cryorient.engine.volumes import (
    density_from_atoms,
    make_pseudo_protein,
    make_sample_volume,
    mirror_volume,
)


def test_pseudo_protein_is_seeded_normalised_and_asymmetric():
    a, b, c = (make_pseudo_protein(48, 3.0, seed=s) for s in (0, 0, 1))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    assert abs(float(a.mean())) < 1e-5 and abs(float(a.std()) - 1) < 1e-4
    # clearly chiral: the mirror image correlates poorly beyond low resolution
    f = fourier_shell_correlation(a, mirror_volume(a), 3.0)
    assert f.fsc[4:].mean() < 0.3
    # protein-like: compact (most density within 40 Å of the centre)
    d = a.shape[0]
    g = (np.arange(d) - d // 2) * 3.0
    r = np.sqrt(g[:, None, None] ** 2 + g[None, :, None] ** 2 + g[None, None] ** 2)
    pos = np.clip(a.numpy(), 0, None)
    assert pos[r < 45].sum() > 0.9 * pos.sum()


def test_single_atom_lands_on_its_voxel():
    vol = density_from_atoms(np.array([[6.0, -4.0, 2.0]]), 32, 2.0, sigma_a=2.0).numpy()
    z, y, x = np.unravel_index(vol.argmax(), vol.shape)
    assert (x - 16, y - 16, z - 16) == (3, -2, 1)
    assert vol.sum() == pytest.approx(1.0, rel=1e-4)


def test_fourier_resize_keeps_low_resolution_content():
    vol = make_pseudo_protein(64, 2.0)
    small = fourier_resize_volume(vol, 32)
    back = fourier_resize_volume(small, 64)
    f = fourier_shell_correlation(back, vol, 2.0)
    assert f.fsc[1:14].min() > 0.99  # shells below the new Nyquist survive
    assert small.shape == (32, 32, 32)


def test_unknown_sample_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown sample"):
        make_sample_volume("ribosome")


def test_mirror_is_a_point_inversion_about_the_centre():
    vol = density_from_atoms(np.array([[2.0, -3.0, 5.0]]), 16, 1.0, sigma_a=1.0)
    z, y, x = np.unravel_index(int(mirror_volume(vol).argmax()), (16, 16, 16))
    assert (x - 8, y - 8, z - 8) == (-2, 3, -5)
    torch.testing.assert_close(mirror_volume(mirror_volume(vol)), vol)
