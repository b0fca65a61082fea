import itertools

import numpy as np
import pytest
import torch

from napari_cryorient.engine import recover as recover_module
from napari_cryorient.engine import so3
from napari_cryorient.engine.align import align_to_reference
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.recover import (
    ExactDistances,
    FeatureDistances,
    RecoveryConfig,
    recover_orientations,
    spectral_initialisation,
)


@pytest.fixture(scope="module")
def truth():
    return so3.matrix_to_quaternion(so3.sample_orientations(400, seed=3))


def test_spectral_initialisation_is_exact_for_exact_distances(truth):
    q0 = spectral_initialisation(ExactDistances(truth), landmarks=200, seed=1)
    assert align_to_reference(q0, truth, refine_steps=0).mean_deg < 0.1


def test_the_rounding_on_a_subset_of_rows_serves_every_particle(truth, monkeypatch):
    """Above ``ROUNDING_ROWS`` particles the rounding's 9 × 9 factor is found on a subset;
    every particle still gets its exact pose."""
    monkeypatch.setattr(recover_module, "ROUNDING_ROWS", 50)
    q0 = spectral_initialisation(ExactDistances(truth), landmarks=200, seed=1)
    assert len(q0) == len(truth)
    assert align_to_reference(q0, truth, refine_steps=0).mean_deg < 0.1


def test_recovery_from_exact_distances_reaches_below_one_degree(truth):
    cfg = RecoveryConfig(n_steps=200, n_restarts=1, landmarks=200)
    res = run_job(recover_orientations(ExactDistances(truth), cfg))
    assert align_to_reference(res.quaternions, truth).mean_deg < 1.0
    assert res.loss < 1e-4


def test_refinement_repairs_a_perturbed_start(truth, rng):
    noise = so3.matrix_to_quaternion(so3.rotvec_to_matrix(rng.normal(0, np.deg2rad(8), (len(truth), 3))))
    start = so3.quaternion_multiply(truth, noise)
    assert align_to_reference(start, truth).mean_deg > 8
    cfg = RecoveryConfig(n_steps=600, n_restarts=1, lr=0.005)
    res = run_job(recover_orientations(ExactDistances(truth), cfg, initial=start))
    assert align_to_reference(res.quaternions, truth).mean_deg < 1.0


def test_feature_distances_of_quaternion_features_are_exact(truth):
    f = FeatureDistances(truth * 3.0)  # the scale of features does not matter
    i, j = np.arange(10), np.arange(10, 20)
    np.testing.assert_allclose(f.pairs(i, j), ExactDistances(truth).pairs(i, j), atol=1e-6)


def _drain(job):
    events = []
    return events, run_job(job, events.append)


@pytest.mark.parametrize("screen", [1, 4])
def test_recovery_reports_progress_and_keeps_the_best_restart(truth, screen):
    # a small batch: the progress bookkeeping does not depend on it
    config = RecoveryConfig(n_steps=150, n_restarts=2, landmarks=60, screen_candidates=screen, screen_steps=30,
                            batch_pairs=1024)
    events, result = _drain(recover_orientations(ExactDistances(truth[:60]), config))
    expected = 2 * (150 + (4 * 30 if screen > 1 else 0))
    assert events[-1].done == events[-1].total == expected
    assert all(a.done <= b.done for a, b in itertools.pairwise(events))
    assert all("loss" in e.data for e in events)
    assert result.loss == pytest.approx(min(result.loss, result.history[-1]), abs=1e-6)


def test_screening_keeps_the_start_that_refines_best(rng):
    # noisy distances: several distinct roundings, each screened; the winner's loss after
    # the full run is no worse than refining the lowest-loss rounding alone
    q = so3.matrix_to_quaternion(so3.sample_orientations(300, "preferred", seed=2))
    features = np.concatenate([q, np.zeros((300, 4))], 1) + 0.08 * rng.standard_normal((300, 8))
    oracle = FeatureDistances(features)
    common = dict(n_steps=150, n_restarts=1, landmarks=300, seed=0)
    _, plain = _drain(recover_orientations(oracle, RecoveryConfig(screen_candidates=1, **common)))
    _, screened = _drain(recover_orientations(oracle, RecoveryConfig(screen_candidates=6, screen_steps=40,
                                                                     **common)))
    assert screened.loss <= plain.loss + 1e-3


def test_too_few_particles_is_a_clear_error(truth):
    with pytest.raises(ValueError, match="at least 3"):
        run_job(recover_orientations(ExactDistances(truth[:2])))


@pytest.mark.parametrize("n", [3, 7, 8])
def test_fewer_particles_than_the_spectral_start_needs_still_recover(truth, n):
    """Below 9 particles the rank-9 spectral start cannot exist: recovery starts from
    random poses instead of failing with a shape error (7 real particles did)."""
    result = run_job(recover_orientations(ExactDistances(truth[:n]), RecoveryConfig(n_steps=300, n_restarts=3)))
    assert result.quaternions.shape == (n, 4) and np.isfinite(result.loss)
    with pytest.raises(ValueError, match="at least 9 particles"):
        spectral_initialisation(ExactDistances(truth[:n]))


def test_feature_distances_dense_cache_matches_on_demand_pairs(rng):
    features = rng.standard_normal((300, 24))
    dense = FeatureDistances(features)
    streamed = FeatureDistances(features, dense_limit=0)
    i = torch.as_tensor(rng.integers(0, 300, 2000))
    j = torch.as_tensor(rng.integers(0, 300, 2000))
    np.testing.assert_allclose(dense.pairs(i, j).numpy(), streamed.pairs(i, j).numpy(), atol=1e-6)
    assert dense._dense is not None and streamed._dense is None
    assert dense.pairs(i, j).dtype == torch.float64


def test_duplicate_particles_do_not_make_the_recovery_diverge(truth, rng):
    """Duplicate picks (the same particle twice: distance 0) pull two poses onto each other,
    where arccos has an infinite slope; the recovery must still end with finite poses."""
    q = truth[:150]
    features = np.concatenate([q, q[:20]]) + rng.normal(0, 0.02, (len(q) + 20, 4))
    features[len(q):] = features[:20]  # exact duplicates
    res = run_job(recover_orientations(FeatureDistances(features),
                                       RecoveryConfig(n_steps=150, n_restarts=1, landmarks=100)))
    assert np.isfinite(res.quaternions).all() and np.isfinite(res.loss)
    assert align_to_reference(res.quaternions[: len(q)], q).mean_deg < 5.0
