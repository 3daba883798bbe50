"""The training loop shared by the methods: epochs, checkpoints, resumption, progress.

:class:`Trainer` does the bookkeeping (per-epoch shuffling and augmentation, the
learning-rate schedule, a checkpoint after every epoch, resumption, the progress
bar, validation of the largest and smallest sub-networks with BatchNorm
recalibration); a method overrides :meth:`Trainer._train_step` (and optionally
:meth:`Trainer._phase`, :meth:`Trainer._lr_factor`, :meth:`Trainer._start_epoch`,
:meth:`Trainer._extra_state` / :meth:`Trainer._load_extra_state`).

Determinism: every epoch draws its randomness (data order, augmentation,
sub-network sampling, dropout) from generators seeded with ``(seed, epoch)``, so
the state at an epoch boundary is a pure function of the seed and the checkpoint;
a run resumed from the checkpoint of epoch ``k`` continues exactly as the
uninterrupted run (on CPU; GPU kernels may not be bit-exact).

Checkpoints hold only tensors, dicts, lists, strings and numbers, and are read
with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from elasticnas._io import atomic_write
from elasticnas.data import as_loader, resize_batch
from elasticnas.errors import CheckpointError
from elasticnas.measure.latency import check_device
from elasticnas.space import Config
from elasticnas.supernets import ImageSupernet
from elasticnas.training._config import TrainConfig

CHECKPOINT_KIND = "elasticnas-training-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class EpochResult:
    """What one epoch did: mean training loss / accuracy (of the main sub-network of each step),
    validation top-1 (%) of the largest and smallest sub-networks (NaN when not evaluated)."""

    epoch: int
    phase: str
    loss: float
    train_acc: float
    val_max: float = math.nan
    val_min: float = math.nan
    lr: float = 0.0
    seconds: float = 0.0


@dataclass(frozen=True)
class StepResult:
    """Loss and correct predictions of a step's main sub-network, and its batch size."""

    loss: float
    correct: int
    n: int


@dataclass(frozen=True)
class TrainResult:
    """The per-epoch history of a run and where its checkpoint is."""

    history: tuple[EpochResult, ...]
    checkpoint: Path | None = None
    resumed_from: int = 0


def soft_cross_entropy(logits: Tensor, target_probs: Tensor, temperature: float = 1.0) -> Tensor:
    """Cross-entropy against soft labels (knowledge distillation), scaled by ``temperature**2``."""
    logp = F.log_softmax(logits / temperature, dim=1)
    return -(target_probs * logp).sum(dim=1).mean() * temperature**2


def _no_decay(name: str, p: Tensor) -> bool:
    return p.ndim <= 1 or name.endswith("_matrix")


def _torch_writer(obj: Any) -> Callable[[str], None]:
    """A writer for :func:`~elasticnas._io.atomic_write` saving ``obj`` with ``torch.save``.

    It writes through a Python file, so a full disk raises ``OSError`` (``torch.save`` to a
    path raises a ``RuntimeError`` instead).
    """

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)

    return write


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


class Trainer(ABC):
    """Trains a super-network with one method; subclasses implement :meth:`_train_step`."""

    name: str = ""

    def __init__(self, supernet: ImageSupernet, config: TrainConfig | None = None, *, device: str = "cpu") -> None:
        self.supernet = supernet
        self.config = config or TrainConfig()
        self.device = torch.device(check_device(device))
        self.supernet.to(self.device)
        decay = [p for n, p in supernet.named_parameters() if not _no_decay(n, p)]
        no_decay = [p for n, p in supernet.named_parameters() if _no_decay(n, p)]
        cfg = self.config
        self.optimizer = torch.optim.SGD(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.momentum > 0,
        )
        self.epoch = 0  # completed epochs
        self.step = 0  # completed optimizer steps
        self.steps_per_epoch = 0
        self.history: list[EpochResult] = []

    # -- hooks ----------------------------------------------------------------------------
    @abstractmethod
    def _train_step(self, x: Tensor, y: Tensor, rng: np.random.Generator) -> StepResult:
        """One optimizer step on batch ``(x, y)`` (at the data's resolution); ``rng`` samples sub-networks."""

    def _phase(self, epoch: int) -> str:
        """Name of the training phase epoch ``epoch`` (0-based) belongs to."""
        return self.name

    def _lr_factor(self, epoch: int, progress: float) -> float:
        """Learning rate relative to ``config.lr`` at fraction ``progress`` in [0, 1) of ``epoch``:
        linear warm-up, then cosine decay to zero over the run."""
        cfg = self.config
        t = epoch + progress
        if t < cfg.warmup_epochs:
            return (t + 1.0 / max(self.steps_per_epoch, 1)) / cfg.warmup_epochs
        span = max(cfg.epochs - cfg.warmup_epochs, 1e-9)
        return 0.5 * (1.0 + math.cos(math.pi * (t - cfg.warmup_epochs) / span))

    def _start_epoch(self, epoch: int) -> None:
        """Called before epoch ``epoch`` (0-based) runs, after its random state is set."""

    def _extra_state(self) -> dict[str, Any]:
        """Method state to checkpoint besides model, optimizer and schedule (plain tensors/dicts)."""
        return {}

    def _load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`_extra_state` returned."""

    # -- helpers for the methods ------------------------------------------------------------
    def forward(self, config: Config, x: Tensor) -> Tensor:
        """Logits of sub-network ``config`` on ``x`` resized to its resolution."""
        self.supernet.activate(config)
        logits: Tensor = self.supernet(resize_batch(x, self.supernet.resolution(config)))
        return logits

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        """Label-smoothed cross-entropy."""
        return F.cross_entropy(logits, y, label_smoothing=self.config.label_smoothing)

    def sample_config(self, rng: np.random.Generator, elastic: Sequence[str] | None = None) -> Config:
        """A random sub-network; choices not named in ``elastic`` (None: all) take their largest value."""
        space = self.supernet.search_space
        genes = space.cardinalities - 1
        n = len(genes)
        drawn = rng.integers(0, space.cardinalities, size=n)
        offset = 0
        for name, choice in space.choices.items():
            if elastic is None or name in elastic:
                genes[offset : offset + choice.length] = drawn[offset : offset + choice.length]
            offset += choice.length
        return space.from_genes(genes)

    # -- public API ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The full training state as a checkpoint (plain tensors, dicts, lists, numbers)."""
        return {
            "kind": CHECKPOINT_KIND,
            "version": CHECKPOINT_VERSION,
            "method": self.name,
            "supernet": self.supernet.name,
            "config": self.config.to_json(),
            "epoch": self.epoch,
            "step": self.step,
            "state_dict": {k: v.detach().cpu() for k, v in self.supernet.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"step": self.step, "epoch": self.epoch, "steps_per_epoch": self.steps_per_epoch},
            "rng": {"seed": self.config.seed, "epoch": self.epoch, "torch": torch.get_rng_state()},
            "extra": self._extra_state(),
            "history": [asdict(h) for h in self.history],
        }

    def load_state_dict(self, ckpt: Mapping[str, Any], *, source: str = "checkpoint") -> None:
        """Restore a state written by :meth:`state_dict` after checking it belongs to this run."""
        if ckpt.get("kind") != CHECKPOINT_KIND:
            raise CheckpointError(f"{source} is not an elasticnas training checkpoint")
        mismatch = [
            f"{what} {ckpt.get(key)!r} vs {mine!r}"
            for what, key, mine in (
                ("method", "method", self.name),
                ("super-network", "supernet", self.supernet.name),
            )
            if ckpt.get(key) != mine
        ]
        if ckpt.get("config") != self.config.to_json():
            theirs, mine = ckpt.get("config") or {}, self.config.to_json()
            diff = [f"{k}={theirs.get(k)!r} vs {mine[k]!r}" for k in mine if theirs.get(k) != mine[k]]
            mismatch.append("settings " + ", ".join(diff))
        if mismatch:
            raise CheckpointError(
                f"{source} belongs to another run ({'; '.join(mismatch)}); use another --out or --overwrite"
            )
        self.supernet.load_weights(ckpt["state_dict"])
        self.supernet.to(self.device)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.epoch, self.step = int(ckpt["epoch"]), int(ckpt["step"])
        self.steps_per_epoch = int(ckpt["scheduler"]["steps_per_epoch"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        self._load_extra_state(ckpt.get("extra") or {})
        self.history = [EpochResult(**h) for h in ckpt.get("history", [])]

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the checkpoint atomically: ``path`` keeps the previous one if the write fails (a full disk too)."""
        return atomic_write(path, _torch_writer(self.state_dict()), what="checkpoint")

    def export_weights(self, path: str | os.PathLike[str]) -> Path:
        """Write the weights with their provenance, without optimizer state (``create_supernet(weights=...)`` loads it).

        Written atomically, like :meth:`save`.
        """
        state = self.state_dict()
        keep = {k: state[k] for k in ("state_dict", "supernet", "method", "config", "epoch", "history")}
        return atomic_write(path, _torch_writer(keep), what="weights file")

    def load(self, path: str | os.PathLike[str]) -> None:
        """Resume from the checkpoint at ``path``."""
        try:
            ckpt = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise CheckpointError(f"checkpoint {os.fspath(path)!r} does not exist") from None
        except Exception as exc:  # noqa: BLE001 - unreadable / unsafe files raise many types
            raise CheckpointError(f"checkpoint {os.fspath(path)!r} could not be read safely: {exc}") from None
        if not isinstance(ckpt, Mapping):
            raise CheckpointError(f"checkpoint {os.fspath(path)!r} is not an elasticnas training checkpoint")
        self.load_state_dict(ckpt, source=f"checkpoint {os.fspath(path)!r}")

    def evaluate(self, val_data: Any, calib_data: Any, *, batch_size: int = 128) -> tuple[float, float]:
        """Validation top-1 (%) of the largest and smallest sub-networks, BatchNorm recalibrated on ``calib_data``."""
        from elasticnas.measure.accuracy import measure_accuracy

        out = []
        was_training = self.supernet.training
        self.supernet.eval()
        for cfg in (self.supernet.max_config(), self.supernet.min_config()):
            sub = self.supernet.extract(cfg)
            r = self.supernet.resolution(cfg)
            res = measure_accuracy(
                sub, val_data, calib_data=calib_data, resolution=r, batch_size=batch_size, device=str(self.device)
            )
            out.append(res.top1)
        self.supernet.train(was_training)
        return out[0], out[1]

    def fit(
        self,
        train_data: Any,
        *,
        out: str | os.PathLike[str] | None = None,
        resume: bool = True,
        val_data: Any = None,
        calib_data: Any = None,
        progress: bool = True,
        callback: Callable[[EpochResult], None] | None = None,
    ) -> TrainResult:
        """Train for ``config.epochs`` epochs on ``train_data`` (tensors, Dataset or path).

        With ``out``, a checkpoint is written after every epoch; when ``out`` already
        holds a checkpoint of this run and ``resume`` is true, training continues after
        its last epoch. With ``val_data`` (and ``calib_data`` for BatchNorm
        recalibration), the largest and smallest sub-networks are validated after every
        epoch. ``callback`` gets each epoch's result after its checkpoint is written.
        """
        from tqdm.auto import tqdm

        cfg = self.config
        resumed_from = 0
        if out is not None and resume and Path(out).exists():
            self.load(out)
            resumed_from = self.epoch
        self.steps_per_epoch = len(as_loader(train_data, batch_size=cfg.batch_size))
        self.supernet.train()
        while self.epoch < cfg.epochs:
            epoch = self.epoch
            seed = _epoch_seed(cfg.seed, epoch)
            torch.manual_seed(seed)
            rng = np.random.default_rng(seed)
            aug_gen = torch.Generator().manual_seed(seed + 1)
            loader = as_loader(train_data, batch_size=cfg.batch_size, shuffle=True, seed=seed)
            self._start_epoch(epoch)
            phase = self._phase(epoch)
            start = time.perf_counter()
            loss_sum = 0.0
            correct = n = 0
            bar = tqdm(
                loader,
                desc=f"{self.name} epoch {epoch + 1}/{cfg.epochs} [{phase}]",
                disable=not progress,
                leave=True,
                dynamic_ncols=True,
            )
            lr = cfg.lr
            for i, batch in enumerate(bar):
                x, y = batch[0].to(self.device).float(), batch[1].to(self.device).long()
                x = self._augment(x, aug_gen)
                lr = cfg.lr * self._lr_factor(epoch, i / max(self.steps_per_epoch, 1))
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                res = self._train_step(x, y, rng)
                self.step += 1
                loss_sum += res.loss * res.n
                correct += res.correct
                n += res.n
                bar.set_postfix(loss=f"{loss_sum / n:.3f}", acc=f"{100.0 * correct / n:.1f}%", lr=f"{lr:.3g}")
            bar.close()
            val_max = val_min = math.nan
            if val_data is not None:
                val_max, val_min = self.evaluate(val_data, calib_data)
                self.supernet.train()
            result = EpochResult(
                epoch=epoch + 1,
                phase=phase,
                loss=loss_sum / max(n, 1),
                train_acc=100.0 * correct / max(n, 1),
                val_max=val_max,
                val_min=val_min,
                lr=lr,
                seconds=time.perf_counter() - start,
            )
            self.history.append(result)
            self.epoch += 1
            if progress:
                extra = "" if math.isnan(val_max) else f", val largest {val_max:.1f}%, smallest {val_min:.1f}%"
                tqdm.write(f"epoch {result.epoch}: loss {result.loss:.3f}, train acc {result.train_acc:.1f}%{extra}")
            if out is not None:
                self.save(out)
            if callback is not None:
                callback(result)
        self.supernet.eval()
        return TrainResult(tuple(self.history), Path(out) if out is not None else None, resumed_from)

    def _augment(self, x: Tensor, gen: torch.Generator) -> Tensor:
        """Random translation by up to ``augment_shift`` pixels (border padding)."""
        shift = self.config.augment_shift
        if shift <= 0 or x.dim() != 4:
            return x
        n, _, h, w = x.shape
        t = (torch.rand(n, 2, generator=gen) * 2 - 1) * shift
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        theta[:, 0, 2] = t[:, 0] * 2 / w
        theta[:, 1, 2] = t[:, 1] * 2 / h
        grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

