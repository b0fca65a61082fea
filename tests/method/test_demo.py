"""The demo's simulated case."""

import torch

from napari_cryorient.method import DemoConfig, load_demo_volume


def test_the_sample_map_does_not_change_with_the_run_seed():
    """The seed draws poses, CTFs and noise; the molecule stays the one the network knows
    (a fresh particle set of 'the same map' must be the same map)."""
    a, px_a = load_demo_volume(DemoConfig(box=32, seed=0))
    b, px_b = load_demo_volume(DemoConfig(box=32, seed=1))
    assert px_a == px_b and torch.equal(a, b)
