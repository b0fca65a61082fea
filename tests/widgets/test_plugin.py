"""Manifest, reader, writers and sample data through a real viewer."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from napari_cryorient.engine import so3
from napari_cryorient.io import read_map, read_particles


def test_manifest_validates_with_imports():
    out = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-cryorient", "--imports"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_reader_sets_voxel_size_and_reads_star_poses(make_napari_viewer, shared_data):
    viewer = make_napari_viewer()
    layers = viewer.open(shared_data / "volumes" / "hand-vol.mrc", plugin="napari-cryorient")
    assert layers[0].data.shape == (64, 64, 64)
    np.testing.assert_allclose(layers[0].scale, [1.0, 1.0, 1.0])
    star = shared_data / "formats" / "relion31" / "relion31.star"
    layers = viewer.open(star, plugin="napari-cryorient")
    stack, poses = layers
    assert stack.data.shape[0] == 5 and stack.scale[-1] == pytest.approx(2.806)
    np.testing.assert_allclose(
        so3.euler_relion_to_matrix(poses.features[["rot", "tilt", "psi"]].to_numpy()),
        read_particles(star).rotations(),
        atol=1e-6,
    )


def test_reader_error_is_reported_not_raised_by_get_reader(tmp_path):
    from napari_cryorient.plugin.reader import napari_get_reader

    assert napari_get_reader(str(tmp_path / "x.tif")) is None
    reader = napari_get_reader(str(tmp_path / "missing.mrc"))
    with pytest.raises(Exception, match="does not exist"):
        reader(str(tmp_path / "missing.mrc"))


def test_samples_and_writers_round_trip(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    (vol,) = viewer.open_sample("napari-cryorient", "pseudo-protein")
    viewer.layers.selection = {vol}
    viewer.layers.save(str(tmp_path / "map.mrc"), selected=True, plugin="napari-cryorient")
    m = read_map(tmp_path / "map.mrc")
    assert m.voxel_size_a == pytest.approx(2.0)
    np.testing.assert_allclose(m.data, vol.data, atol=1e-6)
    stack, poses = viewer.open_sample("napari-cryorient", "particles")
    assert stack.data.shape == (500, 1, 64, 64)
    viewer.layers.selection = {poses}
    viewer.layers.save(str(tmp_path / "poses.star"), selected=True, plugin="napari-cryorient")
    back = read_particles(tmp_path / "poses.star")
    rot = so3.euler_relion_to_matrix(poses.features[["rot", "tilt", "psi"]].to_numpy())
    assert np.max(so3.relative_angle_deg(back.rotations(), rot)) < 1e-3
    assert back.pixel_size == pytest.approx(2.0)


def test_gui_opens_with_every_widget_docked_and_the_sample(qtbot):
    from napari_cryorient.cli.gui import WIDGETS, open_viewer

    viewer = open_viewer(show=False, sample=True)
    try:
        docked = set(viewer.window.dock_widgets)
        assert {f"{name} (napari-cryorient)" for name in WIDGETS} <= docked
        assert viewer.layers[0].data.shape == (64, 64, 64)
    finally:
        viewer.close()


def test_a_star_pose_layer_saved_as_star_names_its_images_box_and_ctf(make_napari_viewer, shared_data,
                                                                        tmp_path):
    from napari_cryorient.io.particles import read_particle_set

    star = shared_data / "formats" / "relion31" / "relion31.star"
    viewer = make_napari_viewer()
    viewer.open(star, plugin="napari-cryorient")
    poses = viewer.layers["relion31 poses"]
    viewer.layers.selection = {poses}
    out = tmp_path / "sub" / "poses.star"
    out.parent.mkdir()
    viewer.layers.save(str(out), selected=True, plugin="napari-cryorient")
    back, original = read_particle_set(out), read_particle_set(star)
    assert int(read_particles(out).optics["rlnImageSize"].iloc[0]) == original.box
    np.testing.assert_array_equal(back.images[:], original.images[:])
    assert np.max(so3.relative_angle_deg(back.rotations, original.rotations)) < 1e-3
    np.testing.assert_allclose(back.ctf.defocus_u_a, original.ctf.defocus_u_a)
