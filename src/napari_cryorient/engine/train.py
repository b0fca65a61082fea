"""Training the Siamese distance network, with checkpoints that resume exactly.

Each step draws ``anchors_per_batch`` training particles and, for each, a few of its
nearest neighbours in true orientation (small distances are what recovery needs most);
the loss is the mean squared error between predicted and true distances over **all pairs
in the batch** (random pairs for free, plus the close ones). For simulated data the
images are kept clean and fresh noise of the right variance is drawn at every step (the
paper's network over-fitted a fixed noise realisation).

:class:`DistanceTrainer` keeps the whole training state (weights, optimiser, schedule,
random generator, early-stopping counters); :meth:`DistanceTrainer.checkpoint` can be
taken after any step, and a trainer rebuilt from it continues exactly as an
uninterrupted run would.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from . import so3
from .augment import rotate_images
from .device import resolve_device
from .distance_eval import DistanceEvaluation, evaluate_distances
from .inference import DistanceModel, compute_features, normalise_for_network
from .jobs import EngineError, Progress
from .recover import ExactDistances
from .siamese import EncoderConfig, SiameseNet, feature_distance, pairwise_feature_distance
from .training_data import TrainingData, prepare_training_data

__all__ = [
    "CHECKPOINT_FORMAT",
    "DistanceEvaluation",
    "DistanceModel",
    "DistanceTrainer",
    "TrainConfig",
    "TrainingData",
    "compute_features",
    "evaluate_distances",
    "prepare_training_data",
    "resolve_device",
]

CHECKPOINT_FORMAT = "napari-cryorient-siamese/1"


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters (defaults sized for a 2-core CPU).

    Attributes
    ----------
    encoder
        Network size and working box.
    epochs, steps_per_epoch
        Length of training; validation and early stopping happen once per epoch.
    anchors_per_batch, neighbours_per_anchor
        Batch = anchors + their nearest neighbours in true orientation; all pairs in the
        batch enter the loss.
    lr, weight_decay
        AdamW; the learning rate follows a cosine decay to 2 % over all steps.
    val_fraction
        Fraction of particles held out (never used for training).
    val_pairs
        Random validation pairs (plus each validation particle's neighbours).
    patience
        Epochs without validation improvement before stopping (0: never stop early).
    per_image_norm
        Standardise each image on its own (default) instead of with the training set's
        statistics: what a network applied to other data needs (a real stack has its own
        scale: a simulation's global statistics made its distances collapse).
    groups_per_batch
        With grouped data (many volumes), the anchors of a batch come from this many
        volumes (``anchors_per_batch // groups_per_batch`` each), so that a batch holds
        both close and far pairs of the same volume.
    augment_inplane
        Rotate each group (an anchor and its neighbours) by a random in-plane angle ``α``
        and use the exact new poses ``Rz(α) R``: free, exact augmentation of the in-plane
        angle, which a CNN otherwise has to learn from few examples.
    noise_warmup_db, noise_warmup_fraction
        Noise curriculum for simulated data: the first steps see images this many dB
        *less* noisy, the offset falling linearly to 0 over this fraction of all steps
        (0 dB: none). At −16 dB a network from scratch finds little signal to start from.
        Validation always uses the data's own noise.
    seed, device, amp
        Reproducibility; ``"auto"``/``"cpu"``/``"cuda"``/``"mps"``; mixed precision on CUDA.
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    epochs: int = 20
    steps_per_epoch: int = 60
    anchors_per_batch: int = 32
    neighbours_per_anchor: int = 3
    lr: float = 2e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    val_pairs: int = 20000
    patience: int = 12
    per_image_norm: bool = True
    groups_per_batch: int = 4
    augment_inplane: bool = True
    noise_warmup_db: float = 0.0
    noise_warmup_fraction: float = 0.3
    seed: int = 0
    device: str = "auto"
    amp: bool = True

    def to_dict(self) -> dict:
        d = asdict(self)
        d["encoder"] = self.encoder.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["encoder"] = EncoderConfig.from_dict(d["encoder"])
        return cls(**d)

    def validate(self, n_particles: int) -> None:
        if not 0 < self.val_fraction < 1:
            raise ValueError("val_fraction must be between 0 and 1")
        if self.epochs < 1 or self.steps_per_epoch < 1 or self.anchors_per_batch < 2:
            raise ValueError("epochs, steps_per_epoch >= 1 and anchors_per_batch >= 2 required")
        if self.noise_warmup_db < 0 or not 0 < self.noise_warmup_fraction <= 1:
            raise ValueError("noise_warmup_db must be >= 0 and noise_warmup_fraction in (0, 1]")
        n_val = int(round(self.val_fraction * n_particles))
        if n_val < 3 and n_particles >= 7:
            raise ValueError(f"too few particles held out for validation: a fraction of "
                             f"{self.val_fraction:g} holds out {n_val} of {n_particles}; at least 3 are "
                             f"needed: raise it to {3.5 / n_particles:.2g} or more")
        if n_val < 3 or n_particles - n_val < 4:
            raise ValueError(f"{n_particles} particles are too few to train (need >= 4 for training "
                             f"and >= 3 for validation)")


class DistanceTrainer:
    """Trains a :class:`SiameseNet` on :class:`TrainingData`; see the module docstring.

    Parameters
    ----------
    data
        Particles at the working box with their true orientations.
    config
        Hyper-parameters.
    """

    def __init__(self, data: TrainingData, config: TrainConfig | None = None) -> None:
        self.config = config = config or TrainConfig()
        config.validate(len(data))
        if data.images.shape[-1] != config.encoder.working_box:
            raise ValueError(f"data are at box {data.images.shape[-1]}, the encoder expects "
                             f"{config.encoder.working_box}")
        self.data = data
        self.device = resolve_device(config.device)
        with torch.random.fork_rng(devices=[]):  # seeded weights, torch's global RNG untouched
            torch.manual_seed(config.seed)
            self.model = SiameseNet(config.encoder).to(self.device)
        self.gen = torch.Generator().manual_seed(config.seed)
        self.val_idx, self.train_idx = self._split()
        self.norm: tuple[float, float] | None = None
        if not config.per_image_norm:
            # normalisation statistics of what the network sees (clean + noise for simulations)
            imgs = data.images[self.train_idx.numpy()]
            noise = float(np.mean(data.noise_std**2)) if data.noise_std is not None else 0.0
            var = float(imgs.var()) + noise
            self.norm = (float(imgs.mean()), math.sqrt(max(var, 1e-12)))
        self.total_steps = config.epochs * config.steps_per_epoch
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=config.lr,
                                     weight_decay=config.weight_decay)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.opt, self.total_steps, eta_min=config.lr * 0.02)
        self.step = 0
        self.best_val = float("inf")
        self.best_state: dict | None = None
        self.bad_epochs = 0
        self.stopped_early = False
        self.history: list[dict[str, float]] = []
        self._prepare_pairs()

    # ----------------------------------------------------------------- set-up
    def _split(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Validation and training indices: random particles, or whole groups held out."""
        c, n = self.config, len(self.data)
        gen = torch.Generator().manual_seed(c.seed + 1)
        if self.data.groups is None:
            perm = torch.randperm(n, generator=gen)
            n_val = int(round(c.val_fraction * n))
            return perm[:n_val].sort().values, perm[n_val:].sort().values
        groups = torch.as_tensor(self.data.groups)
        names = torch.unique(groups)
        if len(names) < 2:
            raise ValueError("grouped training data need at least 2 groups (one is held out)")
        n_val = min(len(names) - 1, max(1, int(round(c.val_fraction * len(names)))))
        held = names[torch.randperm(len(names), generator=gen)[:n_val]]
        is_val = torch.isin(groups, held)
        return torch.nonzero(is_val)[:, 0], torch.nonzero(~is_val)[:, 0]

    def _group_members(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """Positions in ``idx`` of each group's particles (one list entry per group)."""
        if self.data.groups is None:
            return [torch.arange(len(idx))]
        g = torch.as_tensor(self.data.groups)[idx]
        return [torch.nonzero(g == name)[:, 0] for name in torch.unique(g)]

    def _neighbours(self, idx: torch.Tensor, k: int) -> torch.Tensor:
        """`(len(idx), k')` nearest neighbours in true orientation, within each group,
        as positions in ``idx``."""
        q = self.data.quaternions[idx.numpy()]
        members = self._group_members(idx)
        k = min(k, min(len(m) for m in members) - 1)
        out = torch.empty((len(idx), k), dtype=torch.long)
        for m in members:
            out[m] = m[ExactDistances(q[m.numpy()]).nearest_neighbours(k)]
        return out

    def _prepare_pairs(self) -> None:
        q = self.data.quaternions
        self.train_nn = self._neighbours(self.train_idx, 8)  # positions in train_idx
        self.train_groups = self._group_members(self.train_idx)
        self._q_all = torch.as_tensor(so3.canonical_quaternions(q), dtype=torch.float32)
        # fixed validation pairs (within a group) and a fixed noise realisation
        g = torch.Generator().manual_seed(self.config.seed + 2)
        nv = len(self.val_idx)
        a_list, b_list = [], []
        members = self._group_members(self.val_idx)
        for m in members:
            share = max(1, self.config.val_pairs * len(m) // nv)
            a = torch.randint(0, len(m), (share,), generator=g)
            b = (a + torch.randint(1, len(m), (share,), generator=g)) % len(m)
            a_list.append(m[a])
            b_list.append(m[b])
        vnn = self._neighbours(self.val_idx, 4)
        a = torch.cat([*a_list, torch.arange(nv).repeat_interleave(vnn.shape[1])])
        b = torch.cat([*b_list, vnn.reshape(-1)])
        self.val_pairs = (a, b)
        self.val_true = so3.geodesic_distance(self._q_all[self.val_idx[a]], self._q_all[self.val_idx[b]])
        val_imgs = torch.as_tensor(self.data.images[self.val_idx.numpy()])
        if self.data.noise_std is not None:
            std = torch.as_tensor(self.data.noise_std[self.val_idx.numpy()])[:, None, None]
            val_imgs = val_imgs + std * torch.randn(val_imgs.shape, generator=g)
        self.val_images = val_imgs

    # -------------------------------------------------------------- training
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised images `(b, W, W)`, particle indices `(b,)` and quaternions `(b, 4)`."""
        c = self.config
        a = c.anchors_per_batch
        anchors = self._anchors()
        cols = torch.randint(0, self.train_nn.shape[1], (a, c.neighbours_per_anchor), generator=self.gen)
        local = torch.cat([anchors[:, None], self.train_nn[anchors[:, None], cols]], dim=1).reshape(-1)
        idx = self.train_idx[local]
        x = torch.as_tensor(self.data.images[idx.numpy()])
        q = self._q_all[idx]
        if c.augment_inplane:
            alpha = torch.rand(a, generator=self.gen) * 2 * torch.pi
            alpha = alpha.repeat_interleave(1 + c.neighbours_per_anchor)  # one angle per group
            x = rotate_images(x, alpha)
            half = alpha / 2  # q_z(alpha) ⊗ q: R -> Rz(alpha) R
            qz = torch.stack([torch.cos(half), torch.zeros_like(half), torch.zeros_like(half),
                              torch.sin(half)], dim=-1)
            q = so3.quaternion_multiply(qz, q)
        if self.data.noise_std is not None:  # fresh noise at every step
            std = torch.as_tensor(self.data.noise_std[idx.numpy()])[:, None, None] * self.noise_scale()
            x = x + std * torch.randn(x.shape, generator=self.gen)
        return normalise_for_network(x, self.norm), idx, q

    def noise_scale(self) -> float:
        """Factor on the simulated noise's standard deviation at the current step (the noise
        curriculum of ``noise_warmup_db``; 1 once it is over)."""
        c = self.config
        left = 1.0 - self.step / (c.noise_warmup_fraction * self.total_steps)
        return float(10 ** (-c.noise_warmup_db * max(left, 0.0) / 20))

    def _anchors(self) -> torch.Tensor:
        """`(anchors_per_batch,)` positions in ``train_idx``: uniform, or from a few groups."""
        c = self.config
        if self.data.groups is None:
            return torch.randint(0, len(self.train_idx), (c.anchors_per_batch,), generator=self.gen)
        n_groups = max(1, min(c.groups_per_batch, c.anchors_per_batch))
        chosen = torch.randint(0, len(self.train_groups), (n_groups,), generator=self.gen)
        a = c.anchors_per_batch
        per = [a // n_groups + (k < a % n_groups) for k in range(n_groups)]
        picks = [self.train_groups[g][torch.randint(0, len(self.train_groups[g]), (m,), generator=self.gen)]
                 for g, m in zip(chosen.tolist(), per, strict=True)]
        return torch.cat(picks)

    def _train_step(self) -> float:
        self.model.train()
        x, idx, q = self._batch()
        x, q = x.to(self.device), q.to(self.device)
        use_amp = self.config.amp and self.device.type == "cuda"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
            f = self.model.encode(x)
        d_pred = pairwise_feature_distance(f.float())
        d_true = so3.geodesic_from_dot(q @ q.T)
        iu = torch.triu_indices(len(idx), len(idx), 1, device=self.device)
        err = (d_pred[iu[0], iu[1]] - d_true[iu[0], iu[1]]) ** 2
        if self.data.groups is not None:  # only pairs of the same volume mean anything
            g = torch.as_tensor(self.data.groups, device=self.device)[idx.to(self.device)]
            err = err[g[iu[0]] == g[iu[1]]]
        loss = err.mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        self.step += 1
        return loss.item()

    @torch.no_grad()
    def validate(self, rotations: int = 1) -> tuple[float, DistanceEvaluation]:
        """Validation loss (rad²) and evaluation on the fixed held-out pairs; ``rotations``:
        test-time in-plane turns averaged into the features (see ``compute_features``)."""
        f = torch.as_tensor(compute_features(self.model, self.val_images, self.norm, device=self.device,
                                             rotations=rotations))
        a, b = self.val_pairs
        pred = feature_distance(f[a], f[b])
        loss = float(((pred - self.val_true) ** 2).mean())
        return loss, evaluate_distances(self.val_true.numpy(), pred.numpy())

    @property
    def pairs_per_step(self) -> int:
        b = self.config.anchors_per_batch * (1 + self.config.neighbours_per_anchor)
        return b * (b - 1) // 2

    @property
    def finished(self) -> bool:
        return self.step >= self.total_steps or self.stopped_early

    def run(self) -> Generator[Progress, None, DistanceTrainer]:
        """Train until done (or early stop); yields a :class:`Progress` after every step.

        ``Progress.data`` holds ``epoch``, ``step``, ``train_loss`` (rad²), ``pairs_per_s``,
        ``eta_s``, and at epoch ends ``val_loss``, ``val_mae_deg`` and ``evaluation``.
        Closing the generator stops after the current step; :meth:`checkpoint` then holds
        everything done so far.
        """
        c = self.config
        t_start, steps_start = time.perf_counter(), self.step
        try:
            while not self.finished:
                loss = self._train_step()
                epoch = (self.step - 1) // c.steps_per_epoch
                elapsed = time.perf_counter() - t_start
                rate = (self.step - steps_start) / max(elapsed, 1e-9)
                data: dict[str, Any] = {
                    "epoch": epoch, "step": self.step, "train_loss": loss,
                    "pairs_per_s": rate * self.pairs_per_step,
                    "eta_s": (self.total_steps - self.step) / max(rate, 1e-9),
                    "lr": self.sched.get_last_lr()[0],
                }
                if self.step % c.steps_per_epoch == 0:
                    val_loss, ev = self.validate()
                    data.update(val_loss=val_loss, val_mae_deg=ev.mae_deg, evaluation=ev)
                    self.history.append({"epoch": epoch, "step": self.step, "train_loss": loss,
                                         "val_loss": val_loss, "val_mae_deg": ev.mae_deg})
                    if val_loss < self.best_val - 1e-6:
                        self.best_val, self.bad_epochs = val_loss, 0
                        self.best_state = copy.deepcopy(self.model.state_dict())
                    else:
                        self.bad_epochs += 1
                        if c.patience and self.bad_epochs >= c.patience:
                            self.stopped_early = True
                yield Progress("train", self.step, self.total_steps,
                               f"epoch {epoch + 1}/{c.epochs}", data)
        except RuntimeError as err:
            raise EngineError(f"training failed: {err}") from err
        return self

    # ------------------------------------------------------------ checkpoints
    def distance_model(self) -> DistanceModel:
        """The best network with its normalisation and box, ready for :func:`image_features`."""
        return DistanceModel(self.best_model(), self.norm, self.data.original_box,
                             phase_flip=self.data.phase_flipped, any_box=self.data.any_box,
                             pixel_size_a=self.data.pixel_size_a)

    def best_model(self) -> SiameseNet:
        """A copy of the network with the best validation weights (current if none yet)."""
        model = SiameseNet(self.config.encoder)
        model.load_state_dict(self.best_state or self.model.state_dict())
        return model.eval()

    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to use the model and to resume training exactly."""
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "norm": None if self.norm is None else list(self.norm),
            "original_box": self.data.original_box,
            "phase_flip": self.data.phase_flipped,
            "any_box": self.data.any_box,
            "pixel_size_a": self.data.pixel_size_a,
            "model_state": copy.deepcopy(self.model.state_dict()),
            "best_state": copy.deepcopy(self.best_state),
            "optimizer": copy.deepcopy(self.opt.state_dict()),
            "scheduler": copy.deepcopy(self.sched.state_dict()),
            "generator": self.gen.get_state(),
            "step": self.step,
            "best_val": self.best_val,
            "bad_epochs": self.bad_epochs,
            "stopped_early": self.stopped_early,
            "history": list(self.history),
            "val_idx": self.val_idx.clone(),
            "data_poses_sha256": self.data.fingerprint(),
            "data_image_signature": torch.as_tensor(self.data.image_signature()),
        }

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any], data: TrainingData,
                        epochs: int | None = None) -> DistanceTrainer:
        """Rebuild a trainer (same data) to continue training; ``epochs`` may extend it."""
        if checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not a napari-cryorient model checkpoint")
        config = TrainConfig.from_dict(checkpoint["config"])
        if epochs is not None and epochs != config.epochs:
            config = TrainConfig(**{**asdict(config), "encoder": config.encoder, "epochs": epochs})
        if data.original_box != checkpoint["original_box"]:
            raise ValueError(f"the model was trained on {checkpoint['original_box']} px images, "
                             f"these are {data.original_box} px")
        trainer = cls(data, config)
        trainer.norm = None if checkpoint["norm"] is None else tuple(checkpoint["norm"])
        trainer.model.load_state_dict(checkpoint["model_state"])
        trainer.best_state = checkpoint["best_state"]
        trainer.opt.load_state_dict(checkpoint["optimizer"])
        sched = dict(checkpoint["scheduler"])
        if epochs is not None:
            sched["T_max"] = trainer.total_steps
        trainer.sched.load_state_dict(sched)
        trainer.gen.set_state(checkpoint["generator"])
        trainer.step = checkpoint["step"]
        trainer.best_val = checkpoint["best_val"]
        trainer.bad_epochs = checkpoint["bad_epochs"]
        trainer.stopped_early = checkpoint["stopped_early"]
        trainer.history = list(checkpoint["history"])
        if not torch.equal(trainer.val_idx, checkpoint["val_idx"]):
            raise ValueError("the data differ from those the model was trained on (split mismatch)")
        poses = checkpoint.get("data_poses_sha256")
        signature = checkpoint.get("data_image_signature")
        if (poses is not None and poses != data.fingerprint()) or (
                signature is not None and not data.matches_signature(signature)):
            raise ValueError("these particles are not the ones the model was trained on (their "
                             "poses or images differ); resume only on the same data set")
        return trainer
