"""Local projection-matching refinement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_cryorient.engine import so3
from napari_cryorient.engine.jobs import Progress, run_job
from napari_cryorient.engine.matching import SliceMatcher, local_search, pose_scores
from napari_cryorient.engine.projector import FourierProjector
from napari_cryorient.engine.refine import (
    RefineConfig,
    local_rotation_grid,
    reference_band_box,
    refine_orientations,
)
from napari_cryorient.engine.simulate import SimulationConfig, project_particles, simulate_particles
from napari_cryorient.engine.volumes import make_sample_volume


@pytest.fixture(scope="module")
def volume():
    return make_sample_volume("pseudo-protein", 32, 4.0, 0)


def _perturb(rotations: np.ndarray, angle_deg: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=(len(rotations), 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    return so3.rotvec_to_matrix(axis * np.deg2rad(angle_deg)) @ rotations


def test_local_grid_is_a_ball_of_rotations_starting_at_identity():
    grid = local_rotation_grid(10.0, 2)
    assert grid.shape == (33, 3, 3)
    np.testing.assert_allclose(grid[0], np.eye(3), atol=1e-12)
    angles = so3.relative_angle_deg(np.eye(3)[None], grid)
    assert angles.max() == pytest.approx(10.0, abs=1e-6)
    # lattice spacing: the nearest non-identity rotations are radius / steps away
    assert np.sort(angles)[1] == pytest.approx(5.0, abs=1e-6)
    assert np.allclose(np.linalg.det(grid), 1.0)
    assert len(local_rotation_grid(10.0, 3)) == 123


def test_matcher_slices_equal_the_projector(volume):
    matcher = SliceMatcher(volume, 0.3, 2.0, torch.device("cpu"))
    rot = torch.from_numpy(so3.sample_uniform_so3(12, np.random.default_rng(3))).float()
    ours = matcher.slices(rot)
    ref = FourierProjector(volume, pad_factor=2.0).project_rfft(rot)[..., matcher.mask]
    assert torch.allclose(ours, ref, atol=1e-4 * ref.abs().max().item())


@pytest.mark.parametrize("pad_factor", [1.0, 2.0])
def test_matcher_compares_exactly_the_frequencies_up_to_its_limit(volume, pad_factor):
    # fmax is in cycles per pixel of the images: padding refines the sampling, not the band
    fmax = 0.2
    matcher = SliceMatcher(volume, fmax, pad_factor, torch.device("cpu"))
    radius = matcher._k[:, :2].norm(dim=-1)
    assert radius.max().item() <= fmax
    assert radius.max().item() > fmax - 1.0 / matcher.p
    # a half disc of radius fmax · p samples (and the other half of its centre column)
    expected = np.pi * (fmax * matcher.p) ** 2 / 2 + fmax * matcher.p
    assert abs(len(radius) / expected - 1) < 0.05


def test_matching_prefers_the_true_pose_of_a_clean_image(volume):
    rot = so3.sample_uniform_so3(6, np.random.default_rng(5))
    images = FourierProjector(volume).project(torch.from_numpy(rot).float())
    matcher = SliceMatcher(volume, 0.4, 2.0, torch.device("cpu"))
    p = matcher.p
    pad = (p - 32) // 2
    x = torch.fft.fftshift(torch.fft.rfft2(torch.fft.ifftshift(
        torch.nn.functional.pad(images, [pad] * 4), dim=(-2, -1))), dim=(-2,))
    grid = torch.from_numpy(local_rotation_grid(6.0, 2)).float()
    # the true pose among its neighbours 3° apart scores highest on a clean image
    cand = grid[None] @ torch.from_numpy(rot).float()[:, None]
    assert (matcher.scores(x, None, cand).argmax(1) == 0).all()
    # and from a start 6° off, the best candidate is within a grid step of the truth
    start = torch.from_numpy(_perturb(rot, 6.0, 1)).float()
    cand = grid[None] @ start[:, None]
    best = matcher.scores(x, None, cand).argmax(1)
    err_best = so3.relative_angle_deg(cand[torch.arange(6), best].double().numpy(), rot)
    assert (err_best < 6.0).all()


def test_local_search_climbs_back_to_the_true_pose(volume):
    """From poses 10° off, against a fixed map: the coarse then fine grid finds the pose,
    and no particle's score falls."""
    sim = run_job(simulate_particles(volume, 4.0, SimulationConfig(n_particles=40, ctf=True, snr_db=10.0,
                                                                   seed=3)))
    start = _perturb(sim.rotations, 10.0, 2)
    shifts = np.zeros((40, 2))
    events = []
    found, kept, scores = run_job(local_search(sim.images, volume, start, 4.0, shifts, sim.ctf, 8.0),
                                  events.append)
    assert (kept == shifts).all()  # no origin steps: origins kept
    before = so3.relative_angle_deg(start, sim.rotations)
    after = so3.relative_angle_deg(found, sim.rotations)
    assert np.median(after) < 2.5 and np.median(before) > 9.9
    assert np.allclose(scores, pose_scores(sim.images, volume, found, 4.0, shifts, sim.ctf, 8.0), atol=1e-4)
    assert (scores >= pose_scores(sim.images, volume, start, 4.0, shifts, sim.ctf, 8.0) - 1e-5).all()
    assert events[-1].done == events[-1].total == 80  # one unit per particle and radius


def test_local_search_moves_origins_in_its_steps(volume):
    """Particles off-centre (origins not given) and 6° off: rotation and origin found."""
    sim = run_job(simulate_particles(volume, 4.0, SimulationConfig(n_particles=30, snr_db=10.0,
                                                                   shift_std_a=6.0, seed=4)))
    start = _perturb(sim.rotations, 6.0, 5)
    err = {}
    for steps in ((), (1.0, 1.0, 0.5)):
        found, shifts, _ = run_job(local_search(sim.images, volume, start, 4.0, np.zeros((30, 2)), None, 8.0,
                                                radii_deg=(8.0, 3.0, 1.5), shift_steps_px=steps))
        err[steps] = (np.median(so3.relative_angle_deg(found, sim.rotations)),
                      np.median(np.linalg.norm(shifts - sim.shifts_a, axis=1)))
    assert err[()][0] > 8.0  # the rotation makes up for the origin: worse than the 6° start
    assert err[(1.0, 1.0, 0.5)][0] < 5.0
    assert err[(1.0, 1.0, 0.5)][1] < 2.0 < 6.0 < err[()][1]  # Å
    with pytest.raises(ValueError, match="one origin step"):
        run_job(local_search(sim.images, volume, start, 4.0, np.zeros((30, 2)), None, 8.0, shift_steps_px=(1.0,)))


@pytest.mark.parametrize("ctf", [False, True])
def test_refinement_reduces_orientation_errors(volume, ctf):
    sim = run_job(simulate_particles(volume, 4.0, SimulationConfig(
        n_particles=400, seed=2, snr_db=0.0, ctf=ctf, defocus_range_um=(0.8, 1.5),
        shift_std_a=6.0 if ctf else 0.0)))
    start = _perturb(sim.rotations, 8.0, 4)
    events = []
    result = run_job(refine_orientations(sim.images, start, 4.0, shifts_a=sim.shifts_a,
                                         ctf=sim.ctf if ctf else None,
                                         config=RefineConfig(radii_deg=(8.0, 4.0, 2.0))),
                     events.append)
    before = so3.relative_angle_deg(start, sim.rotations).mean()
    after = so3.relative_angle_deg(result.rotations, sim.rotations).mean()
    assert before == pytest.approx(8.0)
    assert after < 0.65 * before
    assert len(result.history) == 3
    assert all(isinstance(e, Progress) and e.stage == "refine" for e in events)
    assert events[-1].done == events[-1].total
    assert np.allclose(result.rotations.transpose(0, 2, 1) @ result.rotations, np.eye(3), atol=1e-6)
    assert set(np.unique(result.half_assignment)) == {0, 1}


def test_the_next_reference_band_follows_the_fsc():
    """Low resolution → a small band with room to improve; an FSC high to the edge → the
    whole box; always even."""
    shells = np.arange(33)
    falls_at_8 = np.where(shells < 8, 0.9, 0.05)
    assert reference_band_box(falls_at_8, 64) == 2 * (int(np.ceil(1.5 * 7 + 6)))
    assert reference_band_box(np.full(33, 0.9), 64) == 64
    assert reference_band_box(np.where(shells < 2, 0.9, 0.0), 64) % 2 == 0


def test_a_band_limited_refinement_ends_where_the_whole_box_does(volume):
    """The band (RELION's current size) costs less and changes the result little."""
    sim = run_job(simulate_particles(volume, 4.0, SimulationConfig(n_particles=300, seed=5, snr_db=-16.0)))
    start = _perturb(sim.rotations, 8.0, 6)
    out = {}
    for band in (True, False):
        result = run_job(refine_orientations(sim.images, start, 4.0, config=RefineConfig(
            radii_deg=(8.0, 4.0), band_limited=band)))
        out[band] = so3.relative_angle_deg(result.rotations, sim.rotations).mean()
        boxes = [h["band_box"] for h in result.history]
        assert boxes[0] == 32 and (boxes[1] < 32) == band
    assert out[True] == pytest.approx(out[False], abs=0.5)


def test_refinement_rejects_bad_input(volume):
    images = np.zeros((4, 32, 32), np.float32)
    rot = np.repeat(np.eye(3)[None], 4, 0)
    with pytest.raises(ValueError, match="images but"):
        run_job(refine_orientations(images[:3], rot, 1.0))
    with pytest.raises(ValueError, match="radius"):
        run_job(refine_orientations(images, rot, 1.0, config=RefineConfig(radii_deg=())))
    with pytest.raises(ValueError, match="radii"):
        run_job(refine_orientations(images, rot, 1.0, config=RefineConfig(radii_deg=(120.0,))))
    bad = images.copy()
    bad[1, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        run_job(refine_orientations(bad, rot, 1.0))


def test_shift_search_finds_off_centre_particles():
    """With search_shifts, origins the refinement was not told are found to about a pixel."""
    px = 4.0
    volume = make_sample_volume("pseudo-protein", box=32, pixel_size_a=px)
    sim = run_job(simulate_particles(volume, px, SimulationConfig(n_particles=200, snr_db=6.0, shift_std_a=6.0,
                                                                  seed=4)))
    config = RefineConfig(radii_deg=(4.0, 2.0, 2.0, 1.0), search_shifts=True)
    halves = np.arange(200) % 2
    result = run_job(refine_orientations(sim.images, sim.rotations, px, config=config, halves=halves))
    before = np.linalg.norm(sim.shifts_a, axis=1).mean() / px
    after = np.linalg.norm(result.shifts_a - sim.shifts_a, axis=1).mean() / px
    assert after < 0.5 * before, (before, after)
    assert np.array_equal(result.half_assignment, halves)
    assert result.scores.shape == (200,) and np.isfinite(result.scores).all()


def test_first_iteration_reaches_the_whole_shift_range():
    """Origins up to 3.5 px off: one iteration searches ±4 px (not ±1 step), also when the
    step is halved under 6°, and moves the origins most of the way."""
    px = 4.0
    volume = make_sample_volume("pseudo-protein", box=32, pixel_size_a=px)
    sim = run_job(simulate_particles(volume, px, SimulationConfig(n_particles=60, snr_db=10.0, seed=5)))
    truth = np.random.default_rng(0).uniform(-3.5, 3.5, (60, 2)) * px
    images = run_job(project_particles(volume, sim.rotations, px, truth)).images
    before = np.median(np.linalg.norm(truth, axis=1)) / px
    for radius in (8.0, 4.0):
        config = RefineConfig(radii_deg=(radius,), search_shifts=True, shift_range_px=4.0)
        result = run_job(refine_orientations(images, sim.rotations, px, config=config,
                                             halves=np.arange(60) % 2))
        found = result.shifts_a / px
        assert np.abs(found).max() >= 2.5, radius  # beyond one (halved) step
        err = np.median(np.linalg.norm(found - truth / px, axis=1))
        assert err < 0.6 * before, (radius, err, before)
