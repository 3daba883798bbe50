"""peft's LoRA ``Linear`` and ``Conv2d`` made elastic by swapping their ``__class__``, and merging of injected
adapters."""

from __future__ import annotations

from typing import Any, TypeAlias, cast

import torch.nn.functional as F
from peft.tuners.lora import Conv2d as LoraConv2d
from peft.tuners.lora import Linear as LoraLinear
from peft.tuners.lora import LoraLayer
from torch import Tensor, nn

from elasticnas.supernets.hf._modules import Index, take

ADAPTER = "default"  # the peft adapter name of every adapter elasticnas creates


class ElasticLoraLinear(LoraLinear):
    """A peft LoRA ``Linear`` running the first ``elastic_rank`` ranks of its adapter (None: all).

    The adapter reads the base layer's active slice: its ``elastic_in`` / ``elastic_out`` indices
    (elastic transformers' linear layers), else the first input columns and output rows the
    shapes of the input and of the base layer's output keep. The scaling stays the full adapter's
    (``lora_alpha / r_max``), so rank ``r`` runs the first ``r`` rank-one terms of the full update.
    """

    elastic_rank: int | None = None

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        result = cast(Tensor, self.base_layer(x, *args, **kwargs))
        if self.disable_adapters or self.merged or ADAPTER not in self.active_adapters:
            return result
        a = cast(nn.Linear, self.lora_A[ADAPTER]).weight[: self.elastic_rank]
        b = cast(nn.Linear, self.lora_B[ADAPTER]).weight[:, : self.elastic_rank]
        a = take(a, 1, _active(self.base_layer, "elastic_in", x.shape[-1], a.shape[1]))
        b = take(b, 0, _active(self.base_layer, "elastic_out", result.shape[-1], b.shape[0]))
        delta = F.linear(F.linear(self.lora_dropout[ADAPTER](x), a), b)
        return result + delta * float(self.scaling[ADAPTER])


class ElasticLoraConv2d(LoraConv2d):
    """A peft LoRA ``Conv2d`` running the first ``elastic_rank`` ranks of its adapter (None: all): the first
    output channels of ``lora_A`` (the base layer's kernel, stride and padding) and input channels of ``lora_B``
    (1 x 1).

    The adapter reads the base convolution's active slice: its ``elastic_in`` / ``elastic_out`` channel indices
    if it has them, else the first input channels the input has and the first output channels the base layer's
    output has (a user's elastic convolution computing with fewer channels). The scaling stays the full
    adapter's (``lora_alpha / r_max``), as in :class:`ElasticLoraLinear`. Grouped convolutions are not
    supported (peft's grouped ``lora_B`` does not keep its first ranks apart, nor does it merge).
    """

    elastic_rank: int | None = None

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        result = cast(Tensor, self.base_layer(x, *args, **kwargs))
        if self.disable_adapters or self.merged or ADAPTER not in self.active_adapters:
            return result
        conv_a = cast(nn.Conv2d, self.lora_A[ADAPTER])
        a = conv_a.weight[: self.elastic_rank]
        b = cast(nn.Conv2d, self.lora_B[ADAPTER]).weight[:, : self.elastic_rank]
        a = take(a, 1, _active(self.base_layer, "elastic_in", x.shape[-3], a.shape[1]))
        b = take(b, 0, _active(self.base_layer, "elastic_out", result.shape[-3], b.shape[0]))
        padding = cast(Any, conv_a.padding)  # a tuple, or "same" / "valid"
        hidden = F.conv2d(self.lora_dropout[ADAPTER](x), a, None, conv_a.stride, padding, conv_a.dilation)
        return result + F.conv2d(hidden, b) * float(self.scaling[ADAPTER])


ElasticLora: TypeAlias = ElasticLoraLinear | ElasticLoraConv2d  # the layers LoraSupernet makes elastic


def _active(base: nn.Module, attr: str, active: int, full: int) -> Index:
    """The base layer's active input or output slice: its ``attr`` index if it has one, else the first ``active``."""
    if hasattr(base, attr):
        index: Index = getattr(base, attr)
        return index
    return None if active == full else active


def make_elastic(layer: nn.Module) -> ElasticLora:
    """Turn a peft LoRA ``Linear`` or ``Conv2d`` into an :class:`ElasticLoraLinear` or :class:`ElasticLoraConv2d`
    in place (same state, same keys)."""
    if type(layer) is LoraLinear:
        layer.__class__ = ElasticLoraLinear
    elif type(layer) is LoraConv2d:
        layer.__class__ = ElasticLoraConv2d
    else:
        raise TypeError(f"expected a peft LoRA Linear or Conv2d layer, got {type(layer).__name__}")
    return layer  # type: ignore[return-value]  # its class was just swapped


def merge_lora(module: nn.Module) -> nn.Module:
    """``module`` with every peft LoRA layer merged into its base layer and replaced by it, in place
    (peft's ``merge_and_unload`` for adapters injected with ``inject_adapter_in_model``)."""
    layers = [(name, m) for name, m in module.named_modules() if isinstance(m, LoraLayer)]
    for name, layer in layers:
        layer.merge()
        parent, _, child = name.rpartition(".")
        setattr(module.get_submodule(parent), child, layer.get_base_layer())
    if layers and "peft_config" in module.__dict__:
        del module.peft_config
    return module
