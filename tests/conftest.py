"""Shared fixtures: small maps made on the fly, and the real files in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from napari_cryorient.engine.volumes import make_pseudo_protein

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def small_map() -> torch.Tensor:
    """A 32³ pseudo-protein at 4 Å/px."""
    return make_pseudo_protein(box=32, pixel_size_a=4.0, seed=3)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real RELION / cryoSPARC / cryoDRGN files)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
