"""RELION particle STAR files (starfile) and the images they point to.

Reading accepts RELION 3.1+ files (``data_optics`` + ``data_particles``, origins in Å
``rlnOriginXAngst``/``YAngst``, pixel size ``rlnImagePixelSize``) and RELION 3.0 files
(one block, origins in pixels ``rlnOriginX``/``Y``, pixel size from
``rlnDetectorPixelSize · 1e4 / rlnMagnification``). Writing produces RELION 3.1+ files.

Poses are converted with :mod:`napari_cryorient.engine.so3`: RELION's
``(rlnAngleRot, rlnAngleTilt, rlnAnglePsi)`` matrix *is* the package's pose matrix, and
``rlnOriginX/YAngst`` are the origins used by the simulator and reconstructor.
``rlnImageName`` is ``index@stack`` with a 1-based index and a path relative to the STAR
file's folder (absolute paths are kept).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import starfile

from ..engine import so3
from ..engine.ctf import CTFParams
from .atomic_write import atomic_path
from .errors import InputError, MissingImagesError, check_input_file
from .mrc import check_finite, read_stack

__all__ = ["ParticleStack", "ParticleTable", "read_particles", "table_from_blocks", "write_particles"]

ANGLE_COLUMNS = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
_CTF_DEFAULTS = {
    "rlnDefocusAngle": 0.0,
    "rlnCtfBfactor": 0.0,
    "rlnPhaseShift": 0.0,
}


def numeric_columns(table: pd.DataFrame, columns: list[str], path: Path) -> np.ndarray:
    """`(n, len(columns))` float64 values; :class:`InputError` naming the file, the row and
    the column of the first value that is not a number."""
    try:
        return table[columns].to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        for col in columns:
            values = pd.to_numeric(table[col], errors="coerce")
            bad = np.flatnonzero(values.isna() & table[col].notna())
            if len(bad):
                raise InputError(f"row {bad[0] + 1}: {col} is {table[col].iloc[bad[0]]!r}, not a number",
                                 path) from None
        raise InputError(f"columns {', '.join(columns)} hold values that are not numbers", path) from None


@dataclass
class ParticleTable:
    """A particle STAR file as read.

    Attributes
    ----------
    particles
        The particle block, all original columns, optics columns merged in (so each row
        has ``rlnVoltage``, ``rlnImagePixelSize``...).
    optics
        The original optics block (RELION 3.1+), or None for RELION 3.0 files.
    path
        The STAR file.
    pixel_size_a
        `(n,)` pixel size of each particle in Å (NaN when the file does not say).
    """

    particles: pd.DataFrame
    optics: pd.DataFrame | None
    path: Path
    pixel_size_a: np.ndarray
    _merged_optics_columns: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.particles)

    @property
    def has_angles(self) -> bool:
        """Whether all three RELION angle columns are present."""
        return all(c in self.particles for c in ANGLE_COLUMNS)

    @property
    def pixel_size(self) -> float:
        """The common pixel size in Å; :class:`InputError` if missing or not unique."""
        ps = self.pixel_size_a
        if np.all(np.isnan(ps)):
            raise InputError("no pixel size (rlnImagePixelSize, or rlnDetectorPixelSize and "
                             "rlnMagnification); give it explicitly", self.path)
        values = np.unique(np.round(ps[~np.isnan(ps)], 6))
        if len(values) > 1:
            raise InputError(f"particles have different pixel sizes ({', '.join(map(str, values))} Å); "
                             "process one optics group at a time", self.path)
        return float(values[0])

    def rotations(self) -> np.ndarray:
        """`(n, 3, 3)` poses from the RELION angles (package convention)."""
        missing = [c for c in ANGLE_COLUMNS if c not in self.particles]
        if missing:
            raise InputError(f"no particle orientations: missing column(s) {', '.join(missing)}",
                             self.path)
        euler = numeric_columns(self.particles, list(ANGLE_COLUMNS), self.path)
        if not np.isfinite(euler).all():
            raise InputError("angle columns contain non-numeric or infinite values", self.path)
        return so3.euler_relion_to_matrix(euler)

    def shifts_a(self) -> np.ndarray:
        """`(n, 2)` RELION origins ``(x, y)`` in Å (zeros when absent)."""
        p = self.particles
        if "rlnOriginXAngst" in p and "rlnOriginYAngst" in p:
            return numeric_columns(p, ["rlnOriginXAngst", "rlnOriginYAngst"], self.path)
        if "rlnOriginX" in p and "rlnOriginY" in p:  # RELION 3.0: pixels
            return numeric_columns(p, ["rlnOriginX", "rlnOriginY"], self.path) * self.pixel_size_a[:, None]
        return np.zeros((len(p), 2))

    def ctf(self) -> CTFParams | None:
        """CTF parameters when the defocus and microscope columns are present, else None."""
        p = self.particles
        needed = ("rlnDefocusU", "rlnVoltage", "rlnSphericalAberration", "rlnAmplitudeContrast")
        if not all(c in p for c in needed):
            return None

        def col(name: str, default: float | None = None) -> np.ndarray:
            if name in p:
                return numeric_columns(p, [name], self.path)[:, 0]
            return np.full(len(p), default, dtype=np.float64)

        return CTFParams(
            defocus_u_a=col("rlnDefocusU"),
            defocus_v_a=col("rlnDefocusV") if "rlnDefocusV" in p else col("rlnDefocusU"),
            defocus_angle_deg=col("rlnDefocusAngle", 0.0),
            voltage_kv=col("rlnVoltage"),
            cs_mm=col("rlnSphericalAberration"),
            amplitude_contrast=col("rlnAmplitudeContrast"),
            b_factor=col("rlnCtfBfactor", 0.0),
            phase_shift_deg=col("rlnPhaseShift", 0.0),
        )

    def image_locations(self) -> tuple[np.ndarray, list[Path]]:
        """0-based indices and absolute stack paths of each particle's image."""
        if "rlnImageName" not in self.particles:
            raise InputError("no rlnImageName column: the STAR file does not point to images",
                             self.path)
        indices = np.empty(len(self), dtype=np.int64)
        paths: list[Path] = []
        base = self.path.parent
        for i, name in enumerate(self.particles["rlnImageName"].astype(str)):
            if "@" in name:
                idx, stack = name.split("@", 1)
                try:
                    indices[i] = int(idx) - 1
                except (ValueError, OverflowError) as err:
                    raise InputError(f"row {i + 1}: bad image name {name!r}", self.path) from err
            else:
                indices[i], stack = 0, name
            p = Path(stack)
            paths.append(p if p.is_absolute() else base / p)
        if np.any(indices < 0):
            raise InputError("image indices in rlnImageName must start at 1", self.path)
        return indices, paths

    def images(self, check_values: bool = True) -> ParticleStack:
        """The particle images, lazily read (memory-mapped) in STAR order."""
        indices, paths = self.image_locations()
        return ParticleStack(indices, paths, star_path=self.path, check_values=check_values)


class ParticleStack:
    """Particle images addressed by ``(index, stack file)`` pairs, read lazily.

    Sliceable along the particle axis (``stack[a:b]`` returns a float32 array). Missing
    files, out-of-range indices and inconsistent image sizes raise :class:`InputError`
    when the stack is built (each file's header is read once, then closed). Reading opens
    the stack files on demand and keeps at most :attr:`MAX_OPEN` of them memory-mapped
    (least recently used first out), so a particle set spread over thousands of files stays
    under the open-file limit.
    """

    #: stack files kept open at once
    MAX_OPEN = 64

    def __init__(
        self,
        indices: np.ndarray,
        paths: list[Path],
        star_path: Path | None = None,
        check_values: bool = True,
    ) -> None:
        self.indices = np.asarray(indices, dtype=np.int64)
        self._file_of = np.empty(len(paths), dtype=np.int64)
        self.files: list[Path] = []
        self._open: OrderedDict[int, Any] = OrderedDict()
        lookup: dict[Path, int] = {}
        lengths: list[int] = []
        sizes: set[int] = set()
        for i, p in enumerate(paths):
            if p not in lookup:
                if not p.exists():
                    raise MissingImagesError(
                        f"image file {p} (particle {i + 1}) does not exist", star_path or p
                    )
                stack = read_stack(p, check_values=False)
                lookup[p] = len(self.files)
                self.files.append(p)
                lengths.append(len(stack.data))
                sizes.add(stack.data.shape[-1])
                if check_values:
                    check_finite(stack.data, p)
                stack.close()
            self._file_of[i] = lookup[p]
        if len(sizes) > 1:
            raise InputError(f"image stacks have different box sizes {sorted(sizes)}", star_path)
        self.box = sizes.pop()
        for f, length in enumerate(lengths):
            used = self.indices[self._file_of == f]
            if used.max() >= length:
                raise InputError(
                    f"image index {used.max() + 1} is out of range: {self.files[f]} holds "
                    f"{length} images", star_path or self.files[f],
                )

    def _data(self, f: int) -> np.ndarray:
        """The memory-mapped images of file ``f`` (opened on demand, LRU-bounded)."""
        if f in self._open:
            self._open.move_to_end(f)
            return self._open[f].data
        while len(self._open) >= self.MAX_OPEN:
            _, oldest = self._open.popitem(last=False)
            oldest.close()
        self._open[f] = read_stack(self.files[f], check_values=False)
        return self._open[f].data

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def shape(self) -> tuple[int, int, int]:
        """`(n, box, box)`."""
        return (len(self), self.box, self.box)

    def __getitem__(self, key: slice | int) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self[int(key) : int(key) + 1][0]
        sel = np.arange(len(self))[key]
        out = np.empty((len(sel), self.box, self.box), dtype=np.float32)
        files = self._file_of[sel]
        for f in np.unique(files):
            rows = np.flatnonzero(files == f)
            idx = self.indices[sel[rows]]
            data = self._data(int(f))
            # contiguous runs read as one slice (the common case)
            if len(idx) and np.all(np.diff(idx) == 1):
                out[rows] = data[idx[0] : idx[-1] + 1]
            else:
                out[rows] = data[idx]
        return out


def _read_blocks(path: Path) -> dict[str, pd.DataFrame]:
    check_input_file(path, "a STAR file")
    try:
        blocks = starfile.read(path, always_dict=True)
    except UnicodeDecodeError as err:
        raise InputError("not a STAR file (binary content)", path) from err
    except Exception as err:  # starfile raises many kinds of errors on bad input
        raise InputError(f"cannot be parsed as a STAR file ({err})", path) from err
    blocks = {k: v for k, v in blocks.items() if isinstance(v, pd.DataFrame) and len(v.columns)}
    if not blocks:
        raise InputError("no data table found (is this a STAR file?)", path)
    return blocks


def read_particles(path: str | Path) -> ParticleTable:
    """Read a RELION 3.0 or 3.1+ particle STAR file.

    Raises
    ------
    InputError
        Missing/empty/unparsable file, no particle table, particles referring to an
        undefined optics group.
    """
    path = Path(path)
    blocks = _read_blocks(path)
    optics = blocks.get("optics")
    if "particles" in blocks:
        particles = blocks["particles"].copy()
    else:
        candidates = [v for k, v in blocks.items() if k != "optics"]
        if not candidates:
            raise InputError("no particle table (data_particles)", path)
        particles = candidates[0].copy()
    if len(particles) == 0:
        raise InputError("the particle table has no rows", path)

    return table_from_blocks(particles, optics, path)


def table_from_blocks(particles: pd.DataFrame, optics: pd.DataFrame | None, path: Path) -> ParticleTable:
    """A :class:`ParticleTable` from a RELION particle block and optional optics block.

    Used by the STAR reader and by the readers of other formats, which translate their
    files into RELION columns. ``path`` is the file the table came from (error messages,
    and the folder that relative image paths start from).
    """
    particles = particles.copy()
    merged: list[str] = []
    if optics is not None and "rlnOpticsGroup" in optics:
        if "rlnOpticsGroup" not in particles:
            if len(optics) != 1:
                raise InputError("particles have no rlnOpticsGroup but there are several "
                                 "optics groups", path)
            particles["rlnOpticsGroup"] = optics["rlnOpticsGroup"].iloc[0]
        unknown = set(particles["rlnOpticsGroup"]) - set(optics["rlnOpticsGroup"])
        if unknown:
            raise InputError(f"particles refer to undefined optics group(s) {sorted(unknown)}", path)
        extra = [c for c in optics.columns if c not in particles.columns]
        merged = [c for c in extra if c != "rlnOpticsGroup"]
        table = optics.set_index("rlnOpticsGroup")[merged]
        particles = particles.join(table, on="rlnOpticsGroup")

    n = len(particles)
    if "rlnImagePixelSize" in particles:
        pixel = numeric_columns(particles, ["rlnImagePixelSize"], path)[:, 0]
    elif "rlnDetectorPixelSize" in particles and "rlnMagnification" in particles:
        with np.errstate(divide="ignore", invalid="ignore"):
            cols = numeric_columns(particles, ["rlnDetectorPixelSize", "rlnMagnification"], path)
            pixel = cols[:, 0] * 1e4 / cols[:, 1]
    else:
        pixel = np.full(n, np.nan)
    return ParticleTable(particles.reset_index(drop=True), optics, Path(path), pixel, merged)


def _final(path: Path) -> Path:
    """Where a path inside a staging folder (:mod:`~napari_cryorient.io.staging`) will be once
    its files are moved into place: image names are written relative to that."""
    path = path.resolve()
    parts = [p for p in path.parts if not p.startswith(".staging-")]
    return Path(*parts)


def _rebase_image_names(names: pd.Series, old_dir: Path, new_dir: Path) -> list[str]:
    """``index@stack`` names (relative to ``old_dir``, or absolute) made relative to ``new_dir``."""
    out: list[str] = []
    cache: dict[str, str] = {}
    for name in names.astype(str):
        idx, sep, stack = name.rpartition("@") if "@" in name else ("", "", name)
        if stack not in cache:
            p = Path(stack)
            cache[stack] = os.path.relpath(_final(p if p.is_absolute() else old_dir / p), _final(new_dir))
        out.append(f"{idx}{sep}{cache[stack]}")
    return out


def _relative_image_names(indices: np.ndarray, stack: Path, star_dir: Path) -> list[str]:
    rel = os.path.relpath(_final(stack), _final(star_dir))
    return [f"{i + 1:06d}@{rel}" for i in indices]


#: RELION 3.0 particle columns that live in the optics block from RELION 3.1 on
_RELION30_OPTICS_COLUMNS = ("rlnVoltage", "rlnSphericalAberration", "rlnAmplitudeContrast",
                            "rlnMagnification", "rlnDetectorPixelSize", "rlnImagePixelSize")


def _template_blocks(template: ParticleTable, path: Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The template's particle block (merged optics columns and RELION 3.0 pixel origins
    dropped, image names rebased to ``path``'s folder) and a copy of its optics block."""
    particles = template.particles.drop(columns=template._merged_optics_columns).copy()
    particles = particles.drop(columns=["rlnOriginX", "rlnOriginY"], errors="ignore")
    optics = template.optics.copy() if template.optics is not None else None
    if "rlnImageName" in particles:
        old_dir, new_dir = template.path.parent.resolve(), path.parent.resolve()
        particles["rlnImageName"] = _rebase_image_names(particles["rlnImageName"], old_dir, new_dir)
    return particles, optics


def _optics_block(pixel_size_a: float, box: int, ctf: CTFParams | None, voltage_kv: float, cs_mm: float,
                  amplitude_contrast: float) -> pd.DataFrame:
    """One RELION 3.1 optics group (microscope values from ``ctf`` when given)."""
    return pd.DataFrame({
        "rlnOpticsGroup": [1],
        "rlnOpticsGroupName": ["opticsGroup1"],
        "rlnAmplitudeContrast": [float(ctf.amplitude_contrast[0]) if ctf else amplitude_contrast],
        "rlnSphericalAberration": [float(ctf.cs_mm[0]) if ctf else cs_mm],
        "rlnVoltage": [float(ctf.voltage_kv[0]) if ctf else voltage_kv],
        "rlnImagePixelSize": [float(pixel_size_a)],
        "rlnImageSize": [int(box)],
        "rlnImageDimensionality": [2],
        "rlnCtfDataAreCtfPremultiplied": [0],
    })


def _set_pose_columns(particles: pd.DataFrame, euler: np.ndarray | None, shifts_a: np.ndarray | None,
                      ctf: CTFParams | None, extra_columns: dict[str, np.ndarray] | None) -> None:
    """Angles, origins (zeros when poses are given without them), CTF and extra columns."""
    n = len(particles)
    if euler is not None:
        for col, values in zip(ANGLE_COLUMNS, euler.T, strict=True):
            particles[col] = values
    if euler is not None or shifts_a is not None:
        shifts = np.zeros((n, 2)) if shifts_a is None else np.asarray(shifts_a, dtype=np.float64)
        particles["rlnOriginXAngst"] = shifts[:, 0]
        particles["rlnOriginYAngst"] = shifts[:, 1]
    if ctf is not None:
        particles["rlnDefocusU"] = ctf.defocus_u_a
        particles["rlnDefocusV"] = ctf.defocus_v_a
        particles["rlnDefocusAngle"] = ctf.defocus_angle_deg
        particles["rlnCtfBfactor"] = ctf.b_factor
        particles["rlnPhaseShift"] = ctf.phase_shift_deg
    for key, values in (extra_columns or {}).items():
        particles[key] = np.asarray(values)


def write_particles(
    path: str | Path,
    rotations: np.ndarray | None,
    pixel_size_a: float,
    box: int,
    stack: str | Path | None = None,
    shifts_a: np.ndarray | None = None,
    ctf: CTFParams | None = None,
    template: ParticleTable | None = None,
    extra_columns: dict[str, np.ndarray] | None = None,
    voltage_kv: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.1,
) -> Path:
    """Write a RELION 3.1+ particle STAR file (optics + particles), atomically.

    Parameters
    ----------
    path
        Output STAR file.
    rotations
        `(n, 3, 3)` poses, written as ``rlnAngleRot/Tilt/Psi`` (degrees); None to write
        no poses (then ``template`` is required and its angle columns are kept as they are).
    pixel_size_a, box
        Pixel size (Å) and image size of the optics group.
    stack
        Image stack holding particle ``i`` at index ``i``; written as
        ``rlnImageName = i+1@stack`` relative to the STAR file's folder. Ignored when a
        ``template`` provides ``rlnImageName``.
    shifts_a
        `(n, 2)` origins in Å (``rlnOriginXAngst/YAngst``); zeros when None.
    ctf
        CTF parameters (defocus columns in the particles, microscope in the optics).
    template
        A table read with :func:`read_particles`: its columns and optics groups are kept,
        only poses (and origins/CTF when given) are replaced.
    extra_columns
        More RELION columns for the particles block.
    voltage_kv, cs_mm, amplitude_contrast
        Optics values used when neither ``ctf`` nor ``template`` gives them.
    """
    path = Path(path)
    if rotations is None:
        if template is None:
            raise ValueError("write_particles needs rotations or a template")
        n, euler = len(template), None
    else:
        rotations = np.asarray(rotations, dtype=np.float64)
        n = len(rotations)
        euler = so3.matrix_to_euler_relion(rotations)
    if template is not None:
        if len(template) != n:
            raise ValueError(f"template has {len(template)} particles, got {n} poses")
        particles, optics = _template_blocks(template, path)
    else:
        particles, optics = pd.DataFrame(index=range(n)), None
    if optics is None:
        optics = _optics_block(pixel_size_a, box, ctf, voltage_kv, cs_mm, amplitude_contrast)
        particles = particles.drop(columns=list(_RELION30_OPTICS_COLUMNS), errors="ignore")
        particles["rlnOpticsGroup"] = 1
    if "rlnImageName" not in particles and stack is not None:
        particles["rlnImageName"] = _relative_image_names(np.arange(n), Path(stack), path.parent)
    _set_pose_columns(particles, euler, shifts_a, ctf, extra_columns)
    # RELION lists rlnImageName first by habit; keep the rest in insertion order
    cols = list(particles.columns)
    if "rlnImageName" in cols:
        cols.insert(0, cols.pop(cols.index("rlnImageName")))
    particles = particles[cols]
    with atomic_path(path) as tmp:
        starfile.write({"optics": optics, "particles": particles}, tmp, overwrite=True)
    return path
