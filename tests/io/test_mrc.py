import mrcfile
import numpy as np
import pytest

from napari_cryorient.io import InputError, StackWriter, read_map, read_stack, write_map


def test_map_round_trip_keeps_voxel_size(tmp_path, small_map):
    path = write_map(tmp_path / "m.mrc", small_map.numpy(), 4.0)
    back = read_map(path)
    np.testing.assert_array_equal(back.data, small_map.numpy())
    assert back.voxel_size_a == pytest.approx(4.0)
    assert not list(tmp_path.glob(".m.mrc*"))  # no temporary left behind


def test_stack_writer_is_atomic(tmp_path):
    target = tmp_path / "s.mrcs"
    with pytest.raises(RuntimeError), StackWriter(target, 4, 8, 1.5) as w:
        w(0, np.ones((2, 8, 8), np.float32))
        raise RuntimeError("cancelled")
    assert not target.exists() and not list(tmp_path.iterdir())
    with StackWriter(target, 4, 8, 1.5) as w:
        w(0, np.ones((4, 8, 8), np.float32))
    s = read_stack(target)
    assert s.data.shape == (4, 8, 8) and s.pixel_size_a == pytest.approx(1.5)
    assert isinstance(s.data, np.memmap) or s.data.base is not None  # memory-mapped


def test_real_stacks_read(shared_data):
    s = read_stack(shared_data / "formats/cryodrgn_hand/hand.mrcs")
    assert s.data.shape == (100, 64, 64)
    v = read_map(shared_data / "volumes/hand-vol.mrc")
    assert v.data.shape == (64, 64, 64) and v.voxel_size_a == pytest.approx(1.0)
    ribo = read_map(shared_data / "volumes/clean70SRibosome_vol_65p.mrc")
    assert ribo.voxel_size_a is None  # header has none


def _write_raw(path, data, mode=None):
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(data)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p, "does not exist"),
        (lambda p: (p.mkdir(), p)[1], "is a directory"),
        (lambda p: (p.write_bytes(b""), p)[1], "empty"),
        (lambda p: (p.write_bytes(np.random.default_rng(0).bytes(5000)), p)[1], "not a valid MRC"),
        (lambda p: _write_raw(p, np.zeros((8, 8, 6), np.float32)), "not cubic"),
        (lambda p: _write_raw(p, np.full((8, 8, 8), np.nan, np.float32)), "NaN"),
        (lambda p: _write_raw(p, np.zeros((8, 8, 8), np.complex64)), "unsupported MRC mode"),
        (lambda p: _write_raw(p, np.zeros((8, 8), np.float32)), "expected a 3D map"),
    ],
)
def test_bad_maps_get_one_clear_message(tmp_path, make, message):
    path = make(tmp_path / "bad.mrc")
    with pytest.raises(InputError, match=message) as err:
        read_map(path)
    assert "bad.mrc" in str(err.value)


def test_truncated_file_is_rejected(tmp_path):
    path = _write_raw(tmp_path / "t.mrc", np.ones((16, 16, 16), np.float32))
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(InputError, match="t.mrc"):
        read_map(path)


def test_bad_stacks_are_rejected(tmp_path):
    with pytest.raises(InputError, match="not square"):
        read_stack(_write_raw(tmp_path / "a.mrcs", np.zeros((3, 8, 6), np.float32)))
    data = np.zeros((3, 8, 8), np.float32)
    data[1, 2, 2] = np.inf
    with pytest.raises(InputError, match="slice 1"):
        read_stack(_write_raw(tmp_path / "b.mrcs", data))
