"""One entry point for particle files of any supported format, in and out.

``.star`` (RELION 3.0–5), ``.cs`` (cryoSPARC), ``.pkl`` (cryoDRGN poses, with their image
stack) and a bare ``.mrcs`` stack all become one
:class:`~napari_cryorient.engine.particles.Particles`: images (read lazily), pixel size,
poses, origins, CTF and optics groups. The parsed table rides along as
``Particles.source``, so :func:`write_particle_set` keeps every column it does not change.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engine.ctf import CTFParams
from ..engine.particles import ImageStack, Particles
from .cryodrgn import read_cryodrgn
from .cryosparc import read_cryosparc
from .errors import InputError
from .mrc import read_stack
from .relion_star import ParticleTable, read_particles, write_particles

__all__ = [
    "PARTICLE_SUFFIXES",
    "particles_from_table",
    "read_particle_file",
    "read_particle_set",
    "write_particle_set",
]

PARTICLE_SUFFIXES = (".star", ".cs", ".pkl", ".mrcs")
TABLE_SUFFIXES = (".star", ".cs", ".pkl")


def read_particle_file(
    path: str | Path,
    images: str | Path | None = None,
    ctf: str | Path | None = None,
    pixel_size_a: float | None = None,
    images_dir: str | Path | None = None,
) -> ParticleTable:
    """The table of a STAR, cryoSPARC ``.cs`` or cryoDRGN pose ``.pkl`` file (RELION columns).

    Parameters
    ----------
    path
        The particle file; its suffix picks the reader.
    images
        The image stack of a cryoDRGN pose pickle (required for ``.pkl``).
    ctf
        A cryoDRGN CTF pickle (``.pkl`` only).
    pixel_size_a
        Pixel size in Å for a cryoDRGN pickle without CTF pickle or stack header value.
    images_dir
        Folder that cryoSPARC ``blob/path`` values are relative to.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".star":
        return read_particles(path)
    if suffix == ".cs":
        return read_cryosparc(path, images_dir=images_dir)
    if suffix == ".pkl":
        if images is None:
            raise InputError("a cryoDRGN pose pickle needs its image stack (--images STACK.mrcs)", path)
        return read_cryodrgn(path, images, ctf=ctf, pixel_size_a=pixel_size_a)
    raise InputError(f"unrecognised particle file type {suffix or '(no suffix)'!r}; expected "
                     f"{', '.join(TABLE_SUFFIXES)}", path)


def particles_from_table(table: ParticleTable, pixel_size_a: float | None = None,
                         check_values: bool = True, need_poses: bool = False,
                         images: ImageStack | None = None) -> Particles:
    """A :class:`Particles` from a parsed table (``pixel_size_a`` overrides the file's;
    ``need_poses``: refuse a table without angles before its images are opened;
    ``images``: use these instead of opening the stacks the table names)."""
    if need_poses:
        table.rotations()  # InputError naming the missing columns
    px = pixel_size_a
    if px is None and not np.all(np.isnan(table.pixel_size_a)):
        px = table.pixel_size
    cols = table.particles.columns
    has_origins = ({"rlnOriginXAngst", "rlnOriginYAngst"} <= set(cols)
                   or {"rlnOriginX", "rlnOriginY"} <= set(cols))
    shifts = table.shifts_a() if has_origins else None
    if shifts is not None and not np.isfinite(shifts).all():
        row = int(np.flatnonzero(~np.isfinite(shifts).all(1))[0])
        raise InputError(f"row {row + 1}: the origin is not a finite number", table.path)
    _check_table_physics(table, pixel_size_a)
    groups = None
    if "rlnOpticsGroup" in cols:
        groups = table.particles["rlnOpticsGroup"].to_numpy()
    try:
        return Particles(
            images=table.images(check_values=check_values) if images is None else images,
            pixel_size_a=px,
            rotations=table.rotations() if table.has_angles else None,
            shifts_a=shifts,
            ctf=table.ctf(),
            optics_group=groups,
            name=table.path.name,
            source=table,
        )
    except InputError:
        raise
    except ValueError as err:
        raise InputError(str(err), table.path) from err


def _check_table_physics(table: ParticleTable, pixel_size_a: float | None) -> None:
    """Every value that enters physics, per row: pixel sizes, CTF parameters (one line
    naming the file, the row and the column)."""
    ps = table.pixel_size_a
    if pixel_size_a is None and not np.all(np.isnan(ps)):
        bad = np.flatnonzero(~np.isfinite(ps) | (ps <= 0))
        if len(bad):
            raise InputError(f"row {bad[0] + 1}: the pixel size is {ps[bad[0]]:g} Å (must be a positive "
                             "number)", table.path)
    ctf = table.ctf()
    if ctf is not None:
        invalid = ctf.first_invalid()
        if invalid is not None:
            row, name, value = invalid
            column = _CTF_COLUMNS.get(name, name)
            raise InputError(f"row {row + 1}: {column} is {value:g}, which no microscope gives "
                             f"(allowed {CTFParams.LIMITS[name][0]:g} … {CTFParams.LIMITS[name][1]:g})",
                             table.path)


_CTF_COLUMNS = {
    "defocus_u_a": "rlnDefocusU", "defocus_v_a": "rlnDefocusV", "defocus_angle_deg": "rlnDefocusAngle",
    "voltage_kv": "rlnVoltage", "cs_mm": "rlnSphericalAberration",
    "amplitude_contrast": "rlnAmplitudeContrast",
    "b_factor": "rlnCtfBfactor", "phase_shift_deg": "rlnPhaseShift",
}


def read_particle_set(
    path: str | Path,
    images: str | Path | None = None,
    ctf: str | Path | None = None,
    pixel_size_a: float | None = None,
    images_dir: str | Path | None = None,
    check_values: bool = True,
    need_poses: bool = False,
) -> Particles:
    """Read particles of any supported format (see the module docstring).

    Parameters are those of :func:`read_particle_file`; ``pixel_size_a`` also overrides
    the pixel size a file states; ``need_poses`` refuses a file without poses (before its
    images are read). A bare ``.mrcs`` (or 3D ``.mrc``) stack has no poses, origins or CTF;
    its pixel size comes from the header.
    """
    path = Path(path)
    if path.suffix.lower() in (".mrcs", ".mrc"):
        if need_poses:
            raise InputError("an image stack has no particle orientations; give a STAR, .cs or .pkl",
                             path)
        stack = read_stack(path, check_values=check_values)
        px = pixel_size_a if pixel_size_a is not None else stack.pixel_size_a
        return Particles(images=stack.data, pixel_size_a=px, name=path.name)
    table = read_particle_file(path, images=images, ctf=ctf, pixel_size_a=pixel_size_a,
                               images_dir=images_dir)
    return particles_from_table(table, pixel_size_a, check_values=check_values, need_poses=need_poses)


def write_particle_set(path: str | Path, particles: Particles, stack: str | Path | None = None) -> Path:
    """Write ``particles`` as a RELION 3.1+ STAR file, atomically.

    Poses, origins and CTF come from ``particles``; when it was read from a table, every
    other column and the optics groups are kept (image names rebased to the new folder).
    ``stack`` names the image file for particles that have none (image ``i`` at index ``i``).
    """
    template = particles.source if isinstance(particles.source, ParticleTable) else None
    if template is None and stack is None:
        raise ValueError("the particles come from no file: give the stack their images are in")
    return write_particles(
        path,
        particles.rotations,
        particles.pixel_size_a or 1.0,
        particles.box,
        stack=stack,
        shifts_a=particles.shifts_a,
        ctf=particles.ctf,
        template=template,
    )
