"""Job history: every run of this session, and a project folder that keeps them.

Opening a project folder shows the jobs recorded there by earlier sessions, writes this
session's records into it, and makes every later job write its record there as it ends
(``jobs/NNN_job/job.json`` and ``log.txt``; :mod:`napari_cryorient.io.project`). Selecting
a row shows the job's parameters, result and log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from magicgui.widgets import Container, FileEdit, PushButton
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QPlainTextEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..engine.jobs import format_duration
from ..io.errors import InputError
from ..io.project import read_project
from ._project import save_unsaved_records
from ._session import get_session
from ._settings import load_settings, save_settings

__all__ = ["HistoryWidget"]

COLUMNS = ("#", "job", "status", "started", "time", "data set", "result")


class HistoryWidget(QWidget):
    """The session's job records, and the project folder they are kept in."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = get_session(napari_viewer)
        self.folder = FileEdit(name="project", label="project folder", mode="d",
                               value=str(Path.cwd() / "cryorient-project"))
        self.form = Container(widgets=[self.folder])
        load_settings("history", self.form)
        self.open_button = PushButton(text="Open project (jobs are recorded there)")
        self.open_button.changed.connect(lambda *_: self.open_project())
        self.status = QLabel("no project folder: jobs are kept for this session only")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._show_selected)
        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setPlaceholderText("select a job to see its parameters, result and log")
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.open_button.native)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 2)
        layout.addWidget(self.details, 1)
        #: the rows shown: (record dict, log lines, folder or "")
        self.rows: list[tuple[dict[str, Any], list[str], str]] = []
        self._earlier: list[tuple[dict[str, Any], list[str], str]] = []
        self.session.events.history.connect(self.refresh)
        self.refresh()

    def open_project(self, folder: str | Path | None = None) -> bool:
        """Make ``folder`` (default: the field's) the session's project folder: its jobs are
        listed, and this session's records are written into it; False on a bad folder."""
        folder = Path(folder or self.folder.value).expanduser()
        try:
            jobs, problems = read_project(folder)
        except InputError as err:
            show_error(f"Job history: {err}")
            return False
        mine = {r.folder for r in self.session.history if r.folder}
        self._earlier = [(j.record, j.log, str(j.folder)) for j in jobs if str(j.folder) not in mine]
        self.session.project = folder
        self.folder.value = str(folder)
        save_settings("history", self.form)
        saved = save_unsaved_records(self.session)
        for note in problems:
            show_warning(f"Job history: {note}")
        self.status.setText(f"project {folder}: {len(jobs)} earlier job(s)"
                            + (f", {saved} of this session written" if saved else "")
                            + "; every job is recorded there as it ends")
        self.refresh()
        if not jobs and not saved:
            show_info(f"Job history: new project folder {folder}")
        return True

    def refresh(self, *_: Any) -> None:
        """List the project's earlier jobs, then this session's."""
        mine = [(r.to_json(), list(r.log), r.folder) for r in self.session.history]
        self.rows = [*self._earlier, *mine]
        self.table.setRowCount(len(self.rows))
        for i, (rec, _log, folder) in enumerate(self.rows):
            number = Path(folder).name.split("_")[0] if folder else "—"
            started = str(rec.get("started", "")).replace("T", " ")
            cells = (number, rec.get("job", ""), rec.get("status", ""), started,
                     format_duration(float(rec.get("duration_s", 0.0))), rec.get("dataset", ""),
                     rec.get("summary", ""))
            for j, text in enumerate(cells):
                item = QTableWidgetItem(str(text))
                item.setToolTip(str(text))
                self.table.setItem(i, j, item)
        if self.rows:
            self.table.scrollToBottom()

    def _show_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        rec, log, folder = self.rows[rows[0].row()]
        text = [f"{rec.get('job', '')} — {rec.get('status', '')}", f"folder: {folder or '(not saved)'}",
                f"result: {rec.get('summary', '')}", "", "parameters:",
                json.dumps(rec.get("parameters", {}), indent=1), "", "log:", *log]
        self.details.setPlainText("\n".join(text))
