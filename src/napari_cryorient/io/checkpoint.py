"""Loading model checkpoints (clear errors for bad files); used by the CLI and the widgets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..engine.siamese import SiameseNet
from ..engine.train import CHECKPOINT_FORMAT, TrainConfig
from .errors import InputError


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by ``cryorient train`` or ``demo``."""
    if not path.exists():
        raise InputError("file does not exist", path)
    if path.is_dir():
        raise InputError("is a directory, expected a model file", path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle/zip errors of every kind
        raise InputError(f"not a model checkpoint ({type(err).__name__})", path) from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InputError("not a napari-cryorient model checkpoint", path)
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any]) -> tuple[SiameseNet, tuple[float, float], int]:
    """The best network, its normalisation and the image box it was trained on."""
    config = TrainConfig.from_dict(ckpt["config"])
    model = SiameseNet(config.encoder)
    model.load_state_dict(ckpt["best_state"] or ckpt["model_state"])
    return model.eval(), tuple(ckpt["norm"]), int(ckpt["original_box"])
