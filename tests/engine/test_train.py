import io

import numpy as np
import pytest
import torch

from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.siamese import EncoderConfig, SiameseNet
from napari_cryorient.engine.simulate import SimulationConfig, simulate_particles
from napari_cryorient.engine.train import (
    DistanceTrainer,
    TrainConfig,
    compute_features,
    evaluate_distances,
    prepare_training_data,
)

TINY = EncoderConfig(working_box=16, channels=(8, 16), feature_dim=8)


@pytest.fixture(scope="module")
def data(small_map):
    sim = run_job(simulate_particles(small_map, 4.0, SimulationConfig(n_particles=80, seed=1)))
    noise_var = np.full(80, 0.5 * sim.images.var())
    return prepare_training_data(sim.images, sim.rotations, 16, noise_variance=noise_var)


def _config(**kw):
    base = dict(encoder=TINY, epochs=2, steps_per_epoch=3, anchors_per_batch=6,
                val_fraction=0.2, val_pairs=200, device="cpu", seed=4)
    base.update(kw)
    return TrainConfig(**base)


def test_training_emits_events_and_validates_each_epoch(data):
    trainer = DistanceTrainer(data, _config())
    events = list(trainer.run())
    assert [e.data["step"] for e in events] == [1, 2, 3, 4, 5, 6]
    for key in ("epoch", "train_loss", "pairs_per_s", "eta_s"):
        assert all(key in e.data for e in events)
    ends = [e for e in events if "val_loss" in e.data]
    assert [e.data["step"] for e in ends] == [3, 6]
    assert len(trainer.history) == 2
    ev = ends[-1].data["evaluation"]
    assert ev.histogram.sum() == len(trainer.val_true)


def test_stop_and_resume_equals_an_uninterrupted_run(data):
    full = DistanceTrainer(data, _config())
    run_job(full.run())

    first = DistanceTrainer(data, _config())
    job = first.run()
    for _ in range(4):  # stop in the middle of the second epoch
        next(job)
    job.close()
    buffer = io.BytesIO()
    torch.save(first.checkpoint(), buffer)
    buffer.seek(0)
    resumed = DistanceTrainer.from_checkpoint(torch.load(buffer, weights_only=True), data)
    assert resumed.step == 4
    run_job(resumed.run())

    for key, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert resumed.history == full.history


def test_fresh_noise_is_drawn_for_simulated_data(data):
    # the training set's global statistics, so that the noise can be read back
    trainer = DistanceTrainer(data, _config(augment_inplane=False, per_image_norm=False))
    mean, std = trainer.norm
    x1, idx1, _ = trainer._batch()
    x2, idx2, _ = trainer._batch()
    clean = torch.as_tensor(data.images)
    noise1 = x1 * std + mean - clean[idx1]
    noise2 = x2 * std + mean - clean[idx2]
    expected = float(np.mean(data.noise_std))
    centre = (slice(None), slice(5, 11), slice(5, 11))  # inside the mask
    noise1, noise2 = noise1[centre], noise2[centre]
    assert float(noise1.std()) == pytest.approx(expected, rel=0.15)
    common = np.intersect1d(idx1.numpy(), idx2.numpy())
    if len(common):
        a = noise1[np.flatnonzero(idx1.numpy() == common[0])[0]]
        b = noise2[np.flatnonzero(idx2.numpy() == common[0])[0]]
        assert not torch.allclose(a, b)


def test_the_noise_warmup_starts_quieter_and_ends_at_the_data_noise(data):
    trainer = DistanceTrainer(data, _config(augment_inplane=False, per_image_norm=False,
                                            noise_warmup_db=10.0, noise_warmup_fraction=0.5))
    mean, std = trainer.norm
    clean = torch.as_tensor(data.images)
    expected = float(np.mean(data.noise_std))
    centre = (slice(None), slice(5, 11), slice(5, 11))

    def noise_level() -> float:
        x, idx, _ = trainer._batch()
        return float((x * std + mean - clean[idx])[centre].std())

    assert noise_level() == pytest.approx(expected * 10 ** (-10 / 20), rel=0.15)  # 10 dB less noise
    trainer.step = trainer.total_steps // 2  # the warm-up is over half-way
    assert noise_level() == pytest.approx(expected, rel=0.15)
    with pytest.raises(ValueError, match="noise_warmup"):
        DistanceTrainer(data, _config(noise_warmup_db=-3.0))


def test_checkpoint_from_another_box_is_rejected(data, small_map):
    trainer = DistanceTrainer(data, _config())
    ckpt = trainer.checkpoint()
    ckpt["original_box"] = 64
    with pytest.raises(ValueError, match="trained on 64 px"):
        DistanceTrainer.from_checkpoint(ckpt, data)


def test_resume_tolerates_last_bit_differences_but_not_other_images(data):
    """Preparing the same stack with another thread count changes the last bits of the
    images: a resume must accept that and still refuse other images with the same poses."""
    from dataclasses import replace

    ckpt = DistanceTrainer(data, _config()).checkpoint()
    jittered = replace(data, images=data.images * np.float32(1 + 1e-6))
    DistanceTrainer.from_checkpoint(ckpt, jittered)  # accepted
    others = replace(data, images=np.ascontiguousarray(data.images[:, ::-1]) * np.float32(1.5))
    with pytest.raises(ValueError, match="not the ones the model was trained on"):
        DistanceTrainer.from_checkpoint(ckpt, others)


def test_features_have_the_configured_size(data):
    f = compute_features(SiameseNet(TINY), data.images, (0.0, 1.0))
    assert f.shape == (len(data), TINY.feature_dim)


def test_evaluation_of_perfect_predictions():
    t = np.random.default_rng(0).uniform(0, np.pi, 1000)
    ev = evaluate_distances(t, t)
    assert ev.mae_deg == 0 and ev.pearson_r == pytest.approx(1.0)
    assert np.trace(ev.histogram) == 1000


def test_bad_training_settings_are_rejected(data):
    with pytest.raises(ValueError, match="too few"):
        DistanceTrainer(data, _config(val_fraction=0.01))
    with pytest.raises(ValueError, match="larger than the images"):
        prepare_training_data(data.images, np.repeat(np.eye(3)[None], len(data), 0), 64)


def test_inplane_augmentation_matches_the_pose_update(small_map, rng):
    """Rotating a projection by alpha equals projecting with Rz(alpha) R."""
    from napari_cryorient.engine import so3
    from napari_cryorient.engine.augment import rotate_images as _rotate_images
    from napari_cryorient.engine.projector import FourierProjector

    r = so3.sample_uniform_so3(3, rng)
    alpha = torch.tensor([0.3, 1.2, -2.0])
    p = FourierProjector(small_map)
    rotated = _rotate_images(p.project(torch.from_numpy(r)), alpha)
    q = torch.as_tensor(so3.matrix_to_quaternion(r), dtype=torch.float32)
    qz = torch.stack([torch.cos(alpha / 2), 0 * alpha, 0 * alpha, torch.sin(alpha / 2)], -1)
    expected = p.project(torch.from_numpy(so3.quaternion_to_matrix(so3.quaternion_multiply(qz, q).numpy())))
    inner = (slice(None), slice(6, -6), slice(6, -6))  # corners are cut by the rotation
    a, b = rotated[inner].numpy(), expected[inner].numpy()
    rel = np.linalg.norm(a - b) / np.linalg.norm(b)
    assert rel < 0.1, rel


def test_a_too_small_validation_fraction_says_what_to_set():
    from napari_cryorient.engine.train import TrainConfig

    with pytest.raises(ValueError, match="holds out 1 of 120; .*raise it to 0.029"):
        TrainConfig(val_fraction=0.01).validate(120)
