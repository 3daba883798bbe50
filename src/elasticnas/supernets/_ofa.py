"""What the Once-for-All families share beyond their layers: analytic layer costs and layer-spec pieces.

An architecture is a JSON-able dict in the format of Once-for-All's ``net.config``; each
family module (:mod:`~elasticnas.supernets.ofa_mobilenetv3`, :mod:`~elasticnas.supernets.ofa_resnet`)
builds, costs and lists the layers of its own architectures with these pieces.

Counting rule (OFA's ``ofa.utils.flops_counter``, which DyNAS-T and the OFA
papers use): a convolution costs ``in/groups * k * k * out_elements`` MACs, a
fully connected layer ``in * out``; batch norm, activations, pooling and the
residual additions cost nothing; parameters are all weights, biases and
batch-norm affine parameters (not running statistics).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from elasticnas.supernets._layers import global_avg_pool, layer_from_config, middle_channels, out_size, se_channels


def bn_param(net: nn.Module) -> dict[str, float]:
    """``{"momentum", "eps"}`` of the first batch norm of ``net`` (PyTorch's defaults without one)."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            return {"momentum": m.momentum, "eps": m.eps}  # type: ignore[dict-item]  # OFA sets a float momentum
    return {"momentum": 0.1, "eps": 1e-5}


def set_bn_param(net: nn.Module, momentum: float, eps: float) -> None:
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            m.momentum, m.eps = momentum, eps


def set_arch_bn_param(net: nn.Module, arch: Mapping[str, Any]) -> nn.Module:
    """Apply the ``"bn"`` entry of an architecture to a freshly built ``net``; return it."""
    bn = arch.get("bn") or {}
    set_bn_param(net, bn.get("momentum", 0.1), bn.get("eps", 1e-5))
    return net


# ---------------------------------------------------------------------------
# analytic costs
# ---------------------------------------------------------------------------


def _conv(
    cin: int, cout: int, k: int, hw: int, groups: int = 1, bias: bool = False, bn: bool = True
) -> tuple[int, int]:
    """(MACs, params) of a k x k convolution producing an ``hw x hw`` map."""
    w = cin // groups * k * k * cout
    return w * hw * hw, w + (cout if bias else 0) + (2 * cout if bn else 0)


def layer_costs(cfg: Mapping[str, Any], size: int) -> tuple[int, int, int]:
    """(MACs, params, output size) of one static layer config at input size ``size``."""
    name = cfg["name"]
    if name in ("ResidualBlock", "MobileInvertedResidualBlock"):
        return layer_costs(cfg["conv"] if "conv" in cfg else cfg["mobile_inverted_conv"], size)
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
        mid = mb_mid_channels(cfg)
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
        cin, cout, k, s, mid = (
            cfg["in_channels"],
            cfg["out_channels"],
            cfg.get("kernel_size", 3),
            cfg["stride"],
            cfg["mid_channels"],
        )
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


def mb_mid_channels(cfg: Mapping[str, Any]) -> int:
    """Middle width of a static inverted-residual layer config (as :class:`~._layers.MBConvLayer` builds it)."""
    return cfg.get("mid_channels") or middle_channels(cfg["in_channels"], cfg.get("expand_ratio", 6), divisible=False)


def chain_costs(layers: list[Mapping[str, Any]], size: int) -> tuple[int, int, int]:
    """(MACs, params, output size) of static layer configs applied in turn from input size ``size``."""
    macs = params = 0
    for layer in layers:
        m, p, size = layer_costs(layer, size)
        macs, params = macs + m, params + p
    return macs, params, size


# ---------------------------------------------------------------------------
# per-layer specs (latency lookup tables)
# ---------------------------------------------------------------------------


def shape_key(c: int, s: int) -> str:
    """OFA's lookup-table spelling of a ``c``-channel ``s x s`` feature map."""
    return f"{s}x{s}x{c}"


class _Flatten(nn.Module):
    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.layer(torch.flatten(x, 1))
        return out


class GlobalAvgPool(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return global_avg_pool(x)


def spec_builder(cfg: Mapping[str, Any], wrap_flatten: bool = False) -> Callable[[], nn.Module]:
    """A :attr:`LayerSpec.build` for the static layer ``cfg`` (flattening its input when ``wrap_flatten``)."""
    frozen = dict(cfg)

    def build() -> nn.Module:
        layer = layer_from_config(frozen)
        return _Flatten(layer) if wrap_flatten else layer

    return build
