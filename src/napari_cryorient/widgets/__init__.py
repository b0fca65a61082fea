"""Dock widgets (Qt): thin layers that build parameters, start engine jobs in worker threads
and render their results. Engine logic lives in :mod:`napari_cryorient.engine`."""

from .dataset import DatasetWidget
from .export import ExportWidget
from .history import HistoryWidget
from .inspector import InspectorWidget
from .reconstruct import ReconstructWidget
from .recover import RecoverWidget
from .train import TrainWidget

__all__ = [
    "DatasetWidget",
    "ExportWidget",
    "HistoryWidget",
    "InspectorWidget",
    "ReconstructWidget",
    "RecoverWidget",
    "TrainWidget",
]
