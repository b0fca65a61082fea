"""Model checkpoints on disk: loading (clear errors for bad files) and atomic saving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..engine.inference import DistanceModel
from ..engine.siamese import SiameseNet
from ..engine.train import CHECKPOINT_FORMAT, TrainConfig
from .atomic_write import atomic_path
from .errors import InputError

__all__ = ["checkpoint_of_model", "generalist_path", "load_checkpoint", "load_generalist", "load_model",
           "model_from_checkpoint", "save_model"]


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by ``cryorient train`` or ``demo`` (tensors only:
    ``weights_only=True``, no code is ever run from the file)."""
    path = Path(path)
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


def model_from_checkpoint(ckpt: dict[str, Any], path: str | Path | None = None) -> DistanceModel:
    """The best network of a checkpoint, with its normalisation and training box."""
    try:
        config = TrainConfig.from_dict(ckpt["config"])
        net = SiameseNet(config.encoder)
        state = ckpt["best_state"] or ckpt["model_state"]
        net.load_state_dict(state)
        if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
            raise InputError("the network's weights are not finite numbers (a diverged training?)", path)
        norm = None if ckpt["norm"] is None else tuple(float(v) for v in ckpt["norm"])
        return DistanceModel(net.eval(), norm, int(ckpt["original_box"]),
                             phase_flip=bool(ckpt.get("phase_flip", False)),
                             any_box=bool(ckpt.get("any_box", False)),
                             pixel_size_a=_optional_float(ckpt.get("pixel_size_a")))
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise InputError(f"the checkpoint is incomplete or does not fit the network ({err})", path) from err


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def load_model(path: str | Path) -> DistanceModel:
    """:func:`load_checkpoint` then :func:`model_from_checkpoint`."""
    return model_from_checkpoint(load_checkpoint(path), path)


def checkpoint_of_model(model: DistanceModel, history: list | None = None) -> dict[str, Any]:
    """A checkpoint that :func:`load_model` reads back as ``model`` (weights and what the
    network expects; nothing to resume training from)."""
    return {"format": CHECKPOINT_FORMAT, "config": TrainConfig(encoder=model.net.config).to_dict(),
            "norm": None if model.norm is None else list(model.norm), "original_box": model.original_box,
            "phase_flip": model.phase_flip, "any_box": model.any_box, "pixel_size_a": model.pixel_size_a,
            "best_state": model.net.state_dict(), "model_state": None, "history": list(history or [])}


def generalist_path() -> Path:
    """Where the shipped generalist network lies (inside the package, made by
    ``scripts/train_generalist.py``; its record is ``generalist.json`` beside it)."""
    return Path(__file__).resolve().parents[1] / "weights" / "generalist.pt"


def load_generalist() -> DistanceModel:
    """The generalist distance network shipped with the package: trained on procedural
    proteins only, phase-flipped and per-image-normalised input, any box accepted."""
    path = generalist_path()
    if not path.exists():
        raise InputError("the generalist network is missing from this installation "
                         "(run scripts/train_generalist.py)", path)
    return load_model(path)


def save_model(path: str | Path, checkpoint: dict[str, Any]) -> Path:
    """Write a model checkpoint atomically (``torch.save``)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
    return path
