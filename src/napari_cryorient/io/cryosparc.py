"""cryoSPARC particle files (``.cs``: a numpy structured array saved with ``numpy.save``).

A ``.cs`` file is translated into RELION columns and returned as a
:class:`~napari_cryorient.io.relion_star.ParticleTable`, so every command and widget reads
it like a STAR file. Field by field:

===============================  ==========================================================
cryoSPARC                        package / RELION
===============================  ==========================================================
``blob/path``, ``blob/idx``      image ``idx + 1 @ path`` (0-based index in the stack)
``blob/psize_A``, ``blob/shape`` ``rlnImagePixelSize`` (Å), ``rlnImageSize`` (pixels)
``alignments3D/pose``            rotation vector ``v`` (radians) of the matrix ``Rᵀ``: the
                                 package pose is ``R = exp(v)ᵀ`` (same as RELION's
                                 Euler matrix)
``alignments3D/shift``           ``(x, y)`` in pixels of the blob, same sign as RELION's
                                 origin: ``rlnOriginX/YAngst = shift · psize``
``ctf/df1_A``, ``ctf/df2_A``     ``rlnDefocusU``, ``rlnDefocusV`` (Å)
``ctf/df_angle_rad``             ``rlnDefocusAngle`` (degrees)
``ctf/accel_kv``, ``ctf/cs_mm``  ``rlnVoltage``, ``rlnSphericalAberration``
``ctf/amp_contrast``             ``rlnAmplitudeContrast``
``ctf/phase_shift_rad``          ``rlnPhaseShift`` (degrees)
``ctf/bfactor``                  ``rlnCtfBfactor``
===============================  ==========================================================

``blob/path`` is relative to the cryoSPARC project folder (sometimes with a leading
``>``). It is resolved against ``images_dir`` when given, else the ``.cs`` file's folder;
when that file does not exist, a file of the same name next to the ``.cs`` file is used
(particles exported and copied elsewhere). The contrast sign (``blob/sign``) is not applied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

from ..engine import so3
from .errors import InputError, check_input_file
from .relion_star import ANGLE_COLUMNS, ParticleTable, table_from_blocks

__all__ = ["read_cryosparc"]

_OPTICS_FIELDS = {  # cryoSPARC field -> RELION optics column
    "ctf/accel_kv": "rlnVoltage",
    "ctf/cs_mm": "rlnSphericalAberration",
    "ctf/amp_contrast": "rlnAmplitudeContrast",
}


def _load(path: Path) -> np.ndarray:
    check_input_file(path, "a cryoSPARC .cs file")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise InputError(f"not a cryoSPARC .cs file (cannot be read as a numpy array: {err})",
                         path) from err
    if isinstance(data, np.lib.npyio.NpzFile) or data.dtype.names is None:
        raise InputError("not a cryoSPARC .cs file (no named fields)", path)
    if len(data) == 0:
        raise InputError("the file holds no particles", path)
    missing = [f for f in ("blob/path", "blob/idx") if f not in data.dtype.names]
    if missing:
        raise InputError(f"no particle images: missing field(s) {', '.join(missing)}", path)
    return data


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _resolve(raw: str, path: Path, images_dir: Path | None) -> Path:
    name = raw.lstrip(">")
    p = Path(name)
    if p.is_absolute():
        return p
    candidate = (images_dir or path.parent) / p
    if candidate.exists():
        return candidate
    beside = path.parent / p.name
    return beside if beside.exists() else candidate


def _per_particle(data: np.ndarray, name: str, width: int, path: Path) -> np.ndarray:
    """`(n, width)` float64 values of a field; :class:`InputError` for another width."""
    values = np.asarray(data[name], dtype=np.float64)
    n = len(data)
    if values.size != width * n:
        raise InputError(f"{name} has {values.size // max(n, 1)} values per particle, expected {width}", path)
    return values.reshape(n, width)


def read_cryosparc(path: str | Path, images_dir: str | Path | None = None) -> ParticleTable:
    """Read a cryoSPARC ``.cs`` particle file.

    Parameters
    ----------
    path
        The ``.cs`` file.
    images_dir
        Folder that ``blob/path`` is relative to (the cryoSPARC project folder); the
        ``.cs`` file's folder when None.

    Returns
    -------
    ParticleTable
        RELION columns (see the module docstring); angles and origins only when the file
        has ``alignments3D`` fields, CTF columns only when it has ``ctf`` fields.

    Raises
    ------
    InputError
        Missing, empty or unreadable file, or no image fields.
    """
    path = Path(path)
    data = _load(path)
    names = data.dtype.names
    n = len(data)
    images_dir = Path(images_dir) if images_dir is not None else None
    raw_paths = [_text(v) for v in data["blob/path"].tolist()]
    # absolute, because the table's image names are read relative to the .cs file's folder
    stacks = {raw: _resolve(raw, path, images_dir).absolute() for raw in set(raw_paths)}
    paths = [stacks[raw] for raw in raw_paths]
    idx = data["blob/idx"].astype(np.int64)
    particles = pd.DataFrame({"rlnImageName": [f"{i + 1:06d}@{p}" for i, p in zip(idx, paths, strict=True)]})

    optics_cols: dict[str, np.ndarray] = {}
    if "blob/psize_A" in names:
        optics_cols["rlnImagePixelSize"] = data["blob/psize_A"].astype(np.float64)
    if "blob/shape" in names:
        optics_cols["rlnImageSize"] = np.asarray(data["blob/shape"]).reshape(n, -1)[:, -1].astype(np.int64)
    for field, col in _OPTICS_FIELDS.items():
        if field in names:
            optics_cols[col] = data[field].astype(np.float64)

    if "ctf/df1_A" in names:
        particles["rlnDefocusU"] = data["ctf/df1_A"].astype(np.float64)
        particles["rlnDefocusV"] = data["ctf/df2_A"].astype(np.float64) if "ctf/df2_A" in names \
            else particles["rlnDefocusU"]
        if "ctf/df_angle_rad" in names:
            particles["rlnDefocusAngle"] = np.rad2deg(data["ctf/df_angle_rad"].astype(np.float64))
        if "ctf/phase_shift_rad" in names:
            particles["rlnPhaseShift"] = np.rad2deg(data["ctf/phase_shift_rad"].astype(np.float64))
        if "ctf/bfactor" in names:
            particles["rlnCtfBfactor"] = data["ctf/bfactor"].astype(np.float64)

    if "alignments3D/pose" in names:
        pose = _per_particle(data, "alignments3D/pose", 3, path)
        if not np.isfinite(pose).all():
            raise InputError("alignments3D/pose contains non-finite values", path)
        rotations = np.swapaxes(Rotation.from_rotvec(pose).as_matrix(), -1, -2)
        for col, values in zip(ANGLE_COLUMNS, so3.matrix_to_euler_relion(rotations).T, strict=True):
            particles[col] = values
        if "alignments3D/shift" in names:
            shift = _per_particle(data, "alignments3D/shift", 2, path)
            px = optics_cols.get("rlnImagePixelSize")
            if px is None:
                raise InputError("alignments3D/shift needs blob/psize_A to convert to Å", path)
            particles["rlnOriginXAngst"] = shift[:, 0] * px
            particles["rlnOriginYAngst"] = shift[:, 1] * px

    optics = None
    if optics_cols:
        keys = pd.DataFrame(optics_cols)
        groups = keys.drop_duplicates().reset_index(drop=True)
        groups.insert(0, "rlnOpticsGroup", np.arange(1, len(groups) + 1))
        groups.insert(1, "rlnOpticsGroupName", [f"opticsGroup{i}" for i in groups["rlnOpticsGroup"]])
        groups["rlnImageDimensionality"] = 2
        groups["rlnCtfDataAreCtfPremultiplied"] = 0
        lookup = keys.merge(groups, on=list(optics_cols), how="left")
        particles["rlnOpticsGroup"] = lookup["rlnOpticsGroup"].to_numpy()
        optics = groups
    return table_from_blocks(particles, optics, path)
