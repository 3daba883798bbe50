"""Progressive shrinking (Once-for-All; Cai et al., ICLR 2020).

Training runs in phases: first the full network (at random resolutions), then the
kernel size, then the depth, then the expand ratio become elastic in turn
(``TrainConfig.phases``, cumulative; choices not yet elastic take their largest
value). From the second phase on, sampled sub-networks learn from the labels and
from a frozen copy of the full network taken at the end of the first phase
(knowledge distillation: CE + kd_ratio * KD). Each phase restarts the cosine
learning-rate schedule, the later ones at ``phase_lr_scale`` times the peak rate.
The default phases name the OFA choices; other families set ``phases`` to theirs
(a transformer: ``(("full", ()), ("depth", ("depth",)), ("width", ("heads", "ffn", "hidden")))``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from elasticnas.errors import ElasticNASError
from elasticnas.supernets import Supernet
from elasticnas.training._config import TrainConfig
from elasticnas.training.base import Inputs, StepResult, Trainer


class ProgressiveShrinking(Trainer):
    """OFA progressive shrinking: full -> elastic kernel -> elastic depth -> elastic expand, with KD."""

    name = "progressive"

    def __init__(self, supernet: Supernet, config: TrainConfig | None = None, *, device: str = "cpu") -> None:
        super().__init__(supernet, config, device=device)
        named = {name for _, choices in self.config.phases for name in choices}
        if not named & set(supernet.search_space.choices):
            raise ElasticNASError(
                f"progressive shrinking's phases name none of the choices of {supernet.name or 'the super-network'!r} "
                f"({', '.join(supernet.search_space.choices)}); set TrainConfig.phases or train with the sandwich rule"
            )
        self.teacher: Supernet | None = None
        self.bounds = self.phase_bounds()

    def phase_bounds(self) -> list[tuple[int, int]]:
        """``[start, end)`` epochs of each phase: ``phase_fractions`` of the epochs, rounded cumulatively."""
        cfg = self.config
        total = sum(cfg.phase_fractions) or 1.0
        cum = np.cumsum(cfg.phase_fractions) / total
        ends = [int(round(c * cfg.epochs)) for c in cum]
        ends[0] = max(ends[0], 1)  # the full network trains for at least one epoch (it is the teacher)
        ends = [min(max(e, ends[0]), cfg.epochs) for e in ends]
        ends[-1] = cfg.epochs
        starts = [0, *ends[:-1]]
        return list(zip(starts, ends, strict=True))

    def phase_index(self, epoch: int) -> int:
        for i, (start, end) in enumerate(self.bounds):
            if start <= epoch < end:
                return i
        return len(self.bounds) - 1

    def elastic_choices(self, epoch: int) -> list[str]:
        """Names of the choices sampled in ``epoch``'s phase (cumulative over phases)."""
        names: list[str] = []
        for _, choices in self.config.phases[: self.phase_index(epoch) + 1]:
            names.extend(choices)
        return [n for n in names if n in self.supernet.search_space.choices]

    def _phase(self, epoch: int) -> str:
        return self.config.phases[self.phase_index(epoch)][0]

    def _lr_factor(self, epoch: int, progress: float) -> float:
        i = self.phase_index(epoch)
        start, end = self.bounds[i]
        if i == 0:
            warm = min(self.config.warmup_epochs, max(end - start - 1, 0))
            t = epoch - start + progress
            if t < warm:
                return (t + 1.0 / max(self.steps_per_epoch, 1)) / warm
            span = max(end - start - warm, 1e-9)
            return 0.5 * (1.0 + math.cos(math.pi * (t - warm) / span))
        t = epoch - start + progress
        return self.config.phase_lr_scale * 0.5 * (1.0 + math.cos(math.pi * t / max(end - start, 1e-9)))

    def _start_epoch(self, epoch: int) -> None:
        if self.phase_index(epoch) > 0 and self.teacher is None:
            self.teacher = self._freeze(copy.deepcopy(self.supernet))

    def _freeze(self, net: Supernet) -> Supernet:
        net.activate(net.max_config())
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        return net

    def _extra_state(self) -> dict[str, Any]:
        if self.teacher is None:
            return {}
        return {"teacher": {k: v.detach().cpu() for k, v in self.teacher.state_dict().items()}}

    def _load_extra_state(self, state: Mapping[str, Any]) -> None:
        if "teacher" in state:
            teacher = copy.deepcopy(self.supernet)
            teacher.load_weights(state["teacher"])
            self.teacher = self._freeze(teacher.to(self.device))
        else:
            self.teacher = None

    def _train_step(self, inputs: Inputs, target: Tensor, rng: np.random.Generator) -> StepResult:
        cfg = self.config
        epoch = self.epoch
        elastic = self.elastic_choices(epoch)
        self.optimizer.zero_grad(set_to_none=True)
        n_sub = 1 if self.phase_index(epoch) == 0 else max(cfg.num_random, 1)
        loss_sum, correct, n = 0.0, 0, 0
        for j in range(n_sub):
            sub = self.sample_config(rng, elastic)
            logits = self.forward(sub, *inputs)
            loss = self.loss(logits, target)
            if self.teacher is not None and cfg.kd_ratio > 0:
                with torch.no_grad():
                    teacher = self.teacher(*self.inputs_for(sub, inputs))
                loss = loss + cfg.kd_ratio * self.distill(logits, teacher, target)
            loss.backward()
            loss_sum += float(loss.detach())
            if j == 0:
                correct, n = self.count_correct(logits.detach(), target)
        self.optimizer_step()
        return StepResult(loss_sum / n_sub, correct, n)
