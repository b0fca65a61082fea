"""Files to engine types and back: MRC/MRCS maps and stacks, RELION STAR, atomic models.

No napari and no Qt here. Every reader raises :class:`InputError` with a message that
names the file and the problem.
"""

from .atomic import atomic_path
from .atomic_model import map_from_atomic_model, read_atoms
from .errors import InputError
from .mrc import MapData, StackData, StackWriter, check_finite, read_map, read_stack, write_map
from .relion_star import ParticleStack, ParticleTable, read_particles, write_particles
from .staging import staged_outputs

__all__ = [
    "InputError",
    "MapData",
    "ParticleStack",
    "ParticleTable",
    "StackData",
    "StackWriter",
    "atomic_path",
    "check_finite",
    "map_from_atomic_model",
    "read_atoms",
    "read_map",
    "read_particles",
    "read_stack",
    "staged_outputs",
    "write_map",
    "write_particles",
]
