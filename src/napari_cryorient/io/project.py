"""A project folder: one sub-folder per job run, as RELION job folders keep them.

Layout::

    PROJECT/
        jobs/
            001_dataset/job.json   # the record: job, parameters, start, duration, status, result
            001_dataset/log.txt    # the progress lines of the run, with times
            002_train/...

Each job folder is written complete or not at all (staged, then renamed), and a number is
never reused, so a record is never overwritten. Reading skips (and names) folders whose
record cannot be read, so that one damaged record never hides the others.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError

__all__ = ["JOBS_DIR", "ProjectJob", "read_project", "write_job_record"]

JOBS_DIR = "jobs"
RECORD_FILE = "job.json"
LOG_FILE = "log.txt"
_FOLDER = re.compile(r"^(\d{3,})_([A-Za-z0-9_-]+)$")


@dataclass(frozen=True)
class ProjectJob:
    """One job folder read back.

    Attributes
    ----------
    number
        The job's number in the project (1, 2, …).
    folder
        Its folder.
    record
        The contents of ``job.json`` (job, parameters, started, duration_s, status, summary,
        dataset).
    log
        The lines of ``log.txt`` (empty when there is none).
    """

    number: int
    folder: Path
    record: dict[str, Any]
    log: list[str] = field(default_factory=list)


def _project_dir(project: str | Path) -> Path:
    project = Path(project).expanduser()
    if project.exists() and not project.is_dir():
        raise InputError("is a file, not a project folder", project)
    return project


def _numbers(jobs: Path) -> list[int]:
    if not jobs.is_dir():
        return []
    return [int(m.group(1)) for p in jobs.iterdir() if (m := _FOLDER.match(p.name))]


def write_job_record(project: str | Path, record: dict[str, Any], log: list[str] | None = None) -> Path:
    """Write one job's record into a new numbered folder of ``project``.

    Parameters
    ----------
    project
        The project folder (made when missing).
    record
        JSON-serialisable record; its ``job`` entry names the folder (``003_recover``).
    log
        Progress lines of the run.

    Returns
    -------
    Path
        The job's folder. Raises :class:`InputError` when ``project`` is a file and
        ``OSError`` when the disk refuses (nothing partial is left behind).
    """
    jobs = _project_dir(project) / JOBS_DIR
    jobs.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", str(record.get("job", "job"))) or "job"
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=jobs))
    try:
        (stage / RECORD_FILE).write_text(json.dumps(record, indent=2, default=str))
        (stage / LOG_FILE).write_text("".join(f"{line}\n" for line in (log or [])))
        while True:  # a number is never reused, even by a writer racing this one
            number = max(_numbers(jobs), default=0) + 1
            target = jobs / f"{number:03d}_{name}"
            try:
                os.rename(stage, target)
                return target
            except OSError:
                if not target.exists():
                    raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def read_project(project: str | Path) -> tuple[list[ProjectJob], list[str]]:
    """The jobs recorded in ``project``, oldest first, and a note per unreadable folder.

    A folder that does not exist yet is an empty project. Raises :class:`InputError` when
    ``project`` is a file.
    """
    jobs_dir = _project_dir(project) / JOBS_DIR
    jobs: list[ProjectJob] = []
    problems: list[str] = []
    if not jobs_dir.is_dir():
        return jobs, problems
    for path in sorted(jobs_dir.iterdir()):
        m = _FOLDER.match(path.name)
        if m is None or not path.is_dir():
            continue
        try:
            record = json.loads((path / RECORD_FILE).read_text())
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as err:
            problems.append(f"{path.name}: unreadable record ({err})")
            continue
        try:
            log = (path / LOG_FILE).read_text().splitlines()
        except OSError:
            log = []
        jobs.append(ProjectJob(int(m.group(1)), path, record, log))
    jobs.sort(key=lambda j: j.number)
    return jobs, problems
