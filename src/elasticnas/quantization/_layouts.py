"""Where the quantizable layers of each super-network family are, what they cost, and what they are called.

A :class:`Layout` lists a super-network's quantizable layers (:class:`~._space.QuantLayer`, the genes
of its precision space) and, for an architecture configuration, the layers that run
(:class:`LayerPlan`: the module path in the extracted sub-network, whose ONNX nodes it owns, and the
layer's MACs and parameters) and which layer each entry of ``supernet.layer_specs`` belongs to.
Layers are the units of the latency lookup tables: a whole convolutional block (its convolutions,
squeeze-excite and residual addition share one precision), a stem or head layer, or one linear
layer of a transformer block. Families register theirs with :func:`register_layout`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from elasticnas.errors import ElasticNASError
from elasticnas.quantization._space import QuantLayer


@dataclass(frozen=True)
class LayerPlan:
    """A quantizable layer that runs in a sub-network: its index in :attr:`Layout.layers`, the path of its
    module in the extracted sub-network, and its MACs and parameters (as the family's ``costs`` counts them)."""

    index: int
    module: str
    macs: int
    params: int


class Layout(Protocol):
    """The quantizable layers of one super-network."""

    layers: tuple[QuantLayer, ...]

    def plan(self, arch: Mapping[str, Any], resolution: int | None = None) -> list[LayerPlan]:
        """The layers that run in (valid) architecture ``arch``, in order (costs at ``resolution`` for images)."""
        ...

    def spec_layers(self, arch: Mapping[str, Any]) -> list[int | None]:
        """The layer index of each entry of ``supernet.layer_specs(arch)`` (None: not quantizable)."""
        ...


_LAYOUTS: list[tuple[type, Callable[[Any], Layout]]] = []


def register_layout(supernet_class: type, factory: Callable[[Any], Layout]) -> None:
    """Make ``factory(supernet)`` the :class:`Layout` of instances of ``supernet_class`` (and subclasses)."""
    _LAYOUTS.insert(0, (supernet_class, factory))


def layout_of(supernet: Any) -> Layout:
    """The registered :class:`Layout` of ``supernet``; a clear error for a family without one."""
    _register_builtin()
    for cls, factory in _LAYOUTS:
        if isinstance(supernet, cls):
            return factory(supernet)
    raise ElasticNASError(
        f"super-network {getattr(supernet, 'name', '') or type(supernet).__name__!r} has no quantization layout; "
        "register one with elasticnas.quantization.register_layout"
    )


# -- OFA-MobileNetV3 (and tiny_mbv3) ------------------------------------------------------------


class MobileNetV3Layout:
    """Stem, one layer per block (the first static one included), final expand, feature mix, classifier."""

    def __init__(self, supernet: Any) -> None:
        self.supernet = supernet
        layers = [QuantLayer("first_conv", "conv"), QuantLayer("blocks.0", "conv")]
        for stage, idx in enumerate(supernet.block_group_info):
            layers += [QuantLayer(f"blocks.{i}", "conv", ("d", stage, b)) for b, i in enumerate(idx)]
        layers += [
            QuantLayer("final_expand_layer", "conv"),
            QuantLayer("feature_mix_layer", "conv"),
            QuantLayer("classifier", "linear"),
        ]
        self.layers = tuple(layers)
        self._index = {q.name: k for k, q in enumerate(self.layers)}

    def _active(self, arch: Mapping[str, Any]) -> list[int]:
        return [k for k, q in enumerate(self.layers) if q.is_active(arch)]

    def plan(self, arch: Mapping[str, Any], resolution: int | None = None) -> list[LayerPlan]:
        from elasticnas.supernets._ofa import layer_costs

        net_arch = self.supernet.arch(arch)
        size = int(arch["r"]) if resolution is None else resolution
        active = self._active(arch)
        configs = [net_arch["first_conv"], *net_arch["blocks"], net_arch["final_expand_layer"]]
        paths = ["first_conv", *(f"blocks.{j}" for j in range(len(net_arch["blocks"]))), "final_expand_layer"]
        out = []
        for k, cfg, path in zip(active[:-2], configs, paths, strict=True):
            macs, params, size = layer_costs(cfg, size)
            out.append(LayerPlan(k, path, macs, params))
        for name in ("feature_mix_layer", "classifier"):  # after global pooling: 1 x 1
            macs, params, _ = layer_costs(net_arch[name], 1)
            out.append(LayerPlan(self._index[name], name, macs, params))
        return out

    def spec_layers(self, arch: Mapping[str, Any]) -> list[int | None]:
        active = self._active(arch)
        return [*active[:-2], None, *active[-2:]]  # AvgPool2D before the feature mix


# -- OFA-ResNet50 ---------------------------------------------------------------------------------


class ResNetLayout:
    """The stem's three convolutions (the second may be skipped), one layer per bottleneck block, classifier."""

    def __init__(self, supernet: Any) -> None:
        from elasticnas.supernets.ofa_resnet import BASE_DEPTH_LIST

        self.supernet = supernet
        max_extra = max(supernet.depth_list)
        layers = [
            QuantLayer("input_stem.0", "conv"),
            QuantLayer("input_stem.1", "conv", ("d", 0, max_extra - 1)),
            QuantLayer("input_stem.2", "conv"),
        ]
        for stage, (idx, base) in enumerate(zip(supernet.grouped_block_index, BASE_DEPTH_LIST, strict=True)):
            layers += [
                QuantLayer(f"blocks.{i}", "conv", None if b < base else ("d", stage + 1, b - base))
                for b, i in enumerate(idx)
            ]
        layers.append(QuantLayer("classifier", "linear"))
        self.layers = tuple(layers)

    def _active(self, arch: Mapping[str, Any]) -> list[int]:
        return [k for k, q in enumerate(self.layers) if q.is_active(arch)]

    def plan(self, arch: Mapping[str, Any], resolution: int | None = None) -> list[LayerPlan]:
        from elasticnas.supernets._layers import out_size
        from elasticnas.supernets._ofa import layer_costs

        net_arch = self.supernet.arch(arch)
        size = int(arch["r"]) if resolution is None else resolution
        active = self._active(arch)
        stem, blocks = net_arch["input_stem"], net_arch["blocks"]
        out = []
        for j, cfg in enumerate(stem):
            macs, params, size = layer_costs(cfg, size)
            out.append(LayerPlan(active[j], f"input_stem.{j}", macs, params))
        size = out_size(size, 2)  # max pooling
        for j, cfg in enumerate(blocks):
            macs, params, size = layer_costs(cfg, size)
            out.append(LayerPlan(active[len(stem) + j], f"blocks.{j}", macs, params))
        macs, params, _ = layer_costs(net_arch["classifier"], 1)
        out.append(LayerPlan(active[-1], "classifier", macs, params))
        return out

    def spec_layers(self, arch: Mapping[str, Any]) -> list[int | None]:
        active = self._active(arch)
        n_stem = 3 if self.layers[1].is_active(arch) else 2
        return [*active[:n_stem], None, *active[n_stem:-1], None, active[-1]]  # MaxPool, AvgPool2D


# -- elastic transformers ----------------------------------------------------------------------------


class TransformerLayout:
    """Every linear layer of every block (dropped with its block), BERT's pooler and the output head."""

    def __init__(self, supernet: Any) -> None:
        self.supernet = supernet
        spec, order = supernet.spec, supernet.layer_order
        rank = {layer: r for r, layer in enumerate(order)}
        layers = [
            QuantLayer(f"{spec.layers}.{i}.{path}", "linear", ("depth", None, rank[i]))
            for i in range(len(order))
            for path, _ in spec.linears
        ]
        self._globals = [(path, kind) for path, kind in spec.globals if kind in ("pooler", "head")]
        layers += [QuantLayer(path, "linear") for path, _ in self._globals]
        self.layers = tuple(layers)

    def plan(self, arch: Mapping[str, Any], resolution: int | None = None) -> list[LayerPlan]:
        from elasticnas.supernets.hf._modules import module_at
        from elasticnas.supernets.hf._supernet import role_shape

        net, spec = self.supernet, self.supernet.spec
        plan, dims, T = net.plan(arch), net.dims, net.seq_len
        n_lin = len(spec.linears)
        out = []
        for pos, (i, heads, ffn) in enumerate(zip(plan.layers, plan.heads, plan.ffn, strict=True)):
            block = net._blocks()[i]
            for j, (path, role) in enumerate(spec.linears):
                o, n = role_shape(role, dims, heads, ffn, plan.hidden)
                bias = o if module_at(block, path).bias is not None else 0
                module = f"hf_model.{spec.layers}.{pos}.{path}"
                out.append(LayerPlan(i * n_lin + j, module, T * o * n, o * n + bias))
        embed_weights = [module_at(net.model, p).weight for p in spec.paths("embed")]
        for k, (path, kind) in enumerate(self._globals):
            module = module_at(net.model, path)
            o = plan.hidden if kind == "pooler" else int(module.weight.shape[0])
            tied = any(module.weight is w for w in embed_weights)  # counted once, with the embeddings
            params = 0 if tied else o * plan.hidden + (o if module.bias is not None else 0)
            tokens = T if net.task == "causal-lm" and kind == "head" else 1
            out.append(LayerPlan(dims.layers * n_lin + k, f"hf_model.{path}", tokens * o * plan.hidden, params))
        return out

    def spec_layers(self, arch: Mapping[str, Any]) -> list[int | None]:
        raise NotImplementedError("elastic transformers do not list their layers for lookup tables")


_BUILTIN: list[bool] = []


def _register_builtin() -> None:
    """Register the built-in families' layouts once (importing their modules on first use)."""
    if _BUILTIN:
        return
    from elasticnas.supernets.ofa_mobilenetv3 import ElasticMobileNetV3
    from elasticnas.supernets.ofa_resnet import ElasticResNet

    _LAYOUTS.extend([(ElasticMobileNetV3, MobileNetV3Layout), (ElasticResNet, ResNetLayout)])
    try:
        from elasticnas.supernets.hf import HFSupernet
    except ImportError:  # transformers not installed: no elastic transformers to quantize
        pass
    else:
        _LAYOUTS.append((HFSupernet, TransformerLayout))
    _BUILTIN.append(True)
