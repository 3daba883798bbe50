"""Static networks (extracted sub-networks), their architecture JSON, and analytic costs.

An architecture is a JSON-able dict in the format of Once-for-All's ``net.config``
(``{"name": "MobileNetV3", "first_conv": ..., "blocks": [...], ...}`` or
``{"name": "ResNets", "input_stem": [...], "blocks": [...], "classifier": ...}``).
:func:`build_subnet` builds it, :func:`arch_costs` counts its MACs and parameters
at a resolution and :func:`arch_layer_specs` lists its layers for latency tables.

Counting rule (OFA's ``ofa.utils.flops_counter``, which DyNAS-T and the OFA
papers use): a convolution costs ``in/groups * k * k * out_elements`` MACs, a
fully connected layer ``in * out``; batch norm, activations, pooling and the
residual additions cost nothing; parameters are all weights, biases and
batch-norm affine parameters (not running statistics).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from elasticnas.supernets._layers import (
    ConvLayer,
    global_avg_pool,
    layer_from_config,
    out_size,
    se_channels,
)
from elasticnas.supernets.base import LayerSpec


class MobileNetV3Net(nn.Module):
    """A static MobileNetV3 (OFA ``MobileNetV3``): stem, inverted residual blocks, head."""

    def __init__(
        self,
        first_conv: nn.Module,
        blocks: list[nn.Module],
        final_expand_layer: nn.Module,
        feature_mix_layer: nn.Module,
        classifier: nn.Module,
    ) -> None:
        super().__init__()
        self.first_conv = first_conv
        self.blocks = nn.ModuleList(blocks)
        self.final_expand_layer = final_expand_layer
        self.feature_mix_layer = feature_mix_layer
        self.classifier = classifier

    def forward(self, x: Tensor) -> Tensor:
        x = self.first_conv(x)
        for block in self.blocks:
            x = block(x)
        x = self.final_expand_layer(x)
        x = global_avg_pool(x)
        x = self.feature_mix_layer(x)
        return self.classifier(torch.flatten(x, 1))

    @property
    def config(self) -> dict[str, Any]:
        return {
            "name": "MobileNetV3",
            "bn": _bn_param(self),
            "first_conv": self.first_conv.config,  # type: ignore[operator]
            "blocks": [b.config for b in self.blocks],  # type: ignore[operator]
            "final_expand_layer": self.final_expand_layer.config,  # type: ignore[operator]
            "feature_mix_layer": self.feature_mix_layer.config,  # type: ignore[operator]
            "classifier": self.classifier.config,  # type: ignore[operator]
        }


class ResNetNet(nn.Module):
    """A static ResNet-D (OFA ``ResNets``): deep stem, max pooling, bottleneck blocks, classifier."""

    def __init__(self, input_stem: list[nn.Module], blocks: list[nn.Module], classifier: nn.Module) -> None:
        super().__init__()
        self.input_stem = nn.ModuleList(input_stem)
        self.max_pooling = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.blocks = nn.ModuleList(blocks)
        self.classifier = classifier

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.input_stem:
            x = layer(x)
        x = self.max_pooling(x)
        for block in self.blocks:
            x = block(x)
        return self.classifier(global_avg_pool(x, keep_dim=False))

    @property
    def config(self) -> dict[str, Any]:
        return {
            "name": "ResNets",
            "bn": _bn_param(self),
            "input_stem": [layer.config for layer in self.input_stem],  # type: ignore[operator]
            "blocks": [b.config for b in self.blocks],  # type: ignore[operator]
            "classifier": self.classifier.config,  # type: ignore[operator]
        }


def _bn_param(net: nn.Module) -> dict[str, float]:
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            return {"momentum": m.momentum, "eps": m.eps}  # type: ignore[dict-item]
    return {"momentum": 0.1, "eps": 1e-5}


def set_bn_param(net: nn.Module, momentum: float, eps: float) -> None:
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            m.momentum, m.eps = momentum, eps


def build_subnet(arch: Mapping[str, Any]) -> nn.Module:
    """Build the static network an architecture dict describes (weights random)."""
    name = arch.get("name")
    if name == "MobileNetV3":
        net: nn.Module = MobileNetV3Net(
            layer_from_config(arch["first_conv"]),
            [layer_from_config(b) for b in arch["blocks"]],
            layer_from_config(arch["final_expand_layer"]),
            layer_from_config(arch["feature_mix_layer"]),
            layer_from_config(arch["classifier"]),
        )
    elif name == "ResNets":
        net = ResNetNet(
            [layer_from_config(c) for c in arch["input_stem"]],
            [layer_from_config(b) for b in arch["blocks"]],
            layer_from_config(arch["classifier"]),
        )
    else:
        raise ValueError(f"unknown architecture {name!r}; expected 'MobileNetV3' or 'ResNets'")
    bn = arch.get("bn") or {}
    set_bn_param(net, bn.get("momentum", 0.1), bn.get("eps", 1e-5))
    return net


# ---------------------------------------------------------------------------
# analytic costs
# ---------------------------------------------------------------------------


def _conv(cin: int, cout: int, k: int, hw: int, groups: int = 1, bias: bool = False, bn: bool = True) -> tuple[int, int]:
    """(MACs, params) of a k x k convolution producing an ``hw x hw`` map."""
    w = cin // groups * k * k * cout
    return w * hw * hw, w + (cout if bias else 0) + (2 * cout if bn else 0)


def _layer_costs(cfg: Mapping[str, Any], size: int) -> tuple[int, int, int]:
    """(MACs, params, output size) of one static layer config at input size ``size``."""
    name = cfg["name"]
    if name in ("ResidualBlock", "MobileInvertedResidualBlock"):
        return _layer_costs(cfg["conv"] if "conv" in cfg else cfg["mobile_inverted_conv"], size)
    if name == "ConvLayer":
        o = out_size(size, cfg.get("stride", 1))
        macs, params = _conv(
            cfg["in_channels"], cfg["out_channels"], cfg.get("kernel_size", 3), o,
            cfg.get("groups", 1), cfg.get("bias", False), cfg.get("use_bn", True),
        )  # fmt: skip
        return macs, params, o
    if name in ("MBConvLayer", "MBInvertedConvLayer"):
        cin, cout, k, s = cfg["in_channels"], cfg["out_channels"], cfg.get("kernel_size", 3), cfg.get("stride", 1)
        er = cfg.get("expand_ratio", 6)
        mid = cfg.get("mid_channels") or round(cin * er)
        macs = params = 0
        if er != 1:
            m, p = _conv(cin, mid, 1, size)
            macs, params = macs + m, params + p
        o = out_size(size, s)
        m, p = _conv(mid, mid, k, o, groups=mid)
        macs, params = macs + m, params + p
        if cfg.get("use_se", False):
            se = se_channels(mid)
            macs += 2 * mid * se
            params += 2 * mid * se + se + mid
        m, p = _conv(mid, cout, 1, o)
        return macs + m, params + p, o
    if name == "LinearLayer":
        i, o_ = cfg["in_features"], cfg["out_features"]
        return i * o_, i * o_ + (o_ if cfg.get("bias", True) else 0), 1
    if name == "ResNetBottleneckBlock":
        cin, cout, k, s, mid = (cfg["in_channels"], cfg["out_channels"], cfg.get("kernel_size", 3), cfg["stride"], cfg["mid_channels"])
        m1, p1 = _conv(cin, mid, 1, size)
        o = out_size(size, s)
        m2, p2 = _conv(mid, mid, k, o)
        m3, p3 = _conv(mid, cout, 1, o)
        macs, params = m1 + m2 + m3, p1 + p2 + p3
        if not (s == 1 and cin == cout):
            m, p = _conv(cin, cout, 1, o)
            macs, params = macs + m, params + p
        return macs, params, o
    raise ValueError(f"unknown layer {name!r}")


def arch_costs(arch: Mapping[str, Any], resolution: int) -> dict[str, int]:
    """Exact MACs and parameters of an architecture on ``resolution x resolution`` inputs."""
    macs = params = 0
    size = resolution
    if arch["name"] == "MobileNetV3":
        layers = [arch["first_conv"], *arch["blocks"], arch["final_expand_layer"]]
        tail = [arch["feature_mix_layer"], arch["classifier"]]
    elif arch["name"] == "ResNets":
        layers, tail = list(arch["input_stem"]), [arch["classifier"]]
    else:
        raise ValueError(f"unknown architecture {arch['name']!r}")
    for layer in layers:
        m, p, size = _layer_costs(layer, size)
        macs, params = macs + m, params + p
    if arch["name"] == "ResNets":
        size = out_size(size, 2)  # max pooling
        for block in arch["blocks"]:
            m, p, size = _layer_costs(block, size)
            macs, params = macs + m, params + p
    for layer in tail:  # after global pooling: 1 x 1
        m, p, _ = _layer_costs(layer, 1)
        macs, params = macs + m, params + p
    return {"macs": int(macs), "params": int(params)}


# ---------------------------------------------------------------------------
# per-layer specs (latency lookup tables)
# ---------------------------------------------------------------------------


def _shape(c: int, s: int) -> str:
    return f"{s}x{s}x{c}"


class _Flatten(nn.Module):
    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(torch.flatten(x, 1))


class _GlobalAvgPool(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return global_avg_pool(x)


def _builder(cfg: Mapping[str, Any], wrap_flatten: bool = False):  # noqa: ANN202
    frozen = dict(cfg)

    def build() -> nn.Module:
        layer = layer_from_config(frozen)
        return _Flatten(layer) if wrap_flatten else layer

    return build


def arch_layer_specs(arch: Mapping[str, Any], resolution: int) -> list[LayerSpec]:
    """One :class:`LayerSpec` per layer, keyed as OFA's latency lookup tables spell them.

    MobileNetV3 keys: ``Conv-input:HxWxC-output:HxWxC``, ``expanded_conv-input:..-output:..-expand:MID-
    kernel:K-stride:S-idskip:0|1-se:0|1-hs:0|1``, ``Conv_1-...``, ``AvgPool2D-...``, ``Conv_2-...``,
    ``Logits-input:1x1xC-output:N``. ResNet keys: ``Conv-``/``ResidualConv-``, ``MaxPool-``,
    ``bottleneck-...-mid:M-kernel:K-stride:S-idskip:0|1``, ``AvgPool2D-``, ``Logits-``.
    """
    specs: list[LayerSpec] = []
    size = resolution
    if arch["name"] == "MobileNetV3":
        fc = arch["first_conv"]
        o = out_size(size, fc["stride"])
        specs.append(
            LayerSpec(
                f"Conv-input:{_shape(fc['in_channels'], size)}-output:{_shape(fc['out_channels'], o)}",
                (fc["in_channels"], size, size),
                _builder(fc),
            )
        )
        size = o
        for block in arch["blocks"]:
            conv = block["conv"] if "conv" in block else block["mobile_inverted_conv"]
            o = out_size(size, conv["stride"])
            mid = conv.get("mid_channels") or round(conv["in_channels"] * conv["expand_ratio"])
            key = (
                f"expanded_conv-input:{_shape(conv['in_channels'], size)}-output:{_shape(conv['out_channels'], o)}"
                f"-expand:{mid}-kernel:{conv['kernel_size']}-stride:{conv['stride']}"
                f"-idskip:{int(block.get('shortcut') is not None)}-se:{int(bool(conv.get('use_se')))}"
                f"-hs:{int(conv.get('act_func') == 'h_swish')}"
            )
            specs.append(LayerSpec(key, (conv["in_channels"], size, size), _builder(block)))
            size = o
        fe, fm, cl = arch["final_expand_layer"], arch["feature_mix_layer"], arch["classifier"]
        specs.append(
            LayerSpec(
                f"Conv_1-input:{_shape(fe['in_channels'], size)}-output:{_shape(fe['out_channels'], size)}",
                (fe["in_channels"], size, size),
                _builder(fe),
            )
        )
        c = fe["out_channels"]
        specs.append(LayerSpec(f"AvgPool2D-input:{_shape(c, size)}-output:{_shape(c, 1)}", (c, size, size), _GlobalAvgPool))
        specs.append(
            LayerSpec(
                f"Conv_2-input:{_shape(fm['in_channels'], 1)}-output:{_shape(fm['out_channels'], 1)}",
                (fm["in_channels"], 1, 1),
                _builder(fm),
            )
        )
        specs.append(
            LayerSpec(
                f"Logits-input:{_shape(cl['in_features'], 1)}-output:{cl['out_features']}",
                (cl["in_features"], 1, 1),
                _builder(cl, wrap_flatten=True),
            )
        )
        return specs
    if arch["name"] == "ResNets":
        for layer in arch["input_stem"]:
            conv = layer["conv"] if layer["name"] == "ResidualBlock" else layer
            kind = "ResidualConv" if layer["name"] == "ResidualBlock" else "Conv"
            o = out_size(size, conv["stride"])
            specs.append(
                LayerSpec(
                    f"{kind}-input:{_shape(conv['in_channels'], size)}-output:{_shape(conv['out_channels'], o)}"
                    f"-kernel:{conv['kernel_size']}-stride:{conv['stride']}",
                    (conv["in_channels"], size, size),
                    _builder(layer),
                )
            )
            size = o
        c = arch["input_stem"][-1]["out_channels"]
        o = out_size(size, 2)
        specs.append(
            LayerSpec(
                f"MaxPool-input:{_shape(c, size)}-output:{_shape(c, o)}-kernel:3-stride:2",
                (c, size, size),
                lambda: nn.MaxPool2d(3, 2, 1),
            )
        )
        size = o
        for block in arch["blocks"]:
            o = out_size(size, block["stride"])
            ident = int(block["stride"] == 1 and block["in_channels"] == block["out_channels"])
            specs.append(
                LayerSpec(
                    f"bottleneck-input:{_shape(block['in_channels'], size)}-output:{_shape(block['out_channels'], o)}"
                    f"-mid:{block['mid_channels']}-kernel:{block['kernel_size']}-stride:{block['stride']}-idskip:{ident}",
                    (block["in_channels"], size, size),
                    _builder(block),
                )
            )
            size = o
        cl = arch["classifier"]
        c = cl["in_features"]
        specs.append(LayerSpec(f"AvgPool2D-input:{_shape(c, size)}-output:{_shape(c, 1)}", (c, size, size), _GlobalAvgPool))
        specs.append(
            LayerSpec(
                f"Logits-input:{_shape(c, 1)}-output:{cl['out_features']}", (c, 1, 1), _builder(cl, wrap_flatten=True)
            )
        )
        return specs
    raise ValueError(f"unknown architecture {arch['name']!r}")


__all__ = [
    "ConvLayer",
    "MobileNetV3Net",
    "ResNetNet",
    "arch_costs",
    "arch_layer_specs",
    "build_subnet",
]
