"""Top-1 / top-5 accuracy and loss of a sub-network, after BatchNorm recalibration.

A batch is the model inputs followed by the target (:func:`split_batch`): ``(images, labels)``,
``(input_ids, target_ids)`` for a causal language model (logits ``(N, T, V)``: accuracy and loss
per token, targets of :data:`IGNORE_INDEX` left out), ``(input_ids, attention_mask, labels)``.
Only images (floating-point or 4-D inputs) are converted to float and resized.

A sub-network of an elastic super-network sees different activation
statistics than the super-network whose running BatchNorm statistics it
inherits. As in Once-for-All, we reset the running statistics and re-estimate
them on a few training batches (cumulative average: ``momentum=None``) before
evaluating.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from elasticnas.data import DataError, DataSource, as_loader, resize_batch
from elasticnas.measure.latency import check_device

IGNORE_INDEX = -100  # a target that does not count (padding), as in F.cross_entropy, transformers and training


@dataclass(frozen=True)
class AccuracyResult:
    """Accuracy (in %) and mean cross-entropy loss over ``n_samples`` validation predictions (samples, or
    tokens for per-token logits)."""

    top1: float
    top5: float
    loss: float
    n_samples: int
    calibration_batches: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Calibration:
    """How a sub-network's BatchNorm statistics are re-estimated, the same for measuring and exporting.

    ``batches`` batches of ``batch_size`` samples of ``data``, drawn shuffled with ``seed``.
    """

    data: Any
    batches: int = 50
    batch_size: int = 64
    seed: int = 0

    def apply(
        self, model: nn.Module, *, resolution: int | None, channels: int | None = None, device: str = "cpu"
    ) -> int:
        """Recalibrate ``model`` in place (then in eval mode); returns the number of batches used."""
        if self.batches <= 0 or not has_batchnorm(model):
            model.eval()
            return 0
        loader = as_loader(
            self.data, batch_size=self.batch_size, resolution=resolution, shuffle=True, seed=self.seed,
            channels=channels,
        )
        return recalibrate_batchnorm(model, loader, self.batches, device=device, resolution=resolution)


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` has a BatchNorm layer (whose statistics depend on the sub-network)."""
    return any(isinstance(m, _BatchNorm) for m in model.modules())


def split_batch(batch: Any) -> tuple[tuple[torch.Tensor, ...], torch.Tensor | None]:
    """A batch's model inputs (all elements but the last) and target (the last); a lone tensor or a
    one-element batch is inputs without a target; a dict ``{"input": ..., "label": ...}`` one input."""
    if isinstance(batch, torch.Tensor):
        return (batch,), None
    if isinstance(batch, tuple | list) and len(batch) >= 1:
        return (tuple(batch[:-1]), batch[-1]) if len(batch) > 1 else ((batch[0],), None)
    if isinstance(batch, dict) and "input" in batch:
        return (batch["input"],), batch.get("label")
    raise DataError(f"cannot read a batch of type {type(batch).__name__}; expected (inputs..., target)")


def prepare_inputs(inputs: tuple[torch.Tensor, ...], device: str, resolution: int | None) -> tuple[torch.Tensor, ...]:
    """``inputs`` on ``device``; images (floating-point or 4-D tensors) as floats resized to ``resolution``,
    integer inputs (token ids, attention masks) unchanged."""
    return tuple(
        resize_batch(x.to(device).float(), resolution) if x.is_floating_point() or x.dim() == 4 else x.to(device)
        for x in inputs
    )


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module,
    batches: Iterable[Any],
    num_batches: int = 50,
    *,
    device: str = "cpu",
    resolution: int | None = None,
) -> int:
    """Re-estimate the running statistics of every BatchNorm layer of ``model`` in place.

    Resets the statistics, forwards up to ``num_batches`` batches with only
    the BatchNorm layers in training mode and ``momentum=None`` (an exact
    average over the batches), then puts the model in eval mode. Returns the
    number of batches used (0 when the model has no BatchNorm).
    """
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    if not bns or num_batches <= 0:
        model.eval()
        return 0
    saved = [(m, m.momentum, m.track_running_stats) for m in bns]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.track_running_stats = True
        m.train()
    used = 0
    try:
        for batch in itertools.islice(batches, num_batches):
            inputs, _ = split_batch(batch)
            model(*prepare_inputs(inputs, device, resolution))
            used += 1
    finally:
        for m, momentum, track in saved:
            m.momentum = momentum
            m.track_running_stats = track
        model.eval()
    if used == 0:
        raise DataError("BatchNorm recalibration got no batches from the calibration data")
    return used


@torch.no_grad()
def evaluate_accuracy(
    model: nn.Module,
    batches: Iterable[Any],
    *,
    device: str = "cpu",
    resolution: int | None = None,
    max_batches: int | None = None,
    calibration_batches: int = 0,
) -> AccuracyResult:
    """Top-1, top-5 (in %) and mean cross-entropy of ``model`` (eval mode) over labelled ``batches``: per
    sample for logits ``(N, C)``, per token for logits ``(N, T, V)`` against targets ``(N, T)``."""
    model.eval()
    correct1 = correct5 = 0
    loss_sum = 0.0
    n = 0
    for batch in itertools.islice(batches, max_batches):
        inputs, y = split_batch(batch)
        if y is None:
            raise DataError("validation batches need labels")
        y = y.to(device).long()
        logits = model(*prepare_inputs(inputs, device, resolution))
        if logits.dim() > 2:  # per-token logits (N, T, V) against targets (N, T)
            logits, y = logits.flatten(0, -2), y.flatten()
        counted = y != IGNORE_INDEX
        if not bool(counted.all()):
            logits, y = logits[counted], y[counted]
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hits = top == y[:, None]
        correct1 += int(hits[:, 0].sum())
        correct5 += int(hits.any(dim=1).sum())
        n += len(y)
    if n == 0:
        raise DataError("the validation data is empty")
    return AccuracyResult(100.0 * correct1 / n, 100.0 * correct5 / n, loss_sum / n, n, calibration_batches)


def measure_accuracy(
    model: nn.Module,
    val_data: DataSource,
    *,
    calib_data: DataSource | None = None,
    calib_batches: int = 50,
    resolution: int | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    max_batches: int | None = None,
    seed: int = 0,
    channels: int | None = None,
    calibration: Calibration | None = None,
) -> AccuracyResult:
    """Recalibrate BatchNorm on ``calib_data`` (when given) and evaluate on ``val_data``.

    ``model`` is modified in place (moved to ``device``, statistics replaced):
    pass an extracted sub-network. Image batches whose size differs from
    ``resolution`` are resized; image folders are decoded at ``resolution``
    with ``channels`` (3 or 1). Calibration batches are drawn shuffled with ``seed``;
    a :class:`Calibration` given as ``calibration`` replaces ``calib_data``, ``calib_batches``
    and ``seed``.
    """
    device = check_device(device)
    model = model.to(device)
    if calibration is None and calib_data is not None:
        calibration = Calibration(calib_data, batches=calib_batches, batch_size=batch_size, seed=seed)
    used = 0
    if calibration is not None:
        used = calibration.apply(model, resolution=resolution, channels=channels, device=device)
    val = as_loader(val_data, batch_size=batch_size, resolution=resolution, shuffle=False, channels=channels)
    result = evaluate_accuracy(model, val, device=device, resolution=resolution, max_batches=max_batches)
    return AccuracyResult(result.top1, result.top5, result.loss, result.n_samples, used)
