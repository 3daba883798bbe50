"""The training loop shared by the methods: epochs, checkpoints, resumption, progress.

:class:`Trainer` trains any :class:`~elasticnas.supernets.Supernet` for its task
(:func:`task_of`: image or sequence classification, or causal language modelling). It
does the bookkeeping (per-epoch shuffling, augmentation of images, the learning-rate
schedule, gradient clipping, a checkpoint after every epoch, resumption, the progress
bar, validation of the largest and smallest sub-networks); a method overrides
:meth:`Trainer._train_step` (and optionally :meth:`Trainer._phase`,
:meth:`Trainer._lr_factor`, :meth:`Trainer._start_epoch`,
:meth:`Trainer._extra_state` / :meth:`Trainer._load_extra_state`).

A batch is the model inputs followed by the target (``(images, labels)``,
``(input_ids, target_ids)``, ``(input_ids, attention_mask, labels)``), split by
:meth:`Trainer.split_batch`. Losses, distillation and accuracy are per sample over the
classes, or for a causal language model per token over the vocabulary (logits
``(N, T, V)`` against targets ``(N, T)``; targets of ``IGNORE_INDEX`` do not count).
Only image super-networks get the image steps: augmentation, inputs resized to each
sub-network's resolution, BatchNorm recalibration before validation.

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
from torch.utils.data import DataLoader, TensorDataset

from elasticnas._interrupts import raise_swallowed_interrupt
from elasticnas._io import atomic_write
from elasticnas.data import DataError, as_loader, resize_batch
from elasticnas.errors import CheckpointError, ElasticNASError
from elasticnas.measure.accuracy import IGNORE_INDEX, split_batch
from elasticnas.measure.latency import check_device
from elasticnas.space import Config
from elasticnas.supernets import ImageSupernet, Supernet
from elasticnas.supernets.base import IN_MEMORY_WEIGHTS
from elasticnas.training._config import TrainConfig

CHECKPOINT_KIND = "elasticnas-training-checkpoint"
CHECKPOINT_VERSION = 1
TASKS = ("causal-lm", "sequence-classification", "image-classification")

Inputs = tuple[Tensor, ...]


@dataclass(frozen=True)
class EpochResult:
    """What one epoch did: mean training loss / accuracy (of the main sub-network of each step; token
    accuracy for language models), the validation ``metric`` of the largest and smallest sub-networks
    (NaN when not evaluated): ``"top1"`` accuracy (%) or ``"perplexity"`` (causal language models)."""

    epoch: int
    phase: str
    loss: float
    train_acc: float
    val_max: float = math.nan
    val_min: float = math.nan
    lr: float = 0.0
    seconds: float = 0.0
    metric: str = "top1"

    def val_text(self, digits: int = 1) -> str:
        """``", val largest ..., smallest ..."`` with ``digits`` decimals, or ``""`` when not evaluated."""
        if math.isnan(self.val_max):
            return ""
        if self.metric == "perplexity":
            return f", val perplexity largest {self.val_max:.{digits}f}, smallest {self.val_min:.{digits}f}"
        return f", val largest {self.val_max:.{digits}f}%, smallest {self.val_min:.{digits}f}%"


@dataclass(frozen=True)
class StepResult:
    """Loss and correct predictions of a step's main sub-network, and the predictions counted
    (samples, or tokens for language models)."""

    loss: float
    correct: int
    n: int


@dataclass(frozen=True)
class TrainResult:
    """The per-epoch history of a run and where its checkpoint is."""

    history: tuple[EpochResult, ...]
    checkpoint: Path | None = None
    resumed_from: int = 0


def task_of(supernet: Supernet) -> str:
    """The task ``supernet`` learns: its ``task`` attribute (one of :data:`TASKS`); an
    :class:`~elasticnas.supernets.ImageSupernet` without one classifies images."""
    task = getattr(supernet, "task", None)
    if task is None and isinstance(supernet, ImageSupernet):
        return "image-classification"
    if task not in TASKS:
        raise ElasticNASError(
            f"super-network {supernet.name or type(supernet).__name__!r} needs a task attribute, one of "
            f"{', '.join(TASKS)}; got {task!r}"
        )
    return str(task)


def distillation_loss(
    student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0, *, mask: Tensor | None = None
) -> Tensor:
    """KL divergence of the student's from the (detached) teacher's softened distribution over the last
    axis, averaged over the other positions (samples, or tokens where ``mask`` holds), times
    ``temperature**2``; zero when both agree. The gradient is that of cross-entropy on soft labels."""
    student = F.log_softmax(student_logits / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)
    kl = (teacher.exp() * (teacher - student)).sum(dim=-1)
    if mask is None:
        return kl.mean() * temperature**2
    weights = mask.to(kl.dtype)
    return (kl * weights).sum() / weights.sum().clamp_min(1.0) * temperature**2


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

    def __init__(self, supernet: Supernet, config: TrainConfig | None = None, *, device: str = "cpu") -> None:
        self.supernet = supernet
        self.config = config or TrainConfig()
        self.task = task_of(supernet)
        self.device = torch.device(check_device(device))
        self.supernet.to(self.device)
        decay = [p for n, p in supernet.named_parameters() if not _no_decay(n, p)]
        no_decay = [p for n, p in supernet.named_parameters() if _no_decay(n, p)]
        cfg = self.config
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        self.optimizer: torch.optim.Optimizer
        if cfg.optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999))
        else:
            self.optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0)
        self.epoch = 0  # completed epochs
        self.step = 0  # completed optimizer steps
        self.steps_per_epoch = 0
        self.history: list[EpochResult] = []

    @property
    def val_metric(self) -> str:
        """What :meth:`evaluate` reports: ``"perplexity"`` for a causal language model, else ``"top1"``."""
        return "perplexity" if self.task == "causal-lm" else "top1"

    # -- hooks ----------------------------------------------------------------------------
    @abstractmethod
    def _train_step(self, inputs: Inputs, target: Tensor, rng: np.random.Generator) -> StepResult:
        """One optimizer step on a batch's ``inputs`` (images at the data's resolution) and ``target``;
        ``rng`` samples sub-networks."""

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
    def split_batch(self, batch: Any) -> tuple[Inputs, Tensor]:
        """A batch's model inputs (all but the last element) and target (the last, as integers) on the
        device; the images of an image super-network as floats."""
        if not isinstance(batch, tuple | list) or len(batch) < 2 or not all(torch.is_tensor(t) for t in batch):
            raise DataError(f"a batch must be a tuple of tensors (inputs..., target), got {type(batch).__name__}")
        inputs, target = split_batch(batch)
        assert target is not None  # two or more elements
        image = isinstance(self.supernet, ImageSupernet)
        return tuple(x.to(self.device).float() if image else x.to(self.device) for x in inputs), target.to(
            self.device
        ).long()

    def inputs_for(self, config: Config, inputs: Sequence[Tensor]) -> Inputs:
        """``inputs`` as sub-network ``config`` takes them: images resized to its resolution."""
        if isinstance(self.supernet, ImageSupernet):
            return (resize_batch(inputs[0], self.supernet.resolution(config)), *inputs[1:])
        return tuple(inputs)

    def forward(self, config: Config, *inputs: Tensor) -> Tensor:
        """Logits of sub-network ``config`` on ``inputs`` (see :meth:`inputs_for`)."""
        self.supernet.activate(config)
        logits: Tensor = self.supernet(*self.inputs_for(config, inputs))
        return logits

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """Label-smoothed cross-entropy over the classes, or per token over the vocabulary ((N*T, V) rows)."""
        return F.cross_entropy(
            logits.flatten(0, -2), target.flatten(), label_smoothing=self.config.label_smoothing,
            ignore_index=IGNORE_INDEX,
        )  # fmt: skip

    def distill(self, logits: Tensor, teacher_logits: Tensor, target: Tensor) -> Tensor:
        """:func:`distillation_loss` of ``logits`` from ``teacher_logits`` at ``config.kd_temperature``,
        over the samples, or the tokens whose ``target`` counts."""
        return distillation_loss(logits, teacher_logits, self.config.kd_temperature, mask=target != IGNORE_INDEX)

    def count_correct(self, logits: Tensor, target: Tensor) -> tuple[int, int]:
        """Correct top-1 predictions and predictions counted (samples, or tokens whose target counts)."""
        counted = target != IGNORE_INDEX
        return int(((logits.argmax(dim=-1) == target) & counted).sum()), int(counted.sum())

    def optimizer_step(self) -> None:
        """Clip the gradients' total norm to ``config.grad_clip`` (when > 0), then step the optimizer."""
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.supernet.parameters(), self.config.grad_clip)
        self.optimizer.step()

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
        # settings added since the checkpoint was written had their default values then
        theirs, mine = {**TrainConfig().to_json(), **(ckpt.get("config") or {})}, self.config.to_json()
        if theirs != mine:
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
        """Write the checkpoint atomically: ``path`` keeps the previous one if the write fails (a full disk too).
        The super-network's :attr:`~elasticnas.supernets.Supernet.weights_source` becomes ``path`` (a study
        searching it then records that file)."""
        return self._saved(atomic_write(path, _torch_writer(self.state_dict()), what="checkpoint"))

    def _saved(self, path: Path) -> Path:
        self.supernet.weights_source = os.path.abspath(path)
        return path

    def export_weights(self, path: str | os.PathLike[str]) -> Path:
        """Write the weights with their provenance, without optimizer state (``create_supernet(weights=...)`` loads it).

        Written atomically, like :meth:`save`, and recorded as the super-network's weights source.
        """
        state = self.state_dict()
        keep = {k: state[k] for k in ("state_dict", "supernet", "method", "config", "epoch", "history")}
        return self._saved(atomic_write(path, _torch_writer(keep), what="weights file"))

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
        self.supernet.weights_source = os.path.abspath(path)

    def evaluate(self, val_data: Any, calib_data: Any, *, batch_size: int = 128) -> tuple[float, float]:
        """The :attr:`val_metric` of the largest and smallest sub-networks on ``val_data``: top-1 (%), for
        image super-networks after BatchNorm recalibration on ``calib_data``, or a language model's perplexity."""
        was_training = self.supernet.training
        self.supernet.eval()
        try:
            largest, smallest = (
                self._validate(cfg, val_data, calib_data, batch_size)
                for cfg in (self.supernet.max_config(), self.supernet.min_config())
            )
        finally:
            self.supernet.train(was_training)
        return largest, smallest

    @torch.no_grad()
    def _validate(self, config: Config, val_data: Any, calib_data: Any, batch_size: int) -> float:
        """The :attr:`val_metric` of sub-network ``config`` (an image one extracted and recalibrated, as measured)."""
        if isinstance(self.supernet, ImageSupernet):
            from elasticnas.measure.accuracy import measure_accuracy

            sub = self.supernet.extract(config)
            r = self.supernet.resolution(config)
            return measure_accuracy(
                sub, val_data, calib_data=calib_data, resolution=r, batch_size=batch_size, device=str(self.device)
            ).top1
        self.supernet.activate(config)
        loss_sum, correct, n = 0.0, 0, 0
        for batch in self._loader(val_data, batch_size=batch_size):
            inputs, target = self.split_batch(batch)
            logits = self.supernet(*inputs)
            loss_sum += float(
                F.cross_entropy(logits.flatten(0, -2), target.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")
            )
            hits, counted = self.count_correct(logits, target)
            correct, n = correct + hits, n + counted
        if n == 0:
            raise DataError("the validation data is empty")
        return math.exp(loss_sum / n) if self.val_metric == "perplexity" else 100.0 * correct / n

    def _loader(self, data: Any, *, batch_size: int, shuffle: bool = False, seed: int = 0) -> DataLoader[Any]:
        """A ``DataLoader`` over ``data`` (see :func:`~elasticnas.data.as_loader`); the tensors of a
        super-network other than an image one keep their types (token ids stay integers), however many."""
        if isinstance(self.supernet, ImageSupernet) or not isinstance(data, tuple | list):
            return as_loader(data, batch_size=batch_size, shuffle=shuffle, seed=seed)
        tensors = [t if isinstance(t, Tensor) else torch.as_tensor(np.asarray(t)) for t in data]
        if len({len(t) for t in tensors}) != 1:
            raise DataError(f"the tensors of the data differ in length: {[len(t) for t in tensors]}")
        gen = torch.Generator().manual_seed(seed)
        return DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=shuffle, generator=gen)

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
        """Train for ``config.epochs`` epochs on ``train_data`` (tensors, a Dataset or DataLoader of batches
        ``(inputs..., target)``, or an image folder's path).

        With ``out``, a checkpoint is written after every epoch; when ``out`` already
        holds a checkpoint of this run and ``resume`` is true, training continues after
        its last epoch. With ``val_data`` (and ``calib_data`` for BatchNorm
        recalibration of image super-networks), the largest and smallest sub-networks are
        validated after every epoch (:meth:`evaluate`). ``callback`` gets each epoch's
        result after its checkpoint is written.
        """
        from tqdm.auto import tqdm

        cfg = self.config
        resumed_from = 0
        if out is not None and resume and Path(out).exists():
            self.load(out)
            resumed_from = self.epoch
        self.steps_per_epoch = len(self._loader(train_data, batch_size=cfg.batch_size))
        self.supernet.train()
        while self.epoch < cfg.epochs:
            self.supernet.weights_source = IN_MEMORY_WEIGHTS  # until a checkpoint holds them (_saved)
            epoch = self.epoch
            seed = _epoch_seed(cfg.seed, epoch)
            torch.manual_seed(seed)
            rng = np.random.default_rng(seed)
            aug_gen = torch.Generator().manual_seed(seed + 1)
            loader = self._loader(train_data, batch_size=cfg.batch_size, shuffle=True, seed=seed)
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
                raise_swallowed_interrupt()
                inputs, target = self.split_batch(batch)
                inputs = self._augment(inputs, aug_gen)
                lr = cfg.lr * self._lr_factor(epoch, i / max(self.steps_per_epoch, 1))
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                res = self._train_step(inputs, target, rng)
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
                metric=self.val_metric,
            )
            self.history.append(result)
            self.epoch += 1
            if progress:
                tqdm.write(
                    f"epoch {result.epoch}: loss {result.loss:.3f}, "
                    f"train acc {result.train_acc:.1f}%{result.val_text()}"
                )
            if out is not None:
                self.save(out)
            if callback is not None:
                callback(result)
        self.supernet.eval()
        return TrainResult(tuple(self.history), Path(out) if out is not None else None, resumed_from)

    def _augment(self, inputs: Inputs, gen: torch.Generator) -> Inputs:
        """The images of an image super-network translated at random by up to ``augment_shift`` pixels
        (border padding); other inputs unchanged."""
        shift = self.config.augment_shift
        x = inputs[0]
        if shift <= 0 or not isinstance(self.supernet, ImageSupernet) or x.dim() != 4:
            return inputs
        n, _, h, w = x.shape
        t = (torch.rand(n, 2, generator=gen) * 2 - 1) * shift
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        theta[:, 0, 2] = t[:, 0] * 2 / w
        theta[:, 1, 2] = t[:, 1] * 2 / h
        grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
        shifted = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return (shifted, *inputs[1:])
