"""Export widget: the reconstruction (MRC with voxel size), the poses (RELION STAR with
optics block, and CSV), the model checkpoint, and a run report (metrics JSON + plots),
all into one folder, atomically (all files or none), in a worker thread."""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from magicgui.widgets import CheckBox, Container, FileEdit, PushButton
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..engine.jobs import Progress
from ..io import StackWriter, staged_outputs, write_map, write_particles
from ..io.checkpoint import save_model
from ..plots import draw_fsc
from ..plugin.layer_data import pose_features
from ._jobs import JobRunner
from ._project import save_record
from ._session import JobRecord, get_session
from ._settings import load_settings, save_settings

__all__ = ["EXPORT_NAMES", "ExportWidget"]

#: every file an export may write (an existing one is only replaced when the user says so)
EXPORT_NAMES = ("particles.mrcs", "poses.star", "poses_true.star", "poses.csv", "reconstruction.mrc",
                "model.pt", "metrics.json", "report.png", "jobs.json")


class ExportWidget(QWidget):
    """Write everything the session holds into a folder (in a worker thread)."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = get_session(napari_viewer)
        self.folder = FileEdit(
            name="folder", label="folder", mode="d", value=str(Path.cwd() / "cryorient-export")
        )
        self.form = Container(widgets=[self.folder])
        # not part of the saved settings: replacing is a decision for one export at a time
        self.replace = CheckBox(name="replace", label="replace existing files", value=False)
        load_settings("export", self.form)
        self.button = PushButton(text="Export")
        self.button.changed.connect(lambda *_: self.export())
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.replace.native)
        layout.addWidget(self.button.native)
        layout.addWidget(self.status)
        self.runner = JobRunner("Export", on_result=self._done, on_finished=self._finished)
        self.written: list[Path] = []

    def export(self, folder: str | Path | None = None) -> bool:
        """Start writing the session's results into ``folder``; False when there is nothing
        to export or an export is running. The files are listed in :attr:`written` once the
        job ends (``runner.wait()`` blocks until then)."""
        folder = Path(folder or self.folder.value)
        if self.session.dataset is None:
            show_error("Export: nothing to export yet (no data set)")
            return False
        if self.runner.running:
            return False
        existing = [n for n in EXPORT_NAMES if (folder / n).exists()]
        if existing and not self.replace.value:
            show_error(f"Export: {folder} already holds {', '.join(existing)}; choose another folder or "
                       "tick 'replace existing files'")
            return False
        snapshot = _Snapshot.of(self.session)  # read on the main thread, written in the worker
        self._started = (time.strftime("%Y-%m-%dT%H:%M:%S"), time.monotonic(), str(folder))
        self.written = []
        self.button.enabled = False
        self.status.setText(f"writing to {folder}…")
        self.runner.start(lambda: _write(snapshot, folder))
        return True

    def _done(self, result: tuple[Path, list[str]]) -> None:
        folder, names = result
        self.folder.value = str(folder)  # remembered for the next export
        save_settings("export", self.form)
        self.written = [folder / name for name in names]
        self.replace.value = False
        self.status.setText(f"wrote {', '.join(names)} to {folder}")
        show_info(f"exported to {folder}")

    def _finished(self) -> None:
        self.button.enabled = True
        if self.runner.error:
            self.status.setText(f"export failed: {self.runner.error}")
        started, t0, folder = self._started
        status = self.runner.outcome
        ds = self.session.dataset
        record = JobRecord(job="export", parameters={"folder": folder}, started=started,
                           duration_s=time.monotonic() - t0, status=status, summary=self.status.text(),
                           dataset=ds.source if ds is not None else "")
        self.session.record(record)
        save_record(self.session, record)


@dataclass(frozen=True)
class _Snapshot:
    """What an export writes, taken from the session on the main thread."""

    dataset: Any
    poses: np.ndarray | None
    shifts_a: np.ndarray | None
    errors_deg: np.ndarray | None
    volume: np.ndarray | None
    checkpoint: dict[str, Any] | None
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    fsc: Any
    jobs: list[dict[str, Any]]

    @classmethod
    def of(cls, s: Any) -> _Snapshot:
        history = list(s.trainer.history) if s.trainer is not None else []
        return cls(s.dataset, s.poses, s.origins_a(), s.errors_deg, s.volume, s.checkpoint, dict(s.metrics),
                   history, s.fsc, [asdict(r) for r in s.history])


def _write(snap: _Snapshot, folder: Path) -> Generator[Progress, None, tuple[Path, list[str]]]:
    """The export job: every file staged, then moved into ``folder`` (all or none)."""
    ds = snap.dataset
    written: list[str] = []
    steps = 6
    with staged_outputs(folder) as stage:
        stack = stage / "particles.mrcs"
        with StackWriter(stack, len(ds), ds.box, ds.pixel_size_a) as w:
            for start in range(0, len(ds), 1024):
                w(start, np.asarray(ds.images[start : start + 1024], dtype=np.float32))
        written.append("particles.mrcs")
        yield Progress("export", 1, steps, "particles")
        for name, poses, shifts in (("poses.star", snap.poses, snap.shifts_a),
                                    ("poses_true.star", ds.truth, ds.shifts_a)):
            if poses is not None:
                write_particles(stage / name, poses, ds.pixel_size_a, ds.box, stack=stack,
                                shifts_a=shifts, ctf=ds.ctf)
                written.append(name)
        if snap.poses is not None:
            pose_features(snap.poses, snap.errors_deg).to_csv(stage / "poses.csv", index=False)
            written.append("poses.csv")
        yield Progress("export", 3, steps, "poses")
        if snap.volume is not None:
            write_map(stage / "reconstruction.mrc", snap.volume, ds.pixel_size_a)
            written.append("reconstruction.mrc")
        if snap.checkpoint is not None:
            save_model(stage / "model.pt", snap.checkpoint)
            written.append("model.pt")
        yield Progress("export", 5, steps, "map and model")
        _write_report(snap, stage)
        (stage / "jobs.json").write_text(json.dumps(snap.jobs, indent=2, default=str))
        written += ["metrics.json", "report.png", "jobs.json"]
        yield Progress("export", steps, steps, "report")
    return folder, written


def _write_report(snap: _Snapshot, stage: Path) -> None:
    from matplotlib.figure import Figure

    ds = snap.dataset
    metrics: dict[str, Any] = {"n_particles": len(ds), "box": ds.box, "pixel_size_a": ds.pixel_size_a,
                               **snap.metrics}
    if snap.history:
        metrics["training"] = {"epochs": len(snap.history), "val_mae_deg": snap.history[-1]["val_mae_deg"]}
    if snap.errors_deg is not None:
        metrics["orientation_error_mean_deg"] = float(np.mean(snap.errors_deg))
        metrics["orientation_error_median_deg"] = float(np.median(snap.errors_deg))
    (stage / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    fig = Figure(figsize=(9, 3), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    if snap.history:
        ax1.plot([x["val_loss"] for x in snap.history], label="validation")
        ax1.plot([x["train_loss"] for x in snap.history], label="train")
        ax1.set_title("loss (rad²)")
        ax1.legend(fontsize=7)
    if snap.errors_deg is not None:
        ax2.hist(snap.errors_deg, bins=60)
        ax2.set_title("orientation error (°)")
    if snap.fsc is not None:
        half, truth = snap.fsc
        draw_fsc(ax3, {"half-maps": half, **({"vs truth": truth.best} if truth is not None else {})})
        ax3.set_title("FSC")
    fig.savefig(stage / "report.png", dpi=100)
