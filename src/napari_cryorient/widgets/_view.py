"""How a viewer with cryorient widgets frames its 3D view.

Particle stacks are `(n, 1, h, w)` layers (see ``plugin.layer_data.stack_layer_data``): in
2D they show the selected particle at any z of the maps; in 3D a stack would be a slab
through the map, so the 3D view hides stacks (and shows them again, as they were, back
in 2D) and frames what it is for: the maps and the poses on their sphere.
"""

from __future__ import annotations

import weakref
from typing import Any

from ..plugin.layer_data import is_stack_layer

__all__ = ["install_view_rules"]

_INSTALLED: weakref.WeakSet = weakref.WeakSet()
_HIDDEN = "hidden_in_3d"


def install_view_rules(viewer: Any) -> None:
    """Connect the 3D rules to ``viewer`` once (idempotent)."""
    key = getattr(viewer, "__wrapped__", viewer)
    if key in _INSTALLED:
        return
    _INSTALLED.add(key)
    viewer.dims.events.ndisplay.connect(lambda event=None: _on_ndisplay(viewer))


def _stacks(viewer: Any) -> list:
    return [layer for layer in viewer.layers if type(layer).__name__ == "Image" and is_stack_layer(layer)]


def _on_ndisplay(viewer: Any) -> None:
    if viewer.dims.ndisplay == 3:
        for layer in _stacks(viewer):
            if layer.visible:
                layer.metadata = {**layer.metadata, _HIDDEN: True}
                layer.visible = False
        # the maps and the sphere: a stack's (z, y, x) extent is its map's, never deeper
        viewer.reset_view()
        return
    for layer in _stacks(viewer):
        if layer.metadata.get(_HIDDEN):
            layer.metadata = {k: v for k, v in layer.metadata.items() if k != _HIDDEN}
            layer.visible = True
