"""napari-cryorient: recover cryo-EM particle orientations with a learned distance.

The headless API: :mod:`napari_cryorient.engine` (torch/numpy: simulation, training,
recovery, reconstruction), :mod:`napari_cryorient.io` (files ↔ one particle set) and
:mod:`napari_cryorient.method` (the method's steps: :func:`recover_poses`,
:func:`evaluate_poses`, :func:`score_map`, :func:`run_demo`). Importing this package never
imports napari or Qt.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-cryorient")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "unknown"

from .method import evaluate_poses, recover_poses, run_demo, score_map

__all__ = ["__version__", "evaluate_poses", "recover_poses", "run_demo", "score_map"]
