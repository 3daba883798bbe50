"""Training elastic super-networks: progressive shrinking (OFA) and the sandwich rule (BigNAS).

``create_trainer("sandwich", supernet, TrainConfig(epochs=30)).fit(train, out="ckpt.pt")``
trains with a checkpoint per epoch and resumes from it; new methods subclass
:class:`Trainer` (override ``_train_step``) and are added with :func:`register_trainer`.
"""

from __future__ import annotations

from typing import Any

from elasticnas.registry import Registry
from elasticnas.supernets import Supernet
from elasticnas.training._progressive import ProgressiveShrinking
from elasticnas.training._sandwich import SandwichTrainer
from elasticnas.training.base import (
    CHECKPOINT_KIND,
    EpochResult,
    StepResult,
    TrainConfig,
    Trainer,
    TrainResult,
    soft_cross_entropy,
)

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


register_trainer("progressive", ProgressiveShrinking, aliases=("ofa", "progressive_shrinking"))
register_trainer("sandwich", SandwichTrainer, aliases=("bignas",))

__all__ = [
    "CHECKPOINT_KIND",
    "TRAINERS",
    "EpochResult",
    "ProgressiveShrinking",
    "SandwichTrainer",
    "StepResult",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "create_trainer",
    "list_trainers",
    "register_trainer",
    "soft_cross_entropy",
]
