"""Export widget: the reconstruction (MRC with voxel size), the poses (RELION STAR with
optics block, and CSV), the model checkpoint, and a run report (metrics JSON + plots),
all into one folder, atomically (all files or none)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from magicgui.widgets import Container, FileEdit, PushButton
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..io import StackWriter, staged_outputs, write_map, write_particles
from ..io.errors import InputError
from ._session import get_session
from ._settings import load_settings, save_settings

__all__ = ["ExportWidget"]


class ExportWidget(QWidget):
    """Write everything the session holds into a folder."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = get_session(napari_viewer)
        self.folder = FileEdit(
            name="folder", label="folder", mode="d", value=str(Path.cwd() / "cryorient-export")
        )
        self.form = Container(widgets=[self.folder])
        load_settings("export", self.form)
        self.button = PushButton(text="Export")
        self.button.changed.connect(lambda *_: self.export())
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.button.native)
        layout.addWidget(self.status)

    def export(self, folder: str | Path | None = None) -> list[Path]:
        """Write the session's results into ``folder``; returns the files written."""
        folder = Path(folder or self.folder.value)
        s = self.session
        ds = s.dataset
        if ds is None:
            show_error("Export: nothing to export yet (no data set)")
            return []
        written: list[str] = []
        try:
            with staged_outputs(folder) as stage:
                with StackWriter(stage / "particles.mrcs", len(ds), ds.box, ds.pixel_size_a) as w:
                    w(0, ds.images)
                written.append("particles.mrcs")
                stack = stage / "particles.mrcs"
                for name, poses in (("poses.star", s.poses), ("poses_true.star", ds.truth)):
                    if poses is not None:
                        write_particles(
                            stage / name,
                            poses,
                            ds.pixel_size_a,
                            ds.box,
                            stack=stack,
                            shifts_a=ds.shifts_a,
                            ctf=ds.ctf,
                        )
                        written.append(name)
                if s.poses is not None:
                    self._write_csv(stage / "poses.csv")
                    written.append("poses.csv")
                if s.volume is not None:
                    write_map(stage / "reconstruction.mrc", s.volume, ds.pixel_size_a)
                    written.append("reconstruction.mrc")
                if s.checkpoint is not None:
                    from ..io.checkpoint import save_model

                    save_model(stage / "model.pt", s.checkpoint)
                    written.append("model.pt")
                self._write_report(stage)
                written += ["metrics.json", "report.png"]
        except (InputError, OSError, ValueError) as err:
            show_error(f"Export failed: {err}")
            return []
        save_settings("export", self.form)
        self.status.setText(f"wrote {', '.join(written)} to {folder}")
        show_info(f"exported to {folder}")
        return [folder / name for name in written]

    def _write_csv(self, path: Path) -> None:
        from ..plugin.layer_data import pose_features

        features = pose_features(self.session.poses, self.session.errors_deg)
        features.to_csv(path, index=False)

    def _write_report(self, stage: Path) -> None:
        from matplotlib.figure import Figure

        s = self.session
        metrics: dict[str, Any] = {
            "n_particles": len(s.dataset),
            "box": s.dataset.box,
            "pixel_size_a": s.dataset.pixel_size_a,
            **s.metrics,
        }
        if s.trainer is not None and s.trainer.history:
            metrics["training"] = {
                "epochs": len(s.trainer.history),
                "val_mae_deg": s.trainer.history[-1]["val_mae_deg"],
            }
        if s.errors_deg is not None:
            metrics["orientation_error_mean_deg"] = float(np.mean(s.errors_deg))
            metrics["orientation_error_median_deg"] = float(np.median(s.errors_deg))
        (stage / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
        fig = Figure(figsize=(9, 3), layout="constrained")
        ax1, ax2, ax3 = fig.subplots(1, 3)
        if s.trainer is not None and s.trainer.history:
            h = s.trainer.history
            ax1.plot([x["val_loss"] for x in h], label="validation")
            ax1.plot([x["train_loss"] for x in h], label="train")
            ax1.set_title("loss (rad²)")
            ax1.legend(fontsize=7)
        if s.errors_deg is not None:
            ax2.hist(s.errors_deg, bins=60)
            ax2.set_title("orientation error (°)")
        if s.fsc is not None:
            half, truth = s.fsc
            ax3.plot(half.frequency_inv_a[1:], half.fsc[1:], label="half-maps")
            if truth is not None:
                ax3.plot(truth.best.frequency_inv_a[1:], truth.best.fsc[1:], label="vs truth")
            ax3.set_title("FSC")
            ax3.legend(fontsize=7)
        fig.savefig(stage / "report.png", dpi=100)
