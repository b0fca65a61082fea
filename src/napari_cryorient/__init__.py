"""napari-cryorient: recover cryo-EM particle orientations with a learned distance.

The headless API lives in :mod:`napari_cryorient.engine` (torch/numpy) and
:mod:`napari_cryorient.io` (files); importing this package never imports napari or Qt.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-cryorient")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "unknown"

__all__ = ["__version__"]
