"""The project folder (job records a user can reopen) and settings restored into a new
session, driven through the widgets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_cryorient.io.project import read_project, write_job_record
from napari_cryorient.widgets import DatasetWidget, ExportWidget, HistoryWidget


@pytest.fixture
def notes(monkeypatch):
    """Error and warning notifications of the widgets involved."""
    seen: list[str] = []
    import napari_cryorient.widgets._base as base
    import napari_cryorient.widgets._project as project
    import napari_cryorient.widgets.history as history

    for module in (base, project, history):
        monkeypatch.setattr(module, "show_error", seen.append)
    monkeypatch.setattr(history, "show_warning", seen.append)
    return seen


def _simulate(viewer, qtbot, n=60):
    w = DatasetWidget(viewer)
    w.n.value, w.box.value, w.pixel.value, w.snr.value = n, 32, 4.0, 0.0
    w.start()
    qtbot.waitUntil(lambda: not w.runner.running, timeout=60_000)
    return w


def test_jobs_are_recorded_in_the_project_folder_and_reopen_in_a_new_session(
        make_napari_viewer, qtbot, tmp_path, notes):
    project = tmp_path / "project"
    viewer = make_napari_viewer()
    _simulate(viewer, qtbot, n=40)  # before any project: kept in the session, written at open
    history = HistoryWidget(viewer)
    assert history.table.rowCount() == 1
    assert history.open_project(project)
    _simulate(viewer, qtbot, n=50)
    export = ExportWidget(viewer)
    assert export.export(tmp_path / "export")
    qtbot.waitUntil(lambda: not export.runner.running, timeout=60_000)

    jobs, problems = read_project(project)
    assert problems == []
    assert [(j.number, j.record["job"], j.record["status"]) for j in jobs] == [
        (1, "dataset", "finished"), (2, "dataset", "finished"), (3, "export", "finished")]
    assert jobs[1].record["parameters"]["n"] == 50 and "50 particles" in jobs[1].record["summary"]
    assert any("simulate" in line for line in jobs[1].log) and "finished" in jobs[1].log[-1]
    assert history.table.rowCount() == 3

    # a new session reopens the project: the earlier jobs are listed with their logs
    viewer2 = make_napari_viewer()
    reopened = HistoryWidget(viewer2)
    assert reopened.folder.value == project  # remembered, as the export's folder is
    assert ExportWidget(viewer2).folder.value == tmp_path / "export"
    assert reopened.open_project()
    assert reopened.table.rowCount() == 3
    reopened.table.selectRow(1)
    details = reopened.details.toPlainText()
    assert '"n": 50' in details and "log:" in details and "finished" in details
    _simulate(viewer2, qtbot, n=40)
    assert [j.number for j in read_project(project)[0]] == [1, 2, 3, 4]  # never a reused number
    assert reopened.table.rowCount() == 4 and notes == []


def test_a_damaged_record_is_named_and_a_file_is_no_project(make_napari_viewer, tmp_path, notes):
    project = tmp_path / "project"
    write_job_record(project, {"job": "train", "status": "finished"}, ["+0.0 s  train 1/1"])
    broken = project / "jobs" / "002_recover"
    broken.mkdir()
    (broken / "job.json").write_text("{not json")
    history = HistoryWidget(make_napari_viewer())
    assert history.open_project(project)
    assert history.table.rowCount() == 1 and "002_recover" in notes[-1]
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    assert not history.open_project(not_a_folder)
    assert "not a project folder" in notes[-1]


def test_a_full_disk_keeps_the_record_in_the_session(make_napari_viewer, qtbot, tmp_path, notes, monkeypatch):
    import napari_cryorient.widgets._project as project_module

    def refuse(*_a, **_k):
        raise OSError(28, "No space left on device")

    viewer = make_napari_viewer()
    history = HistoryWidget(viewer)
    assert history.open_project(tmp_path / "project")
    monkeypatch.setattr(project_module, "write_job_record", refuse)
    _simulate(viewer, qtbot, n=30)
    assert "No space left" in notes[-1]
    assert len(history.session.history) == 1 and history.session.history[0].folder == ""


def test_restored_use_opened_layers_settings_never_offer_a_map_as_the_stack(
        make_napari_viewer, qtbot, tmp_path, notes):
    """Settings saved in 'use opened layers' mode come back in that mode; with only the
    sample map open there is no stack to adopt (one clear line), and with a stack open the
    stack is what is offered."""
    from napari_cryorient.plugin.sample_data import sample_particles, sample_volume

    first = DatasetWidget(make_napari_viewer())
    first.source.value = "use opened layers"
    from napari_cryorient.widgets._settings import save_settings

    save_settings("dataset", first.form)
    viewer = make_napari_viewer()
    for data, kwargs, _kind in sample_volume():
        viewer.add_image(data, **kwargs)
    w = DatasetWidget(viewer)
    assert w.source.value == "use opened layers"
    assert w.stack.choices == ()
    w.start()
    assert "open a particle stack first" in notes[-1] and w.session.dataset is None
    for data, kwargs, kind in sample_particles(n=60):
        if kind == "image":
            viewer.add_image(data, **kwargs)
    stacks = [layer.name for layer in w.stack.choices]
    assert stacks and all(viewer.layers[name].ndim == 4 for name in stacks)
    w.start()
    qtbot.waitUntil(lambda: not w.runner.running, timeout=60_000)
    assert w.session.dataset is not None and len(w.session.dataset) == 60
    assert np.asarray(w.session.dataset.images).shape[1:] == (64, 64)
    json.dumps([r.to_json() for r in w.session.history])  # records stay serialisable
