"""Sandwich rule with in-place distillation (BigNAS; Yu et al., ECCV 2020; also
Slimmable/US-Nets, Yu & Huang, ICCV 2019).

Every step trains the largest sub-network on the labels, then the smallest and
``num_random`` random sub-networks on the largest one's soft predictions (detached; per
token for language models), accumulating the gradients of all of them into one optimizer step.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from elasticnas.training.base import Inputs, StepResult, Trainer


class SandwichTrainer(Trainer):
    """BigNAS sandwich rule: largest + smallest + N random sub-networks per step, in-place distillation."""

    name = "sandwich"

    def _train_step(self, inputs: Inputs, target: Tensor, rng: np.random.Generator) -> StepResult:
        cfg = self.config
        net = self.supernet
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.forward(net.max_config(), *inputs)
        loss = self.loss(logits, target)
        loss.backward()
        teacher = logits.detach()
        students = [net.min_config()] + [self.sample_config(rng) for _ in range(cfg.num_random)]
        for sub in students:
            out = self.forward(sub, *inputs)
            sub_loss = self.distill(out, teacher, target)
            if cfg.kd_ratio < 1.0:
                sub_loss = cfg.kd_ratio * sub_loss + (1.0 - cfg.kd_ratio) * self.loss(out, target)
            sub_loss.backward()
        self.optimizer_step()
        correct, n = self.count_correct(teacher, target)
        return StepResult(float(loss.detach()), correct, n)
