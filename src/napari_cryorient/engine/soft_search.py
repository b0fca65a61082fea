"""A map and poses from nothing: stochastic expectation–maximisation over a pose grid.

The start of a truth-free reconstruction when no network knows the protein. A random map
(the particles of the first batch back-projected at random poses) is refined batch by
batch, as cryoSPARC's and RELION's stochastic ab initio do:

1. every particle of a batch is compared with the current map's projections at
   ``n_rotations`` poses of a random uniform SO(3) grid (a new grid every batch) and a
   small grid of origin offsets, at low resolution (the Fourier samples of
   :class:`~napari_cryorient.engine.matching.SliceMatcher`, CTF applied);
2. the comparisons become a posterior over the candidates from the Gaussian
   log-likelihood ``(a·Re⟨C·P_k, X⟩ − a²‖C·P_k‖²/2) / (σ² T)`` (``a``: 1 for the
   FSC-weighted map of step 3, else one fitted amplitude per batch; ``σ²``: the
   particle's residual power per Fourier coefficient; ``T``: an annealed temperature),
   and the ``top_k`` most likely candidates per particle are kept with their posterior
   weights (or, with ``draw``, ``top_k`` are drawn from it);
3. the batch is back-projected at those candidates into running Fourier sums (Wiener,
   CTF-weighted) that forget old batches, one pair of sums per half of the particles:
   the map follows the posterior, not a hard choice, so a wrong early map is left
   gradually, and each of its shells is weighted by the halves' FSC, so noise that the
   halves do not share is shrunk away;
4. the new map is masked by a soft sphere and its negative density clipped.

Several random starts run the first passes; the one whose map gives the particles the
highest evidence runs on (the starts converge or not by chance; the evidence, which needs
no truth, tells them apart).

Only the few hundred Fourier samples of each image inside the resolution limit are kept
(computed once), so a batch costs two small matrix products and one scatter.

Memory: `(n, m)` complex samples of the images (``m`` inside the final resolution), the
padded `(p, p, p)` Fourier sums and `(batch · t, k_block)` scores at a time.
"""

from __future__ import annotations

import copy
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .ctf import CTFParams
from .extent import particle_radius_px
from .frequencies import frequency_norm
from .fsc import shell_correlation
from .jobs import EngineError, Progress
from .masks import spherical_mask
from .matching import SliceMatcher, disc_samples, offset_grid
from .particles import checked_arrays
from .projector import radial_gridding_correction
from .so3 import sample_orientations

__all__ = ["MIN_PARTICLES", "SoftSearchConfig", "SoftSearchResult", "soft_search"]

#: the fewest particles :func:`soft_search` accepts
MIN_PARTICLES = 20
# default resolution schedule: the box over these (Fourier shells compared)
START_SHELLS, END_SHELLS = 5.0, 10.0
# default mask: the measured particle radius plus a margin (pixels), within these fractions of the box
MASK_MARGIN_PX, MASK_LIMITS = 4.0, (0.15, 0.45)


@dataclass(frozen=True)
class SoftSearchConfig:
    """Settings of :func:`soft_search`.

    Attributes
    ----------
    epochs
        Passes over the particles.
    batch_size
        Particles per map update (all of them when there are fewer).
    n_rotations
        Poses of each batch's random uniform SO(3) grid.
    start_resolution_a, end_resolution_a
        Resolution compared (Å): from the first to the last batch, linearly. None: the
        box over 5 and over 10 (5 and 10 Fourier shells: 39 and 20 Å for 64 px at
        3.05 Å/px), so that the search sees the same number of shells of any particle
        whatever its pixel size. Fixed 40 → 20 Å left a map in a 64 Å box (1 Å/px) with
        fewer than 2 to 3 shells to find its poses from (docs/method.md).
    top_k
        Candidates (pose and offset) back-projected per particle.
    draw
        Draw the ``top_k`` candidates from the posterior (equal weights: an unbiased
        estimate of the posterior-weighted back-projection) instead of keeping the most
        likely ones with their weights. Off by default: on the ribosome (2 500 particles,
        CTF, origins) drawing was worse in every comparison — 55.5° against 24.0° mean
        error at 0 dB, 100.2° against 59.1° at −6 dB, and random against 27.8° from the
        true map low-passed to 80 Å at −12 dB (docs/method.md).
    start_temperature
        Temperature of the first batch's posterior, annealed linearly to 1 at the end of
        the first half of the run (a broad posterior first: the random start map knows
        nothing).
    memory_batches
        The running Fourier sums forget old batches: each new batch enters with weight 1,
        the sums so far are multiplied by ``1 − 1 / memory_batches`` (≥ 1; grows to the
        number of batches per epoch from the second epoch on).
    shift_range_px, shift_step_px
        Origin offsets tried around each particle's current origin (pixels).
    mask_radius
        Radius of the soft spherical mask, as a fraction of the box. None: measured from
        the images (:func:`~napari_cryorient.engine.extent.particle_radius_px`: how far
        out the phase-flipped images' variance stands above the corners') plus 4 pixels,
        between 0.15 and 0.45 of the box: a small particle in a large box gets a map with
        less room for noise.
    positive
        Clip negative density after each update.
    fsc_weighting
        Keep the particles in two independent running sums (by the parity of their
        index: a particle stays in its half), weight the map's Fourier shells by
        ``2·FSC / (1 + FSC)`` of the two, and compare with the map at amplitude 1 instead
        of a fitted one: a map made of noise is shrunk to nothing and gives a broad
        posterior, as RELION's regularised reconstruction does, instead of a fitted
        amplitude that the best of thousands of candidates inflates.
    regularisation
        Relative Wiener term (of the mean CTF² weight inside the band).
    restarts, screen_epochs
        Random starts (without a reference): each runs the first ``screen_epochs`` of
        the schedule, and the one whose map explains the images best (the mean log
        evidence of up to 500 particles against one pose grid) runs on to the end.
    rotations_per_block, pad_factor, seed
        Work size, Fourier oversampling, seed of grids, batches and the start.
    """

    epochs: int = 8
    batch_size: int = 250
    n_rotations: int = 3000
    start_resolution_a: float | None = None
    end_resolution_a: float | None = None
    top_k: int = 16
    draw: bool = False
    start_temperature: float = 16.0
    memory_batches: float = 2.0
    shift_range_px: float = 4.0
    shift_step_px: float = 2.0
    mask_radius: float | None = None
    positive: bool = True
    fsc_weighting: bool = True
    restarts: int = 6
    screen_epochs: int = 2
    regularisation: float = 0.05
    rotations_per_block: int = 1500
    pad_factor: float = 2.0
    seed: int = 0

    def validate(self) -> None:
        if (self.epochs < 1 or self.batch_size < 2 or self.n_rotations < 1 or self.top_k < 1
                or any(r is not None and r <= 0 for r in (self.start_resolution_a, self.end_resolution_a))
                or self.start_temperature <= 0 or self.memory_batches < 1
                or self.restarts < 1 or self.screen_epochs < 1
                or self.shift_range_px < 0 or self.shift_step_px <= 0
                or (self.mask_radius is not None and not 0 < self.mask_radius <= 0.5)):
            raise ValueError("invalid soft search settings (epochs, batch size, rotations, top-k, "
                             "restarts and screen epochs >= 1; resolutions and temperature > 0; "
                             "memory >= 1 batch; mask radius in (0, 0.5])")


@dataclass
class SoftSearchResult:
    """What :func:`soft_search` found.

    Attributes
    ----------
    volume
        `(d, d, d)` the final map (masked, its frame defines the poses).
    rotations
        `(n, 3, 3)` each particle's most likely pose in the last pass (package convention).
    shifts_a
        `(n, 2)` RELION origins (Å) of those candidates.
    confidence
        `(n,)` posterior weight of the most likely candidate (among its ``top_k``).
    log_evidence
        Mean log evidence per particle for the final map against an empty one (nats;
        larger explains the images better): how random starts are ranked.
    """

    volume: np.ndarray
    rotations: np.ndarray
    shifts_a: np.ndarray
    confidence: np.ndarray
    log_evidence: float = float("nan")


class _FourierSums:
    """Running Wiener sums ``Σ w·C·X`` and ``Σ w·C²`` on the centred padded grid."""

    def __init__(self, p: int, device: torch.device) -> None:
        self.p = p
        self.num = torch.zeros(2, p**3, device=device)  # real, imaginary
        self.den = torch.zeros(p**3, device=device)
        self._radius = frequency_norm((p, p, p), rfft=False, fftshift=True, device=device).reshape(-1)
        self._gridding = radial_gridding_correction(p, 1.0, device=device)

    def decay(self, factor: float) -> None:
        self.num *= factor
        self.den *= factor

    def insert(self, k: torch.Tensor, values: torch.Tensor, ctf2: torch.Tensor, rotations: torch.Tensor
               ) -> None:
        """Trilinear insertion of `(r, m)` complex ``values`` (already weighted) and `(r, m)`
        ``ctf2`` weights, sampled at `(m, 3)` frequencies ``k`` (cycles/padded pixel, xyz)
        of the image plane of `(r, 3, 3)` poses, and of their Friedel mates."""
        p = self.p
        coords = (k @ rotations).reshape(-1, 3)  # R^T k: (r·m, 3)
        coords = torch.cat([coords, -coords]) * p + p // 2
        vals = values.reshape(-1)
        vals = torch.cat([vals, vals.conj()])
        w2 = ctf2.reshape(-1).repeat(2)
        base = coords.floor()
        frac = coords - base
        base = base.long()
        for corner in range(8):
            d = torch.tensor([(corner >> a) & 1 for a in range(3)], device=coords.device)
            idx = base + d
            tri = torch.where(d.bool(), frac, 1 - frac).prod(-1)
            ok = ((idx >= 0) & (idx < p)).all(-1)
            flat = (idx[:, 2] * p + idx[:, 1]) * p + idx[:, 0]  # [z, y, x]
            flat, tri = flat[ok], tri[ok]
            v = vals[ok] * tri
            self.num[0].index_add_(0, flat, v.real)
            self.num[1].index_add_(0, flat, v.imag)
            self.den.index_add_(0, flat, w2[ok] * tri)

    def transform(self, fmax: float, regularisation: float) -> torch.Tensor:
        """`(p³,)` Wiener estimate of the map transform up to ``fmax`` (cycles/pixel), zero
        outside."""
        inside = self._radius <= fmax  # cycles per pixel, as the samples
        mean = self.den[inside].mean().clamp_min(1e-20)
        ft = torch.complex(self.num[0], self.num[1]) / (self.den + regularisation * mean)
        return torch.where(inside, ft, torch.zeros_like(ft))

    def to_map(self, ft: torch.Tensor, size: int, mask: torch.Tensor, positive: bool) -> torch.Tensor:
        """The `(size,)*3` real map of a `(p³,)` transform, gridding-corrected, masked."""
        p = self.p
        vol = torch.fft.fftshift(torch.fft.ifftn(torch.fft.ifftshift(ft.reshape(p, p, p))).real)
        vol = vol / self._gridding
        a = (p - size) // 2
        vol = vol[a : a + size, a : a + size, a : a + size] * mask
        return vol.clamp_min(0) if positive else vol

    def shell_fsc_weights(self, other: _FourierSums, size: int, fmax: float, regularisation: float
                          ) -> torch.Tensor:
        """`(p³,)` per-shell weight ``2·FSC / (1 + FSC)`` (clipped to [0, 1]) of the sum of two
        independent halves' sums, from the FSC of their Wiener maps (shells of width
        ``1 / size`` cycles per pixel)."""
        f1, f2 = self.transform(fmax, regularisation), other.transform(fmax, regularisation)
        shell = torch.round(self._radius * size).long()
        fsc = shell_correlation(f1, f2, shell, int(shell.max()) + 1).clamp(0.0, 1.0)
        return (2 * fsc / (1 + fsc))[shell]

    def merged(self, other: _FourierSums) -> _FourierSums:
        both = _FourierSums.__new__(_FourierSums)
        both.p, both._radius, both._gridding = self.p, self._radius, self._gridding
        both.num, both.den = self.num + other.num, self.den + other.den
        return both


def _image_samples(images: Any, shifts_a: np.ndarray, ctf: CTFParams | None, matcher: SliceMatcher,
                   pixel_size_a: float, chunk: int, device: torch.device
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """`(n, m)` disc samples of every image (re-centred) and of its CTF (ones without)."""
    xs, cs = [], []
    for start in range(0, len(images), chunk):
        idx = np.arange(start, min(len(images), start + chunk))
        x, c = disc_samples(matcher, images, idx, pixel_size_a, shifts_a, ctf, device)
        xs.append(x)
        cs.append(torch.ones_like(x.real) if c is None else c)
    return torch.cat(xs), torch.cat(cs)


def _or_default(value: float | None, default: float) -> float:
    return default if value is None else value


def _mask_radius_px(images: Any, d: int, pixel_size_a: float, ctf: CTFParams | None, device: torch.device
                    ) -> float:
    measured = particle_radius_px(images, pixel_size_a, ctf, max_images=2000, device=device)
    return float(np.clip(measured + MASK_MARGIN_PX, MASK_LIMITS[0] * d, MASK_LIMITS[1] * d))


class _Search:
    """The state of one soft search: the images' disc samples, the running sums, the map."""

    def __init__(self, images: Any, pixel_size_a: float, shifts_a: np.ndarray, ctf: CTFParams | None,
                 config: SoftSearchConfig, device: torch.device) -> None:
        self.config, self.px, self.device = config, pixel_size_a, device
        self.d = d = int(np.asarray(images[0:1]).shape[-1])
        self.start_a = _or_default(config.start_resolution_a, d * pixel_size_a / START_SHELLS)
        self.end_a = _or_default(config.end_resolution_a, d * pixel_size_a / END_SHELLS)
        fmax_end = min(0.5, pixel_size_a / min(self.start_a, self.end_a))
        self.blank = SliceMatcher(torch.zeros(d, d, d), fmax_end, config.pad_factor, device)
        self.x, self.c = _image_samples(images, shifts_a, ctf, self.blank, pixel_size_a, 256, device)
        self.offsets = offset_grid(config.shift_range_px, config.shift_step_px).to(device)
        radius = (config.mask_radius * d if config.mask_radius is not None
                  else _mask_radius_px(images, d, pixel_size_a, ctf, device))
        self.mask = spherical_mask(d, radius, 3.0, device=device)
        self.sums = [_FourierSums(self.blank.p, device) for _ in range(2 if config.fsc_weighting else 1)]
        self.rng = np.random.default_rng(config.seed)
        self.gen = torch.Generator().manual_seed(config.seed)

    def restarted(self, seed: int) -> _Search:
        """A fresh search from another random start, sharing the images' samples."""
        other = copy.copy(self)
        other.sums = [_FourierSums(self.blank.p, self.device) for _ in self.sums]
        other.rng = np.random.default_rng(seed)
        other.gen = torch.Generator().manual_seed(seed)
        return other

    def resolution_a(self, frac: float) -> float:
        return self.start_a + (self.end_a - self.start_a) * frac

    def grid(self) -> torch.Tensor:
        rot = sample_orientations(self.config.n_rotations, "uniform", seed=int(self.rng.integers(2**31)))
        return torch.from_numpy(rot).to(self.device, torch.float32)

    def matcher(self, volume: torch.Tensor | None, fmax: float) -> tuple[SliceMatcher, torch.Tensor]:
        """A matcher of ``volume`` up to ``fmax`` and its samples among the stored ones."""
        d = self.d
        m = SliceMatcher(volume if volume is not None else torch.zeros(d, d, d), fmax, self.config.pad_factor,
                         self.device)
        return m, m.mask[self.blank.mask]

    def update(self, volume: torch.Tensor | None, idx: np.ndarray, frac: float, forget: float
               ) -> torch.Tensor:
        """One batch: candidates drawn against ``volume`` (random poses without one), their
        back-projection into the sums of the particles' halves (old batches times
        ``forget``), the new map."""
        config = self.config
        fmax = min(0.5, self.px / self.resolution_a(frac))
        halves = len(self.sums)
        grid = self.grid()
        matcher, sub = self.matcher(volume, fmax)
        w = self.blank.weight[sub]
        x, c = self.x[idx][:, sub], self.c[idx][:, sub]
        part = [np.flatnonzero(idx % halves == h) for h in range(halves)]  # a particle keeps its half
        if volume is None:  # the start: the batch at random poses
            rot = torch.empty(len(idx), 1, 3, 3, device=self.device)
            for rows in part:
                rot[rows] = grid[torch.randint(0, len(grid), (len(rows),), generator=self.gen)][:, None]
            off = torch.zeros(len(idx), 1, dtype=torch.long, device=self.device)
            weight = torch.ones(len(idx), 1, device=self.device)
        else:
            temperature = max(1.0, config.start_temperature * (1 - 2 * frac))
            rot, off, weight, _ = _posterior_top_k(matcher, x, c, w, self.offsets, grid, config, temperature,
                                                   self.gen if config.draw else None)
        phases = self.blank.shift_phases(self.offsets)[:, sub]  # (t, m)
        scale = weight[..., None] * w / 2  # each sample and its Friedel mate: half the rfft weight
        vals = x[:, None, :] * phases[off] * c[:, None, :] * scale
        ctf2 = (c * c)[:, None, :] * scale
        m = vals.shape[-1]
        for sums, rows in zip(self.sums, part, strict=True):
            sums.decay(forget if volume is not None else 0.0)
            sums.insert(self.blank._k[sub], vals[rows].reshape(-1, m), ctf2[rows].reshape(-1, m),
                        rot[rows].reshape(-1, 3, 3))
        return self.volume(fmax)

    def volume(self, fmax: float) -> torch.Tensor:
        """The current map up to ``fmax`` (cycles/pixel): Wiener; with two halves, their sum
        weighted by their FSC."""
        config = self.config
        reg, size, mask, positive = config.regularisation, self.d, self.mask, config.positive
        if len(self.sums) == 1:
            return self.sums[0].to_map(self.sums[0].transform(fmax, reg), size, mask, positive)
        first, second = self.sums
        shells = first.shell_fsc_weights(second, size, fmax, reg)
        both = first.merged(second)
        return both.to_map(both.transform(fmax, reg) * shells, size, mask, positive)

    def assign(self, volume: torch.Tensor, idx: np.ndarray, fmax: float, grid: torch.Tensor
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`(b, 3, 3)` most likely poses, `(b,)` offset indices, posterior weights and log
        evidence (see :func:`_posterior_top_k`)."""
        matcher, sub = self.matcher(volume, fmax)
        rot, off, weight, evidence = _posterior_top_k(
            matcher, self.x[idx][:, sub], self.c[idx][:, sub], self.blank.weight[sub], self.offsets, grid,
            self.config, 1.0, evidence=True)
        return (rot[:, 0].cpu().double().numpy(), off[:, 0].cpu().numpy(), weight[:, 0].cpu().numpy(),
                evidence.cpu().double().numpy())


def soft_search(
    images: Any,
    pixel_size_a: float,
    shifts_a: np.ndarray | None = None,
    ctf: CTFParams | None = None,
    config: SoftSearchConfig | None = None,
    device: torch.device | str = "cpu",
    reference: np.ndarray | torch.Tensor | None = None,
) -> Generator[Progress, None, SoftSearchResult]:
    """A map and every particle's pose from the images alone (see the module docstring).

    Parameters
    ----------
    images
        `(n, d, d)` sliceable particle stack.
    pixel_size_a
        Pixel size (Å).
    shifts_a
        `(n, 2)` current RELION origins (Å); offsets are searched around them.
    ctf
        Per-particle CTF; None: none.
    config
        :class:`SoftSearchConfig`.
    reference
        Optional `(d, d, d)` start map (low-pass it first); None: a random start.

    Yields
    ------
    Progress
        Stage ``"soft search"``: one unit per particle and epoch; then one unit per
        particle of the final assignment.

    Returns
    -------
    SoftSearchResult
        The map and poses in the map's own (arbitrary) frame.
    """
    config = config or SoftSearchConfig()
    config.validate()
    n = len(images)
    _, shifts_a = checked_arrays(images, np.broadcast_to(np.eye(3), (n, 3, 3)), shifts_a, ctf,
                                 minimum=MIN_PARTICLES)
    batch = min(config.batch_size, n)
    per_epoch = int(np.ceil(n / batch))
    total = config.epochs * per_epoch
    restarts = config.restarts if reference is None else 1
    screen = min(config.epochs, config.screen_epochs) if restarts > 1 else 0
    units = (restarts * screen + config.epochs - screen) * n
    done = 0

    def steps(search: _Search, volume: torch.Tensor | None, first: int, last: int, label: str
              ) -> Generator[Progress, None, torch.Tensor]:
        nonlocal done, order
        for step in range(first, last):
            epoch, b0 = divmod(step, per_epoch)
            if b0 == 0:
                order = search.rng.permutation(n)
            idx = np.sort(order[b0 * batch : (b0 + 1) * batch])
            frac = step / max(1, total - 1)
            memory = config.memory_batches if epoch == 0 else max(config.memory_batches, per_epoch)
            volume = search.update(volume, idx, frac, 1 - 1 / memory)
            done += len(idx)
            yield Progress("soft search", done, units,
                           f"{label}epoch {epoch + 1}/{config.epochs}, {search.resolution_a(frac):.0f} Å")
        return volume

    order = np.arange(n)
    try:
        first_search = _Search(images, pixel_size_a, shifts_a, ctf, config, torch.device(device))
        start = None if reference is None else torch.as_tensor(reference, dtype=torch.float32).to(
            first_search.device) * first_search.mask
        if restarts == 1:
            search = first_search
            volume = yield from steps(search, start, 0, total, "")
        else:  # each random start runs the first epochs; the one the images favour goes on
            rows = np.sort(np.random.default_rng(config.seed).permutation(n)[: min(n, 500)])
            at = first_search.resolution_a(screen * per_epoch / max(1, total - 1))
            judged = min(0.5, pixel_size_a / at)
            grid = torch.from_numpy(sample_orientations(config.n_rotations, "uniform", seed=config.seed + 1))
            grid = grid.to(first_search.device, torch.float32)
            best: tuple[float, _Search, torch.Tensor] | None = None
            for r in range(restarts):
                candidate = first_search.restarted(config.seed + r)
                volume = yield from steps(candidate, None, 0, screen * per_epoch,
                                          f"start {r + 1}/{restarts}, ")
                evidence = float(candidate.assign(volume, rows, judged, grid)[3].mean())
                if best is None or evidence > best[0]:
                    best = (evidence, candidate, volume)
            _, search, volume = best
            volume = yield from steps(search, volume, screen * per_epoch, total, "")
        # every particle's most likely candidate against the final map
        rotations, best_off, confidence = np.zeros((n, 3, 3)), np.zeros(n, dtype=np.int64), np.zeros(n)
        evidence = np.zeros(n)
        fmax, grid = min(0.5, pixel_size_a / search.resolution_a(1.0)), search.grid()
        for b0 in range(0, n, batch):
            idx = np.arange(b0, min(n, b0 + batch))
            found = search.assign(volume, idx, fmax, grid)
            rotations[idx], best_off[idx], confidence[idx], evidence[idx] = found
            yield Progress("soft search", int(idx[-1]) + 1, n, "final assignment")
    except RuntimeError as err:
        raise EngineError(f"soft search failed: {err}") from err
    new_shifts = shifts_a + search.offsets.cpu().numpy()[best_off] * pixel_size_a
    return SoftSearchResult(volume.cpu().numpy(), rotations, new_shifts, confidence, float(evidence.mean()))


def _posterior_top_k(matcher: SliceMatcher, x: torch.Tensor, c: torch.Tensor, w: torch.Tensor,
                     offsets: torch.Tensor, grid: torch.Tensor, config: SoftSearchConfig, temperature: float,
                     generator: torch.Generator | None = None, evidence: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """`(b, K, 3, 3)` poses, `(b, K)` offset indices and `(b, K)` weights (summing to 1) of
    ``K = top_k`` candidates per particle: the most likely ones with their posterior
    weights, or, given a ``generator``, ``K`` draws from the posterior with equal weights;
    and, with ``evidence``, `(b,)` each particle's log evidence for the map against an empty one (the
    log-likelihood averaged over all candidates, with ``σ²`` the image's own power per
    coefficient so that maps can be compared: the ranking of random starts).

    The Gaussian log-likelihood of candidate ``k`` with the map at amplitude ``a``:
    ``(a·Re⟨C·P_k, X⟩ − a²·‖C·P_k‖² / 2) / σ²`` (weighted sums over the disc). ``a`` is 1
    for an FSC-weighted map (``fsc_weighting``), else one least-squares amplitude for the
    batch (the median over its particles at their best normalised correlation); ``σ²`` is
    each particle's residual power per coefficient there. Unlike the normalised
    correlation alone, a weak map gives a broad posterior: noise cannot be fitted at any amplitude."""
    b, t = len(x), len(offsets)
    phases = matcher.shift_phases(offsets)  # (t, m)
    xt = (x[:, None, :] * phases[None] * c[:, None, :]).reshape(-1, x.shape[-1]) * w  # (b·t, m)
    c2w = c * c * w
    us, es = [], []
    for s0 in range(0, len(grid), config.rotations_per_block):
        s = matcher.slices(grid[s0 : s0 + config.rotations_per_block])  # (kb, m)
        us.append((xt @ s.conj().T).real.reshape(b, t, -1))
        es.append((c2w @ (s.abs() ** 2).T)[:, None, :].expand(b, t, -1))
    u = torch.cat(us, -1).reshape(b, -1)  # (b, t·k): offset-major
    e = torch.cat(es, -1).reshape(b, -1).clamp_min(1e-20)
    best = (u / e.sqrt()).argmax(1)
    rows = torch.arange(b, device=x.device)
    ub, eb = u[rows, best], e[rows, best]
    a = torch.ones((), device=x.device) if config.fsc_weighting else (ub / eb).median().clamp_min(1e-12)
    xx = (w * x.abs() ** 2).sum(-1)
    sigma2 = ((xx - 2 * a * ub + a * a * eb) / w.sum()).clamp_min(1e-20 * xx.clamp_min(1e-30) / w.sum())
    logp = (a * u - a * a * e / 2) / (sigma2[:, None] * temperature)
    log_evidence = None
    if evidence:
        fit = (a * u - a * a * e / 2) / (xx / w.sum())[:, None]
        log_evidence = torch.logsumexp(fit, 1) - float(np.log(u.shape[1]))
    k = min(config.top_k, logp.shape[1])
    if generator is None:  # the most likely candidates, weighted by their posterior
        val, pos = logp.topk(k, dim=1)
        weight = torch.softmax(val, 1)
    else:  # k candidates drawn from the posterior without replacement (Gumbel top-k), equal weights
        g = -torch.log(-torch.log(torch.rand(logp.shape, generator=generator).clamp(1e-12, 1 - 1e-12)))
        _, pos = (logp + g.to(logp.device)).topk(k, dim=1)
        weight = torch.full(pos.shape, 1.0 / k, device=logp.device)
    kg = len(grid)
    return grid[pos % kg], pos // kg, weight, log_evidence
