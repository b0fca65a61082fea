"""One entry point for particle files of any supported format.

``.star`` (RELION 3.0–5), ``.cs`` (cryoSPARC) and ``.pkl`` (cryoDRGN poses, with their
image stack) all become a :class:`~napari_cryorient.io.relion_star.ParticleTable` in
RELION columns.
"""

from __future__ import annotations

from pathlib import Path

from .cryodrgn import read_cryodrgn
from .cryosparc import read_cryosparc
from .errors import InputError
from .relion_star import ParticleTable, read_particles

__all__ = ["PARTICLE_SUFFIXES", "read_particle_file"]

PARTICLE_SUFFIXES = (".star", ".cs", ".pkl")


def read_particle_file(
    path: str | Path,
    images: str | Path | None = None,
    ctf: str | Path | None = None,
    pixel_size_a: float | None = None,
    images_dir: str | Path | None = None,
) -> ParticleTable:
    """Read particles from a STAR, cryoSPARC ``.cs`` or cryoDRGN pose ``.pkl`` file.

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
                     f"{', '.join(PARTICLE_SUFFIXES)}", path)
