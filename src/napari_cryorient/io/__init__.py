"""Files to engine types and back: MRC/MRCS maps and stacks, RELION STAR, cryoSPARC
``.cs``, cryoDRGN pickles, atomic models.

No napari and no Qt here. Every reader raises :class:`InputError` with a message that
names the file and the problem.
"""

from .atomic_model import is_atomic_model, map_from_atomic_model, read_atoms
from .atomic_write import atomic_path
from .cryodrgn import (
    read_cryodrgn,
    read_cryodrgn_ctf,
    read_cryodrgn_poses,
    write_cryodrgn_ctf,
    write_cryodrgn_poses,
)
from .cryosparc import read_cryosparc
from .errors import InputError
from .mrc import MapData, StackData, StackWriter, check_finite, read_map, read_stack, write_map
from .particles import PARTICLE_SUFFIXES, read_particle_file
from .relion_star import ParticleStack, ParticleTable, read_particles, write_particles
from .staging import staged_outputs

__all__ = [
    "PARTICLE_SUFFIXES",
    "InputError",
    "MapData",
    "ParticleStack",
    "ParticleTable",
    "StackData",
    "StackWriter",
    "atomic_path",
    "check_finite",
    "is_atomic_model",
    "map_from_atomic_model",
    "read_atoms",
    "read_cryodrgn",
    "read_cryodrgn_ctf",
    "read_cryodrgn_poses",
    "read_cryosparc",
    "read_map",
    "read_particle_file",
    "read_particles",
    "read_stack",
    "staged_outputs",
    "write_cryodrgn_ctf",
    "write_cryodrgn_poses",
    "write_map",
    "write_particles",
]
