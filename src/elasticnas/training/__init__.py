"""Training elastic super-networks: progressive shrinking (OFA) and the sandwich rule (BigNAS).

``create_trainer("sandwich", supernet, TrainConfig(epochs=30)).fit(train, out="ckpt.pt")``
trains with a checkpoint per epoch and resumes from it. Any super-network trains for its
task (:func:`task_of`): images, sequence classification, or a causal language model
fine-tuned once for all its sub-networks (InstaTune; ``TrainConfig.finetuning()``). New methods subclass
:class:`Trainer` (override ``_train_step``) and are added with :func:`register_trainer`.

The built-in methods are registered lazily and the names below are imported on first use
(PEP 562), so ``list_trainers()`` and :class:`TrainConfig` do not load PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from elasticnas.registry import Registry, lazy_exports
from elasticnas.training._config import TrainConfig

if TYPE_CHECKING:
    from elasticnas.measure.accuracy import IGNORE_INDEX
    from elasticnas.supernets import Supernet
    from elasticnas.training._progressive import ProgressiveShrinking
    from elasticnas.training._sandwich import SandwichTrainer
    from elasticnas.training.base import (
        CHECKPOINT_KIND,
        TASKS,
        EpochResult,
        StepResult,
        Trainer,
        TrainResult,
        distillation_loss,
        task_of,
    )

_LAZY = {
    "ProgressiveShrinking": "elasticnas.training._progressive",
    "SandwichTrainer": "elasticnas.training._sandwich",
    "CHECKPOINT_KIND": "elasticnas.training.base",
    "IGNORE_INDEX": "elasticnas.measure.accuracy",
    "TASKS": "elasticnas.training.base",
    "EpochResult": "elasticnas.training.base",
    "StepResult": "elasticnas.training.base",
    "Trainer": "elasticnas.training.base",
    "TrainResult": "elasticnas.training.base",
    "distillation_loss": "elasticnas.training.base",
    "task_of": "elasticnas.training.base",
}

TRAINERS: Registry[type[Trainer]] = Registry("training method")


def register_trainer(name: str, trainer: type[Trainer], *, aliases: tuple[str, ...] = ()) -> None:
    """Register a :class:`Trainer` subclass under ``name``."""
    TRAINERS.register(name, trainer, aliases=aliases)


def list_trainers(pattern: str | None = None) -> list[str]:
    """Names of the registered training methods."""
    return TRAINERS.names(pattern)


def create_trainer(name: str, supernet: Supernet, config: TrainConfig | None = None, **kwargs: Any) -> Trainer:
    """The trainer registered as ``name`` for ``supernet`` (``device=`` and the like go to it)."""
    return TRAINERS.get(name)(supernet, config, **kwargs)


TRAINERS.register_lazy(
    "progressive", "elasticnas.training._progressive:ProgressiveShrinking", aliases=("ofa", "progressive_shrinking")
)
TRAINERS.register_lazy("sandwich", "elasticnas.training._sandwich:SandwichTrainer", aliases=("bignas",))


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "CHECKPOINT_KIND",
    "IGNORE_INDEX",
    "TASKS",
    "TRAINERS",
    "EpochResult",
    "ProgressiveShrinking",
    "SandwichTrainer",
    "StepResult",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "create_trainer",
    "distillation_loss",
    "list_trainers",
    "register_trainer",
    "task_of",
]
