"""Importance sorting (Minitron-style activation scores) and :func:`elasticize`.

Scores come from calibration batches: a head's is the mean |activation| of its output (the
input of the attention output projection), an FFN neuron's the mean |activation| of the
FFN's intermediate output, a hidden channel's the sum over all norms of the mean |output|
(Muralidharan et al. 2024, "Compact Language Models via Pruning and Knowledge Distillation"),
a block's 1 - mean cosine(input, output) over tokens (ShortGPT's Block Influence, Men et al.
2024). Padding tokens (attention mask 0) are left out. Sorting permutes the weights so that the
first units of every slice are the most important; the permuted model computes the same function.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from elasticnas.supernets.hf._families import Dims, Family, Task, family_of, task_of
from elasticnas.supernets.hf._modules import blocks_of, linear_axes, module_at
from elasticnas.supernets.hf._supernet import HFSupernet

if TYPE_CHECKING:
    from transformers import PreTrainedModel

CALIBRATION_BATCH = 8  # rows per batch when the calibration data are one tensor of inputs
Method = Literal["activation", "first-k"]


@dataclass(frozen=True)
class Importance:
    """Importance scores (higher: more important): per block ``heads`` (query heads) and ``ffn`` (neurons),
    ``hidden`` (channels, shared) and ``layers`` (one per block)."""

    heads: tuple[Tensor, ...]
    ffn: tuple[Tensor, ...]
    hidden: Tensor
    layers: Tensor


def _model_inputs(batch: Any, task: Task) -> dict[str, Tensor]:
    """Keyword inputs of one calibration batch: a tensor of inputs, a tuple of inputs followed by a target,
    or a mapping of model inputs (``labels`` dropped)."""
    if isinstance(batch, Mapping):
        return {k: v for k, v in batch.items() if k != "labels"}
    inputs = (batch,) if isinstance(batch, Tensor) else tuple(batch)[:-1] if len(batch) > 1 else tuple(batch)
    names = ("pixel_values",) if task == "image-classification" else ("input_ids", "attention_mask")
    return dict(zip(names, inputs, strict=False))


class _Scorer:
    """Forward hooks summing |activation| per channel and 1 - cos(in, out) per block over valid tokens."""

    def __init__(self) -> None:
        self.mask: Tensor | None = None
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, float] = {}

    def _rows(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        rows = x.reshape(-1, x.shape[-1]).double()
        if self.mask is not None and self.mask.numel() == rows.shape[0]:
            return rows, self.mask.reshape(-1, 1).to(rows)
        return rows, None

    def add(self, key: str, values: Tensor, weights: Tensor | None) -> None:
        total = (values * weights).sum(0) if weights is not None else values.sum(0)
        count = float(weights.sum()) if weights is not None else float(values.shape[0])
        self.sums[key] = self.sums.get(key, 0) + total
        self.counts[key] = self.counts.get(key, 0.0) + count

    def magnitude(self, key: str, x: Tensor) -> None:
        rows, weights = self._rows(x)
        self.add(key, rows.abs(), weights)

    def influence(self, key: str, x_in: Tensor, x_out: Tensor) -> None:
        a, weights = self._rows(x_in)
        b, _ = self._rows(x_out)
        self.add(key, (1 - F.cosine_similarity(a, b, dim=-1))[:, None], weights)

    def mean(self, key: str) -> Tensor:
        return self.sums[key] / max(self.counts[key], 1.0)


def score_importance(
    model: PreTrainedModel, calibration_data: Any, *, task: Task | None = None, batches: int = 8
) -> Importance:
    """Importance scores of ``model``'s heads, FFN neurons, hidden channels and blocks on at most ``batches``
    batches of ``calibration_data`` (see :func:`elasticize`)."""
    task = task or task_of(model)
    fam = family_of(model.config.model_type, task)
    dims = Dims.of(model.config, fam)
    blocks = blocks_of(model, fam.layers)
    scorer = _Scorer()
    handles = []

    def input_of(key: str) -> Any:
        return lambda module, args: scorer.magnitude(key, args[0])

    def output_of(key: str) -> Any:
        return lambda module, args, out: scorer.magnitude(key, out)

    def block_hook(key: str) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
            x_in = args[0] if args else kwargs["hidden_states"]
            scorer.influence(key, x_in, out[0] if isinstance(out, tuple) else out)

        return hook

    norms = [model.get_submodule(p) for p in fam.paths("norm")]
    for i, block in enumerate(blocks):
        roles = dict(fam.linears)
        (o_path,) = [p for p, r in roles.items() if r == "o"]
        (down_path,) = [p for p, r in roles.items() if r == "down"]
        handles.append(block.get_submodule(o_path).register_forward_pre_hook(input_of(f"heads.{i}")))
        handles.append(block.get_submodule(down_path).register_forward_pre_hook(input_of(f"ffn.{i}")))
        handles.append(block.register_forward_hook(block_hook(f"layer.{i}"), with_kwargs=True))
        norms += [block.get_submodule(p) for p in fam.norms]
    for j, norm in enumerate(norms):
        handles.append(norm.register_forward_hook(output_of(f"hidden.{j}")))
    data: Iterable[Any] = (
        calibration_data.split(CALIBRATION_BATCH) if isinstance(calibration_data, Tensor) else calibration_data
    )
    was_training = model.training
    model.train(False)
    try:
        with torch.no_grad():
            for batch in itertools.islice(data, batches):
                kwargs = _model_inputs(batch, task)
                scorer.mask = kwargs.get("attention_mask")
                model(**kwargs, **({"use_cache": False} if task == "causal-lm" else {}))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not scorer.sums:
        raise ValueError("the calibration data hold no batches")
    L = len(blocks)
    return Importance(
        heads=tuple(scorer.mean(f"heads.{i}").view(dims.heads, dims.head_dim).mean(-1) for i in range(L)),
        ffn=tuple(scorer.mean(f"ffn.{i}") for i in range(L)),
        hidden=cast(Tensor, sum(scorer.mean(f"hidden.{j}") for j in range(len(norms)))),
        layers=torch.cat([scorer.mean(f"layer.{i}") for i in range(L)]),
    )


def _descending(scores: Tensor) -> Tensor:
    return torch.argsort(scores, descending=True, stable=True)


def _hidden_axes(model: nn.Module, fam: Family) -> Iterator[tuple[Tensor, int]]:
    """Every (parameter, axis) that indexes the hidden channels."""
    for block in blocks_of(model, fam.layers):
        for path, role in fam.linears:
            m = module_at(block, path)
            out_axis, in_axis = linear_axes(m)
            if role in ("o", "down"):
                yield m.weight, out_axis
                if m.bias is not None:
                    yield m.bias, 0
            else:
                yield m.weight, in_axis
        for path in fam.norms:
            yield from ((p, 0) for p in block.get_submodule(path).parameters())
    for path, kind in fam.globals:
        m = module_at(model, path)
        if kind == "embed":
            yield m.weight, 1
        elif kind == "embeddings":
            yield from ((p, p.dim() - 1) for p in m.parameters(recurse=False))
        elif kind in ("patch", "norm"):
            yield from ((p, 0) for p in m.parameters())
        elif kind == "head":
            yield m.weight, linear_axes(m)[1]
        elif kind == "pooler":
            yield from ((m.weight, 0), (m.weight, 1))
            if m.bias is not None:
                yield m.bias, 0


def _reindex(t: Tensor, axis: int, index: Tensor) -> None:
    with torch.no_grad():
        t.copy_(t.index_select(axis, index))


def sort_by_importance(model: PreTrainedModel, importance: Importance, *, task: Task | None = None) -> tuple[int, ...]:
    """Permute ``model``'s weights in place so that the most important heads (within each key-value group
    with GQA), FFN neurons and hidden channels come first; returns the blocks from most to least important."""
    task = task or task_of(model)
    fam = family_of(model.config.model_type, task)
    d = Dims.of(model.config, fam)
    groups = d.kv_heads if d.gqa else 1
    arange_hd = torch.arange(d.head_dim)
    blocks = blocks_of(model, fam.layers)
    for block, head_scores, ffn_scores in zip(blocks, importance.heads, importance.ffn, strict=True):
        order = _descending(head_scores.view(groups, -1))  # within each group
        heads = (order + torch.arange(groups)[:, None] * order.shape[1]).reshape(-1)
        q = (heads[:, None] * d.head_dim + arange_hd).reshape(-1)
        ffn = _descending(ffn_scores)
        width = d.heads * d.head_dim
        out_index = {"q": q, "k": None if d.gqa else q, "v": None if d.gqa else q, "up": ffn}
        out_index["qkv"] = torch.cat([q + s * width for s in range(3)])
        in_index = {"o": q, "down": ffn}
        for path, role in fam.linears:
            m = module_at(block, path)
            out_axis, in_axis = linear_axes(m)
            if (index := out_index.get(role)) is not None:
                _reindex(m.weight, out_axis, index)
                if m.bias is not None:
                    _reindex(m.bias, 0, index)
            if (index := in_index.get(role)) is not None:
                _reindex(m.weight, in_axis, index)
    hidden = _descending(importance.hidden)
    seen: set[tuple[int, int]] = set()
    for t, axis in _hidden_axes(model, fam):
        if (id(t), axis) not in seen:  # tied weights (the LM head) are permuted once
            seen.add((id(t), axis))
            _reindex(t, axis, hidden)
    return tuple(int(i) for i in _descending(importance.layers))


def elasticize(
    model: PreTrainedModel,
    calibration_data: Any = None,
    *,
    task: Task | None = None,
    method: Method = "activation",
    batches: int = 8,
    **options: Any,
) -> HFSupernet:
    """An elastic super-network over a pretrained transformers ``model`` (changed in place: its modules become
    elastic and, with ``method="activation"``, its weights are sorted by importance).

    ``method="activation"`` scores heads, FFN neurons, hidden channels and blocks on at most
    ``batches`` batches of ``calibration_data`` (:func:`score_importance`) and sorts the weights so
    that every sub-network keeps the most important units and blocks; ``"first-k"`` keeps the
    natural order. ``calibration_data``: an iterable of batches, each a tuple of model inputs
    followed by a target (``(input_ids, target_ids)``, ``(input_ids, attention_mask, labels)``,
    ``(pixel_values, labels)``), a mapping of model inputs, or a tensor of inputs; or one tensor
    of inputs (split into batches of 8 rows). ``task`` defaults to the config's ``architectures``;
    ``options`` go to :class:`HFSupernet` (``per_layer``, ``depths``, ``heads``, ``ffn``, ``hidden``, ``seq_len``).
    """
    task = task or task_of(model)
    order = None
    if method == "activation":
        if calibration_data is None:
            raise ValueError('method="activation" needs calibration_data (or use method="first-k")')
        order = sort_by_importance(
            model, score_importance(model, calibration_data, task=task, batches=batches), task=task
        )
    elif method != "first-k":
        raise ValueError(f'unknown method {method!r}; use "activation" or "first-k"')
    return HFSupernet(model, task=task, layer_order=order, method=method, **options)
