import numpy as np
import pandas as pd
import pytest
import starfile

from napari_cryorient.engine import so3
from napari_cryorient.engine.ctf import CTFParams
from napari_cryorient.io import InputError, StackWriter, read_particles, write_particles


def test_relion31_with_optics_block(shared_data):
    t = read_particles(shared_data / "formats/relion31/relion31.star")
    assert len(t) == 5 and t.optics is not None
    assert t.pixel_size == pytest.approx(2.806)
    raw = starfile.read(shared_data / "formats/relion31/relion31.star")["particles"]
    euler = raw[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]].to_numpy()
    np.testing.assert_allclose(t.rotations(), so3.euler_relion_to_matrix(euler))
    np.testing.assert_allclose(t.shifts_a(), raw[["rlnOriginXAngst", "rlnOriginYAngst"]].to_numpy())
    ctf = t.ctf()
    assert ctf is not None and np.all(ctf.voltage_kv == 300.0)


def test_six_optics_groups_keep_their_pixel_sizes(shared_data):
    t = read_particles(shared_data / "formats/relion31/relion31.6opticsgroups.star")
    groups = t.particles["rlnOpticsGroup"].to_numpy()
    optics = t.optics.set_index("rlnOpticsGroup")["rlnImagePixelSize"]
    np.testing.assert_allclose(t.pixel_size_a, optics.loc[groups].to_numpy())
    with pytest.raises(InputError, match="different pixel sizes"):
        _ = t.pixel_size


def test_relion30_file_with_images(shared_data):
    t = read_particles(shared_data / "formats/empiar_10076_7/empiar_10076_7.star")
    assert t.optics is None
    assert t.pixel_size == pytest.approx(5 * 1e4 / 38168)
    images = t.images()
    assert images.shape == (7, 320, 320)
    assert np.isfinite(images[0:7]).all()
    np.testing.assert_allclose(t.ctf().defocus_u_a[:2], [15301.1, 15303.0])
    with pytest.raises(InputError, match="missing column"):
        t.rotations()


def test_write_read_round_trip(tmp_path, rng):
    n, box = 6, 16
    rot = so3.sample_uniform_so3(n, rng)
    shifts = rng.uniform(-5, 5, (n, 2))
    ctf = CTFParams.constant(n, 12000, 11000, 30.0)
    with StackWriter(tmp_path / "imgs" / "p.mrcs", n, box, 1.7) as w:
        w(0, rng.standard_normal((n, box, box)).astype(np.float32))
    path = write_particles(tmp_path / "p.star", rot, 1.7, box, stack=tmp_path / "imgs" / "p.mrcs",
                           shifts_a=shifts, ctf=ctf)
    raw = starfile.read(path)
    assert set(raw) == {"optics", "particles"}
    assert raw["optics"]["rlnImagePixelSize"].iloc[0] == pytest.approx(1.7)
    assert raw["particles"]["rlnImageName"].iloc[0] == "000001@imgs/p.mrcs"
    t = read_particles(path)
    np.testing.assert_allclose(t.rotations(), rot, atol=1e-5)
    np.testing.assert_allclose(t.shifts_a(), shifts, atol=1e-5)
    np.testing.assert_allclose(t.ctf().defocus_angle_deg, 30.0)
    assert t.images().shape == (n, box, box)


def test_template_keeps_untouched_columns(tmp_path, shared_data):
    t = read_particles(shared_data / "formats/relion31/relion31.6opticsgroups.star")
    new_rot = so3.sample_orientations(len(t), seed=1)
    path = write_particles(tmp_path / "out.star", new_rot, 1.0, 196, template=t)
    raw = starfile.read(path)
    src = starfile.read(shared_data / "formats/relion31/relion31.6opticsgroups.star")
    pd.testing.assert_frame_equal(raw["optics"], src["optics"])
    for col in ("rlnMicrographName", "rlnCoordinateX", "rlnClassNumber", "rlnOpticsGroup"):
        assert (raw["particles"][col].to_numpy() == src["particles"][col].to_numpy()).all()
    np.testing.assert_allclose(read_particles(path).rotations(), new_rot, atol=1e-5)


def _star(tmp_path, rows: dict, name="x.star"):
    path = tmp_path / name
    starfile.write({"particles": pd.DataFrame(rows)}, path)
    return path


def test_star_errors_name_the_file_and_problem(tmp_path):
    with StackWriter(tmp_path / "s.mrcs", 2, 8, 1.0) as w:
        w(0, np.zeros((2, 8, 8), np.float32))
    out_of_range = _star(tmp_path, {"rlnImageName": ["1@s.mrcs", "3@s.mrcs"],
                                    "rlnAngleRot": [0.0, 1.0]}, "range.star")
    with pytest.raises(InputError, match="index 3 is out of range"):
        read_particles(out_of_range).images()
    missing = _star(tmp_path, {"rlnImageName": ["1@nothere.mrcs"]}, "missing.star")
    with pytest.raises(InputError, match="does not exist"):
        read_particles(missing).images()
    no_names = _star(tmp_path, {"rlnAngleRot": [1.0]}, "nonames.star")
    with pytest.raises(InputError, match="rlnImageName"):
        read_particles(no_names).images()
    (tmp_path / "empty.star").write_text("")
    with pytest.raises(InputError, match="empty"):
        read_particles(tmp_path / "empty.star")
    (tmp_path / "bin.star").write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(InputError, match="bin.star"):
        read_particles(tmp_path / "bin.star")
    with pytest.raises(InputError, match="directory"):
        read_particles(tmp_path)
