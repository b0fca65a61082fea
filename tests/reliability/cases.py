"""Fault-injection cases, by class: each builds real files in a fresh folder, runs the
real command (in-process, or as a subprocess for signals and resource limits) and checks
its promise. Used by ``tests/reliability/test_reliability.py`` and by
``docs/make_reliability.py`` (which writes the table of ``docs/reliability.md``).

The promise of a refused case: exit code 2, one line on stderr naming the problem (and
the file, when ``names`` is given), and every file that existed before byte-identical,
with nothing new left behind.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import starfile
import torch

from napari_cryorient.cli import main

CLASSES = {
    1: "An output never destroys an input",
    2: "Output paths checked before the work",
    3: "Physical values validated (flags and rows)",
    4: "Full disks, signals, leftovers, special files",
    5: "Training: exact resume, no silent substitution",
    6: "Valid files accepted, memory bounded",
}


@dataclass
class Outcome:
    ok: bool
    detail: str


@dataclass
class Case:
    """One fault: ``run(folder) -> Outcome``."""

    klass: int
    name: str
    run: Callable[[Path], Outcome]


# ----------------------------------------------------------------------------- helpers
def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink() and not p.name.startswith(".cryorient.lock")}


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()  # --threads must not leak into the rest of the suite
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as stop:  # argparse
            code = int(stop.code or 0)
        finally:
            torch.set_num_threads(threads)
    return code, out.getvalue(), err.getvalue()


def refused(argv: Callable[[Path], list], message: str, names: Callable[[Path], object] | None = None,
            setup: Callable[[Path], None] | None = None) -> Callable[[Path], Outcome]:
    """A case that must be refused: exit 2, one line with ``message`` (and the file
    ``names(folder)``), every pre-existing file unchanged and nothing new."""

    def run(folder: Path) -> Outcome:
        if setup is not None:
            setup(folder)
        args = argv(folder)
        before = snapshot(folder)
        code, _, err = run_cli(args)
        after = snapshot(folder)
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        problems = []
        if code != 2:
            problems.append(f"exit {code}")
        if len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr")
        if message not in err:
            problems.append(f"message lacks {message!r}")
        if names is not None and str(names(folder)) not in err:
            problems.append(f"message does not name {names(folder)}")
        if "Traceback" in err:
            problems.append("traceback")
        if after != before:
            changed = sorted(set(after) ^ set(before)) + [k for k in before if k in after and after[k] != before[k]]
            problems.append(f"files changed: {changed[:4]}")
        return Outcome(not problems, "; ".join(problems) or lines[0][:160])

    return run


def subprocess_cli(args: list, preexec=None, timeout: float = 300, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "napari_cryorient.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=preexec, **kw)


# ------------------------------------------------------------------------------ data
BASE: dict[str, Path] = {}


def base_set(root: Path) -> Path:
    """A small simulated set (40 particles of 16², CTF, origins) made once per session."""
    if "sim" not in BASE:
        d = root / "base"
        code, _, err = run_cli(["simulate", "--sample", "pseudo-protein", "--n", "40", "--box", "16",
                                "--pixel-size", "4", "--ctf", "--shifts-A", "3", "--snr-db", "0",
                                "--keep-clean", "--out", d])
        assert code == 0, err
        BASE["sim"] = d
    return BASE["sim"]


def copy_set(folder: Path) -> Path:
    d = folder / "d"
    if not d.exists():
        shutil.copytree(BASE["sim"], d)
    return d


def edit_star(folder: Path, name: str, change: Callable[[pd.DataFrame, pd.DataFrame], None]) -> Path:
    d = copy_set(folder)
    blocks = starfile.read(d / "particles.star", always_dict=True)
    change(blocks["particles"], blocks["optics"])
    out = d / name
    starfile.write(blocks, out, overwrite=True)
    return out


def write_mrc_header(path: Path, nx: int, ny: int, nz: int, nsymbt: int = 0, payload: int = 64) -> Path:
    header = np.zeros(256, dtype="<i4")
    header[:4] = (nx, ny, nz, 2)
    header[23] = nsymbt
    raw = bytearray(header.tobytes())
    raw[208:212] = b"MAP "
    raw[212:216] = bytes([0x44, 0x44, 0, 0])
    path.write_bytes(bytes(raw) + b"\0" * payload)
    return path


def _make_fifo(path: Path) -> Path:
    if not path.exists():
        os.mkfifo(path)
    return path


# ------------------------------------------------------------------------ special cases
def _stale_staging_is_removed(folder: Path) -> Outcome:
    out = folder / "out"
    stale = out / ".staging-999999-abc"
    stale.mkdir(parents=True)
    (stale / "particles.mrcs").write_bytes(b"\0" * 4096)
    code, _, _err = run_cli(["simulate", "--sample", "pseudo-protein", "--n", "5", "--box", "16", "--out", out])
    left = [p.name for p in out.iterdir() if p.name.startswith(".staging")]
    return Outcome(code == 0 and not left, f"exit {code}, staging left: {left}" if left or code else
                   "a dead run's staging folder was removed by the next run")


def _full_disk(folder: Path) -> Outcome:
    out = folder / "out"

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))  # 1 MiB files

    p = subprocess_cli(["simulate", "--sample", "pseudo-protein", "--n", "3000", "--box", "32", "--out", out],
                       preexec=limit)
    _, err = p.communicate(timeout=300)
    left = sorted(x.name for x in out.rglob("*")) if out.exists() else []
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    ok = p.returncode == 2 and len(lines) == 1 and "Traceback" not in err and not left
    return Outcome(ok, lines[-1][:160] if ok else f"exit {p.returncode}, left {left}, stderr {err[-300:]}")


class _Stderr:
    """Collects a child's stderr in a thread (bars end lines with ``\\r``, not newlines)."""

    def __init__(self, p: subprocess.Popen) -> None:
        import threading

        self.text = ""
        self._fd = p.stderr.fileno()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while chunk := os.read(self._fd, 4096):
            self.text += chunk.decode("utf-8", "replace")

    def wait_for(self, text: str, p: subprocess.Popen, timeout: float = 120) -> None:
        t0 = time.monotonic()
        while text not in self.text and p.poll() is None and time.monotonic() - t0 < timeout:
            time.sleep(0.02)

    def done(self) -> str:
        self._thread.join(timeout=10)
        return self.text


def _signal_during(command: list, wait_for: str, folder: Path) -> tuple[int, str]:
    p = subprocess_cli(command)
    err = _Stderr(p)
    err.wait_for(wait_for, p)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    return p.returncode, err.done()


def _sigterm_simulate(folder: Path) -> Outcome:
    out = folder / "out"
    code, _err = _signal_during(["simulate", "--sample", "pseudo-protein", "--n", "50000", "--box", "16",
                                "--out", out], "simulate", folder)
    left = sorted(x.name for x in out.rglob("*")) if out.exists() else []
    ok = code == 130 and not [x for x in left if x.startswith(".staging")]
    return Outcome(ok, "SIGTERM stopped the run; its staging was removed" if ok else f"exit {code}, left {left}")


def _sigterm_train(folder: Path) -> Outcome:
    d = copy_set(folder)
    model = folder / "m.pt"
    code, err = _signal_during(["train", "--star", d / "particles.star", "--epochs", "1000",
                                "--steps-per-epoch", "5", "--out", model], "train", folder)
    ok = code == 130 and model.exists()
    step = torch.load(model, weights_only=True)["step"] if model.exists() else None
    return Outcome(ok, f"SIGTERM saved the model at step {step}" if ok else f"exit {code}, {err[-300:]}")


def _train_args(d: Path, out: Path, epochs: int | None = 4) -> list:
    args = ["train", "--star", d / "particles.star", "--steps-per-epoch", "6", "--working-box", "8",
            "--out", out, "--threads", "1", "--checkpoint-every", "0"]
    return args + (["--epochs", str(epochs)] if epochs else [])


def _resume_keeps_the_schedule(folder: Path) -> Outcome:
    d = copy_set(folder)
    m = folder / "m.pt"
    run_cli(_train_args(d, m, epochs=2))
    total = torch.load(m, weights_only=True)["scheduler"]["T_max"]
    code, _out, err = run_cli(["train", "--star", d / "particles.star", "--resume", m, "--out", m,
                              "--checkpoint-every", "0"])
    ck = torch.load(m, weights_only=True)
    ok = code == 0 and ck["scheduler"]["T_max"] == total and ck["step"] == total
    return Outcome(ok, f"resumed run kept T_max = {total}" if ok else f"exit {code}, T_max {ck['scheduler']['T_max']} "
                   f"vs {total}, step {ck['step']} {err[-200:]}")


def _resume_refuses_other_data(folder: Path) -> Outcome:
    d = copy_set(folder)
    m = folder / "m.pt"
    run_cli(_train_args(d, m, epochs=1))
    other = folder / "other"
    run_cli(["simulate", "--sample", "pseudo-protein", "--n", "40", "--box", "16", "--pixel-size", "4",
             "--seed", "5", "--out", other])
    return refused(lambda f: ["train", "--star", other / "particles.star", "--resume", m, "--out", folder / "m2.pt"],
                   "not the ones the model was trained on")(folder)


def _interrupted_resume_is_exact(folder: Path) -> Outcome:
    d = copy_set(folder)
    full, part = folder / "full.pt", folder / "part.pt"
    code, _, err = run_cli(_train_args(d, full, epochs=30))
    if code != 0:
        return Outcome(False, err[-300:])
    p = subprocess_cli(_train_args(d, part, epochs=30))
    err = _Stderr(p)
    err.wait_for("train", p)
    time.sleep(np.random.default_rng().uniform(0.1, 1.5))  # a random moment of the run
    p.send_signal(signal.SIGINT)
    p.wait(timeout=120)
    err.done()
    if not part.exists():
        return Outcome(False, f"no checkpoint after SIGINT (exit {p.returncode})")
    stopped_at = torch.load(part, weights_only=True)["step"]
    code, _, err = run_cli(["train", "--star", d / "particles.star", "--resume", part, "--out", part,
                            "--threads", "1", "--checkpoint-every", "0"])
    a, b = torch.load(full, weights_only=True), torch.load(part, weights_only=True)
    same = all(torch.equal(a["model_state"][k], b["model_state"][k]) for k in a["model_state"])
    same = same and a["best_val"] == b["best_val"] and a["step"] == b["step"]
    return Outcome(code == 0 and same, f"stopped at step {stopped_at}/{a['step']} (exit {p.returncode}), "
                   f"resumed: {'bit-identical' if same else 'DIFFERENT'} weights and best loss")


def _stale_clean_images_are_not_used(folder: Path) -> Outcome:
    d = copy_set(folder)  # has particles_clean.mrcs + noise_variance.npy from --keep-clean
    # re-simulate into the same folder without --keep-clean: the old clean stack stays behind
    run_cli(["simulate", "--sample", "pseudo-protein", "--n", "40", "--box", "16", "--pixel-size", "4",
             "--seed", "9", "--snr-db", "0", "--out", d])
    code, out, _err = run_cli(_train_args(d, folder / "m.pt", epochs=1))
    used = "using the clean images" in out
    return Outcome(code == 0 and not used and (d / "particles_clean.mrcs").exists(),
                   "the stale particles_clean.mrcs was ignored" if not used else "stale clean images were used")


def _relative_cs(folder: Path) -> Outcome:
    shared = Path(__file__).resolve().parents[3] / "shared" / "data" / "formats" / "empiar_10076_7"
    if not shared.exists():
        return Outcome(True, "skipped: ../shared/data not available")
    work = folder / "proj"
    shutil.copytree(shared, work / "dir")
    cwd = os.getcwd()
    os.chdir(work)
    try:
        code, _, err = run_cli(["convert", "dir/empiar_10076_7.cs", "out.star"])
    finally:
        os.chdir(cwd)
    return Outcome(code == 0, "dir/x.cs resolves its images beside it" if code == 0 else err.strip()[:200])


def _metadata_only_convert(folder: Path) -> Outcome:
    d = copy_set(folder)
    moved = folder / "elsewhere.mrcs"
    (d / "particles.mrcs").rename(moved)
    code, _out, err = run_cli(["convert", d / "particles.star", folder / "poses.pkl"])
    ok = code == 0 and "metadata only" in err and (folder / "poses.pkl").exists()
    return Outcome(ok, "converted with a warning" if ok else f"exit {code}: {err.strip()[:200]}")


def _many_stacks_under_the_file_limit(folder: Path) -> Outcome:
    d = copy_set(folder)
    import mrcfile

    from napari_cryorient.io import read_particles
    table = read_particles(d / "particles.star")
    images = table.images()[:]
    stacks = folder / "stacks"
    stacks.mkdir()
    n = 1100
    names = []
    for i in range(n):
        with mrcfile.new(stacks / f"p{i:04d}.mrcs") as m:
            m.set_data(images[i % len(images)][None].copy())
        names.append(f"1@stacks/p{i:04d}.mrcs")
    blocks = starfile.read(d / "particles.star", always_dict=True)
    part = pd.concat([blocks["particles"]] * (n // len(images) + 1), ignore_index=True).iloc[:n].copy()
    part["rlnImageName"] = names
    starfile.write({"optics": blocks["optics"], "particles": part}, folder / "many.star", overwrite=True)

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    p = subprocess_cli(["reconstruct", "--star", folder / "many.star", "--out", folder / "many.mrc"], preexec=limit)
    _, err = p.communicate(timeout=300)
    return Outcome(p.returncode == 0, f"{n} one-image stacks read under a 1 024 open-file limit"
                   if p.returncode == 0 else err.strip()[-200:])


def _pickled_dict_as_poses(folder: Path) -> Path:
    copy_set(folder)
    path = folder / "poses.pkl"
    with open(path, "wb") as f:
        pickle.dump({"rot": np.eye(3)}, f)
    return path


def _checkpoint_without_config(folder: Path) -> Path:
    path = folder / "bad.pt"
    torch.save({"format": "napari-cryorient-siamese/1", "norm": [0.0, 1.0]}, path)
    return path


# ------------------------------------------------------------------------------ cases
def _star(f: Path) -> Path:
    return copy_set(f) / "particles.star"


CASES: list[Case] = [
    # 1. an output never destroys an input
    Case(1, "preprocess into the folder of its own stack", refused(
        lambda f: ["preprocess", "--star", _star(f), "--out", copy_set(f)], "would overwrite an input")),
    Case(1, "simulate into the folder of its own map", refused(
        lambda f: ["simulate", "--volume", copy_set(f) / "volume.mrc", "--out", copy_set(f)], "would overwrite")),
    Case(1, "fsc --json onto one of its maps", refused(
        lambda f: ["fsc", copy_set(f) / "volume.mrc", copy_set(f) / "volume.mrc", "--json", copy_set(f) / "volume.mrc"],
        "would overwrite")),
    Case(1, "project onto the stack its STAR names", refused(
        lambda f: ["project", "--volume", copy_set(f) / "volume.mrc", "--star", _star(f), "--out",
                   copy_set(f) / "particles.mrcs"], "would overwrite")),
    Case(1, "project --out p.star (a STAR pointing at itself)", refused(
        lambda f: ["project", "--volume", copy_set(f) / "volume.mrc", "--star", _star(f), "--out",
                   f / "p.star"], "give a .mrcs name")),
    Case(1, "recover over its own STAR", refused(
        lambda f: ["recover", "--star", _star(f), "--model", f / "m.pt", "--out", _star(f)], "would overwrite")),
    Case(1, "reconstruct over its own stack", refused(
        lambda f: ["reconstruct", "--star", _star(f), "--out", copy_set(f) / "particles.mrcs"], "would overwrite")),
    Case(1, "train over its own stack", refused(
        lambda f: ["train", "--star", _star(f), "--out", copy_set(f) / "particles.mrcs"], "would overwrite")),
    Case(1, "evaluate --json onto the truth", refused(
        lambda f: ["evaluate", "--star", _star(f), "--truth", _star(f), "--json", _star(f)], "would overwrite")),
    # 2. outputs checked before the work
    Case(2, "train --out an existing directory", refused(
        lambda f: ["train", "--star", _star(f), "--out", copy_set(f)], "is an existing directory")),
    Case(2, "train --out ''", refused(lambda f: ["train", "--star", _star(f), "--out", ""], "empty path")),
    Case(2, "an output inside a file", refused(
        lambda f: ["reconstruct", "--star", _star(f), "--out", _star(f) / "map.mrc"], "is not a directory")),
    Case(2, "an output folder that is a file", refused(
        lambda f: ["simulate", "--sample", "pseudo-protein", "--n", "5", "--out", _star(f)], "is not a directory")),
    # 3. physical values
    Case(3, "one NaN rlnOriginXAngst in 40 rows", refused(
        lambda f: ["reconstruct", "--star", edit_star(f, "nan.star", lambda p, o: p.__setitem__(
            "rlnOriginXAngst", p["rlnOriginXAngst"].where(p.index != 2, np.nan))), "--out", f / "m.mrc"],
        "row 3", names=lambda f: f / "d" / "nan.star")),
    *[Case(3, f"rlnImagePixelSize {v}", refused(
        lambda f, v=v: ["reconstruct", "--star", edit_star(f, "px.star", lambda p, o: o.__setitem__(
            "rlnImagePixelSize", v)), "--out", f / "m.mrc"], "pixel size", names=lambda f: f / "d" / "px.star"))
      for v in (0.0, -2.0)],
    *[Case(3, f"--pixel-size {v}", refused(
        lambda f, v=v: ["reconstruct", "--star", _star(f), "--pixel-size", v, "--out", f / "m.mrc"], "--pixel-size"))
      for v in ("0", "nan", "inf", "-1", "1e-300")],
    Case(3, "NaN defocus with Wiener correction", refused(
        lambda f: ["reconstruct", "--star", edit_star(f, "df.star", lambda p, o: p.__setitem__(
            "rlnDefocusU", p["rlnDefocusU"].where(p.index != 4, np.nan))), "--ctf-correction", "wiener",
                   "--out", f / "m.mrc"], "rlnDefocusU", names=lambda f: f / "d" / "df.star")),
    Case(3, "voltage 0", refused(
        lambda f: ["reconstruct", "--star", edit_star(f, "kv.star", lambda p, o: o.__setitem__("rlnVoltage", 0.0)),
                   "--out", f / "m.mrc"], "rlnVoltage")),
    Case(3, "a non-numeric angle", refused(
        lambda f: ["reconstruct", "--star", edit_star(f, "ang.star", lambda p, o: p.__setitem__(
            "rlnAngleRot", p["rlnAngleRot"].astype(object).where(p.index != 1, "abc"))), "--out", f / "m.mrc"],
        "not a number", names=lambda f: f / "d" / "ang.star")),
    Case(3, "simulate --shifts-A inf", refused(
        lambda f: ["simulate", "--sample", "pseudo-protein", "--shifts-A", "inf", "--out", f / "o"], "--shifts-A")),
    Case(3, "simulate --snr-db nan", refused(
        lambda f: ["simulate", "--sample", "pseudo-protein", "--snr-db", "nan", "--out", f / "o"], "--snr-db")),
    Case(3, "train --lr inf", refused(
        lambda f: ["train", "--star", _star(f), "--lr", "inf", "--out", f / "m.pt"], "--lr")),
    Case(3, "--threads 0", refused(
        lambda f: ["reconstruct", "--star", _star(f), "--threads", "0", "--out", f / "m.mrc"], "--threads")),
    Case(3, "fsc --pixel-size 0", refused(
        lambda f: ["fsc", copy_set(f) / "volume.mrc", copy_set(f) / "volume.mrc", "--pixel-size", "0"],
        "--pixel-size")),
    Case(3, "fsc of maps with different voxel sizes", refused(
        lambda f: ["fsc", copy_set(f) / "volume.mrc", f / "v3.mrc"], "different voxel sizes",
        setup=lambda f: _rescaled_map(f))),
    Case(3, "fsc of an all-zero map", refused(
        lambda f: ["fsc", copy_set(f) / "volume.mrc", f / "zero.mrc"], "constant",
        names=lambda f: f / "zero.mrc", setup=lambda f: _zero_map(f))),
    # 4. full disks, signals, leftovers, special files
    Case(4, "a FIFO given as a STAR file", refused(
        lambda f: ["reconstruct", "--star", _make_fifo(f / "fifo.star"), "--out", f / "m.mrc"],
        "not a regular file", names=lambda f: f / "fifo.star")),
    Case(4, "a FIFO given as a map", refused(
        lambda f: ["fsc", _make_fifo(f / "fifo.mrc"), copy_set(f) / "volume.mrc"], "not a regular file")),
    Case(4, "a dead run's staging folder", _stale_staging_is_removed),
    Case(4, "a full disk during simulate (RLIMIT_FSIZE)", _full_disk),
    Case(4, "SIGTERM during simulate", _sigterm_simulate),
    Case(4, "the disk fills up after reconstruct computed its maps", lambda f: _disk_full_at_the_end(f)),
    Case(4, "SIGTERM during train", _sigterm_train),
    # 5. training
    Case(5, "--resume without --epochs", _resume_keeps_the_schedule),
    Case(5, "--resume on another data set of the same size", _resume_refuses_other_data),
    Case(5, "SIGINT at a random moment, then --resume", _interrupted_resume_is_exact),
    Case(5, "stale particles_clean.mrcs beside a re-simulated STAR", _stale_clean_images_are_not_used),
    # 6. valid files accepted, memory bounded
    Case(6, "a .cs given as dir/x.cs", _relative_cs),
    Case(6, "convert a STAR whose images are elsewhere", _metadata_only_convert),
    Case(6, "1 100 one-image stacks, open-file limit 1 024", _many_stacks_under_the_file_limit),
    Case(6, "MRC header with nsymbt = 2³¹−1", refused(
        lambda f: ["fsc", write_mrc_header(f / "big.mrc", 8, 8, 8, nsymbt=2**31 - 1), copy_set(f) / "volume.mrc"],
        "extended header", names=lambda f: f / "big.mrc")),
    Case(6, "MRC header with negative dimensions", refused(
        lambda f: ["fsc", write_mrc_header(f / "neg.mrc", -8, 8, 8), copy_set(f) / "volume.mrc"], "dimensions")),
    Case(6, "a 23-digit @ index", refused(
        lambda f: ["reconstruct", "--star", edit_star(f, "idx.star", lambda p, o: p.__setitem__(
            "rlnImageName", ["1" * 23 + "@particles.mrcs"] * len(p))), "--out", f / "m.mrc"], "bad image name")),
    Case(6, "--device cuda:99", refused(
        lambda f: ["reconstruct", "--star", _star(f), "--device", "cuda:99", "--out", f / "m.mrc"], "cuda:99")),
    Case(6, "train --working-box 0", refused(
        lambda f: ["train", "--star", _star(f), "--working-box", "0", "--out", f / "m.pt"], "--working-box")),
    Case(6, "a checkpoint without config", refused(
        lambda f: ["recover", "--star", _star(f), "--model", _checkpoint_without_config(f), "--out", f / "r.star"],
        "incomplete", names=lambda f: f / "bad.pt")),
    Case(6, "recover --steps 0", refused(
        lambda f: ["recover", "--star", _star(f), "--model", f / "m.pt", "--steps", "0", "--out", f / "r.star"],
        "--steps")),
    Case(6, "a .cs whose poses have 4 values", refused(
        lambda f: ["convert", _cs_with_wide_poses(f), f / "x.star"], "alignments3D/pose",
        names=lambda f: f / "wide.cs")),
    Case(6, "an 80 KB pickle that asks for 28.8 GB", refused(
        lambda f: ["convert", _huge_pickle(f), f / "x.star", "--images", copy_set(f) / "particles.mrcs"],
        "does not fit its data", names=lambda f: f / "huge.pkl")),
    Case(6, "a pickled string as cryoDRGN poses", refused(
        lambda f: ["convert", _pickled_string(f), f / "x.star", "--images", copy_set(f) / "particles.mrcs"],
        "string.pkl")),
    Case(6, "recover with a NaN model", refused(
        lambda f: ["recover", "--star", _star(f), "--model", _nan_model(f), "--out", f / "r.star"],
        "not finite", names=lambda f: f / "nan.pt")),
    Case(6, "a pickled dict as cryoDRGN poses", refused(
        lambda f: ["convert", _pickled_dict_as_poses(f), f / "x.star", "--images", copy_set(f) / "particles.mrcs"],
        "poses.pkl")),
]


def _disk_full_at_the_end(folder: Path) -> Outcome:
    """The output folder's disk fills up after the computation: the maps are kept elsewhere."""
    import errno
    from unittest import mock

    import napari_cryorient.cli.reconstruct as rc

    real = rc.write_map
    target = folder / "out"

    def failing(path, *args, **kwargs):
        if target in Path(path).parents:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *args, **kwargs)

    target.mkdir()
    with mock.patch.object(rc, "write_map", failing):
        code, _, err = run_cli(["reconstruct", "--star", _star(folder), "--half-maps", "--out", target / "m.mrc"])
    last = err.strip().splitlines()[-1] if err.strip() else ""  # the progress bar ends with \r
    rescued = [p for p in last.split() if "cryorient-rescue-" in p]
    kept = bool(rescued) and (Path(rescued[0]) / "m.mrc").exists()
    ok = code == 2 and kept and not list(target.iterdir()) and "Traceback" not in err
    return Outcome(ok, last[:220] if ok else f"exit {code}, kept {kept}, left {list(target.iterdir())}: {last[:200]}")


def _cs_with_wide_poses(folder: Path) -> Path:
    d = copy_set(folder)
    n = 40
    dtype = [("blob/path", "S64"), ("blob/idx", "<u4"), ("blob/psize_A", "<f4"), ("blob/shape", "<u4", (2,)),
             ("alignments3D/pose", "<f4", (4,))]
    data = np.zeros(n, dtype=dtype)
    data["blob/path"] = str(d / "particles.mrcs").encode()
    data["blob/idx"] = np.arange(n)
    data["blob/psize_A"] = 4.0
    data["blob/shape"] = 16
    path = folder / "wide.cs"
    with open(path, "wb") as f:
        np.save(f, data)
    return path


class _HugeArray:
    """Pickles as an ndarray that claims 28.8 GB of float64 with 80 KB of data."""

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        state = (1, (120_000, 3, 10_000), np.dtype("<f8"), False, b"\0" * 80_000)
        return _reconstruct, (np.ndarray, (0,), b"b"), state


def _huge_pickle(folder: Path) -> Path:
    path = folder / "huge.pkl"
    with open(path, "wb") as f:
        pickle.dump(_HugeArray(), f)
    return path


def _pickled_string(folder: Path) -> Path:
    path = folder / "string.pkl"
    with open(path, "wb") as f:
        pickle.dump("not poses", f)
    return path


def _nan_model(folder: Path) -> Path:
    d = copy_set(folder)
    model = folder / "nan.pt"
    run_cli(_train_args(d, model, epochs=1))
    ck = torch.load(model, weights_only=True)
    for state in (ck["model_state"], ck["best_state"]):
        if state:
            for v in state.values():
                if v.is_floating_point():
                    v.fill_(float("nan"))
    torch.save(ck, model)
    return model


def _rescaled_map(folder: Path) -> None:
    from napari_cryorient.io import read_map, write_map

    m = read_map(copy_set(folder) / "volume.mrc")
    write_map(folder / "v3.mrc", m.data, m.voxel_size_a * 1.5)


def _zero_map(folder: Path) -> None:
    from napari_cryorient.io import write_map

    write_map(folder / "zero.mrc", np.zeros((16, 16, 16), np.float32), 4.0)
