"""Density maps: the built-in pseudo-protein, atoms to density, normalisation.

Volumes are `(d, d, d)` float32 tensors indexed ``[z, y, x]`` with the centre at voxel
``d // 2``; coordinates in Å are measured from that centre, ``x`` along the last axis.
"""

from __future__ import annotations

import numpy as np
import torch

from .frequencies import frequency_grid

__all__ = [
    "SAMPLES",
    "density_from_atoms",
    "make_pseudo_protein",
    "make_sample_volume",
    "mirror_volume",
    "normalise_volume",
]

#: names accepted by :func:`make_sample_volume` (``cryorient simulate --sample NAME``)
SAMPLES = ("pseudo-protein",)

_CA_STEP_A = 3.8  # distance between consecutive C-alpha atoms


def density_from_atoms(
    coords_a: np.ndarray,
    box: int,
    pixel_size_a: float,
    weights: np.ndarray | None = None,
    sigma_a: float | None = None,
    b_factor: float | None = None,
) -> torch.Tensor:
    """Render atoms as a sum of 3D Gaussians on a cubic grid.

    Atoms are spread trilinearly onto the grid, then blurred in Fourier space by the
    Gaussian, so cost does not depend on the Gaussian width.

    Parameters
    ----------
    coords_a
        `(n, 3)` atom positions ``(x, y, z)`` in Å relative to the box centre.
    box
        Side length ``d`` of the output in voxels.
    pixel_size_a
        Voxel size in Å.
    weights
        `(n,)` scattering weights (e.g. atomic numbers); ones when None.
    sigma_a
        Standard deviation of each Gaussian in Å. Default: ``max(1.0, pixel_size_a)``.
    b_factor
        Optional extra B-factor (Å²) applied as ``exp(-B s² / 4)``.

    Returns
    -------
    torch.Tensor
        `(d, d, d)` float32 density, atoms outside the box are dropped.
    """
    coords = np.asarray(coords_a, dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise ValueError(f"coords_a must have shape (n, 3), got {coords.shape}")
    if box < 4:
        raise ValueError("box must be >= 4 voxels")
    if pixel_size_a <= 0:
        raise ValueError("pixel_size_a must be > 0")
    w = np.ones(len(coords)) if weights is None else np.asarray(weights, dtype=np.float64)
    sigma = max(1.0, pixel_size_a) if sigma_a is None else float(sigma_a)

    # voxel coordinates (x, y, z) of each atom
    p = coords / pixel_size_a + box // 2
    inside = np.all((p >= 0) & (p <= box - 1), axis=1)
    p, w = p[inside], w[inside]
    grid = torch.zeros(box**3, dtype=torch.float64)
    base = np.floor(p).astype(np.int64)
    frac = p - base
    for corner in range(8):
        offs = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])  # (x, y, z)
        idx = np.minimum(base + offs, box - 1)
        cw = np.prod(np.where(offs == 1, frac, 1.0 - frac), axis=1) * w
        flat = (idx[:, 2] * box + idx[:, 1]) * box + idx[:, 0]
        grid.index_add_(0, torch.from_numpy(flat), torch.from_numpy(cw))
    vol = grid.reshape(box, box, box)

    # Gaussian blur (and B-factor) in Fourier space; s in 1/Å
    s2 = frequency_grid((box,) * 3, spacing=pixel_size_a, dtype=torch.float64).pow(2).sum(-1)
    envelope = torch.exp(-2 * np.pi**2 * sigma**2 * s2)
    if b_factor:
        envelope = envelope * torch.exp(-b_factor * s2 / 4)
    vol = torch.fft.irfftn(torch.fft.rfftn(vol) * envelope, s=vol.shape)
    return vol.to(torch.float32)


def _pseudo_protein_trace(n_residues: int, rng: np.random.Generator) -> np.ndarray:
    """C-alpha trace `(n, 3)` in Å: a chain that fills three unequal globular domains
    and ends in a long helix-like arm, so the shape has no symmetry and a clear hand."""
    domains = np.array([[0.0, 0.0, 0.0], [22.0, 8.0, -6.0], [-6.0, 20.0, 14.0]])
    radii = np.array([17.0, 12.0, 9.0])
    share = radii**3 / np.sum(radii**3)
    n_arm = max(8, n_residues // 12)
    counts = np.floor(share * (n_residues - n_arm)).astype(int)
    counts[0] += n_residues - n_arm - counts.sum()

    pos = domains[0].copy()
    step = rng.standard_normal(3)
    trace = []
    for centre, radius, count in zip(domains, radii, counts, strict=True):
        for _ in range(count):
            # persistent random walk, pulled back into the current domain
            step = 0.6 * step / np.linalg.norm(step) + 0.8 * rng.standard_normal(3)
            to_centre = centre - pos
            dist = np.linalg.norm(to_centre)
            if dist > radius:
                step += 1.5 * (dist - radius) / radius * to_centre / dist * 3
            step /= np.linalg.norm(step)
            pos = pos + _CA_STEP_A * step
            trace.append(pos.copy())
    # a right-handed helical arm (1.5 Å rise, 100° per residue, radius 2.3 Å)
    axis = np.array([-0.45, -0.35, 0.82])
    axis /= np.linalg.norm(axis)
    u = np.cross(axis, [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    start = trace[-1] if trace else pos
    for k in range(n_arm):
        phi = np.deg2rad(100.0 * k)
        trace.append(start + 1.5 * k * axis + 2.3 * (np.cos(phi) * u + np.sin(phi) * v))
    return np.asarray(trace)


def make_pseudo_protein(
    box: int = 64,
    pixel_size_a: float = 2.0,
    n_residues: int = 1200,
    seed: int = 0,
) -> torch.Tensor:
    """The built-in sample: a seeded, asymmetric, protein-like density map.

    A C-alpha-like chain (3.8 Å steps) fills three globular domains of unequal size
    (about 35, 25 and 18 Å across) and ends in a right-handed helical arm; each residue
    is a Gaussian of 1.6 Å plus a side-chain pseudo-atom, giving a ~130 kDa-like particle
    about 65 Å across. No file is needed.

    Parameters
    ----------
    box
        Output side length in voxels.
    pixel_size_a
        Voxel size in Å (the default 2 Å gives a 128 Å box at 64 voxels).
    n_residues
        Number of residues in the chain.
    seed
        Random seed: the same seed gives the same map.

    Returns
    -------
    torch.Tensor
        `(box, box, box)` float32 map, normalised by :func:`normalise_volume`.
    """
    rng = np.random.default_rng(seed)
    ca = _pseudo_protein_trace(n_residues, rng)
    ca -= ca.mean(axis=0)
    # side-chain pseudo-atoms point away from the local chain axis
    nxt = np.roll(ca, -1, axis=0) - ca
    prv = ca - np.roll(ca, 1, axis=0)
    out = np.cross(nxt, prv) + 0.3 * rng.standard_normal(ca.shape)
    out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-9
    sc = ca + 2.4 * out
    atoms = np.concatenate([ca, sc])
    weights = np.concatenate([np.full(len(ca), 6.0), rng.uniform(3.0, 9.0, len(sc))])
    vol = density_from_atoms(atoms, box, pixel_size_a, weights=weights, sigma_a=1.6)
    return normalise_volume(vol)


def make_sample_volume(name: str, box: int = 64, pixel_size_a: float = 2.0, seed: int = 0):
    """Build a named built-in sample map; returns `(box, box, box)` float32."""
    if name == "pseudo-protein":
        return make_pseudo_protein(box=box, pixel_size_a=pixel_size_a, seed=seed)
    raise ValueError(f"unknown sample {name!r}; available: {', '.join(SAMPLES)}")


def normalise_volume(volume: torch.Tensor) -> torch.Tensor:
    """Zero-mean, unit-variance copy of a map (float32); constant maps are rejected."""
    v = volume.to(torch.float32)
    std = v.std()
    if not torch.isfinite(std) or std == 0:
        raise ValueError("cannot normalise a constant or non-finite map")
    return (v - v.mean()) / std


def mirror_volume(volume: torch.Tensor) -> torch.Tensor:
    """The mirror image (opposite hand) of a `(d, d, d)` map: point inversion ``x → -x``.

    Inversion through the centre voxel ``d // 2`` is the mirror image that projection
    images cannot tell apart from the original: reconstructing with every pose turned by
    180° in-plane (``R → Rz(π) R``) gives exactly this map. The centre is preserved.
    """
    out = torch.flip(volume, dims=(-3, -2, -1))
    if volume.shape[-1] % 2 == 0:  # keep voxel d // 2 fixed
        out = torch.roll(out, shifts=(1, 1, 1), dims=(-3, -2, -1))
    return out
