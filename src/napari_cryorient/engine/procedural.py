"""A procedural family of protein-like maps: what the generalist network is trained on.

No real map or atomic model is ever used. Each draw is a random particle built from
1–6 domains of random size and shape (globular, elongated or flat ellipsoids), chained
so that they touch, with helix-like rods, sheet-like slabs and loose coil inside, and
some random holes. The family is wide on purpose (40–150 Å across, any aspect ratio)
so that the network learns what projections of proteins have in common rather than one
protein. Nothing is symmetric, and the hand is random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .volumes import density_from_atoms, normalise_volume

__all__ = ["ProceduralSpec", "random_protein", "random_spec"]

_ATOM_DENSITY = 1 / 60.0  # pseudo-atoms per Å³ (about one residue of mass per 120 Å³, two atoms)


@dataclass(frozen=True)
class ProceduralSpec:
    """One draw of the family (everything in Å, relative to the particle centre).

    Attributes
    ----------
    centres
        `(k, 3)` domain centres.
    axes
        `(k, 3)` semi-axes of each domain's ellipsoid.
    frames
        `(k, 3, 3)` orientation of each ellipsoid.
    holes
        `(h, 4)` ``(x, y, z, radius)`` of the empty spheres.
    seed
        Seed of the atoms inside.
    """

    centres: np.ndarray
    axes: np.ndarray
    frames: np.ndarray
    holes: np.ndarray
    seed: int

    @property
    def diameter_a(self) -> float:
        """Largest extent of the particle (Å): twice the farthest domain edge from the centre."""
        reach = np.linalg.norm(self.centres, axis=1) + self.axes.max(axis=1)
        return float(2 * reach.max())


def _random_frame(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def random_spec(rng: np.random.Generator, diameter_a: tuple[float, float] = (40.0, 150.0)) -> ProceduralSpec:
    """Draw the shape of one particle whose largest extent lies in ``diameter_a`` (Å)."""
    k = int(rng.integers(1, 7))
    target = rng.uniform(*diameter_a)
    shape = rng.choice(["globular", "elongated", "flat"], p=[0.5, 0.25, 0.25])
    centres, axes = [np.zeros(3)], []
    for d in range(k):
        a = rng.uniform(0.6, 1.0, 3)
        if shape == "elongated":
            a[0] *= rng.uniform(1.5, 2.8)
        elif shape == "flat":
            a[2] *= rng.uniform(0.35, 0.6)
        axes.append(a)
        if d:  # touch a previous domain, on a random side
            parent = int(rng.integers(0, d))
            direction = rng.standard_normal(3)
            direction /= np.linalg.norm(direction)
            centres.append(centres[parent] + 0.85 * (axes[parent].mean() + a.mean()) * direction)
    centres_arr = np.asarray(centres[:k])
    centres_arr -= centres_arr.mean(axis=0)
    axes_arr = np.asarray(axes)
    frames = np.stack([_random_frame(rng) for _ in range(k)])
    # scale so that the largest extent is the target
    reach = np.linalg.norm(centres_arr, axis=1) + axes_arr.max(axis=1)
    scale = target / (2 * reach.max())
    centres_arr, axes_arr = centres_arr * scale, axes_arr * scale
    n_holes = int(rng.integers(0, 4))
    holes = np.zeros((n_holes, 4))
    for h in range(n_holes):
        d = int(rng.integers(0, k))
        holes[h, :3] = centres_arr[d] + frames[d] @ (axes_arr[d] * rng.uniform(-0.5, 0.5, 3))
        holes[h, 3] = axes_arr[d].min() * rng.uniform(0.25, 0.5)
    return ProceduralSpec(centres_arr, axes_arr, frames, holes, int(rng.integers(2**31)))


def _inside(points: np.ndarray, spec: ProceduralSpec, d: int) -> np.ndarray:
    local = (points - spec.centres[d]) @ spec.frames[d]
    return ((local / spec.axes[d]) ** 2).sum(axis=1) <= 1.0


def _domain_atoms(spec: ProceduralSpec, d: int, rng: np.random.Generator) -> np.ndarray:
    """Pseudo-atoms of one domain: helix rods, sheet slabs and coil, clipped to its ellipsoid."""
    a, frame, centre = spec.axes[d], spec.frames[d], spec.centres[d]
    volume = 4 / 3 * np.pi * np.prod(a)
    budget = max(30, int(volume * _ATOM_DENSITY))
    parts: list[np.ndarray] = []
    used = 0
    while used < budget:
        kind = rng.choice(["helix", "sheet", "coil"], p=[0.45, 0.3, 0.25])
        start = (rng.uniform(-0.7, 0.7, 3) * a)
        direction = rng.standard_normal(3)
        direction /= np.linalg.norm(direction)
        u = np.cross(direction, rng.standard_normal(3))
        u /= np.linalg.norm(u)
        v = np.cross(direction, u)
        if kind == "helix":  # 1.5 Å rise, 100° per residue, radius 2.3 Å, plus side chains at 4.5 Å
            m = int(rng.integers(10, 30))
            t = np.arange(m)
            phi = np.deg2rad(100.0 * t)[:, None]
            axis_pts = start + 1.5 * t[:, None] * direction
            pts = np.concatenate([axis_pts + 2.3 * (np.cos(phi) * u + np.sin(phi) * v),
                                  axis_pts + 4.5 * (np.cos(phi) * u + np.sin(phi) * v)])
        elif kind == "sheet":  # strands 4.8 Å apart, 3.3 Å per residue
            strands, length = int(rng.integers(3, 6)), int(rng.integers(5, 10))
            s, r = np.meshgrid(np.arange(strands), np.arange(length), indexing="ij")
            pts = start + (4.8 * s.reshape(-1, 1)) * u + (3.3 * r.reshape(-1, 1)) * direction
            pts = np.concatenate([pts + 1.8 * v, pts - 1.8 * v])
        else:  # persistent random walk
            m = int(rng.integers(10, 40))
            steps = rng.standard_normal((m, 3)) + 1.5 * direction
            steps *= 3.8 / np.linalg.norm(steps, axis=1, keepdims=True)
            pts = start + np.cumsum(steps, axis=0)
        pts = centre + pts @ frame.T
        pts = pts[_inside(pts, spec, d)]
        parts.append(pts)
        used += max(1, len(pts))
    return np.concatenate(parts) if parts else np.zeros((0, 3))


def random_protein(spec: ProceduralSpec, box: int, pixel_size_a: float) -> torch.Tensor:
    """Render a :class:`ProceduralSpec` as a `(box, box, box)` float32 map (normalised).

    Parameters
    ----------
    spec
        The particle, from :func:`random_spec`.
    box
        Side of the map in voxels.
    pixel_size_a
        Voxel size in Å; choose it so that ``spec.diameter_a`` fits in the box.
    """
    rng = np.random.default_rng(spec.seed)
    atoms = np.concatenate([_domain_atoms(spec, d, rng) for d in range(len(spec.centres))])
    for x, y, z, r in spec.holes:
        atoms = atoms[np.linalg.norm(atoms - (x, y, z), axis=1) > r]
    weights = rng.uniform(4.0, 8.0, len(atoms))
    sigma = max(1.6, 0.8 * pixel_size_a)
    return normalise_volume(density_from_atoms(atoms, box, pixel_size_a, weights=weights, sigma_a=sigma))
