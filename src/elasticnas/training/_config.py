"""The hyper-parameters of a training run, importable without PyTorch (``elasticnas train --help`` reads the defaults)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from elasticnas.errors import ElasticNASError


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run (all methods; fields name the method they affect).

    ``lr`` is the peak learning rate of SGD with Nesterov momentum, decayed by a
    cosine schedule per step after ``warmup_epochs`` of linear warm-up;
    ``weight_decay`` applies to weights of convolutions and linear layers only.
    ``num_random``: sub-networks sampled per step besides the largest and smallest
    (sandwich) or per step after the first phase (progressive). ``kd_ratio``: weight of
    the distillation term (progressive: CE + kd_ratio * KD; sandwich: students learn
    from soft labels only when 1.0, else a kd_ratio-weighted mix with the labels).
    ``phases`` / ``phase_fractions`` (progressive): cumulative groups of choices made
    elastic, and the share of the epochs each phase gets; ``phase_lr_scale``: the peak
    learning rate of the phases after the first, relative to ``lr``.
    ``augment_shift``: random translation of each training image by up to this many
    pixels (0 turns augmentation off).
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-5
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
        if self.epochs < 1:
            raise ElasticNASError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ElasticNASError(f"batch size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ElasticNASError(f"the learning rate must be > 0, got {self.lr}")
        if self.num_random < 0:
            raise ElasticNASError(f"num_random must be >= 0, got {self.num_random}")
        if len(self.phases) != len(self.phase_fractions) or any(f < 0 for f in self.phase_fractions):
            raise ElasticNASError("phase_fractions needs one non-negative share per phase")

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able form (tuples as lists)."""
        return json.loads(json.dumps(asdict(self)))  # type: ignore[no-any-return]
