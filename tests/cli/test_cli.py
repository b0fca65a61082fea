"""The cryorient command line, run in-process; checks files written and exit codes."""

import json
import subprocess
import sys

import mrcfile
import numpy as np
import pandas as pd
import pytest
import starfile

from napari_cryorient.cli import main
from napari_cryorient.io import read_map, read_particles, read_stack


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    code = main(["simulate", "--sample", "pseudo-protein", "--n", "300", "--box", "32",
                 "--pixel-size", "4", "--shifts-A", "3", "--ctf", "--seed", "2",
                 "--out", str(out)])
    assert code == 0
    return out


def test_simulate_writes_stack_star_map_and_metadata(sim_dir):
    assert sorted(p.name for p in sim_dir.iterdir()) == [
        "particles.mrcs", "particles.star", "simulation.json", "volume.mrc"]
    stack = read_stack(sim_dir / "particles.mrcs")
    assert stack.data.shape == (300, 32, 32) and stack.pixel_size_a == pytest.approx(4.0)
    t = read_particles(sim_dir / "particles.star")
    assert len(t) == 300 and t.ctf() is not None and np.abs(t.shifts_a()).max() > 0
    info = json.loads((sim_dir / "simulation.json").read_text())
    assert info["n_particles"] == 300 and info["snr_db"] is None


def test_project_reproduces_the_clean_simulation(sim_dir, tmp_path):
    """relion_project semantics: the STAR's angles, origins (and CTF) give the same images."""
    out = tmp_path / "proj.mrcs"
    assert main(["project", "--volume", str(sim_dir / "volume.mrc"), "--star",
                 str(sim_dir / "particles.star"), "--ctf", "--out", str(out)]) == 0
    ours = read_stack(out).data
    original = read_stack(sim_dir / "particles.mrcs").data
    np.testing.assert_allclose(ours, original, atol=1e-3 * np.abs(original).max())
    t = read_particles(out.with_suffix(".star"))
    assert t.images().shape == (300, 32, 32)


def test_reconstruct_with_half_maps_and_fsc(sim_dir, tmp_path):
    out = tmp_path / "rec.mrc"
    assert main(["reconstruct", "--star", str(sim_dir / "particles.star"), "--half-maps",
                 "--ctf-correction", "wiener", "--out", str(out)]) == 0
    for name in ("rec.mrc", "rec_half1.mrc", "rec_half2.mrc", "rec_halves_fsc.json"):
        assert (tmp_path / name).exists()
    assert read_map(out).voxel_size_a == pytest.approx(4.0)
    js, png = tmp_path / "f.json", tmp_path / "f.png"
    assert main(["fsc", str(out), str(sim_dir / "volume.mrc"), "--json", str(js),
                 "--png", str(png)]) == 0
    curve = json.loads(js.read_text())
    assert curve["resolution_05_a"] < 16.0  # 8 Å is Nyquist at 4 Å/px
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_user_errors_exit_2_with_one_message_and_no_output(sim_dir, tmp_path, capsys):
    nonsquare = tmp_path / "ns.mrc"
    with mrcfile.new(nonsquare) as m:
        m.set_data(np.zeros((8, 8, 6), np.float32))
    nan_map = tmp_path / "nan.mrc"
    with mrcfile.new(nan_map) as m:
        m.set_data(np.full((8, 8, 8), np.nan, np.float32))
    star = starfile.read(sim_dir / "particles.star")
    noangles = tmp_path / "noangles.star"
    starfile.write({"optics": star["optics"],
                    "particles": star["particles"].drop(columns=["rlnAngleRot"])}, noangles)
    toomany = tmp_path / "toomany.star"
    p = star["particles"].copy()
    p["rlnImageName"] = [f"{i + 1}@{sim_dir / 'particles.mrcs'}" for i in range(len(p))]
    p.loc[len(p) - 1, "rlnImageName"] = f"999@{sim_dir / 'particles.mrcs'}"
    starfile.write({"optics": star["optics"], "particles": p}, toomany)
    missing = tmp_path / "missing.star"
    p2 = p.copy()
    p2["rlnImageName"] = "1@gone.mrcs"
    starfile.write({"optics": star["optics"], "particles": p2}, missing)

    cases = [
        (["simulate", "--volume", str(nonsquare), "--n", "5", "--out", str(tmp_path / "o1")], "not cubic"),
        (["simulate", "--volume", str(nan_map), "--n", "5", "--out", str(tmp_path / "o2")], "NaN"),
        (["simulate", "--volume", str(tmp_path), "--n", "5", "--out", str(tmp_path / "o3")], "directory"),
        (["simulate", "--sample", "pseudo-protein", "--n", "0", "--out", str(tmp_path / "o4")], "--n"),
        (["reconstruct", "--star", str(noangles), "--out", str(tmp_path / "r1.mrc")], "rlnAngleRot"),
        (["reconstruct", "--star", str(toomany), "--out", str(tmp_path / "r2.mrc")], "out of range"),
        (["reconstruct", "--star", str(missing), "--out", str(tmp_path / "r3.mrc")], "does not exist"),
        (["project", "--volume", str(nonsquare), "--star", str(sim_dir / "particles.star"),
          "--out", str(tmp_path / "p.mrcs")], "not cubic"),
        (["fsc", str(sim_dir / "volume.mrc"), str(tmp_path / "nothing.mrc")], "does not exist"),
    ]
    before = sorted(x.name for x in tmp_path.iterdir())
    for argv, message in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, err
    after = sorted(x.name for x in tmp_path.iterdir())
    assert after == before  # nothing written, not even an empty output folder


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "napari_cryorient.cli", "--help"],
                         capture_output=True, text=True, check=True)
    for cmd in ("simulate", "project", "reconstruct", "fsc"):
        assert cmd in out.stdout


def test_engine_and_io_import_without_qt():
    code = ("import sys, napari_cryorient.engine, napari_cryorient.io, napari_cryorient.cli;"
            "bad=[m for m in sys.modules if m.split('.')[0] in ('napari','qtpy','PyQt5','PySide6','PyQt6')];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_star_read_back_by_starfile_follows_relion_columns(sim_dir):
    raw = starfile.read(sim_dir / "particles.star")
    cols = set(raw["particles"].columns)
    assert {"rlnImageName", "rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi", "rlnOriginXAngst",
            "rlnOriginYAngst", "rlnOpticsGroup", "rlnDefocusU", "rlnDefocusV",
            "rlnDefocusAngle"} <= cols
    assert {"rlnImagePixelSize", "rlnImageSize", "rlnVoltage", "rlnSphericalAberration",
            "rlnAmplitudeContrast"} <= set(raw["optics"].columns)
    assert isinstance(raw["particles"], pd.DataFrame)
