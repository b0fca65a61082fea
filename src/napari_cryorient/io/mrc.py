"""MRC maps and MRCS particle stacks (mrcfile), with voxel sizes and clear errors.

Arrays are ``[z, y, x]`` for maps and ``[n, y, x]`` for stacks, as stored in the file
(x fastest). Stacks are memory-mapped: nothing is read until a slice is used.
"""

from __future__ import annotations

import errno
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import mrcfile
import numpy as np

from .atomic_write import atomic_path
from .errors import InputError, check_input_file

__all__ = ["MapData", "StackData", "StackWriter", "check_finite", "read_map", "read_stack", "write_map"]

_REAL_MODES = {0, 1, 2, 6, 12}  # int8, int16, float32, uint16, float16


@dataclass
class MapData:
    """A density map: `(d, d, d)` float32 ``data`` and the voxel size in Å (None if unset)."""

    data: np.ndarray
    voxel_size_a: float | None


@dataclass
class StackData:
    """A particle stack: `(n, h, w)` memory-mapped ``data`` and the pixel size in Å or None.

    :meth:`close` releases the file (``data`` must not be used afterwards); otherwise it is
    released when the object is garbage-collected.
    """

    data: np.ndarray
    pixel_size_a: float | None
    handle: Any = field(default=None, repr=False, compare=False)

    def close(self) -> None:
        """Release the file handle and the memory map."""
        if self.handle is not None:
            self.data = None  # type: ignore[assignment]
            self.handle.close()
            self.handle = None


_MODE_BYTES = {0: 1, 1: 2, 2: 4, 6: 2, 12: 2}
#: the largest map read into memory (voxels per side); larger ones are refused up front
MAX_MAP_SIZE = 1024


def _check_path(path: Path) -> None:
    check_input_file(path, "an MRC file")
    _check_header(path)


def _check_header(path: Path) -> None:
    """Refuse a header whose sizes the file cannot hold before anything is allocated
    (negative or zero dimensions, an extended header or data larger than the file)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(1024)
    if len(raw) < 1024:
        raise InputError(f"not a valid MRC file (only {len(raw)} bytes, a header has 1024)", path)
    for order in ("<", ">"):
        nx, ny, nz, mode = np.frombuffer(raw[:16], dtype=f"{order}i4")
        if mode in _MODE_BYTES:
            break
    else:
        return  # unknown mode: the reader reports it
    nsymbt = int(np.frombuffer(raw[92:96], dtype=f"{order}i4")[0])
    if min(nx, ny, nz) <= 0:
        raise InputError(f"not a valid MRC file (dimensions {nx} × {ny} × {nz})", path)
    if nsymbt < 0 or 1024 + nsymbt > size:
        raise InputError(f"not a valid MRC file (extended header of {nsymbt} bytes in a {size}-byte file)",
                         path)
    needed = 1024 + nsymbt + int(nx) * int(ny) * int(nz) * _MODE_BYTES[int(mode)]
    if needed > size:
        raise InputError(f"truncated MRC file: the header describes {needed} bytes, the file has {size}",
                         path)


def _open_mmap(path: Path):
    _check_path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mrc = mrcfile.mmap(path, mode="r", permissive=False)
    except (ValueError, OSError, EOFError) as err:
        mrc = _open_legacy(path)
        if mrc is None:
            raise InputError(f"not a valid MRC file ({err})", path) from err
    if mrc.data is None:
        mrc.close()
        raise InputError("MRC file holds no data", path)
    mode = int(mrc.header.mode)
    if mode not in _REAL_MODES:
        mrc.close()
        raise InputError(f"unsupported MRC mode {mode} (complex or packed data)", path)
    return mrc


def _open_legacy(path: Path):
    """Open an MRC file without the ``MAP`` identifier (older writers, e.g. some RELION
    stacks) when its header is otherwise consistent: a real data mode, positive sizes and a
    file size that is exactly header + extended header + data. None otherwise."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mrc = mrcfile.mmap(path, mode="r", permissive=True)
    except (ValueError, OSError, EOFError):
        return None
    h = mrc.header
    try:
        mode = int(h.mode)
        dims = [int(h.nx), int(h.ny), int(h.nz)]
        item = np.dtype(mrcfile.utils.data_dtype_from_header(h)).itemsize
        expected = 1024 + int(h.nsymbt) + item * dims[0] * dims[1] * dims[2]
        ok = (mode in _REAL_MODES and min(dims) > 0 and mrc.data is not None
              and expected == path.stat().st_size)
    except Exception:  # any inconsistency in a header we could not validate strictly
        ok = False
    if not ok:
        mrc.close()
        return None
    return mrc


def _voxel_size(mrc) -> float | None:
    vs = float(mrc.voxel_size.x)
    return vs if vs > 0 else None


def check_finite(data: np.ndarray, path: str | Path, chunk: int = 1024) -> None:
    """Raise :class:`InputError` if ``data`` (possibly memory-mapped) has NaN/inf values.

    Reads ``chunk`` slices at a time, so a large stack is never loaded whole.
    """
    for start in range(0, len(data), chunk):
        block = np.asarray(data[start : start + chunk])
        if not np.isfinite(block).all():
            bad = start + int(np.flatnonzero(~np.isfinite(block).reshape(len(block), -1).all(1))[0])
            raise InputError(f"contains NaN or infinite values (first at slice {bad})", path)


def read_map(path: str | Path) -> MapData:
    """Read a cubic density map.

    Returns
    -------
    MapData
        `(d, d, d)` float32 data (a copy) and the voxel size in Å (None when the header
        has none).

    Raises
    ------
    InputError
        Missing, unreadable, empty or invalid file; not 3D; not cubic; NaN/inf values.
    """
    path = Path(path)
    mrc = _open_mmap(path)
    try:
        data = np.asarray(mrc.data)
        if data.ndim != 3 or data.shape[0] == 1:
            raise InputError(f"expected a 3D map, got an array of shape {data.shape}", path)
        if len(set(data.shape)) != 1:
            raise InputError(f"map is not cubic: shape {data.shape} (z, y, x)", path)
        if data.size == 0:
            raise InputError("map is empty", path)
        if data.shape[0] > MAX_MAP_SIZE:
            raise InputError(f"a {data.shape[0]}³ map needs {data.size * 4 * 4 / 2**30:.0f} GiB to process; "
                             f"maps up to {MAX_MAP_SIZE}³ are read (Fourier-crop it first)", path)
        vol = np.array(data, dtype=np.float32)
        voxel = _voxel_size(mrc)
    finally:
        mrc.close()
    if not np.isfinite(vol).all():
        raise InputError("map contains NaN or infinite values", path)
    return MapData(vol, voxel)


def read_stack(path: str | Path, check_values: bool = True) -> StackData:
    """Memory-map a stack of square images (``.mrcs``, or a ``.mrc`` stack or image).

    Parameters
    ----------
    path
        The file.
    check_values
        Scan the stack (chunk by chunk) for NaN/inf values.

    Returns
    -------
    StackData
        `(n, h, w)` memory-mapped data (read-only) and the pixel size in Å or None.
    """
    path = Path(path)
    mrc = _open_mmap(path)
    data = mrc.data
    try:
        if data.ndim == 2:
            data = data[None]
        if data.ndim != 3:
            raise InputError(f"expected a stack of 2D images, got shape {data.shape}", path)
        if data.shape[1] != data.shape[2]:
            raise InputError(f"images are not square: {data.shape[1]}x{data.shape[2]} (y, x)", path)
        if data.shape[0] == 0 or data.shape[1] == 0:
            raise InputError("stack is empty", path)
        if check_values:
            check_finite(data, path)
    except InputError:
        mrc.close()
        raise
    return StackData(data, _voxel_size(mrc), mrc)


def write_map(path: str | Path, volume: np.ndarray, voxel_size_a: float | None) -> Path:
    """Write a `(d, d, d)` map as float32 MRC with its voxel size, atomically."""
    vol = np.asarray(volume, dtype=np.float32)
    if vol.ndim != 3:
        raise ValueError(f"volume must be 3D, got shape {vol.shape}")
    path = Path(path)
    with atomic_path(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(vol)
            mrc.set_volume()
            if voxel_size_a:
                mrc.voxel_size = float(voxel_size_a)
    return path


def _allocate(path: Path) -> None:
    """Reserve the disk blocks of a freshly created (sparse) memory-mapped file, so that a
    full disk is an ``OSError`` here and not a SIGBUS when a page is written later."""
    size = path.stat().st_size
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as err:
        if err.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return  # the filesystem cannot reserve blocks: nothing more to do
        raise
    finally:
        os.close(fd)


class StackWriter:
    """Write an `(n, box, box)` float32 stack chunk by chunk, atomically.

    Use as a context manager; call it as ``writer(start, images)`` (the ``sink`` of the
    engine's simulation and projection jobs). The file appears at ``path`` only when the
    block exits without error.
    """

    def __init__(self, path: str | Path, n: int, box: int, pixel_size_a: float | None) -> None:
        self.path = Path(path)
        self.shape = (int(n), int(box), int(box))
        self.pixel_size_a = pixel_size_a
        self._ctx = None
        self._mrc = None

    def __enter__(self) -> StackWriter:
        self._ctx = atomic_path(self.path)
        tmp = self._ctx.__enter__()
        size = (self.shape[0] * self.shape[1] * self.shape[2] * 4 + 1024) / 2**20
        try:
            self._mrc = mrcfile.new_mmap(tmp, shape=self.shape, mrc_mode=2, overwrite=True)
            _allocate(tmp)
        except OSError as err:
            if self._mrc is not None:
                self._mrc.close()
            self._ctx.__exit__(*sys.exc_info())
            raise OSError(err.errno, f"cannot write the {size:.0f} MiB stack ({err.strerror}: is the disk "
                          "full?)", str(self.path)) from err
        self._mrc.set_image_stack()
        if self.pixel_size_a:
            self._mrc.voxel_size = float(self.pixel_size_a)
        return self

    def __call__(self, start: int, images: np.ndarray) -> None:
        self._mrc.data[start : start + len(images)] = images

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc_type is None:
            self._mrc.update_header_stats()
        self._mrc.close()
        self._ctx.__exit__(exc_type, exc, tb)
        return False
