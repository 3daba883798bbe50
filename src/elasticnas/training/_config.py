"""The hyper-parameters of a training run, importable without PyTorch (``elasticnas train --help`` reads the
defaults)."""

from __future__ import annotations

import functools
import json
import math
import numbers
import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from elasticnas.errors import ElasticNASError

OPTIMIZERS = ("sgd", "adamw")
# TrainConfig.finetuning(): AdamW at a small learning rate, weight decay 0.01, gradients clipped at norm 1,
# no warm-up epoch, label smoothing or image augmentation (the usual settings for fine-tuning a transformer)
FINETUNING: dict[str, Any] = {
    "optimizer": "adamw", "lr": 5e-5, "weight_decay": 0.01, "grad_clip": 1.0, "warmup_epochs": 0,
    "label_smoothing": 0.0, "augment_shift": 0,
}  # fmt: skip


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run (all methods; fields name the method they affect).

    ``lr`` is the peak learning rate of the ``optimizer`` ("sgd": SGD with Nesterov
    ``momentum``; "adamw": AdamW with betas ``(momentum, 0.999)`` and decoupled weight
    decay), decayed by a cosine schedule per step after ``warmup_epochs`` of linear
    warm-up; ``weight_decay`` applies to weights of two or more axes (convolutions,
    linear layers, embeddings), not to biases and norms.
    ``grad_clip``: the largest norm of all gradients together at each step (0: no clipping).
    ``num_random``: sub-networks sampled per step besides the largest and smallest
    (sandwich) or per step after the first phase (progressive). ``kd_ratio``: weight of
    the distillation term (progressive: CE + kd_ratio * KD; sandwich: students learn
    from soft labels only when 1.0, else a kd_ratio-weighted mix with the labels).
    ``phases`` / ``phase_fractions`` (progressive): cumulative groups of choices made
    elastic, and the share of the epochs each phase gets; ``phase_lr_scale``: the peak
    learning rate of the phases after the first, relative to ``lr``.
    ``augment_shift``: random translation of each training image by up to this many
    pixels (0 turns augmentation off; image super-networks only).
    """

    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-5
    grad_clip: float = 0.0
    label_smoothing: float = 0.1
    warmup_epochs: int = 1
    augment_shift: int = 3
    kd_ratio: float = 1.0
    kd_temperature: float = 1.0
    num_random: int = 2
    phases: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("full", ("r",)),
        ("kernel", ("ks",)),
        ("depth", ("d",)),
        ("expand", ("e",)),
    )
    phase_fractions: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25)
    phase_lr_scale: float = 0.4
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low in (("epochs", 1), ("batch_size", 1), ("warmup_epochs", 0), ("augment_shift", 0),
                          ("num_random", 0)):
            _check(name, getattr(self, name), int, functools.partial(operator.le, low), f"an integer >= {low}")
        _check("seed", self.seed, int, lambda v: 0 <= v < 2**32, "an integer 0 <= seed < 2**32")
        if self.optimizer not in OPTIMIZERS:
            raise ElasticNASError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        for name, ok, what in (
            ("lr", lambda v: v > 0, "a finite number > 0"),
            ("momentum", lambda v: 0 <= v < 1, "a number 0 <= momentum < 1"),
            ("weight_decay", lambda v: v >= 0, "a finite number >= 0"),
            ("grad_clip", lambda v: v >= 0, "a finite number >= 0"),
            ("label_smoothing", lambda v: 0 <= v <= 1, "a number from 0 to 1"),
            ("kd_ratio", lambda v: v >= 0, "a finite number >= 0"),
            ("kd_temperature", lambda v: v > 0, "a finite number > 0"),
            ("phase_lr_scale", lambda v: v > 0, "a finite number > 0"),
        ):
            _check(name, getattr(self, name), float, ok, what)
        if len(self.phases) != len(self.phase_fractions) or not all(
            _is_number(f, float) and f >= 0 for f in self.phase_fractions
        ):
            raise ElasticNASError("phase_fractions needs one finite, non-negative share per phase")

    @classmethod
    def finetuning(cls, **overrides: Any) -> TrainConfig:
        """Settings for fine-tuning a pretrained transformer (:data:`FINETUNING`), ``overrides`` on top."""
        return cls(**{**FINETUNING, **overrides})

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able form (tuples as lists)."""
        return json.loads(json.dumps(asdict(self)))  # type: ignore[no-any-return]  # a JSON object of the fields


def _is_number(value: object, kind: type) -> bool:
    """``value`` is a finite number of ``kind`` (an integer is also a float; a bool is neither; ints below 2**63)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral if kind is int else numbers.Real):
        return False
    try:
        return abs(float(value)) < (2**63 if kind is int else math.inf)  # NaN compares false
    except OverflowError:
        return False


def _check(name: str, value: object, kind: type, ok: Callable[[float], bool], what: str) -> None:
    if not (_is_number(value, kind) and ok(value)):  # type: ignore[arg-type]  # a number: _is_number checked
        raise ElasticNASError(f"{name} must be {what}, got {value!r}")
