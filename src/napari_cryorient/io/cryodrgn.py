"""cryoDRGN pose and CTF pickles.

cryoDRGN keeps images in an MRC stack and the rest in pickles:

* poses: a tuple ``(rot, trans)`` — ``rot`` `(n, 3, 3)`, ``trans`` `(n, 2)` — or ``rot``
  alone. ``rot`` is exactly the package's (and RELION's Euler) pose matrix. ``trans`` is
  RELION's origin divided by the box size: ``rlnOriginX/YAngst = trans · D · pixel size``;
* CTF: `(n, 9)` float array, columns ``D`` (pixels), pixel size (Å), defocus U and V
  (Å), defocus angle (degrees), voltage (kV), Cs (mm), amplitude contrast, phase shift
  (degrees).

Pickles can run code when loaded, so they are read with an unpickler that only builds
numpy arrays, tuples and lists; anything else is refused.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..engine import so3
from ..engine.ctf import CTFParams
from .atomic_write import atomic_path
from .errors import InputError, check_input_file
from .mrc import read_stack
from .relion_star import ANGLE_COLUMNS, ParticleTable, table_from_blocks

__all__ = ["read_cryodrgn", "read_cryodrgn_ctf", "read_cryodrgn_poses", "write_cryodrgn_ctf",
           "write_cryodrgn_poses"]

_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
    ("builtins", "tuple"), ("builtins", "list"),
}


class _ArrayState:
    """Stands in for ``numpy.ndarray`` while unpickling: the array is built from its state
    only after its size was checked against the file's (a pickle can describe any shape in
    a few bytes; allocating it first would let an 80 KB file ask for gigabytes)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.array: np.ndarray | None = None

    def __setstate__(self, state: tuple) -> None:
        if len(state) == 5:
            state = state[1:]
        shape, dtype, fortran, raw = state
        if not isinstance(dtype, np.dtype) or dtype.hasobject:
            raise pickle.UnpicklingError("arrays of Python objects are refused")
        nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        if nbytes > self.limit or not isinstance(raw, (bytes, bytearray)) or len(raw) != nbytes:
            raise pickle.UnpicklingError(f"an array of shape {tuple(shape)} does not fit its data "
                                         f"({nbytes} bytes asked for, the file has {self.limit})")
        self.array = np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


class _ArrayUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, limit: int) -> None:
        super().__init__(file)
        self.limit = limit

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if name == "_reconstruct":
            return lambda *_args: _ArrayState(self.limit)
        return super().find_class(module, name)


def _unwrap(obj: Any) -> Any:
    if isinstance(obj, _ArrayState):
        if obj.array is None:
            raise pickle.UnpicklingError("an array without data")
        return obj.array
    if isinstance(obj, (tuple, list)):
        return type(obj)(_unwrap(o) for o in obj)
    return obj


def _load_pickle(path: Path) -> Any:
    check_input_file(path, "a cryoDRGN .pkl file")
    try:
        with open(path, "rb") as f:
            # no array in the file can hold more data than the file itself
            return _unwrap(_ArrayUnpickler(f, limit=path.stat().st_size).load())
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError,
            IndexError, KeyError, MemoryError) as err:
        raise InputError(f"not a cryoDRGN pickle of numpy arrays ({err})", path) from err


def read_cryodrgn_poses(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a cryoDRGN pose pickle.

    Returns
    -------
    rotations
        `(n, 3, 3)` poses (package convention).
    translations
        `(n, 2)` translations as a fraction of the box (RELION origin / D), or None when
        the file has rotations only.
    """
    path = Path(path)
    obj = _load_pickle(path)
    trans = None
    if isinstance(obj, (tuple, list)):
        if len(obj) != 2:
            raise InputError(f"expected (rotations, translations), got a sequence of {len(obj)}", path)
        rot, trans = obj
    else:
        rot = obj
    try:
        rot = np.asarray(rot, dtype=np.float64)
        if trans is not None:
            trans = np.asarray(trans, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"not a cryoDRGN pose pickle: it holds a {type(obj).__name__}, not arrays of "
                         "rotations (and translations)", path) from None
    if rot.ndim != 3 or rot.shape[1:] != (3, 3) or len(rot) == 0:
        raise InputError(f"rotations must have shape (n, 3, 3), got {rot.shape}", path)
    if not np.isfinite(rot).all():
        raise InputError("rotations contain non-finite values", path)
    err = np.abs(rot @ np.swapaxes(rot, 1, 2) - np.eye(3)).max()
    if err > 1e-3 or np.any(np.linalg.det(rot) < 0):
        raise InputError("the matrices are not rotations (not orthonormal with det +1)", path)
    if trans is not None:
        trans = np.asarray(trans, dtype=np.float64)
        if trans.shape != (len(rot), 2):
            raise InputError(f"translations must have shape ({len(rot)}, 2), got {trans.shape}", path)
        if not np.isfinite(trans).all():
            raise InputError("translations contain non-finite values", path)
    return rot, trans


def read_cryodrgn_ctf(path: str | Path) -> np.ndarray:
    """Read a cryoDRGN CTF pickle: `(n, 9)` array (columns in the module docstring)."""
    path = Path(path)
    ctf = np.asarray(_load_pickle(path), dtype=np.float64)
    if ctf.ndim != 2 or ctf.shape[1] != 9:
        raise InputError(f"a cryoDRGN CTF table has shape (n, 9), got {ctf.shape}", path)
    if not np.isfinite(ctf).all():
        raise InputError("CTF values contain non-finite numbers", path)
    return ctf


def read_cryodrgn(
    poses: str | Path,
    images: str | Path,
    ctf: str | Path | None = None,
    pixel_size_a: float | None = None,
) -> ParticleTable:
    """Particles from a cryoDRGN pose pickle and its image stack (and CTF pickle).

    Parameters
    ----------
    poses
        Pose pickle.
    images
        The MRC stack the poses belong to (image ``i`` ↔ pose ``i``).
    ctf
        Optional CTF pickle (also gives the pixel size).
    pixel_size_a
        Pixel size in Å; from the CTF pickle or the stack header when None.

    Returns
    -------
    ParticleTable
        RELION columns, as if read from a STAR file.
    """
    poses, images = Path(poses), Path(images)
    rot, trans = read_cryodrgn_poses(poses)
    stack = read_stack(images, check_values=False)
    n, box = len(rot), stack.data.shape[-1]
    if len(stack.data) != n:
        raise InputError(f"{len(stack.data)} images in the stack but {n} poses in {poses.name}", images)
    ctf_table = read_cryodrgn_ctf(ctf) if ctf is not None else None
    if ctf_table is not None and len(ctf_table) != n:
        raise InputError(f"{len(ctf_table)} CTF rows but {n} poses in {poses.name}", ctf)
    if pixel_size_a is None and ctf_table is not None:
        pixel_size_a = float(ctf_table[0, 1])
    if pixel_size_a is None:
        pixel_size_a = stack.pixel_size_a
    if pixel_size_a is None or not pixel_size_a > 0:
        raise InputError("no pixel size (not in the CTF pickle nor the stack header); give it", images)
    particles = pd.DataFrame({"rlnImageName": [f"{i + 1:06d}@{images.resolve()}" for i in range(n)]})
    for col, values in zip(ANGLE_COLUMNS, so3.matrix_to_euler_relion(rot).T, strict=True):
        particles[col] = values
    if trans is not None:
        particles["rlnOriginXAngst"] = trans[:, 0] * box * pixel_size_a
        particles["rlnOriginYAngst"] = trans[:, 1] * box * pixel_size_a
    optics = {"rlnOpticsGroup": [1], "rlnOpticsGroupName": ["opticsGroup1"],
              "rlnImagePixelSize": [float(pixel_size_a)], "rlnImageSize": [int(box)],
              "rlnImageDimensionality": [2]}
    if ctf_table is not None:
        particles["rlnDefocusU"] = ctf_table[:, 2]
        particles["rlnDefocusV"] = ctf_table[:, 3]
        particles["rlnDefocusAngle"] = ctf_table[:, 4]
        particles["rlnVoltage"] = ctf_table[:, 5]
        particles["rlnSphericalAberration"] = ctf_table[:, 6]
        particles["rlnAmplitudeContrast"] = ctf_table[:, 7]
        particles["rlnPhaseShift"] = ctf_table[:, 8]
    return table_from_blocks(particles, pd.DataFrame(optics), poses)


def write_cryodrgn_poses(
    path: str | Path, rotations: np.ndarray, box: int, pixel_size_a: float,
    shifts_a: np.ndarray | None = None,
) -> Path:
    """Write a cryoDRGN pose pickle ``(rot, trans)`` atomically.

    Parameters
    ----------
    rotations
        `(n, 3, 3)` poses (package convention).
    box, pixel_size_a
        Image size (pixels) and pixel size (Å) of the stack the poses belong to.
    shifts_a
        `(n, 2)` RELION origins in Å (zeros when None).
    """
    path = Path(path)
    rot = np.asarray(rotations, dtype=np.float32)
    shifts = np.zeros((len(rot), 2)) if shifts_a is None else np.asarray(shifts_a, dtype=np.float64)
    trans = (shifts / (pixel_size_a * box)).astype(np.float32)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        pickle.dump((rot, trans), f)
    return path


def write_cryodrgn_ctf(path: str | Path, ctf: CTFParams, box: int, pixel_size_a: float) -> Path:
    """Write a cryoDRGN CTF pickle (`(n, 9)` float32) atomically."""
    path = Path(path)
    n = len(ctf)
    table = np.stack([np.full(n, box, np.float64), np.full(n, pixel_size_a, np.float64),
                      ctf.defocus_u_a, ctf.defocus_v_a, ctf.defocus_angle_deg, ctf.voltage_kv,
                      ctf.cs_mm, ctf.amplitude_contrast, ctf.phase_shift_deg], axis=1)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        pickle.dump(table.astype(np.float32), f)
    return path
