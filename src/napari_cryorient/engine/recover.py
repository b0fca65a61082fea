"""Orientation recovery: find poses whose pairwise distances match given distances.

Minimises ``Σ_(i,j) (d(q_i, q_j) − d̂_ij)²`` over unit quaternions, where ``d̂`` comes
from a :class:`DistanceOracle` (a trained distance network's features, or exact distances
from known poses to measure the method's own limit).

1. **Spectral initialisation.** ``tr(R_iᵀ R_j) = 1 + 2 cos d_ij``, so
   ``G_ij = 1 + 2 cos d̂_ij`` is (noisily) the Gram matrix of the 9-vectors ``vec(R_i)``.
   Its top-9 eigenvectors on ``m`` landmark particles (Nyström extension to the others,
   so memory is ``N × m``) give an embedding ``X ≈ vec(R) O`` with an unknown
   ``O ∈ O(9)``. *Rounding* finds ``O`` by alternating projection of each row onto SO(3)
   and an orthogonal Procrustes step, from several random starts.
2. **Refinement.** Adam on the quaternions over mini-batches of pairs: random pairs and
   each particle's nearest neighbours by predicted distance (small distances matter
   most); the N² pairs are never materialised.
3. **Restarts.** The whole procedure is repeated ``n_restarts`` times with different seeds
   and the estimate with the lowest loss on a fixed set of pairs is kept.

The result is defined up to the ``O(4)`` ambiguity described in
:mod:`~napari_cryorient.engine.align`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np
import torch

from . import so3
from .jobs import EngineError, Progress

__all__ = [
    "DistanceOracle",
    "ExactDistances",
    "FeatureDistances",
    "RecoveryConfig",
    "RecoveryResult",
    "recover_orientations",
    "spectral_candidates",
    "spectral_initialisation",
]


class DistanceOracle:
    """Predicted distances ``d̂_ij`` (radians) between particles, on demand."""

    n: int

    def pairs(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """`(b,)` distances for index tensors `(b,)`."""
        raise NotImplementedError

    def block(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """`(len(rows), len(cols))` distances."""
        raise NotImplementedError

    def nearest_neighbours(self, k: int, chunk: int = 1024) -> torch.Tensor:
        """`(n, k)` indices of each particle's ``k`` nearest others by ``d̂`` (chunked)."""
        k = min(k, self.n - 1)
        out = torch.empty(self.n, k, dtype=torch.long)
        cols = torch.arange(self.n)
        for start in range(0, self.n, chunk):
            rows = torch.arange(start, min(self.n, start + chunk))
            d = self.block(rows, cols)
            d[torch.arange(len(rows)), rows] = float("inf")
            out[rows] = torch.topk(d, k, dim=1, largest=False).indices
        return out


class ExactDistances(DistanceOracle):
    """Exact geodesic distances from known `(n, 4)` quaternions (the method's limit)."""

    def __init__(self, quaternions: np.ndarray) -> None:
        self.q = torch.as_tensor(so3.canonical_quaternions(quaternions), dtype=torch.float64)
        self.n = len(self.q)

    def pairs(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        return so3.geodesic_distance(self.q[i], self.q[j])

    def block(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        return so3.geodesic_from_dot(self.q[rows] @ self.q[cols].T)


class FeatureDistances(DistanceOracle):
    """Distances of the Siamese head from `(n, f)` features: ``2 arccos |cos ∠(f_i, f_j)|``.

    Parameters
    ----------
    features
        `(n, f)` feature vectors.
    dense_limit
        Up to this many particles, all distances are computed once (in row blocks) and kept
        as an `(n, n)` float32 matrix (256 MiB at the default 8 192), so that each pair
        lookup is an index instead of two gathers of feature vectors; above it, pairs are
        computed on demand and memory stays linear in ``n``.
    """

    def __init__(self, features: np.ndarray | torch.Tensor, dense_limit: int = 8192) -> None:
        f = torch.as_tensor(np.asarray(features), dtype=torch.float64)
        self.f = f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)
        self.n = len(self.f)
        self._dense: torch.Tensor | None = None
        self._use_dense = self.n <= dense_limit

    def _matrix(self) -> torch.Tensor:
        if self._dense is None:
            dense = torch.empty(self.n, self.n, dtype=torch.float32)
            cols = torch.arange(self.n)
            for start in range(0, self.n, 1024):
                rows = torch.arange(start, min(self.n, start + 1024))
                dense[rows] = self.block(rows, cols).float()
            self._dense = dense
        return self._dense

    def pairs(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        if self._use_dense:
            return self._matrix()[i, j].double()
        return so3.geodesic_from_dot((self.f[i] * self.f[j]).sum(-1))

    def block(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        return so3.geodesic_from_dot(self.f[rows] @ self.f[cols].T)


@dataclass(frozen=True)
class RecoveryConfig:
    """Settings of :func:`recover_orientations`.

    Attributes
    ----------
    init
        ``"spectral"`` (default) or ``"random"``.
    landmarks
        Particles used for the spectral embedding (Nyström for the rest).
    rounding_starts
        Random starts of the O(9) rounding.
    n_steps
        Adam steps of the refinement (0 keeps the initialisation).
    batch_pairs
        Pairs per step, at most ``pairs_per_particle · N`` (small sets do not need the
        full batch: each particle is in ``2 · batch / N`` pairs of a step).
    pairs_per_particle
        Caps the batch for small sets (see ``batch_pairs``).
    neighbour_fraction
        Fraction of each batch drawn from nearest-neighbour pairs (the rest random).
    n_neighbours
        Nearest neighbours per particle by predicted distance.
    lr
        Initial Adam learning rate (cosine decay to 1 % of it).
    n_restarts
        Independent runs; the lowest loss wins.
    screen_candidates, screen_steps
        Spectral roundings tried per run (the distinct ones with the lowest loss) and the
        Adam steps each gets (at most ``n_steps // 5``) before the best of them, by the
        loss after those steps, goes on to the full refinement. The rounding with the
        lowest loss *before* refinement is not always the one in the right basin
        (clustered, preferred views); a short refinement tells them apart.
        ``screen_candidates=1`` turns this off.
    seed
        Seed of landmarks, starts, pair sampling.
    """

    init: str = "spectral"
    landmarks: int = 2000
    rounding_starts: int = 20
    n_steps: int = 500
    batch_pairs: int = 16384
    pairs_per_particle: int = 16
    neighbour_fraction: float = 0.1
    n_neighbours: int = 16
    lr: float = 0.01
    n_restarts: int = 3
    screen_candidates: int = 6
    screen_steps: int = 100
    seed: int = 0

    def validate(self) -> None:
        if self.init not in ("spectral", "random"):
            raise ValueError(f"init must be 'spectral' or 'random', got {self.init!r}")
        if (self.landmarks < 20 or self.n_restarts < 1 or self.batch_pairs < 2 or self.n_steps < 0
                or self.pairs_per_particle < 1
                or self.screen_candidates < 1 or self.screen_steps < 0):
            raise ValueError("invalid recovery settings (landmarks >= 20, restarts >= 1, "
                             "batch_pairs >= 2, pairs_per_particle >= 1, n_steps >= 0, "
                             "screen_candidates >= 1, "
                             "screen_steps >= 0)")


@dataclass
class RecoveryResult:
    """Recovered orientations.

    Attributes
    ----------
    quaternions
        `(n, 4)` unit quaternions, defined up to the O(4) ambiguity.
    loss
        Final mean squared distance error (rad²) on the evaluation pairs.
    history
        Loss per logged step of the winning run.
    seconds
        Wall time.
    """

    quaternions: np.ndarray
    loss: float
    history: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rotations(self) -> np.ndarray:
        """`(n, 3, 3)` poses."""
        return so3.quaternion_to_matrix(self.quaternions)


def _project_to_so3(m: torch.Tensor) -> torch.Tensor:
    u, _, vt = torch.linalg.svd(m)
    d = torch.sign(torch.linalg.det(u @ vt))
    u = torch.cat([u[..., :2], u[..., 2:] * d[..., None, None]], dim=-1)
    return u @ vt


#: rows of the embedding the rounding iterates on (the 9 × 9 factor is fixed long before)
ROUNDING_ROWS = 1000


def _round_embedding(x: torch.Tensor, starts: int, gen: torch.Generator, iters: int = 60,
                     max_rows: int | None = None) -> list[tuple[float, torch.Tensor]]:
    """Rotations from an `(n, 9)` embedding ``x ≈ vec(R) O`` by alternating projection.

    The orthogonal `(9, 9)` factor ``O`` is found on at most ``max_rows`` random rows (the
    per-particle projections onto SO(3) are the cost: a batched 3 × 3 SVD per row and
    iteration; None: :data:`ROUNDING_ROWS`), then every row is projected once with it. Returns ``(residual,
    rotations)`` for each random start, the residual per row over all rows (stops early
    once a start is exact, as with exact distances).
    """
    out = []
    n = len(x)
    max_rows = ROUNDING_ROWS if max_rows is None else max_rows
    sub = x if n <= max_rows else x[torch.randperm(n, generator=gen)[:max_rows]]
    m = len(sub)
    for _ in range(starts):
        a, _ = torch.linalg.qr(torch.randn(9, 9, generator=gen, dtype=x.dtype))
        prev = float("inf")
        for _ in range(iters):
            r = _project_to_so3((sub @ a).reshape(m, 3, 3))
            u, _, vt = torch.linalg.svd(sub.T @ r.reshape(m, 9))
            a = u @ vt
            res = float(((sub @ a - r.reshape(m, 9)) ** 2).sum())
            if prev - res < 1e-9 * m:
                break
            prev = res
        if m < n:
            r = _project_to_so3((x @ a).reshape(n, 3, 3))
        res = float(((x @ a - r.reshape(n, 9)) ** 2).sum()) / n
        out.append((res, r))
        if res < 1e-8:  # exact distances: a perfect rounding cannot be improved
            break
    return out


#: the rank-9 spectral embedding needs at least 9 particles; fewer start from random poses
SPECTRAL_MIN_PARTICLES = 9


def spectral_initialisation(
    oracle: DistanceOracle, landmarks: int = 2000, starts: int = 20, seed: int = 0, chunk: int = 4096
) -> np.ndarray:
    """`(n, 4)` initial quaternions from the rank-9 embedding of ``1 + 2 cos d̂``.

    The rounding with the lowest recovery loss (see :func:`spectral_candidates`).
    """
    return spectral_candidates(oracle, landmarks, starts, seed, chunk)[0][1]


def spectral_candidates(
    oracle: DistanceOracle, landmarks: int = 2000, starts: int = 20, seed: int = 0, chunk: int = 4096
) -> list[tuple[float, np.ndarray]]:
    """Distinct roundings of the rank-9 embedding of ``1 + 2 cos d̂``, best first.

    Returns ``(loss, quaternions)`` pairs: the recovery loss (rad², on random pairs) of
    each distinct `(n, 4)` rounding, sorted by it.
    """
    gen = torch.Generator().manual_seed(seed)
    n = oracle.n
    m = min(n, landmarks)
    if m < SPECTRAL_MIN_PARTICLES:
        raise ValueError(f"the spectral start needs at least {SPECTRAL_MIN_PARTICLES} particles "
                         f"(and landmarks), not {m}")
    lm = torch.randperm(n, generator=gen)[:m]
    g_ll = 1 + 2 * torch.cos(oracle.block(lm, lm))
    vals, vecs = torch.linalg.eigh(g_ll.to(torch.float64))
    vals, vecs = vals[-9:].clamp_min(1e-9), vecs[:, -9:]
    x = torch.empty(n, 9, dtype=torch.float64)
    for start in range(0, n, chunk):
        rows = torch.arange(start, min(n, start + chunk))
        g = 1 + 2 * torch.cos(oracle.block(rows, lm)).to(torch.float64)
        x[rows] = g @ vecs / vals.sqrt()  # Nyström: rows of G_NL U Λ^{-1/2}
    # the embedding residual does not always point at the right rounding when d̂ is noisy:
    # choose among the starts by the recovery objective itself, on random pairs
    candidates = _round_embedding(x, starts, gen)
    i = torch.randint(0, n, (min(100_000, n * n),), generator=gen)
    j = (i + torch.randint(1, n, (len(i),), generator=gen)) % n
    target = oracle.pairs(i, j).to(torch.float64)
    scored: list[tuple[float, np.ndarray]] = []
    for _, r in candidates:
        q = torch.as_tensor(so3.matrix_to_quaternion(r.numpy()))
        loss = float(((so3.geodesic_distance(q[i], q[j]) - target) ** 2).mean())
        if all(abs(loss - other) > 1e-9 * max(loss, 1e-12) for other, _ in scored):  # same rounding twice
            scored.append((loss, q.numpy()))
    return sorted(scored, key=lambda c: c[0])


def _loss_on(q: torch.Tensor, oracle: DistanceOracle, i: torch.Tensor, j: torch.Tensor,
             target: torch.Tensor | None = None) -> torch.Tensor:
    qn = q / q.norm(dim=1, keepdim=True)
    # gradient-safe: two poses pulled onto each other (duplicate picks: d̂ = 0) sit where
    # arccos has an infinite slope
    d = so3.geodesic_from_dot((qn[i] * qn[j]).sum(-1), so3.GRADIENT_SAFE_COS)
    t = oracle.pairs(i, j).to(d.dtype) if target is None else target
    return ((d - t) ** 2).mean()


class _Run:
    """The state of one :func:`recover_orientations` call: the random generator (one
    stream, drawn in a fixed order), the fixed evaluation pairs, the progress count and the
    best restart so far."""

    def __init__(self, oracle: DistanceOracle, config: RecoveryConfig) -> None:
        self.oracle, self.config = oracle, config
        n = self.n = oracle.n
        self.gen = torch.Generator().manual_seed(config.seed)
        # fixed evaluation pairs: random + neighbours
        self.nn = oracle.nearest_neighbours(config.n_neighbours) if config.n_steps else None
        ev = min(200_000, n * (n - 1))
        ei = torch.randint(0, n, (ev,), generator=self.gen)
        ej = (ei + torch.randint(1, n, (ev,), generator=self.gen)) % n
        if self.nn is not None:
            ei = torch.cat([ei, torch.arange(n).repeat_interleave(self.nn.shape[1])])
            ej = torch.cat([ej, self.nn.reshape(-1)])
        self.ei, self.ej = ei, ej
        self.e_target = oracle.pairs(ei, ej).to(torch.float64)
        # screening takes at most a fifth of the refinement's steps per start
        self.screen_steps = min(config.screen_steps, config.n_steps // 5)
        self.screen = config.init == "spectral" and config.screen_candidates > 1 and self.screen_steps > 0
        screening = config.screen_candidates * self.screen_steps if self.screen else 0
        per_run = max(1, config.n_steps) + screening
        self.total = config.n_restarts * per_run
        batch = max(2, min(config.batch_pairs, config.pairs_per_particle * n))
        self.n_nn = int(round(batch * config.neighbour_fraction))
        self.n_rand = batch - self.n_nn
        self.best: RecoveryResult | None = None
        self.done = 0

    def eval_loss(self, q: torch.Tensor) -> float:
        with torch.no_grad():
            return float(_loss_on(q.detach(), self.oracle, self.ei, self.ej, self.e_target))

    def adam(self, q0: np.ndarray, n_steps: int, cosine: bool, message: str, restart: int,
             history: list[float]) -> Generator[Progress, None, torch.Tensor]:
        """``n_steps`` Adam steps from ``q0`` on random + neighbour pairs; the final iterate."""
        c, n, gen, nn = self.config, self.n, self.gen, self.nn
        q = torch.tensor(q0, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([q], lr=c.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, n_steps), eta_min=c.lr * 0.01) \
            if cosine else None
        for step in range(n_steps):
            i1 = torch.randint(0, n, (self.n_rand,), generator=gen)
            j1 = (i1 + torch.randint(1, n, (self.n_rand,), generator=gen)) % n
            i2 = torch.randint(0, n, (self.n_nn,), generator=gen)
            j2 = nn[i2, torch.randint(0, nn.shape[1], (self.n_nn,), generator=gen)]
            loss = _loss_on(q, self.oracle, torch.cat([i1, i2]), torch.cat([j1, j2]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            with torch.no_grad():
                q /= q.norm(dim=1, keepdim=True)
            self.done += 1
            if step % 50 == 0 or step == n_steps - 1:
                history.append(loss.item())
                estimate = self.best.quaternions if self.best is not None else \
                    so3.canonical_quaternions(q.detach().numpy().copy())
                yield Progress("recover", self.done, self.total, message,
                               {"loss": loss.item(), "restart": restart, "estimate": estimate})
        return q.detach()

    def starts(self, restart: int, initial: np.ndarray | None) -> list[np.ndarray]:
        """The candidate starts of one restart (several when screening)."""
        c, seed = self.config, self.config.seed + 1000 * restart
        if initial is not None:
            return [so3.canonical_quaternions(initial)]
        if c.init == "spectral" and self.n >= SPECTRAL_MIN_PARTICLES:
            found = spectral_candidates(self.oracle, c.landmarks, c.rounding_starts, seed)
            return [q for _, q in found[: c.screen_candidates if self.screen else 1]]
        return [so3.matrix_to_quaternion(so3.sample_orientations(self.n, "uniform", seed=seed))]

    def restart(self, restart: int, initial: np.ndarray | None) -> Generator[Progress, None, None]:
        """One restart: starts, screening, the full run; keeps it if it is the best so far."""
        c = self.config
        label = f"restart {restart + 1}/{c.n_restarts}"
        history: list[float] = []
        starts = self.starts(restart, initial)
        if self.screen and len(starts) > 1:
            # a short refinement of each start; the best by loss goes on
            screened = []
            for k, q0 in enumerate(starts):
                q = yield from self.adam(q0, self.screen_steps, False,
                                         f"{label}: screening start {k + 1}/{len(starts)}", restart, [])
                screened.append((self.eval_loss(q), q.numpy()))
            q_start = min(screened, key=lambda s: s[0])[1]
        else:
            q_start = starts[0]
        if self.screen:  # keep the progress total right when fewer starts were screened
            screened_starts = len(starts) if len(starts) > 1 else 0
            self.done += (c.screen_candidates - screened_starts) * self.screen_steps
        history.append(self.eval_loss(torch.as_tensor(q_start)))
        if c.n_steps:
            q = yield from self.adam(q_start, c.n_steps, True, label, restart, history)
        else:
            q = torch.as_tensor(q_start)
            self.done += 1
            yield Progress("recover", self.done, self.total)
        final = self.eval_loss(q)
        if self.best is None or final < self.best.loss:
            self.best = RecoveryResult(so3.canonical_quaternions(q.numpy()), final, history)
        if not math.isfinite(final):
            raise EngineError("orientation recovery diverged (non-finite loss)")


def recover_orientations(
    oracle: DistanceOracle,
    config: RecoveryConfig | None = None,
    initial: np.ndarray | None = None,
) -> Generator[Progress, None, RecoveryResult]:
    """Recover `(n, 4)` orientations whose pairwise distances match ``oracle``.

    ``initial`` `(n, 4)` quaternions replace the initialisation of the first restart (to
    continue from an earlier estimate).

    Yields
    ------
    Progress
        Stage ``"recover"``: steps done over all restarts; ``data`` holds ``loss`` and
        ``estimate``, the `(n, 4)` quaternions of the best restart finished so far (or of
        the current iterate during the first one), so that a caller that stops early
        keeps a usable result.

    Returns
    -------
    RecoveryResult
    """
    config = config or RecoveryConfig()
    config.validate()
    if oracle.n < 3:
        raise ValueError(f"orientation recovery needs at least 3 particles, got {oracle.n}")
    if initial is not None and np.shape(initial) != (oracle.n, 4):
        raise ValueError(f"initial quaternions must have shape ({oracle.n}, 4)")
    t0 = time.perf_counter()
    run = _Run(oracle, config)
    try:
        for restart in range(config.n_restarts):
            yield from run.restart(restart, initial if restart == 0 else None)
    except RuntimeError as err:
        if isinstance(err, EngineError):
            raise
        raise EngineError(f"orientation recovery failed: {err}") from err
    best = run.best
    best.seconds = time.perf_counter() - t0
    return best
