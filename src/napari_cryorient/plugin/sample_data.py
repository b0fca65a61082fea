"""napari sample data: the built-in pseudo-protein map, and a small simulated particle set
with its true poses (made on the fly, seeded; nothing is downloaded)."""

from __future__ import annotations

from ..engine.jobs import run_job
from ..engine.simulate import SimulationConfig, simulate_particles
from ..engine.volumes import make_sample_volume
from .layer_data import image_layer_data, pose_points_layer_data, stack_layer_data

__all__ = ["sample_particles", "sample_volume"]

BOX, PIXEL_SIZE_A = 64, 2.0


def sample_volume() -> list[tuple]:
    """The pseudo-protein map (64³, 2 Å/px)."""
    vol = make_sample_volume("pseudo-protein", BOX, PIXEL_SIZE_A, 0)
    return [
        image_layer_data(
            vol.numpy(), PIXEL_SIZE_A, "pseudo-protein", rendering="iso", iso_threshold=float(vol.max()) * 0.3
        )
    ]


def sample_particles(n: int = 500, snr_db: float = 0.0) -> list[tuple]:
    """``n`` projections of the pseudo-protein (64 px, SNR ``snr_db``) and their true poses."""
    vol = make_sample_volume("pseudo-protein", BOX, PIXEL_SIZE_A, 0)
    sim = run_job(
        simulate_particles(vol, PIXEL_SIZE_A, SimulationConfig(n_particles=n, snr_db=snr_db, seed=0))
    )
    return [
        stack_layer_data(sim.images, PIXEL_SIZE_A, "projections"),
        pose_points_layer_data(
            sim.rotations, name="true poses", pixel_size_a=PIXEL_SIZE_A, extra_metadata={"box": BOX}
        ),
    ]
