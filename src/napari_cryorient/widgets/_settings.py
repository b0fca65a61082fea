"""Last-used widget settings, kept between sessions in a small JSON file.

The file is ``$NAPARI_CRYORIENT_CONFIG_DIR/settings.json`` (default
``~/.config/napari-cryorient``); one section per widget. Unreadable files are ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from magicgui.widgets import Container

__all__ = ["load_settings", "save_settings"]


def _path() -> Path:
    base = os.environ.get("NAPARI_CRYORIENT_CONFIG_DIR") or Path.home() / ".config" / "napari-cryorient"
    return Path(base) / "settings.json"


def _read() -> dict[str, Any]:
    try:
        return json.loads(_path().read_text())
    except (OSError, ValueError):
        return {}


def save_settings(section: str, form: Container) -> None:
    """Store the values of the value widgets of ``form`` under ``section``."""
    values = {}
    for w in form:
        value = getattr(w, "value", None)
        if isinstance(value, Path):  # folder and file fields
            value = str(value)
        if isinstance(value, (bool, int, float, str)):
            values[w.name] = value
    data = _read()
    data[section] = values
    try:
        path = _path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass  # settings are a convenience; never fail a job for them


def load_settings(section: str, form: Container) -> None:
    """Restore stored values into ``form`` (unknown or invalid values are skipped)."""
    for name, value in _read().get(section, {}).items():
        try:
            getattr(form, name).value = value
        except (AttributeError, ValueError, TypeError, KeyError):
            continue
