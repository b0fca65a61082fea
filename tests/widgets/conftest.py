"""Widget tests: a real napari viewer under Xvfb (pytest-xvfb), settings in a temp folder."""

from __future__ import annotations

import pytest

pytest.importorskip("napari")


@pytest.fixture(autouse=True)
def _settings_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_CRYORIENT_CONFIG_DIR", str(tmp_path / "config"))
