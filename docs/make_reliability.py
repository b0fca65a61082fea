"""Write docs/reliability.md: the promises, and every fault-injection case with its outcome.

Runs the cases of ``tests/reliability/cases.py`` (the same the test suite runs) in a
temporary folder. usage: python docs/make_reliability.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.reliability.cases import CASES, CLASSES, base_set  # noqa: E402

PROMISES = """\
# Reliability: what the command line promises

Measured by `python docs/make_reliability.py`, which runs every case of the fault-injection
suite (`tests/reliability/cases.py`, also run by `make test`) and writes this page.

* **Bad input** (a file, a flag, a value) gives one line on stderr naming the file (or the
  option) and the problem, exit code 2, and nothing written: every file that existed
  before is byte-identical afterwards, and no new file is left.
* **An output never destroys an input.** Each command resolves the files it reads —
  including the image stacks a STAR or `.cs` names, `--model`, `--ctf-pkl`, a
  simulation's clean images — and the files it will write, and refuses any overlap before
  computing anything (`io/output_guard.py`). `train --resume M --out M` is allowed: updating
  that checkpoint is the point.
* **Outputs are checked before the work**: an empty path, an existing directory given as a
  file, a folder that is a file, a folder that cannot be written. If writing still fails
  at the end (a disk that filled up meanwhile), the message says so and no partial file
  is left; `train` then keeps the model in the temporary folder and says where.
* **Physical values are finite and in range**, from flags (pixel size, SNR, shifts,
  defocus, learning rate, threads, box, N, steps) and per row from files (pixel size,
  origins, angles, every CTF parameter), naming the row and the column.
* **Full disks, signals, leftovers.** Stacks reserve their disk blocks before they are
  written (a full disk is an error, not a SIGBUS); SIGTERM acts like Ctrl-C; a run writes
  into a `.staging-<pid>-*` folder that is removed on failure, and the next run into that
  folder removes those of runs that were killed; moving the files into place holds a lock
  on the folder, so two runs never mix their files; pipes and devices are refused as inputs.
* **Training resumes exactly.** Ctrl-C and SIGTERM take effect between steps; the
  checkpoint is also written every few minutes (`--checkpoint-every`); `--resume` keeps
  the run's schedule unless `--epochs` is given and refuses other data (a fingerprint of
  the training set is stored); clean images are used only when the simulation recorded
  them for exactly that STAR file (its SHA-256 in `simulation.json`).
"""


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base_set(root)
        for i, case in enumerate(CASES):
            folder = root / f"case{i:03d}"
            folder.mkdir()
            t0 = time.perf_counter()
            try:
                outcome = case.run(folder)
                ok, detail = outcome.ok, outcome.detail
            except Exception as err:  # a crash of the case is a failed promise too
                ok, detail = False, f"{type(err).__name__}: {err}"
            rows.append((case.klass, case.name, ok, detail, time.perf_counter() - t0))
            print(f"{'ok ' if ok else 'FAIL'} {case.klass} {case.name}: {detail[:100]}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    commit += "-dirty" if dirty else ""
    lines = [PROMISES, f"## Cases tried ({sum(r[2] for r in rows)} of {len(rows)} keep the promise; "
             f"commit {commit}, {time.strftime('%Y-%m-%d')})", ""]
    for klass, title in CLASSES.items():
        lines += [f"### {klass}. {title}", "", "| case | outcome | what happened |", "|---|---|---|"]
        for k, name, ok, detail, _ in rows:
            if k == klass:
                text = detail.replace("|", "\\|").replace("\n", " ")
                text = text.replace(tmp, "…")
                lines.append(f"| {name} | {'kept' if ok else '**broken**'} | {text[:180]} |")
        lines.append("")
    (ROOT / "docs" / "reliability.md").write_text("\n".join(lines))
    return 0 if all(r[2] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
