"""Train the generalist distance network that ships inside the package.

    python scripts/train_generalist.py                 # the shipped recipe (~1 h on 2 CPU cores)
    python scripts/train_generalist.py --volumes 20 --epochs 2 --out /tmp/g   # a smoke run

Only procedural maps are used (:mod:`napari_cryorient.engine.procedural`); no real map or
atomic model is seen. Writes, atomically:

* ``OUT/generalist.pt`` — the weights with what the network expects (no optimiser state),
  loadable with ``torch.load(..., weights_only=True)``;
* ``OUT/generalist.json`` — commit, machine, recipe, training settings, curve and time.

A full training checkpoint is kept beside it after every epoch (``OUT/training.pt``,
not shipped), so an interrupted run keeps its best weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from napari_cryorient.engine.generalist import GeneralistRecipe, make_generalist_data
from napari_cryorient.engine.siamese import EncoderConfig
from napari_cryorient.engine.train import DistanceTrainer, TrainConfig
from napari_cryorient.io.atomic_write import atomic_path
from napari_cryorient.io.checkpoint import save_model

PACKAGE_WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "napari_cryorient" / "weights"

RECIPE = GeneralistRecipe()
TRAINING = TrainConfig(
    encoder=EncoderConfig(working_box=RECIPE.working_box, channels=(32, 64, 128), feature_dim=64),
    epochs=45, steps_per_epoch=600, anchors_per_batch=48, neighbours_per_anchor=3, groups_per_batch=4,
    lr=2e-3, val_fraction=0.05, val_pairs=40000, patience=0, per_image_norm=True, device="auto",
)


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).parent)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def shipped_checkpoint(trainer: DistanceTrainer) -> dict:
    """The trainer's checkpoint without what only resuming needs (optimiser, RNG)."""
    full = trainer.checkpoint()
    keep = ("format", "config", "norm", "original_box", "phase_flip", "any_box", "history")
    slim = {k: full[k] for k in keep}
    slim["best_state"] = full["best_state"] or full["model_state"]
    slim["model_state"] = None
    return slim


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=PACKAGE_WEIGHTS)
    p.add_argument("--volumes", type=int, default=RECIPE.n_volumes)
    p.add_argument("--epochs", type=int, default=TRAINING.epochs)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    recipe = replace(RECIPE, n_volumes=args.volumes, seed=args.seed)
    config = replace(TRAINING, epochs=args.epochs, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    gen = make_generalist_data(recipe)
    try:
        while True:
            ev = next(gen)
            if ev.done % 25 == 0 or ev.done == ev.total:
                print(f"generate {ev.done}/{ev.total}  {time.perf_counter() - t0:.0f} s", flush=True)
    except StopIteration as stop:
        data = stop.value
    t_data = time.perf_counter() - t0
    trainer = DistanceTrainer(data, config)
    t1 = time.perf_counter()
    for ev in trainer.run():
        if "val_loss" in ev.data:
            d = ev.data
            print(f"epoch {d['epoch'] + 1}/{config.epochs}  train {d['train_loss']:.4f}"
                  f"  val {d['val_loss']:.4f}  val MAE {d['val_mae_deg']:.2f}°"
                  f"  {time.perf_counter() - t1:.0f} s", flush=True)
            save_model(args.out / "training.pt", trainer.checkpoint())
            _write(args, recipe, config, trainer, t_data, time.perf_counter() - t1)
    _write(args, recipe, config, trainer, t_data, time.perf_counter() - t1)
    return 0


def _write(args, recipe, config, trainer, t_data: float, t_train: float) -> None:
    save_model(args.out / "generalist.pt", shipped_checkpoint(trainer))
    record = {
        "commit": _commit(), "machine": f"{platform.node()} ({platform.processor() or platform.machine()}, "
                                        f"{os.cpu_count()} CPU threads, torch {torch.__version__}, "
                                        f"device {trainer.device})",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "recipe": recipe.to_dict(), "training": config.to_dict(),
        "steps_done": trainer.step, "data_seconds": round(t_data, 1), "train_seconds": round(t_train, 1),
        "best_val_loss": trainer.best_val, "history": trainer.history,
    }
    with atomic_path(args.out / "generalist.json") as tmp:
        tmp.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    sys.exit(main())
