"""Training data of the generalist network: many procedural proteins, real image formation.

Each of ``n_volumes`` maps is drawn from :mod:`~napari_cryorient.engine.procedural` and
projected at uniform random orientations with what real particles carry: a per-particle
CTF (300 kV, Cs 2.7 mm, amplitude contrast 0.07–0.1, defocus 0.5–2.5 µm, astigmatism),
origins of a few pixels that the network is *not* told, and white noise at a per-image
SNR drawn uniformly in ``snr_db`` (per image, over the whole box, as in
:mod:`~napari_cryorient.engine.simulate`). The images are phase-flipped with their own
CTF and Fourier-cropped exactly as :func:`~napari_cryorient.engine.inference.network_input`
does for real data; the noise is drawn fresh at every training step.

The particle fills a random fraction ``fill`` of the box (its largest extent over the
box side), so the pixel size follows from the particle size: the network learns shapes
relative to the box, which is why it accepts any box and pixel size.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .inference import network_input
from .jobs import Progress, run_job
from .procedural import random_protein, random_spec
from .simulate import SimulationConfig, simulate_particles
from .so3 import matrix_to_quaternion
from .training_data import TrainingData

__all__ = ["GeneralistRecipe", "make_generalist_data"]


@dataclass(frozen=True)
class GeneralistRecipe:
    """How the generalist's training set is made (all of it is recorded with the weights).

    Attributes
    ----------
    n_volumes, views_per_volume
        Procedural maps, and projections of each.
    box, working_box
        Box of the simulated images and of what the network sees (pixels).
    diameter_a, fill
        Range of particle sizes (Å, largest extent) and of the fraction of the box side
        they span.
    snr_db
        Range of the per-image SNR (dB), drawn uniformly per image.
    defocus_um, astigmatism_um, amplitude_contrast
        CTF ranges (defocus uniform per particle, amplitude contrast per volume).
    shift_std_px
        Standard deviation of the unknown origins (pixels of ``box``, per axis).
    seed
        Seed of everything.
    """

    n_volumes: int = 300
    views_per_volume: int = 400
    box: int = 64
    working_box: int = 16
    diameter_a: tuple[float, float] = (40.0, 150.0)
    fill: tuple[float, float] = (0.5, 0.9)
    snr_db: tuple[float, float] = (-20.0, 0.0)
    defocus_um: tuple[float, float] = (0.5, 2.5)
    astigmatism_um: float = 0.1
    amplitude_contrast: tuple[float, float] = (0.07, 0.1)
    shift_std_px: float = 2.0
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def make_generalist_data(recipe: GeneralistRecipe) -> Generator[Progress, None, TrainingData]:
    """Simulate the generalist's training set (clean phase-flipped images + noise levels).

    Yields
    ------
    Progress
        Stage ``"generate"``, one unit per volume.

    Returns
    -------
    TrainingData
        `(n_volumes · views, W, W)` images grouped by volume, ``phase_flipped`` and
        ``any_box`` set.
    """
    r = recipe
    rng = np.random.default_rng(r.seed)
    n = r.n_volumes * r.views_per_volume
    images = np.empty((n, r.working_box, r.working_box), dtype=np.float32)
    quats = np.empty((n, 4))
    noise_std = np.empty(n, dtype=np.float32)
    groups = np.repeat(np.arange(r.n_volumes), r.views_per_volume)
    for v in range(r.n_volumes):
        spec = random_spec(rng, r.diameter_a)
        px = spec.diameter_a / (rng.uniform(*r.fill) * r.box)
        volume = random_protein(spec, r.box, px)
        config = SimulationConfig(
            n_particles=r.views_per_volume, snr_db=None, shift_std_a=r.shift_std_px * px, ctf=True,
            defocus_range_um=r.defocus_um, astigmatism_um=r.astigmatism_um,
            amplitude_contrast=float(rng.uniform(*r.amplitude_contrast)), seed=int(rng.integers(2**31)),
        )
        sim = run_job(simulate_particles(volume, px, config))
        rows = slice(v * r.views_per_volume, (v + 1) * r.views_per_volume)
        # the origins stay unknown to the network, as in a real stack
        images[rows] = network_input(torch.from_numpy(sim.images), r.working_box, px, None, sim.ctf,
                                     phase_flip=True).numpy()
        snr = 10.0 ** (rng.uniform(*r.snr_db, r.views_per_volume) / 10.0)
        noise_std[rows] = np.sqrt(sim.signal_variance / snr) * r.working_box / r.box
        quats[rows] = matrix_to_quaternion(sim.rotations)
        yield Progress("generate", v + 1, r.n_volumes, f"volume {v + 1}/{r.n_volumes}")
    return TrainingData(images, quats, noise_std, r.box, groups=groups, phase_flipped=True, any_box=True)

