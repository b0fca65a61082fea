"""Showing results as layers without freezing the UI.

Two napari costs are kept off the path of a result (on the 2-core CPU with Mesa; both
figures are ad-hoc measurements made during development, not by a repository script):

* napari runs a full garbage collection each time a layer leaves the canvas (a guard
  against an OpenGL driver bug): with torch, napari and Qt loaded that held the main
  thread for about 0.3 s. So a widget that shows a new result *updates* its layer in
  place (:func:`show_layer`), and the layers of a data set that was replaced are
  *retired* — hidden and renamed, never mixed up with the new data set's — rather than
  removed (:func:`retire_layers`); the user deletes them when they like.
* Creating a layer took 110–150 ms (more while a job computes). New layers are therefore
  created one per turn of the event loop, so that showing a result that needs three new
  layers never freezes the viewer for the sum of them. A job counts as running until
  the layers of its result exist (:func:`pending_layers`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from napari.utils.notifications import show_error
from qtpy.QtCore import QTimer

__all__ = ["RETIRED", "pending_layers", "placeholder", "retire_layers", "show_layer"]

_log = logging.getLogger(__name__)
#: layers waiting to be created: (viewer, layer data, callback with the new layer)
_QUEUE: deque[tuple[Any, tuple, Callable[[Any], None] | None]] = deque()
_scheduled = [False]

#: appended to the name of a layer whose data set was replaced
RETIRED = " (previous data set)"

#: layer kwargs that are not attributes to set on an existing layer
_CREATE_ONLY = {"name", "visible"}


def show_layer(viewer: Any, layer_data: tuple, on_created: Callable[[Any], None] | None = None) -> Any | None:
    """Show ``(data, kwargs, kind)`` in the layer of that name.

    An existing layer of that kind is updated in place and returned. Otherwise the layer
    is created at a later turn of the event loop (one creation per turn), ``on_created``
    is called with it, and None is returned.
    """
    layer = _existing(viewer, layer_data)
    if layer is not None:
        _update(layer, layer_data)
        return layer
    _QUEUE.append((viewer, layer_data, on_created))
    _schedule()
    return None


def placeholder(name: str, kind: str, box: int = 2, pixel_size_a: float = 1.0) -> tuple:
    """A hidden, empty layer ``name`` of ``kind`` (``points``, or ``image`` for a map of
    ``box``³ voxels of ``pixel_size_a`` Å) for a result to fill later (:func:`show_layer`)."""
    if kind == "points":
        return np.zeros((0, 3)), {"name": name, "visible": False}, "points"
    return (np.zeros((box,) * 3, np.float32),
            {"name": name, "visible": False, "scale": (pixel_size_a,) * 3, "rendering": "iso"}, "image")


def pending_layers() -> int:
    """How many layers are waiting to be created."""
    return len(_QUEUE)


def _existing(viewer: Any, layer_data: tuple) -> Any | None:
    data, kwargs, kind = layer_data
    name = kwargs["name"]
    layer = viewer.layers[name] if name in viewer.layers else None
    if layer is None or type(layer).__name__.lower() != kind or layer.ndim != _ndim(data, kind):
        return None
    return layer


def _update(layer: Any, layer_data: tuple) -> None:
    data, kwargs, kind = layer_data
    layer.data = data
    layer.visible = kwargs.get("visible", True)  # a placeholder made at Start shows its result
    for key, value in kwargs.items():
        if key not in _CREATE_ONLY and value is not None:
            setattr(layer, key, value)
    if kind == "points" and "face_color" not in kwargs:
        layer.face_color = "white"  # nothing to colour by this time (napari's default colour)
    if kind == "image":
        layer.reset_contrast_limits()
    layer.refresh()


def _schedule() -> None:
    if not _scheduled[0]:
        _scheduled[0] = True
        QTimer.singleShot(0, _create_next)


def _create_next() -> None:
    """Create the next queued layer (or update it, if an earlier item made it meanwhile)."""
    _scheduled[0] = False
    if not _QUEUE:
        return
    viewer, layer_data, on_created = _QUEUE.popleft()
    try:
        layer = _existing(viewer, layer_data)
        if layer is not None:
            _update(layer, layer_data)
        else:
            data, kwargs, kind = layer_data
            name = kwargs["name"]
            if name in viewer.layers:  # same name, another kind or dimensionality: replace it
                viewer.layers.remove(name)
            layer = getattr(viewer, f"add_{kind}")(data, **kwargs)
            if on_created is not None:
                on_created(layer)
    except Exception as err:  # the viewer was closed meanwhile, or napari refused the data
        _log.exception("a result layer could not be shown")
        show_error(f"could not show the layer {layer_data[1]['name']!r}: {err}")
    if _QUEUE:
        _schedule()


def _ndim(data: Any, kind: str) -> int:
    """The layer dimensionality ``data`` gives: an image's rank, else the coordinates' length."""
    shape = np.shape(data)
    return len(shape) if kind == "image" else shape[-1]


def retire_layers(viewer: Any, names: list[str] | tuple[str, ...],
                  keep: set | frozenset = frozenset()) -> None:
    """Hide the layers ``names`` (except those in ``keep``) and rename them with
    :data:`RETIRED`, so that a new result never lands in, nor is mistaken for, them."""
    for name in names:
        if name in viewer.layers and name not in keep:
            layer = viewer.layers[name]
            layer.visible = False
            layer.name = name + RETIRED
