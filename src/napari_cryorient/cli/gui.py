"""Open napari with the cryorient widgets docked (and the sample map loaded).

examples:
  cryorient gui
  cryorient gui --no-sample
"""

from __future__ import annotations

import argparse

PLUGIN = "napari-cryorient"
WIDGETS = ("Dataset", "Train distance network", "Recover orientations", "Reconstruct",
           "Particle inspector", "Export", "Job history")


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryorient gui``."""
    parser.add_argument("--no-sample", action="store_true", help="do not load the sample map")


def open_viewer(show: bool = True, sample: bool = True):
    """A napari viewer with every widget docked (tabbed on the right); returns it."""
    import napari

    viewer = napari.Viewer(title="napari-cryorient", show=show)
    for name in WIDGETS:
        viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=True)
    if sample:
        viewer.open_sample(PLUGIN, "pseudo-protein")
    return viewer


def main(args: argparse.Namespace) -> int:
    """Run ``cryorient gui``."""
    import napari

    open_viewer(sample=not args.no_sample)
    napari.run()
    return 0
