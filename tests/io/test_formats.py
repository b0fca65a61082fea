"""cryoSPARC .cs and cryoDRGN pickles: reading, writing, conversion, bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from napari_cryorient.cli import main
from napari_cryorient.engine import so3
from napari_cryorient.engine.ctf import CTFParams
from napari_cryorient.io import (
    InputError,
    StackWriter,
    read_cryodrgn_ctf,
    read_cryodrgn_poses,
    read_particle_file,
    read_particles,
    write_cryodrgn_ctf,
    write_cryodrgn_poses,
    write_particles,
)


def _cs_array(rotations, shifts_px, psize, box, stack_name, df=(15000.0, 14000.0)):
    n = len(rotations)
    dtype = [("uid", "<u8"), ("blob/path", "S64"), ("blob/idx", "<u4"), ("blob/shape", "<u4", (2,)),
             ("blob/psize_A", "<f4"), ("ctf/accel_kv", "<f4"), ("ctf/cs_mm", "<f4"),
             ("ctf/amp_contrast", "<f4"), ("ctf/df1_A", "<f4"), ("ctf/df2_A", "<f4"),
             ("ctf/df_angle_rad", "<f4"), ("ctf/phase_shift_rad", "<f4"), ("ctf/bfactor", "<f4"),
             ("alignments3D/pose", "<f4", (3,)), ("alignments3D/shift", "<f4", (2,))]
    a = np.zeros(n, dtype=dtype)
    a["uid"] = np.arange(n)
    a["blob/path"] = stack_name.encode()
    a["blob/idx"] = np.arange(n)
    a["blob/shape"] = box
    a["blob/psize_A"] = psize
    a["ctf/accel_kv"], a["ctf/cs_mm"], a["ctf/amp_contrast"] = 300.0, 2.7, 0.07
    a["ctf/df1_A"], a["ctf/df2_A"] = df
    a["ctf/df_angle_rad"] = np.deg2rad(30.0)
    # cryoSPARC stores the rotation vector of the transposed pose matrix
    a["alignments3D/pose"] = Rotation.from_matrix(np.swapaxes(rotations, 1, 2)).as_rotvec()
    a["alignments3D/shift"] = shifts_px
    return a


@pytest.fixture
def particle_set(tmp_path, rng):
    n, box, px = 12, 16, 2.5
    rot = so3.sample_uniform_so3(n, rng)
    shifts_px = rng.uniform(-3, 3, size=(n, 2))
    with StackWriter(tmp_path / "stack.mrcs", n, box, px) as w:
        w(0, rng.normal(size=(n, box, box)).astype(np.float32))
    ctf = CTFParams.constant(n, defocus_u_a=15000.0, defocus_v_a=14000.0, defocus_angle_deg=30.0,
                             amplitude_contrast=0.07)
    write_particles(tmp_path / "p.star", rot, px, box, stack=tmp_path / "stack.mrcs",
                    shifts_a=shifts_px * px, ctf=ctf)
    cs = tmp_path / "p.cs"
    with open(cs, "wb") as f:
        np.save(f, _cs_array(rot, shifts_px, px, box, "stack.mrcs"))
    return {"rot": rot, "shifts_a": shifts_px * px, "px": px, "box": box, "dir": tmp_path}


def test_cs_and_star_of_the_same_particles_agree(particle_set):
    d = particle_set["dir"]
    star, cs = read_particle_file(d / "p.star"), read_particle_file(d / "p.cs")
    np.testing.assert_array_less(so3.relative_angle_deg(star.rotations(), cs.rotations()), 0.01)
    np.testing.assert_array_less(so3.relative_angle_deg(cs.rotations(), particle_set["rot"]), 0.01)
    np.testing.assert_allclose(cs.shifts_a(), star.shifts_a(), atol=1e-4)
    assert cs.pixel_size == pytest.approx(star.pixel_size)
    a, b = cs.ctf(), star.ctf()
    np.testing.assert_allclose(a.defocus_u_a, b.defocus_u_a)
    np.testing.assert_allclose(a.defocus_angle_deg, b.defocus_angle_deg, atol=1e-4)
    np.testing.assert_array_equal(cs.images()[:], star.images()[:])


def test_real_empiar_cs_matches_its_star(shared_data):
    d = shared_data / "formats" / "empiar_10076_7"
    cs, star = read_particle_file(d / "empiar_10076_7.cs"), read_particles(d / "empiar_10076_7.star")
    assert len(cs) == len(star) == 7
    assert not cs.has_angles
    assert cs.pixel_size == pytest.approx(star.pixel_size, rel=1e-5)
    a, b = cs.ctf(), star.ctf()
    for field in ("defocus_u_a", "defocus_v_a", "defocus_angle_deg", "voltage_kv", "cs_mm",
                  "amplitude_contrast"):
        np.testing.assert_allclose(getattr(a, field), getattr(b, field), rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(cs.images()[:], star.images()[:])


def test_real_cryodrgn_pickles_round_trip_through_star(shared_data, tmp_path):
    d = shared_data / "formats" / "cryodrgn_hand"
    rot, trans = read_cryodrgn_poses(d / "hand_rot_trans.pkl")
    assert rot.shape == (100, 3, 3) and trans.shape == (100, 2)
    assert read_cryodrgn_poses(d / "hand_rot.pkl")[1] is None
    star = tmp_path / "hand.star"
    assert main(["convert", str(d / "hand_rot_trans.pkl"), str(star), "--images", str(d / "hand.mrcs")]) == 0
    table = read_particles(star)
    assert table.images().box == 64
    np.testing.assert_array_less(so3.relative_angle_deg(table.rotations(), rot), 0.01)
    back = tmp_path / "back.pkl"
    assert main(["convert", str(star), str(back)]) == 0
    rot2, trans2 = read_cryodrgn_poses(back)
    np.testing.assert_allclose(rot2, rot, atol=1e-5)
    np.testing.assert_allclose(trans2, trans, atol=1e-6)


def test_cryodrgn_writers_round_trip(tmp_path, rng):
    rot = so3.sample_uniform_so3(5, rng)
    shifts = rng.normal(size=(5, 2))
    write_cryodrgn_poses(tmp_path / "poses.pkl", rot, 32, 1.5, shifts_a=shifts)
    r, t = read_cryodrgn_poses(tmp_path / "poses.pkl")
    np.testing.assert_allclose(r, rot, atol=1e-6)
    np.testing.assert_allclose(t * 32 * 1.5, shifts, atol=1e-5)
    ctf = CTFParams.constant(5, defocus_u_a=12000.0)
    write_cryodrgn_ctf(tmp_path / "ctf.pkl", ctf, 32, 1.5)
    table = read_cryodrgn_ctf(tmp_path / "ctf.pkl")
    assert table.shape == (5, 9)
    np.testing.assert_allclose(table[:, :3], [[32, 1.5, 12000.0]] * 5)


def test_convert_cs_to_star_keeps_poses_and_finds_images(particle_set, tmp_path):
    d = particle_set["dir"]
    out = tmp_path / "sub" / "out.star"
    out.parent.mkdir()
    assert main(["convert", str(d / "p.cs"), str(out)]) == 0
    table = read_particles(out)
    assert table.particles["rlnImageName"].iloc[0].startswith("000001@../")
    np.testing.assert_array_less(so3.relative_angle_deg(table.rotations(), particle_set["rot"]), 0.01)
    np.testing.assert_allclose(table.shifts_a(), particle_set["shifts_a"], atol=1e-4)
    assert table.images().box == particle_set["box"]


def _pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f)
    return path


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("none.cs", lambda p: p, "does not exist"),
        ("empty.cs", lambda p: (p.write_bytes(b""), p)[1], "empty"),
        ("text.cs", lambda p: (p.write_text("data_\nloop_\n_rlnImageName\n"), p)[1], "not a cryoSPARC"),
        ("plain.cs", lambda p: (np.save(open(p, "wb"), np.zeros(3)), p)[1], "no named fields"),
        ("noblob.cs", lambda p: (np.save(open(p, "wb"), np.zeros(3, [("uid", "<u8")])), p)[1], "blob/path"),
        ("dir.cs", lambda p: (p.mkdir(), p)[1], "directory"),
        ("rot.pkl", lambda p: _pickle(p, np.zeros((4, 3, 2))), "shape"),
        ("nonrot.pkl", lambda p: _pickle(p, np.ones((4, 3, 3))), "not rotations"),
        ("evil.pkl", lambda p: _pickle(p, _Evil()), "refusing"),
        ("garbage.pkl", lambda p: (p.write_bytes(b"\x80\x04garbage"), p)[1], "not a cryoDRGN"),
        ("x.txt", lambda p: (p.write_text("hello"), p)[1], "unrecognised"),
    ],
)
def test_bad_particle_files_get_one_clear_message(tmp_path, name, make, message, capsys):
    path = make(tmp_path / name)
    images = tmp_path / "s.mrcs"
    with StackWriter(images, 4, 8, 1.0) as w:
        w(0, np.zeros((4, 8, 8), np.float32))
    with pytest.raises(InputError, match=message) as err:
        read_particle_file(path, images=images)
    assert name in str(err.value)
    out = tmp_path / "out.star"
    assert main(["convert", str(path), str(out), "--images", str(images)]) == 2
    assert not out.exists()
    assert "this must never run" not in capsys.readouterr().out


def test_pickle_needs_its_images_and_matching_counts(tmp_path, rng):
    poses = tmp_path / "p.pkl"
    write_cryodrgn_poses(poses, so3.sample_uniform_so3(3, rng), 8, 1.0)
    with pytest.raises(InputError, match="image stack"):
        read_particle_file(poses)
    with StackWriter(tmp_path / "s.mrcs", 4, 8, 1.0) as w:
        w(0, np.zeros((4, 8, 8), np.float32))
    with pytest.raises(InputError, match="4 images in the stack but 3 poses"):
        read_particle_file(poses, images=tmp_path / "s.mrcs")
