"""Scoring against a truth: the map of a truth-free run in the truth's frame."""

import numpy as np

from napari_cryorient.engine.volumes import make_pseudo_protein, mirror_volume
from napari_cryorient.method.evaluate import translate_to_reference


def test_a_shifted_map_is_moved_back_onto_the_truth():
    truth = make_pseudo_protein(box=32, pixel_size_a=4.0, seed=3).numpy()
    moved, shift = translate_to_reference(np.roll(truth, (3, -2, 5), axis=(0, 1, 2)), truth)
    assert shift.tolist() == [-3, 2, -5]
    np.testing.assert_allclose(moved, truth)


def test_the_mirror_image_is_overlaid_on_its_own_hand():
    truth = make_pseudo_protein(box=32, pixel_size_a=4.0, seed=3)
    mirrored = mirror_volume(truth).numpy()
    moved, _ = translate_to_reference(np.roll(mirrored, (1, 4, -2), axis=(0, 1, 2)), truth.numpy())
    np.testing.assert_allclose(moved, mirrored, atol=1e-6)
