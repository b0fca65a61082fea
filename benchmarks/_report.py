"""Machine description and the docs/benchmarks.md tables."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
# overridable so that tests can run a benchmark without touching the checkout's records
RESULTS = Path(os.environ.get("CRYORIENT_BENCHMARK_RESULTS", ROOT / "benchmarks" / "results"))
DOCS = Path(os.environ.get("CRYORIENT_BENCHMARK_DOCS", ROOT / "docs" / "benchmarks.md"))


def _commit() -> str | None:
    """The checkout's commit (``-dirty`` when it has uncommitted changes), if it is a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "")


# the code a run imports is the checkout as it was when the run started: a commit made
# while a long benchmark runs must not be recorded as the code that produced it
_COMMIT_AT_START = _commit()


def machine() -> dict:
    """CPU count, GPU, torch version, platform, and the code's commit (when the run started)."""
    return {
        "commit": _COMMIT_AT_START,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def machine_label(m: dict) -> str:
    """Short description of a stored machine record for table rows."""
    threads = m.get("torch_threads")
    cpu = f"{m['cpu_count']} CPU" + (f" ({threads} thread{'s' if threads > 1 else ''})"
                                     if threads and threads != m["cpu_count"] else "")
    label = f"{cpu}, torch {m['torch']}" + (f", {m['gpu']}" if m.get("gpu") else "")
    return label + (f", code {m['commit']}" if m.get("commit") else "")


def save_json(name: str, payload: dict) -> Path:
    """Write ``benchmarks/results/NAME.json`` and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    return path


def update_docs_section(name: str, markdown: str) -> None:
    """Replace the section between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``."""
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text)
