"""Atomic models (PDB / mmCIF, read with gemmi) to density maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..engine.volumes import density_from_atoms
from .errors import InputError

__all__ = ["MODEL_SUFFIXES", "is_atomic_model", "map_from_atomic_model", "read_atoms"]

MODEL_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif")


def is_atomic_model(path: str | Path) -> bool:
    """Whether ``path`` names a PDB/mmCIF model by its suffix (a ``.gz`` after it allowed)."""
    name = Path(path).name.lower().removesuffix(".gz")
    return name.endswith(MODEL_SUFFIXES)


def read_atoms(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Atom positions `(n, 3)` (x, y, z in Å, file frame) and atomic numbers `(n,)`.

    Hydrogens and waters are skipped; only the first model is used.
    """
    import gemmi  # heavy: imported only when a model is read

    path = Path(path)
    if not path.is_file():
        raise InputError("file does not exist" if not path.exists() else "is not a file", path)
    try:
        structure = gemmi.read_structure(str(path))
    except (RuntimeError, ValueError) as err:
        raise InputError(f"cannot be read as a PDB/mmCIF model ({err})", path) from err
    structure.remove_hydrogens()
    structure.remove_waters()
    if len(structure) == 0:
        raise InputError("the model has no atoms", path)
    coords, numbers = [], []
    for chain in structure[0]:
        for residue in chain:
            for atom in residue:
                coords.append(atom.pos.tolist())
                numbers.append(atom.element.atomic_number)
    if not coords:
        raise InputError("the model has no atoms", path)
    return np.asarray(coords, dtype=np.float64), np.asarray(numbers, dtype=np.float64)


def map_from_atomic_model(
    path: str | Path, box: int, pixel_size_a: float, resolution_a: float | None = None
) -> torch.Tensor:
    """Density `(box, box, box)` of a model, centred on its centre of mass.

    Each atom is a Gaussian weighted by its atomic number with standard deviation
    ``resolution_a / pi`` (about 0.32 × resolution); ``resolution_a`` defaults to twice
    the pixel size (Nyquist).
    """
    coords, numbers = read_atoms(path)
    coords = coords - np.average(coords, axis=0, weights=numbers)
    res = resolution_a or 2.0 * pixel_size_a
    return density_from_atoms(coords, box, pixel_size_a, weights=numbers, sigma_a=res / np.pi)
