"""Re-create the user-guide screenshots from a real napari viewer (run under Xvfb).

    make screenshots        # = xvfb-run -a python docs/make_screenshots.py

Drives the widgets as a user would through a quick workflow (simulate 1 000 particles of
64 px at -6 dB, train 40 short epochs, recover, reconstruct, inspect one particle) and saves the
window and each widget into docs/images/. The numbers shown are whatever this run gives.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from qtpy.QtCore import QCoreApplication

OUT = Path(__file__).resolve().parent / "images"


def _wait(runner, timeout_s: float = 900.0) -> None:
    t0 = time.monotonic()
    while runner.running and time.monotonic() - t0 < timeout_s:
        QCoreApplication.processEvents()
        time.sleep(0.02)
    if runner.error:
        raise SystemExit(f"{runner.name} failed: {runner.error}")


def _settle(seconds: float = 0.5) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        QCoreApplication.processEvents()
        time.sleep(0.02)


def main() -> int:
    from napari_cryorient.cli.gui import WIDGETS, open_viewer

    OUT.mkdir(parents=True, exist_ok=True)
    viewer = open_viewer(show=True, sample=False)
    viewer.window._qt_window.resize(1500, 950)
    widgets = {name: viewer.window.dock_widgets[f"{name} (napari-cryorient)"] for name in WIDGETS}
    dataset = widgets["Dataset"]
    dataset.source.value = "simulate"
    dataset.n.value, dataset.box.value, dataset.pixel.value, dataset.snr.value = 1000, 64, 2.0, -6.0
    dataset.orient.value, dataset.noisy.value, dataset.ctf.value = "uniform", True, False
    dataset.start()
    _wait(dataset.runner)
    train = widgets["Train distance network"]
    train.epochs.value, train.steps.value, train.wbox.value, train.device.value = 40, 30, 16, "cpu"
    train.start()
    _wait(train.runner)
    recover = widgets["Recover orientations"]
    recover.mode.value = "learned distance (trained network)"  # not a restored setting
    recover.start()
    _wait(recover.runner)
    recon = widgets["Reconstruct"]
    recon.poses.value = "recovered"
    recon.start()
    _wait(recon.runner)
    inspector = widgets["Particle inspector"]
    inspector.index.value = 12
    _settle()
    for name, widget in widgets.items():
        widget.parent().raise_()
        _settle(0.3)
        widget.grab().save(str(OUT / f"widget_{name.lower().replace(' ', '_')}.png"))
    # the 2D stack with the inspector, then the 3D scene: poses on the sphere and the map
    widgets["Particle inspector"].parent().raise_()
    for layer in viewer.layers:
        layer.visible = layer.name == "projections"
    _settle()
    viewer.screenshot(str(OUT / "viewer_stack.png"), canvas_only=False)
    for layer in viewer.layers:
        layer.visible = layer.name in ("recovered poses", "reconstruction")
    viewer.dims.ndisplay = 3
    viewer.reset_view()
    _settle()
    viewer.screenshot(str(OUT / "viewer_3d.png"), canvas_only=False)
    viewer.dims.ndisplay = 2
    _real_data(viewer, widgets)
    print(f"screenshots written to {OUT}")
    viewer.close()
    return 0


def _real_data(viewer, widgets) -> None:
    """Real particles (the EMPIAR-10076 sample of ../shared, when this checkout has it):
    opened, adopted with their CTF (Fourier-cropped to 64 px); the simulation's layers
    are retired, and the inspector follows the real stack."""
    formats = Path(__file__).resolve().parents[2] / "shared" / "data" / "formats"
    star = formats / "empiar_10076_7" / "empiar_10076_7.star"
    if not star.exists():
        print(f"no real particles at {star}: the real-data screenshot is skipped")
        return
    viewer.open(star, plugin="napari-cryorient")
    dataset = widgets["Dataset"]
    dataset.source.value = "use opened layers"
    dataset.form.reset_choices()
    dataset.stack.value = viewer.layers["empiar_10076_7 particles"]
    dataset.crop.value, dataset.poses.value = 64, None
    dataset.start()
    _wait(dataset.runner)
    for layer in viewer.layers:
        layer.visible = layer.name == "empiar_10076_7 particles"
    widgets["Particle inspector"].index.value = 3
    widgets["Dataset"].parent().raise_()
    _settle()
    viewer.reset_view()
    _settle()
    viewer.screenshot(str(OUT / "viewer_real_stack.png"), canvas_only=False)


if __name__ == "__main__":
    sys.exit(main())
