"""Image features: test-time quarter turns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_cryorient.engine.inference import compute_features, quarter_turn
from napari_cryorient.engine.siamese import EncoderConfig, SiameseNet, pairwise_feature_distance


@pytest.mark.parametrize("box", [8, 9])
def test_a_quarter_turn_turns_about_the_fourier_centre(box):
    x = torch.zeros(box, box)
    c = box // 2
    x[c, c], x[c, c + 2] = 1.0, 2.0
    seen = set()
    for k in range(4):
        y = quarter_turn(x, k)
        assert y[c, c] == 1.0  # the centre stays
        (i, j), = (y == 2.0).nonzero().tolist()
        assert (i - c) ** 2 + (j - c) ** 2 == 4  # the other pixel stays 2 px from it
        seen.add((i, j))
    assert len(seen) == 4
    torch.testing.assert_close(quarter_turn(quarter_turn(x, 1), 3), x)


def test_turn_averaged_distances_do_not_change_when_every_image_turns():
    """Turning both images of every pair by the same quarter turn leaves the averaged
    distance unchanged (the network alone is not invariant to it)."""
    torch.manual_seed(0)
    net = SiameseNet(EncoderConfig(working_box=16, channels=(8, 16), feature_dim=16))
    images = torch.randn(12, 16, 16).numpy()
    turned = quarter_turn(torch.from_numpy(images), 1).numpy()

    def distances(x, rotations):
        return pairwise_feature_distance(torch.from_numpy(compute_features(net, x, None, rotations=rotations)))

    assert distances(images, 4).shape == (12, 12)
    torch.testing.assert_close(distances(images, 4), distances(turned, 4), atol=1e-4, rtol=0)
    assert not torch.allclose(distances(images, 1), distances(turned, 1), atol=1e-3)
    with pytest.raises(ValueError, match="rotations"):
        compute_features(net, images, None, rotations=3)
    np.testing.assert_allclose(np.linalg.norm(compute_features(net, images, None, rotations=2), axis=1), 1,
                               rtol=1e-5)
