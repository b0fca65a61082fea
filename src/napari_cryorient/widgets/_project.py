"""Saving job records into the session's project folder (main thread; small files)."""

from __future__ import annotations

from dataclasses import replace

from napari.utils.notifications import show_error

from ..io.errors import InputError
from ..io.project import write_job_record
from ._session import JobRecord, Session

__all__ = ["save_record", "save_unsaved_records"]


def save_record(session: Session, record: JobRecord) -> JobRecord:
    """Write ``record`` into the session's project folder (when one is open) and return it
    with its folder; a disk that refuses is reported once, and the record stays in the
    session's history (the Export widget still writes it to ``jobs.json``)."""
    if session.project is None or record.folder:
        return record
    try:
        folder = write_job_record(session.project, record.to_json(), list(record.log))
    except (OSError, InputError) as err:
        show_error(f"Job history: could not write the {record.job} job's record into "
                   f"{session.project}: {err}")
        return record
    saved = replace(record, folder=str(folder))
    session.replace_record(record, saved)
    return saved


def save_unsaved_records(session: Session) -> int:
    """Write every record of this session not yet in the project folder; how many were."""
    count = 0
    for record in list(session.history):
        if not record.folder and save_record(session, record).folder:
            count += 1
    return count
