"""One set of presets — ``quick``, ``standard``, ``thorough`` — for every front end.

``cryorient train|recover|demo --preset NAME``, the Train and Recover widgets' *preset*
menus and :meth:`DemoConfig.preset <napari_cryorient.method.demo.DemoConfig.preset>`
all read :data:`METHOD_PRESETS`; no front end keeps numbers of its own. (The truth-free
pipeline has its own three presets of the same names:
:data:`napari_cryorient.method.ab_initio.PRESETS`.)

* ``quick`` — minutes on a 2-core CPU for a few thousand particles: a short training, one
  recovery run, a three-step refinement.
* ``standard`` — the reference setting of the benchmarks.
* ``thorough`` — twice the training, more recovery restarts and steps and a longer
  refinement.

The global second chance (:mod:`~napari_cryorient.engine.reassign`) is part of
``thorough`` only: since it searches origins and polishes its grid poses it helps at −12
and −16 dB (docs/method.md), but it adds about 6 minutes per 5 000 particles on a 2-core
CPU, which ``make demo`` (the ``standard`` preset) cannot afford. ``cryorient recover
--second-chance`` / ``--no-second-chance`` and the Recover widget's check box (set by the
preset) override it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.reassign import ReassignConfig
from ..engine.recover import RecoveryConfig
from ..engine.refine import RefineConfig
from ..engine.train import TrainConfig

__all__ = ["METHOD_PRESETS", "MethodPreset", "method_preset"]


@dataclass(frozen=True)
class MethodPreset:
    """The settings a preset fixes.

    Attributes
    ----------
    train
        Training schedule (epochs × steps per epoch, early stopping).
    recovery
        Orientation recovery (restarts, optimiser steps).
    refine
        Local refinement (search radii).
    reassign
        The global second chance after the refinement, or None.
    """

    train: TrainConfig
    recovery: RecoveryConfig
    refine: RefineConfig
    reassign: ReassignConfig | None


METHOD_PRESETS: dict[str, MethodPreset] = {
    "quick": MethodPreset(
        train=TrainConfig(epochs=30, steps_per_epoch=50),
        recovery=RecoveryConfig(n_restarts=1),
        refine=RefineConfig(radii_deg=(12.0, 6.0, 3.0)),
        reassign=None,
    ),
    "standard": MethodPreset(
        # the whole cosine schedule: early stopping on a still-high learning rate stopped the
        # preferred-orientation case at epoch 35 with a network that recovery could not use
        train=TrainConfig(epochs=120, steps_per_epoch=60, patience=0),
        recovery=RecoveryConfig(),
        refine=RefineConfig(),
        reassign=None,
    ),
    "thorough": MethodPreset(
        train=TrainConfig(epochs=240, steps_per_epoch=60, patience=0),
        recovery=RecoveryConfig(n_restarts=5, n_steps=1000),
        refine=RefineConfig(radii_deg=(16.0, 12.0, 8.0, 4.0, 2.0, 1.0)),
        reassign=ReassignConfig(),
    ),
}


def method_preset(name: str) -> MethodPreset:
    """The preset called ``name``; ``ValueError`` naming the choices otherwise."""
    try:
        return METHOD_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(METHOD_PRESETS)}") from None
