"""Elastic versions of transformers' modules, made by swapping a module's ``__class__``.

The swap keeps the module's parameters, buffers and state-dict keys; the elastic subclass
reads a few attributes (the active output / input indices) set by the super-network:

* linear layers (``nn.Linear`` and transformers' ``Conv1D``): ``weight[out_index][:, in_index]``;
* LayerNorm / RMSNorm: normalise over the input's channels with the first weights;
* embeddings (and ViT's embedding block): the first ``elastic_out`` output channels;
* the block list: iterates (and slices) over the active blocks only.

An index is ``None`` (all), an ``int`` (the first ones) or a 1-D index tensor.
"""

from __future__ import annotations

from typing import Any, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers.pytorch_utils import Conv1D

Index = Union[int, Tensor, None]  # noqa: UP007 - a runtime alias


def take(t: Tensor, axis: int, index: Index) -> Tensor:
    """``t`` restricted along ``axis`` to ``index`` (None: all; int: the first ones; tensor: those)."""
    if index is None:
        return t
    if isinstance(index, int):
        return t.narrow(axis, 0, index)
    return t.index_select(axis, index.to(t.device))


def size_of(index: Index, full: int) -> int:
    """How many entries ``index`` keeps out of ``full``."""
    return full if index is None else index if isinstance(index, int) else int(index.numel())


def linear_axes(module: nn.Module) -> tuple[int, int]:
    """(output axis, input axis) of a linear module's weight: Conv1D stores it transposed."""
    return (1, 0) if isinstance(module, Conv1D) else (0, 1)


class ElasticLinear(nn.Module):
    """Mixin of ``nn.Linear`` / ``Conv1D``: runs the rows ``elastic_out`` and columns ``elastic_in``."""

    weight: Tensor
    bias: Tensor | None
    elastic_out: Index = None
    elastic_in: Index = None

    def sliced(self, name: str) -> Tensor | None:
        """The active part of parameter ``name`` ("weight" or "bias") in its stored layout."""
        t: Tensor | None = getattr(self, name)
        if t is None:
            return None
        out_axis, in_axis = linear_axes(self)
        if name == "bias":
            return take(t, 0, self.elastic_out)
        return take(take(t, out_axis, self.elastic_out), in_axis, self.elastic_in)

    def forward(self, x: Tensor) -> Tensor:
        if self.elastic_out is None and self.elastic_in is None:
            return super().forward(x)  # type: ignore[no-any-return]  # the swapped-in module's own forward
        w = self.sliced("weight")
        assert w is not None
        return F.linear(x, w.t() if isinstance(self, Conv1D) else w, self.sliced("bias"))


class ElasticNorm(nn.Module):
    """Mixin of LayerNorm / Llama-style RMSNorm: normalises over the input's (first) channels."""

    weight: Tensor
    bias: Tensor | None
    eps: float  # LayerNorm
    variance_epsilon: float  # RMSNorm

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[-1]
        if n == self.weight.shape[0]:
            return super().forward(x)  # type: ignore[no-any-return]  # the swapped-in module's own forward
        if isinstance(self, nn.LayerNorm):
            bias = None if self.bias is None else self.bias[:n]
            return F.layer_norm(x, (n,), self.weight[:n], bias, self.eps)
        dtype = x.dtype  # as LlamaRMSNorm.forward, over n channels
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight[:n] * h.to(dtype)


class ElasticOutput(nn.Module):
    """Mixin of embeddings: the first ``elastic_out`` channels of the output (channel-wise modules only)."""

    elastic_out: int | None = None

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        y: Tensor = super().forward(*args, **kwargs)
        return y if self.elastic_out is None else y[..., : self.elastic_out]


class ElasticLayerList(nn.ModuleList):
    """The block list: iterating or slicing it gives the ``active`` blocks (all when None), in order."""

    active: tuple[int, ...] | None = None

    def __iter__(self) -> Any:
        blocks = list(self._modules.values())
        return iter(blocks if self.active is None else [blocks[i] for i in self.active])

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, slice):  # LlamaModel runs self.layers[: config.num_hidden_layers]
            return nn.ModuleList(list(self)[idx])
        return super().__getitem__(idx)


def module_at(root: nn.Module, path: str) -> Any:
    """The submodule at ``path``, typed Any: transformers modules' attributes (weight, bias, ...) vary."""
    return root.get_submodule(path)


def blocks_of(model: nn.Module, layers: str) -> list[nn.Module]:
    """All blocks of the list at path ``layers`` (active or not)."""
    return [m for m in model.get_submodule(layers)._modules.values() if m is not None]


_CLASSES: dict[tuple[type, type], type] = {}


def swap(module: nn.Module, mixin: type[nn.Module]) -> None:
    """Make ``module`` an instance of ``mixin`` over its own class (same state, same keys)."""
    base = type(module)
    if issubclass(base, mixin):
        return
    key = (mixin, base)
    if key not in _CLASSES:
        _CLASSES[key] = type(f"Elastic{base.__name__}", (mixin, base), {"__module__": __name__})
    module.__class__ = _CLASSES[key]


def norm_mixin(module: nn.Module) -> type[nn.Module]:
    """:class:`ElasticNorm` for a LayerNorm or an RMSNorm with ``weight`` and ``variance_epsilon``."""
    if isinstance(module, nn.LayerNorm) or hasattr(module, "variance_epsilon"):
        return ElasticNorm
    raise TypeError(f"{type(module).__name__} is neither a LayerNorm nor a Llama-style RMSNorm")
