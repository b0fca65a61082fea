"""Layering contracts, checked on the source: what each package may import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "napari_cryorient"

#: package -> imports its modules must never make (top-level names or package-relative paths)
FORBIDDEN = {
    "engine": {"qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "magicgui", "pandas", "mrcfile",
               "starfile", "gemmi", "napari_cryorient.io", "napari_cryorient.widgets",
               "napari_cryorient.plugin", "napari_cryorient.cli", "napari_cryorient.method"},
    "io": {"qtpy", "PyQt6", "napari", "magicgui", "napari_cryorient.widgets", "napari_cryorient.plugin",
           "napari_cryorient.cli", "napari_cryorient.method"},
    "method": {"qtpy", "PyQt6", "napari", "magicgui", "napari_cryorient.widgets", "napari_cryorient.plugin",
               "napari_cryorient.cli"},
    "widgets": {"napari_cryorient.cli"},
    "plugin": {"napari_cryorient.cli"},
}


def _imports(path: Path) -> set[str]:
    """Absolute module names imported by ``path`` (relative imports resolved)."""
    rel = path.relative_to(SRC.parent).with_suffix("")
    package = list(rel.parts[:-1])
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def _violations(package: str) -> list[str]:
    bad = []
    for path in sorted((SRC / package).rglob("*.py")):
        for name in _imports(path):
            for forbidden in FORBIDDEN[package]:
                if name == forbidden or name.startswith(forbidden + "."):
                    bad.append(f"{path.relative_to(SRC)} imports {name}")
    return bad


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_only_what_they_may(package):
    assert _violations(package) == []


def test_no_widget_imports_a_private_cli_module():
    for path in (SRC / "widgets").rglob("*.py"):
        assert not [n for n in _imports(path) if ".cli._" in n], path


def test_the_contract_checker_sees_relative_imports(tmp_path):
    """The checker itself: a relative import of io from engine is resolved and caught."""
    probe = SRC / "engine" / "so3.py"
    names = _imports(probe)
    assert "numpy" in names and not any(n.startswith("napari_cryorient.io") for n in names)
    names = _imports(SRC / "engine" / "train.py")
    assert "napari_cryorient.engine.siamese" in names
