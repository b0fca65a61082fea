"""train / recover / evaluate / demo / benchmark from the command line (tiny settings)."""

import json

import numpy as np
import pytest
import starfile
import torch

from napari_cryorient.cli import main
from napari_cryorient.io import read_particles


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    assert main(["simulate", "--sample", "pseudo-protein", "--n", "120", "--box", "32",
                 "--pixel-size", "4", "--snr-db", "0", "--keep-clean", "--out", str(out)]) == 0
    return out


def test_simulate_keeps_clean_images_for_fresh_noise(sim):
    assert (sim / "particles_clean.mrcs").exists()
    assert np.load(sim / "noise_variance.npy").shape == (120,)


def test_train_resume_recover_evaluate(sim, tmp_path):
    model = tmp_path / "m.pt"
    assert main(["train", "--star", str(sim / "particles.star"), "--epochs", "2",
                 "--steps-per-epoch", "3", "--out", str(model)]) == 0
    ckpt = torch.load(model, weights_only=True)
    assert ckpt["step"] == 6 and ckpt["original_box"] == 32
    assert main(["train", "--star", str(sim / "particles.star"), "--epochs", "3",
                 "--steps-per-epoch", "3", "--resume", str(model), "--out", str(model)]) == 0
    assert torch.load(model, weights_only=True)["step"] == 9
    out = tmp_path / "rec.star"
    assert main(["recover", "--star", str(sim / "particles.star"), "--model", str(model),
                 "--steps", "20", "--restarts", "1", "--out", str(out)]) == 0
    rec = read_particles(out)
    assert len(rec) == 120 and rec.rotations().shape == (120, 3, 3)
    # untouched columns are kept, image names rebased to the output's folder (same files)
    src = read_particles(sim / "particles.star")
    assert list(rec.particles["rlnMicrographName"]) == list(src.particles["rlnMicrographName"]) \
        if "rlnMicrographName" in src.particles else True
    idx, paths = rec.image_locations()
    idx0, paths0 = src.image_locations()
    assert list(idx) == list(idx0) and [p.resolve() for p in paths] == [p.resolve() for p in paths0]
    js = tmp_path / "ev.json"
    assert main(["evaluate", "--star", str(out), "--truth", str(sim / "particles.star"),
                 "--json", str(js)]) == 0
    report = json.loads(js.read_text())
    assert len(report["errors_full_deg"]) == 120
    assert 0 <= report["full_alignment"]["mean_deg"] <= report["harmless_only"]["mean_deg"] + 1e-6


def test_second_chance_keeps_the_origins_unless_they_are_searched(sim, tmp_path):
    """The second chance searches origins only with --search-origins: a centred stack stays
    centred, whatever pose a particle takes."""
    model = tmp_path / "m.pt"
    assert main(["train", "--star", str(sim / "particles.star"), "--epochs", "1",
                 "--steps-per-epoch", "3", "--out", str(model)]) == 0
    moved = {}
    for flags in ([], ["--search-origins"]):
        out = tmp_path / f"rec{len(flags)}.star"
        assert main(["recover", "--star", str(sim / "particles.star"), "--model", str(model), "--steps", "20",
                     "--restarts", "1", "--preset", "quick", "--second-chance", *flags, "--out", str(out)]) == 0
        moved[bool(flags)] = np.abs(read_particles(out).shifts_a()).max()
    assert moved[False] == 0.0 < moved[True]


@pytest.mark.parametrize(("preset", "flag", "expected"), [
    ("standard", None, False), ("standard", "--second-chance", True),
    ("thorough", None, True), ("thorough", "--no-second-chance", False)])
def test_the_preset_decides_the_second_chance_and_the_flags_override_it(preset, flag, expected):
    import argparse

    from napari_cryorient.cli import recover as recover_cli

    parser = argparse.ArgumentParser()
    recover_cli.add_args(parser)
    args = parser.parse_args(["--star", "p.star", "--model", "m.pt", "--out", "o.star", "--preset", preset,
                              *([flag] if flag else [])])
    assert (recover_cli._settings(args, "cpu").reassign is not None) == expected


def test_recover_rejects_a_model_for_another_box(sim, tmp_path, capsys):
    model = tmp_path / "m.pt"
    assert main(["train", "--star", str(sim / "particles.star"), "--epochs", "1",
                 "--steps-per-epoch", "2", "--out", str(model)]) == 0
    ckpt = torch.load(model, weights_only=True)
    ckpt["original_box"] = 64
    torch.save(ckpt, model)
    capsys.readouterr()
    assert main(["recover", "--star", str(sim / "particles.star"), "--model", str(model),
                 "--out", str(tmp_path / "x.star")]) == 2
    assert "trained on 64 px" in capsys.readouterr().err
    assert not (tmp_path / "x.star").exists()


def test_model_records_pixel_size_and_normalisation_and_refuses_another_scale(sim, tmp_path, capsys):
    model = tmp_path / "m.pt"
    assert main(["train", "--star", str(sim / "particles.star"), "--epochs", "1",
                 "--steps-per-epoch", "2", "--out", str(model)]) == 0
    ckpt = torch.load(model, weights_only=True)
    assert ckpt["pixel_size_a"] == pytest.approx(4.0)
    assert ckpt["norm"] is None  # each image standardised on its own: any stack's scale works
    capsys.readouterr()
    assert main(["recover", "--star", str(sim / "particles.star"), "--model", str(model),
                 "--pixel-size", "13.1", "--out", str(tmp_path / "x.star")]) == 2
    err = capsys.readouterr().err
    assert "4 Å/px" in err and "13.1 Å/px" in err
    assert not (tmp_path / "x.star").exists()


def test_train_preset_sets_the_schedule_and_flags_override_it(sim, tmp_path):
    from napari_cryorient.engine.train import TrainConfig
    from napari_cryorient.method.presets import METHOD_PRESETS

    model = tmp_path / "m.pt"
    assert main(["train", "--star", str(sim / "particles.star"), "--preset", "standard", "--epochs", "2",
                 "--steps-per-epoch", "2", "--out", str(model)]) == 0
    config = torch.load(model, weights_only=True)["config"]
    standard = METHOD_PRESETS["standard"].train
    assert standard.patience != TrainConfig().patience  # so that the check below means something
    assert config["epochs"] == 2 and config["patience"] == standard.patience


def test_method_cli_bad_input(sim, tmp_path, capsys):
    star = starfile.read(sim / "particles.star")
    star["particles"]["rlnImageName"] = [
        f"{i + 1}@{sim / 'particles.mrcs'}" for i in range(len(star["particles"]))]
    noimg = tmp_path / "noimg.star"
    starfile.write({"optics": star["optics"], "particles": star["particles"].drop(columns=["rlnImageName"])}, noimg)
    few = tmp_path / "few.star"
    starfile.write({"optics": star["optics"], "particles": star["particles"].iloc[:2]}, few)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model")
    model = tmp_path / "m.pt"
    main(["train", "--star", str(sim / "particles.star"), "--epochs", "1", "--steps-per-epoch", "1",
          "--out", str(model)])
    cases = [
        (["train", "--star", str(noimg), "--out", str(tmp_path / "a.pt")], "rlnImageName"),
        (["train", "--star", str(few), "--out", str(tmp_path / "b.pt")], "too few"),
        (["recover", "--star", str(few), "--model", str(model), "--out", str(tmp_path / "c.star")], "at least 3"),
        (["recover", "--star", str(sim / "particles.star"), "--model", str(garbage),
          "--out", str(tmp_path / "d.star")], "not a model checkpoint"),
        (["evaluate", "--star", str(few), "--truth", str(sim / "particles.star")], "particles but"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err


def test_benchmark_recovery_exact(tmp_path):
    js = tmp_path / "b.json"
    assert main(["benchmark", "recovery", "--n", "200", "--exact", "--steps", "50", "--json", str(js)]) == 0
    report = json.loads(js.read_text())
    assert report["error_mean_deg"] < 1.0


def test_demo_writes_every_output(tmp_path, monkeypatch):

    from napari_cryorient import method as pipeline
    from napari_cryorient.engine.recover import RecoveryConfig
    from napari_cryorient.engine.siamese import EncoderConfig
    from napari_cryorient.engine.train import TrainConfig

    tiny = pipeline.DemoConfig(
        n_particles=150, box=32, pixel_size_a=4.0, snr_db=0.0,
        train=TrainConfig(encoder=EncoderConfig(working_box=16, channels=(8, 16)), epochs=2,
                          steps_per_epoch=3, anchors_per_batch=8, val_pairs=500),
        recovery=RecoveryConfig(n_steps=20, n_restarts=1, landmarks=150),
    )
    monkeypatch.setattr(pipeline.DemoConfig, "quick", classmethod(lambda cls, **kw: tiny))
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--device", "cpu"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("distance_mae_deg", "orientation_error_mean_deg", "orientation_error_median_deg",
                "fsc_resolution_recovered_A", "fsc_resolution_true_A", "timings_s"):
        assert key in metrics
    assert set(metrics["timings_s"]) >= {"simulate", "train", "recover", "resolve", "reconstruct"}
    for name in ("model.pt", "particles_true.star", "recovered.star", "aligned.star",
                 "volume_truth.mrc", "reconstruction_true_poses.mrc", "reconstruction_recovered.mrc",
                 "loss_curves.png", "distances.png", "orientation_errors.png", "fsc.png"):
        assert (out / name).exists(), name
    assert len(read_particles(out / "recovered.star")) == 150
