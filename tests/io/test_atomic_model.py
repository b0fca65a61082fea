import gzip

import numpy as np
import pytest

from napari_cryorient.io import InputError, is_atomic_model, map_from_atomic_model, read_atoms
from napari_cryorient.method import DemoConfig
from napari_cryorient.method.demo import load_demo_volume

PDB = """\
ATOM      1  N   ALA A   1      10.000  12.000  14.000  1.00  0.00           N
ATOM      2  CA  ALA A   1      11.000  12.000  14.000  1.00  0.00           C
ATOM      3  C   ALA A   1      12.000  12.000  14.000  1.00  0.00           C
ATOM      4  O   ALA A   1      20.000  12.000  14.000  1.00  0.00           O
ATOM      5  H   ALA A   1      10.000  13.000  14.000  1.00  0.00           H
HETATM    6  O   HOH A   2      30.000  30.000  30.000  1.00  0.00           O
END
"""


def test_atoms_are_read_without_hydrogens_and_waters(tmp_path):
    path = tmp_path / "m.pdb"
    path.write_text(PDB)
    coords, z = read_atoms(path)
    assert len(coords) == 4
    np.testing.assert_array_equal(z, [7, 6, 6, 8])


def test_model_density_is_centred_on_the_centre_of_mass(tmp_path):
    path = tmp_path / "m.pdb"
    path.write_text(PDB)
    vol = map_from_atomic_model(path, box=32, pixel_size_a=1.0, resolution_a=2.0).numpy()
    g = np.arange(32) - 16
    com_x = (vol.sum(axis=(0, 1)) * g).sum() / vol.sum()
    assert abs(com_x) < 0.3
    # the oxygen 8 Å away on +x makes the density extend further on +x
    assert vol[16, 16, 16 + 6] > vol[16, 16, 16 - 6]


def test_bad_model_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_atoms(tmp_path / "none.pdb")
    empty = tmp_path / "empty.pdb"
    empty.write_text("END\n")
    with pytest.raises(InputError, match="no atoms"):
        read_atoms(empty)


def test_models_are_told_from_maps_by_suffix():
    assert is_atomic_model("a/b/2xhe.pdb.gz") and is_atomic_model("X.CIF") and is_atomic_model("m.ent")
    assert not is_atomic_model("map.mrc") and not is_atomic_model("stack.mrcs.gz")


def test_a_demo_volume_can_be_an_atomic_model(tmp_path):
    path = tmp_path / "m.pdb.gz"
    path.write_bytes(gzip.compress(PDB.encode()))
    vol, px = load_demo_volume(DemoConfig(volume=path, box=24, pixel_size_a=1.5))
    assert px == 1.5 and tuple(vol.shape) == (24, 24, 24)
    assert float(vol.abs().max()) > 0
    # the same density as the model rendered directly, up to the normalisation
    direct = map_from_atomic_model(path, box=24, pixel_size_a=1.5).numpy().ravel()
    assert np.corrcoef(direct, vol.numpy().ravel())[0, 1] > 0.999
