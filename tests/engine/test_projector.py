import numpy as np
import torch
from scipy.ndimage import map_coordinates

from napari_cryorient.engine import so3
from napari_cryorient.engine.jobs import run_job
from napari_cryorient.engine.projector import FourierProjector
from napari_cryorient.engine.simulate import project_particles
from napari_cryorient.engine.volumes import density_from_atoms


def _centroid(image: np.ndarray) -> np.ndarray:
    """(x, y) centroid relative to the centre pixel n // 2."""
    n = image.shape[-1]
    w = np.clip(image - 0.2 * image.max(), 0, None)  # ignore interpolation ringing
    y, x = np.mgrid[:n, :n] - n // 2
    return np.array([(w * x).sum(), (w * y).sum()]) / w.sum()


def test_projection_of_an_offcentre_blob_lands_where_relion_puts_it(rng):
    """RELION: reference point c appears at (A c)_xy - origin (star_handler --center)."""
    box, px = 48, 2.0
    c = np.array([8.0, -5.0, 11.0])  # Å, (x, y, z) from the centre
    vol = density_from_atoms(c[None], box, px, sigma_a=2.0)
    euler = rng.uniform([-180, 0, -180], [180, 180, 180], (12, 3))
    rot = so3.euler_relion_to_matrix(euler)
    origins = rng.uniform(-6, 6, (12, 2))  # Å
    res = run_job(project_particles(vol, rot, px, shifts_a=origins))
    for img, r, o in zip(res.images, rot, origins, strict=True):
        expected = ((r @ c)[:2] - o) / px
        np.testing.assert_allclose(_centroid(img), expected, atol=0.1)


def test_projection_matches_a_real_space_line_integral(small_map, rng):
    """Independent check of the pose convention (including handedness)."""
    vol = small_map.numpy().astype(np.float64)
    d = vol.shape[0]
    projector = FourierProjector(small_map)
    for euler in rng.uniform([-180, 0, -180], [180, 180, 180], (3, 3)):
        r = so3.euler_relion_to_matrix(euler)
        # particle-frame grid (x, y, z) -> reference coordinates R^T x
        g = np.arange(d) - d // 2
        z, y, x = np.meshgrid(g, g, g, indexing="ij")
        xyz = np.stack([x, y, z], axis=-1) @ r  # rows: (R^T v)^T = v^T R
        coords = [xyz[..., 2] + d // 2, xyz[..., 1] + d // 2, xyz[..., 0] + d // 2]
        rotated = map_coordinates(vol, coords, order=3, mode="constant")
        expected = rotated.sum(axis=0)
        got = projector.project(torch.from_numpy(r)[None])[0].numpy()
        e = (expected - expected.mean()) / expected.std()
        g_ = (got - got.mean()) / got.std()
        rel = np.linalg.norm(g_ - e) / np.linalg.norm(e)
        assert rel < 0.04, rel


def test_projection_is_batched_like_looped(small_map, rng):
    rot = torch.from_numpy(so3.sample_uniform_so3(5, rng))
    p = FourierProjector(small_map)
    batched = p.project(rot)
    looped = torch.stack([p.project(r[None])[0] for r in rot])
    torch.testing.assert_close(batched, looped, atol=1e-4, rtol=1e-4)
