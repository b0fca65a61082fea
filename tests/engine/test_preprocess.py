"""Pre-processing of particle images (engine and CLI)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_cryorient.cli import main
from napari_cryorient.engine.ctf import CTFParams
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.masks import circular_mask
from napari_cryorient.engine.preprocess import PreprocessConfig, preprocess_particles
from napari_cryorient.io import read_particles


def _run(images, px, **kw):
    chunks = {}

    def sink(start, chunk):
        chunks[start] = chunk

    result = run_job(preprocess_particles(images, px, sink, **kw))
    out = np.concatenate([chunks[k] for k in sorted(chunks)])
    return out, result


def _blob(n, box, centre_xy, sigma=2.0):
    c = np.arange(box) - box // 2
    yy, xx = np.meshgrid(c, c, indexing="ij")
    img = np.exp(-((xx - centre_xy[0]) ** 2 + (yy - centre_xy[1]) ** 2) / (2 * sigma**2))
    return np.repeat(img[None], n, 0).astype(np.float32)


def test_crop_normalise_and_mask(rng):
    images = rng.normal(3.0, 2.0, size=(10, 64, 64)).astype(np.float32)
    out, res = _run(images, 1.5, config=PreprocessConfig(box=32, mask_radius_a=30.0, mask_edge_a=6.0,
                                                         chunk_size=4))
    assert out.shape == (10, 32, 32)
    assert res.box == 32 and res.pixel_size_a == pytest.approx(3.0)
    bg = circular_mask(32, 0.75 * 16) < 0.5
    inside = circular_mask(32, 30.0 / 3.0) > 0.99
    unmasked, _ = _run(images, 1.5, config=PreprocessConfig(box=32))
    np.testing.assert_allclose(unmasked[:, bg.numpy()].mean(1), 0.0, atol=1e-5)
    np.testing.assert_allclose(unmasked[:, bg.numpy()].std(1), 1.0, rtol=1e-3)
    assert np.all(out[:, 0, 0] == 0) and np.all(out[:, -1, -1] == 0)
    np.testing.assert_allclose(out[:, inside.numpy()], unmasked[:, inside.numpy()], atol=1e-6)


def test_recentre_moves_particles_by_their_origins():
    px = 2.0
    images = _blob(3, 32, (5.0, -3.0))  # particle centre (x, y) = (5, -3) px
    origins_a = np.array([[-5.0, 3.0]] * 3) * px  # RELION: the origin brings it back to the centre
    out, res = _run(images, px, shifts_a=origins_a,
                    config=PreprocessConfig(recentre=True, normalise=False))
    c = np.arange(32) - 16
    w = out[0].clip(0)
    assert (w.sum(0) @ c) / w.sum() == pytest.approx(0.0, abs=0.05)
    assert (w.sum(1) @ c) / w.sum() == pytest.approx(0.0, abs=0.05)
    np.testing.assert_array_equal(res.shifts_a, 0.0)


def test_phase_flip_is_its_own_inverse_and_needs_a_ctf(rng):
    images = rng.normal(size=(4, 32, 32)).astype(np.float32)
    ctf = CTFParams.constant(4, defocus_u_a=8000.0)
    cfg = PreprocessConfig(phase_flip=True, normalise=False)
    once, res = _run(images, 2.0, ctf=ctf, config=cfg)
    twice, _ = _run(once, 2.0, ctf=ctf, config=cfg)
    assert res.phase_flipped
    assert np.abs(once - images).max() > 0.1
    np.testing.assert_allclose(twice, images, atol=1e-4)
    with pytest.raises(ValueError, match="CTF"):
        _run(images, 2.0, config=cfg)


@pytest.mark.parametrize(("config", "message"), [
    (PreprocessConfig(box=64), "between 8"),
    (PreprocessConfig(box=15), "even"),
    (PreprocessConfig(mask_radius_a=-1.0), "mask_radius_a"),
    (PreprocessConfig(background_radius_a=1000.0), "background ring is empty"),
])
def test_bad_settings_are_rejected(config, message, rng):
    with pytest.raises(ValueError, match=message):
        _run(rng.normal(size=(2, 32, 32)).astype(np.float32), 1.0, config=config)


def test_nan_images_are_rejected(rng):
    images = rng.normal(size=(3, 16, 16)).astype(np.float32)
    images[2, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _run(images, 1.0)


def test_preprocess_cli_on_real_relion31(shared_data, tmp_path):
    star = shared_data / "formats" / "relion31" / "relion31.star"
    out = tmp_path / "prep"
    assert main(["preprocess", "--star", str(star), "--out", str(out), "--box", "64", "--recentre"]) == 0
    before, after = read_particles(star), read_particles(out / "particles.star")
    assert len(after) == len(before)
    assert after.pixel_size == pytest.approx(before.pixel_size * before.images().box / 64)
    np.testing.assert_array_equal(after.shifts_a(), 0.0)
    np.testing.assert_allclose(after.rotations(), before.rotations(), atol=1e-5)
    assert after.images()[:].shape == (len(before), 64, 64)
    # a user error: exit 2 and nothing written
    bad = tmp_path / "bad"
    assert main(["preprocess", "--star", str(star), "--out", str(bad), "--box", "999"]) == 2
    assert not (bad / "particles.star").exists()
