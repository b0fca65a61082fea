"""`cryorient ab-initio`: every output, all or nothing; bad input gives one line."""

import json

import numpy as np
import pytest

from napari_cryorient.cli import main
from napari_cryorient.io import read_map
from napari_cryorient.io.particles import read_particle_set


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    assert main(["simulate", "--sample", "pseudo-protein", "--n", "120", "--box", "32", "--pixel-size", "4",
                 "--snr-db", "0", "--ctf", "--out", str(out / "ctf")]) == 0
    assert main(["simulate", "--sample", "pseudo-protein", "--n", "30", "--box", "32", "--pixel-size", "4",
                 "--snr-db", "0", "--out", str(out / "few")]) == 0
    return out


@pytest.mark.parametrize("start", ["generalist", "soft-search"])
def test_ab_initio_writes_every_output(sim, tmp_path, start):
    out = tmp_path / "ai"
    assert main(["ab-initio", "--star", str(sim / "ctf" / "particles.star"), "--out", str(out),
                 "--preset", "quick", "--rounds", "0", "--start", start, "--device", "cpu"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["particles.star", "map.mrc", "map_half1.mrc", "map_half2.mrc", "fsc.json",
                            "rounds.json", "network_half1.pt", "network_half2.pt"])
    found = read_particle_set(out / "particles.star")
    assert found.rotations.shape == (120, 3, 3) and found.shifts_a.shape == (120, 2)
    assert found.ctf is not None and found.pixel_size_a == pytest.approx(4.0)
    assert read_map(out / "map.mrc").data.shape == (32, 32, 32)
    fsc = json.loads((out / "fsc.json").read_text())
    assert {"half_maps", "random_poses", "halves"} <= set(fsc) and len(fsc["halves"]) == 120
    rounds = json.loads((out / "rounds.json").read_text())
    assert [r["stage"] for r in rounds][-1] == "refine"
    assert all(np.isfinite(r["resolution_a"]) for r in rounds)


def test_second_chance_is_asked_for_on_the_command_line(sim, tmp_path):
    out = tmp_path / "ai"
    assert main(["ab-initio", "--star", str(sim / "ctf" / "particles.star"), "--out", str(out),
                 "--preset", "quick", "--rounds", "0", "--second-chance", "--device", "cpu"]) == 0
    rounds = json.loads((out / "rounds.json").read_text())
    assert [r["stage"] for r in rounds][-2:] == ["refine", "second chance"]


@pytest.mark.parametrize(("case", "extra", "message"), [
    ("few", ["--no-ctf"], "at least 40 particles"),
    ("few", [], "no CTF parameters"),
    ("ctf", ["--start-resolution", "-3"], "start-resolution"),
])
def test_ab_initio_bad_input_is_one_line(sim, tmp_path, capsys, case, extra, message):
    out = tmp_path / "ai"
    code = main(["ab-initio", "--star", str(sim / case / "particles.star"), "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())
