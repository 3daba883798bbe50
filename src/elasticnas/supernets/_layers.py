"""Layers shared by the super-network families: elastic (weight-sharing) and static.

Module and parameter names follow Once-for-All (Cai et al., ICLR 2020; code at
github.com/mit-han-lab/once-for-all, MIT licence), so that a state dict written by
its networks loads here by name: an elastic convolution keeps its full weight in
``<layer>.conv.weight``, an elastic batch norm its statistics in ``<layer>.bn.*``.

Static layers describe themselves with a JSON-able :attr:`config` in the spirit of
OFA's ``net.config`` and are rebuilt by :func:`layer_from_config`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CHANNEL_DIVISIBLE = 8
SE_REDUCTION = 4


def make_divisible(v: float, divisor: int = CHANNEL_DIVISIBLE, min_val: int | None = None) -> int:
    """Round ``v`` to a multiple of ``divisor``, never below ``min_val`` nor more than 10% below ``v``.

    The channel-rounding rule of MobileNet (TensorFlow slim), used by Once-for-All.
    """
    if min_val is None:
        min_val = divisor
    new_v = max(min_val, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def middle_channels(channels: int, expand_ratio: float, *, divisible: bool = True) -> int:
    """Middle width of an inverted-residual or bottleneck block: ``round(channels * expand_ratio)``,
    made divisible by 8 (OFA's elastic blocks and its bottleneck) unless ``divisible`` is False
    (OFA's static ``MBConvLayer`` without ``mid_channels``)."""
    mid = round(channels * expand_ratio)
    return make_divisible(mid, CHANNEL_DIVISIBLE) if divisible else mid


def se_channels(channels: int) -> int:
    """Hidden width of a squeeze-excite module on ``channels`` channels (OFA: reduction 4, divisible by 8)."""
    return make_divisible(channels // SE_REDUCTION, CHANNEL_DIVISIBLE)


def out_size(size: int, stride: int) -> int:
    """Spatial size after a 'same'-padded odd-kernel convolution (or ceil-mode pooling) of ``stride``."""
    return -(-size // stride)


def build_activation(name: str | None) -> nn.Module | None:
    if name is None or name == "none":
        return None
    if name == "relu":
        return nn.ReLU()
    if name == "relu6":
        return nn.ReLU6()
    if name == "h_swish":
        return nn.Hardswish()
    if name == "h_sigmoid":
        return nn.Hardsigmoid()
    raise ValueError(f"unknown activation {name!r}")


def global_avg_pool(x: Tensor, keep_dim: bool = True) -> Tensor:
    """Mean over height then width, as OFA computes it."""
    return x.mean(3, keepdim=keep_dim).mean(2, keepdim=keep_dim)


def _device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def copy_bn(target: nn.BatchNorm2d, source: nn.BatchNorm2d) -> None:
    """Copy the first ``target.num_features`` channels of ``source`` into ``target``."""
    n = target.num_features
    with torch.no_grad():
        target.weight.copy_(source.weight[:n])
        target.bias.copy_(source.bias[:n])
        _stat(target.running_mean).copy_(_stat(source.running_mean)[:n])
        _stat(target.running_var).copy_(_stat(source.running_var)[:n])
        _stat(target.num_batches_tracked).copy_(_stat(source.num_batches_tracked))
    target.momentum, target.eps = source.momentum, source.eps


def _stat(buffer: Tensor | None) -> Tensor:
    """A batch norm's running statistic; every batch norm here tracks them (``track_running_stats=True``)."""
    assert buffer is not None
    return buffer


class _Parts(nn.Sequential):
    """``nn.Sequential`` of named parts in order, OFA's module names (a ``None`` part keeps its slot, as in OFA).

    The subclasses below only declare the types of the parts that code reaches by name.
    """

    def __init__(self, *parts: tuple[str, nn.Module | None]) -> None:
        super().__init__()
        for name, part in parts:
            self.add_module(name, part)


class _StaticParts(_Parts):
    conv: nn.Conv2d
    bn: nn.BatchNorm2d
    se: SEModule


class _ElasticParts(_Parts):
    avg_pool: nn.AvgPool2d
    conv: ElasticConv2d
    bn: ElasticBatchNorm2d
    act: nn.Module  # an elastic layer is always built with an activation where it calls ``act``


class _ElasticDepthParts(_Parts):
    conv: ElasticDepthwiseConv2d
    bn: ElasticBatchNorm2d
    act: nn.Module
    se: ElasticSE


class _SEParts(_Parts):
    reduce: nn.Conv2d
    relu: nn.ReLU
    expand: nn.Conv2d
    h_sigmoid: nn.Hardsigmoid


# ---------------------------------------------------------------------------
# static layers (extracted sub-networks)
# ---------------------------------------------------------------------------


class ConvLayer(nn.Module):
    """Convolution, optional batch norm, optional activation (OFA ``ConvLayer``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        bias: bool = False,
        use_bn: bool = True,
        act_func: str | None = "relu",
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.groups = kernel_size, stride, groups
        self.bias, self.use_bn, self.act_func = bias, use_bn, act_func
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups, bias=bias
        )
        self.bn = nn.BatchNorm2d(out_channels) if use_bn else None
        self.act = build_activation(act_func)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x

    @property
    def config(self) -> dict[str, Any]:
        return {
            "name": "ConvLayer",
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "groups": self.groups,
            "bias": self.bias,
            "use_bn": self.use_bn,
            "act_func": self.act_func,
        }


def _se_bottleneck(channels: int) -> _SEParts:
    """1x1 reduce, ReLU, 1x1 expand, hard-sigmoid, with OFA's module names (checkpoints load by them)."""
    mid = se_channels(channels)
    return _SEParts(
        ("reduce", nn.Conv2d(channels, mid, 1, 1, 0, bias=True)),
        ("relu", nn.ReLU()),
        ("expand", nn.Conv2d(mid, channels, 1, 1, 0, bias=True)),
        ("h_sigmoid", nn.Hardsigmoid()),
    )


class SEModule(nn.Module):
    """Squeeze-excite with a ReLU bottleneck and hard-sigmoid gate (OFA ``SEModule``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = _se_bottleneck(channels)

    def forward(self, x: Tensor) -> Tensor:
        gate: Tensor = self.fc(global_avg_pool(x))
        return x * gate


class MBConvLayer(nn.Module):
    """Inverted residual: 1x1 expand (absent when ``expand_ratio == 1``), depthwise k x k
    (+ squeeze-excite), 1x1 linear projection (OFA ``MBConvLayer``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        expand_ratio: float = 6,
        mid_channels: int | None = None,
        act_func: str = "relu",
        use_se: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.expand_ratio = kernel_size, stride, expand_ratio
        self.act_func, self.use_se = act_func, use_se
        mid = middle_channels(in_channels, expand_ratio, divisible=False) if mid_channels is None else mid_channels
        self.mid_channels = mid
        if expand_ratio == 1:
            self.inverted_bottleneck: _StaticParts | None = None
        else:
            self.inverted_bottleneck = _StaticParts(
                ("conv", nn.Conv2d(in_channels, mid, 1, 1, 0, bias=False)),
                ("bn", nn.BatchNorm2d(mid)),
                ("act", build_activation(act_func)),
            )
        depth: list[tuple[str, nn.Module | None]] = [
            ("conv", nn.Conv2d(mid, mid, kernel_size, stride, kernel_size // 2, groups=mid, bias=False)),
            ("bn", nn.BatchNorm2d(mid)),
            ("act", build_activation(act_func)),
        ]
        if use_se:
            depth.append(("se", SEModule(mid)))
        self.depth_conv = _StaticParts(*depth)
        self.point_linear = _StaticParts(
            ("conv", nn.Conv2d(mid, out_channels, 1, 1, 0, bias=False)),
            ("bn", nn.BatchNorm2d(out_channels)),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.inverted_bottleneck is not None:
            x = self.inverted_bottleneck(x)
        out: Tensor = self.point_linear(self.depth_conv(x))
        return out

    @property
    def config(self) -> dict[str, Any]:
        return {
            "name": "MBConvLayer",
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "expand_ratio": self.expand_ratio,
            "mid_channels": self.mid_channels,
            "act_func": self.act_func,
            "use_se": self.use_se,
        }


class ResidualBlock(nn.Module):
    """``conv(x)``, plus ``x`` when the block has an identity shortcut (OFA ``ResidualBlock``)."""

    def __init__(self, conv: nn.Module, shortcut: bool) -> None:
        super().__init__()
        self.conv = conv
        self.shortcut = nn.Identity() if shortcut else None

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.conv(x)
        if self.shortcut is None:
            return out
        return out + x

    @property
    def config(self) -> dict[str, Any]:
        # the static layers (layer_from_config) all describe themselves with a ``config`` dict
        conv_cfg = cast("dict[str, Any]", self.conv.config)
        shortcut = None
        if self.shortcut is not None:
            c = conv_cfg["in_channels"]
            shortcut = {"name": "IdentityLayer", "in_channels": [c], "out_channels": [c]}
        return {"name": "ResidualBlock", "conv": conv_cfg, "shortcut": shortcut}


class LinearLayer(nn.Module):
    """Optional dropout, then a fully connected layer (OFA ``LinearLayer``)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dropout_rate: float = 0.0) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.bias, self.dropout_rate = bias, dropout_rate
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else None
        self.linear = nn.Linear(in_features, out_features, bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.dropout is not None:
            x = self.dropout(x)
        out: Tensor = self.linear(x)
        return out

    @property
    def config(self) -> dict[str, Any]:
        return {
            "name": "LinearLayer",
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias,
            "use_bn": False,
            "act_func": None,
            "dropout_rate": self.dropout_rate,
        }


class BottleneckBlock(nn.Module):
    """ResNet bottleneck 1x1 - 3x3 (stride) - 1x1, shortcut identity or avg-pool + 1x1 conv
    (ResNet-D; OFA ``ResNetBottleneckBlock``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        expand_ratio: float = 0.25,
        mid_channels: int | None = None,
        act_func: str = "relu",
        downsample_mode: str = "avgpool_conv",
    ) -> None:
        super().__init__()
        if downsample_mode != "avgpool_conv":
            raise ValueError(f"only downsample_mode 'avgpool_conv' is supported, got {downsample_mode!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.expand_ratio = kernel_size, stride, expand_ratio
        self.act_func, self.downsample_mode = act_func, downsample_mode
        mid = middle_channels(out_channels, expand_ratio) if mid_channels is None else make_divisible(mid_channels)
        self.mid_channels = mid
        self.conv1 = _conv_bn_act(in_channels, mid, 1, 1, act_func)
        self.conv2 = _conv_bn_act(mid, mid, kernel_size, stride, act_func)
        self.conv3 = _conv_bn_act(mid, out_channels, 1, 1, None)
        if stride == 1 and in_channels == out_channels:
            self.downsample: nn.Identity | _StaticParts = nn.Identity()
        else:
            self.downsample = _StaticParts(
                ("avg_pool", nn.AvgPool2d(stride, stride, 0, ceil_mode=True)),
                ("conv", nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False)),
                ("bn", nn.BatchNorm2d(out_channels)),
            )
        self.final_act = build_activation(act_func)

    def forward(self, x: Tensor) -> Tensor:
        residual = self.downsample(x)
        x = self.conv3(self.conv2(self.conv1(x)))
        return _apply(self.final_act, x + residual)

    @property
    def config(self) -> dict[str, Any]:
        return {
            "name": "ResNetBottleneckBlock",
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "expand_ratio": self.expand_ratio,
            "mid_channels": self.mid_channels,
            "act_func": self.act_func,
            "groups": 1,
            "downsample_mode": self.downsample_mode,
        }


def _conv_bn_act(cin: int, cout: int, k: int, stride: int, act: str | None) -> _StaticParts:
    mods: list[tuple[str, nn.Module | None]] = [
        ("conv", nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)),
        ("bn", nn.BatchNorm2d(cout)),
    ]
    a = build_activation(act)
    if a is not None:
        mods.append(("act", a))
    return _StaticParts(*mods)


def _apply(act: nn.Module | None, x: Tensor) -> Tensor:
    """``act(x)``; a block built with an activation always has one (``act_func`` is never ``None`` there)."""
    assert act is not None
    out: Tensor = act(x)
    return out


def layer_from_config(config: Mapping[str, Any]) -> nn.Module:
    """Build a static layer from its :attr:`config` (also accepts OFA ``net.config`` entries)."""
    cfg = dict(config)
    name = cfg.pop("name")
    if name == "ConvLayer":
        if cfg.get("ops_order", "weight_bn_act") != "weight_bn_act" or cfg.get("dilation", 1) != 1:
            raise ValueError("only ConvLayer with ops_order 'weight_bn_act' and dilation 1 is supported")
        return ConvLayer(
            cfg["in_channels"], cfg["out_channels"], cfg.get("kernel_size", 3), cfg.get("stride", 1),
            cfg.get("groups", 1), cfg.get("bias", False), cfg.get("use_bn", True), cfg.get("act_func", "relu"),
        )  # fmt: skip
    if name in ("MBConvLayer", "MBInvertedConvLayer"):
        return MBConvLayer(
            cfg["in_channels"], cfg["out_channels"], cfg.get("kernel_size", 3), cfg.get("stride", 1),
            cfg.get("expand_ratio", 6), cfg.get("mid_channels"), cfg.get("act_func", "relu6"), cfg.get("use_se", False),
        )  # fmt: skip
    if name in ("ResidualBlock", "MobileInvertedResidualBlock"):
        conv_cfg = cfg["conv"] if "conv" in cfg else cfg["mobile_inverted_conv"]
        return ResidualBlock(layer_from_config(conv_cfg), cfg.get("shortcut") is not None)
    if name == "LinearLayer":
        if cfg.get("use_bn") or cfg.get("act_func"):
            raise ValueError("only LinearLayer without batch norm and activation is supported")
        return LinearLayer(cfg["in_features"], cfg["out_features"], cfg.get("bias", True), cfg.get("dropout_rate", 0.0))
    if name == "ResNetBottleneckBlock":
        if cfg.get("groups", 1) != 1:
            raise ValueError("only ResNetBottleneckBlock with groups=1 is supported")
        return BottleneckBlock(
            cfg["in_channels"], cfg["out_channels"], cfg.get("kernel_size", 3), cfg.get("stride", 1),
            cfg.get("expand_ratio", 0.25), cfg.get("mid_channels"), cfg.get("act_func", "relu"),
            cfg.get("downsample_mode", "avgpool_conv"),
        )  # fmt: skip
    raise ValueError(f"unknown layer {name!r}")


# ---------------------------------------------------------------------------
# elastic layers (super-networks)
# ---------------------------------------------------------------------------


class ElasticConv2d(nn.Module):
    """A convolution whose active weight is the top-left ``[:out, :in]`` slice (OFA ``DynamicConv2d``)."""

    def __init__(self, max_in: int, max_out: int, kernel_size: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.conv = nn.Conv2d(max_in, max_out, kernel_size, stride=stride, bias=False)
        self.active_out_channel = max_out

    def active_weight(self, out_channels: int, in_channels: int) -> Tensor:
        return self.conv.weight[:out_channels, :in_channels]

    def forward(self, x: Tensor, out_channels: int | None = None) -> Tensor:
        out = self.active_out_channel if out_channels is None else out_channels
        w = self.active_weight(out, x.size(1)).contiguous()
        return F.conv2d(x, w, None, self.stride, self.kernel_size // 2)


class ElasticDepthwiseConv2d(nn.Module):
    """Depthwise convolution with elastic kernel size (OFA ``DynamicSeparableConv2d``).

    A smaller kernel is the centre crop of the next larger one, transformed by a
    learnt ``k^2 x k^2`` matrix (``7to5_matrix``, ``5to3_matrix``), applied in turn
    from the largest kernel down.
    """

    def __init__(self, max_channels: int, kernel_sizes: Sequence[int], stride: int = 1) -> None:
        super().__init__()
        self.kernel_sizes = sorted(set(kernel_sizes))
        self.max_kernel = self.kernel_sizes[-1]
        self.stride = stride
        self.conv = nn.Conv2d(max_channels, max_channels, self.max_kernel, stride, groups=max_channels, bias=False)
        for small, large in zip(self.kernel_sizes[:-1], self.kernel_sizes[1:], strict=True):
            self.register_parameter(f"{large}to{small}_matrix", nn.Parameter(torch.eye(small * small)))
        self.active_kernel_size = self.max_kernel

    def active_weight(self, channels: int, kernel_size: int) -> Tensor:
        weight = self.conv.weight[:channels]
        if kernel_size == self.max_kernel:
            return weight
        if kernel_size not in self.kernel_sizes:
            raise ValueError(f"kernel size {kernel_size} is not one of {self.kernel_sizes}")
        filt = weight
        for i in range(len(self.kernel_sizes) - 1, 0, -1):
            src, tgt = self.kernel_sizes[i], self.kernel_sizes[i - 1]
            if src <= kernel_size:
                break
            start = src // 2 - tgt // 2
            crop = filt[:, :, start : start + tgt, start : start + tgt].contiguous()
            crop = F.linear(crop.view(-1, tgt * tgt), getattr(self, f"{src}to{tgt}_matrix"))
            filt = crop.view(weight.size(0), weight.size(1), tgt, tgt)
        return filt

    def forward(self, x: Tensor, kernel_size: int | None = None) -> Tensor:
        k = self.active_kernel_size if kernel_size is None else kernel_size
        channels = x.size(1)
        w = self.active_weight(channels, k).contiguous()
        return F.conv2d(x, w, None, self.stride, k // 2, 1, channels)


class ElasticBatchNorm2d(nn.Module):
    """Batch norm over the first channels of a wider one (OFA ``DynamicBatchNorm2d``)."""

    def __init__(self, max_features: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(max_features)

    def forward(self, x: Tensor) -> Tensor:
        bn, c = self.bn, x.size(1)
        if c == bn.num_features:
            out: Tensor = bn(x)
            return out
        factor = 0.0
        if bn.training and bn.track_running_stats:
            tracked = _stat(bn.num_batches_tracked)
            tracked += 1
            factor = 1.0 / float(tracked) if bn.momentum is None else bn.momentum
        return F.batch_norm(
            x,
            _stat(bn.running_mean)[:c],
            _stat(bn.running_var)[:c],
            bn.weight[:c],
            bn.bias[:c],
            bn.training or not bn.track_running_stats,
            factor,
            bn.eps,
        )


class ElasticSE(nn.Module):
    """Squeeze-excite on the first channels of a wider one (OFA ``DynamicSE``)."""

    def __init__(self, max_channels: int) -> None:
        super().__init__()
        self.fc = _se_bottleneck(max_channels)

    def forward(self, x: Tensor) -> Tensor:
        c = x.size(1)
        mid = se_channels(c)
        reduce, expand = self.fc.reduce, self.fc.expand
        y = global_avg_pool(x)
        y = F.conv2d(y, reduce.weight[:mid, :c].contiguous(), _bias(reduce)[:mid])
        y = self.fc.relu(y)
        y = F.conv2d(y, expand.weight[:c, :mid].contiguous(), _bias(expand)[:c])
        gate: Tensor = self.fc.h_sigmoid(y)
        return x * gate

    def copy_to(self, target: SEModule, channels: int) -> None:
        mid = se_channels(channels)
        with torch.no_grad():
            target.fc.reduce.weight.copy_(self.fc.reduce.weight[:mid, :channels])
            _bias(target.fc.reduce).copy_(_bias(self.fc.reduce)[:mid])
            target.fc.expand.weight.copy_(self.fc.expand.weight[:channels, :mid])
            _bias(target.fc.expand).copy_(_bias(self.fc.expand)[:channels])


def _bias(conv: nn.Conv2d) -> Tensor:
    """The bias of a squeeze-excite convolution (built with ``bias=True``)."""
    assert conv.bias is not None
    return conv.bias


class ElasticMBConv(nn.Module):
    """Inverted residual with elastic kernel size and expand ratio (OFA ``DynamicMBConvLayer``).

    The middle width is :func:`middle_channels` of the input width.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_sizes: Sequence[int],
        expand_ratios: Sequence[float],
        stride: int = 1,
        act_func: str = "relu",
        use_se: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_sizes, self.expand_ratios = sorted(kernel_sizes), sorted(expand_ratios)
        self.stride, self.act_func, self.use_se = stride, act_func, use_se
        max_mid = middle_channels(in_channels, max(self.expand_ratios))
        self.inverted_bottleneck = _ElasticParts(
            ("conv", ElasticConv2d(in_channels, max_mid)),
            ("bn", ElasticBatchNorm2d(max_mid)),
            ("act", build_activation(act_func)),
        )
        self.depth_conv = _ElasticDepthParts(
            ("conv", ElasticDepthwiseConv2d(max_mid, self.kernel_sizes, stride)),
            ("bn", ElasticBatchNorm2d(max_mid)),
            ("act", build_activation(act_func)),
        )
        if use_se:
            self.depth_conv.add_module("se", ElasticSE(max_mid))
        self.point_linear = _ElasticParts(
            ("conv", ElasticConv2d(max_mid, out_channels)), ("bn", ElasticBatchNorm2d(out_channels))
        )
        self.active_kernel_size = max(self.kernel_sizes)
        self.active_expand_ratio = max(self.expand_ratios)

    def forward(self, x: Tensor) -> Tensor:
        mid = middle_channels(x.size(1), self.active_expand_ratio)
        ib = self.inverted_bottleneck
        x = ib.act(ib.bn(ib.conv(x, mid)))
        x = self.depth_conv.conv(x, self.active_kernel_size)
        x = self.depth_conv.act(self.depth_conv.bn(x))
        if self.use_se:
            x = self.depth_conv.se(x)
        out: Tensor = self.point_linear.bn(self.point_linear.conv(x, self.out_channels))
        return out

    def active_config(self, in_channels: int, kernel_size: int, expand_ratio: float) -> dict[str, Any]:
        return {
            "name": "MBConvLayer",
            "in_channels": in_channels,
            "out_channels": self.out_channels,
            "kernel_size": kernel_size,
            "stride": self.stride,
            "expand_ratio": expand_ratio,
            "mid_channels": middle_channels(in_channels, expand_ratio),
            "act_func": self.act_func,
            "use_se": self.use_se,
        }

    def extract(self, in_channels: int, kernel_size: int, expand_ratio: float) -> MBConvLayer:
        """A static copy of this block with the given choices."""
        layer = layer_from_config(self.active_config(in_channels, kernel_size, expand_ratio)).to(_device_of(self))
        assert isinstance(layer, MBConvLayer) and layer.inverted_bottleneck is not None
        mid = layer.mid_channels
        with torch.no_grad():
            layer.inverted_bottleneck.conv.weight.copy_(self.inverted_bottleneck.conv.active_weight(mid, in_channels))
            copy_bn(layer.inverted_bottleneck.bn, self.inverted_bottleneck.bn.bn)
            layer.depth_conv.conv.weight.copy_(self.depth_conv.conv.active_weight(mid, kernel_size))
            copy_bn(layer.depth_conv.bn, self.depth_conv.bn.bn)
            if self.use_se:
                self.depth_conv.se.copy_to(layer.depth_conv.se, mid)
            layer.point_linear.conv.weight.copy_(self.point_linear.conv.active_weight(self.out_channels, mid))
            copy_bn(layer.point_linear.bn, self.point_linear.bn.bn)
        return layer


class ElasticConvLayer(nn.Module):
    """Convolution + batch norm + activation with elastic output width (OFA ``DynamicConvLayer``)."""

    def __init__(
        self,
        max_in: int,
        out_channels_list: Sequence[int],
        kernel_size: int = 3,
        stride: int = 1,
        act_func: str = "relu",
    ) -> None:
        super().__init__()
        self.out_channels_list = list(out_channels_list)
        self.kernel_size, self.stride, self.act_func = kernel_size, stride, act_func
        max_out = max(self.out_channels_list)
        self.conv = ElasticConv2d(max_in, max_out, kernel_size, stride)
        self.bn = ElasticBatchNorm2d(max_out)
        self.act = build_activation(act_func)
        self.active_out_channel = max_out

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn(self.conv(x, self.active_out_channel))
        if self.act is None:
            return x
        out: Tensor = self.act(x)
        return out

    def active_config(self, in_channels: int, out_channels: int) -> dict[str, Any]:
        return {
            "name": "ConvLayer",
            "in_channels": in_channels,
            "out_channels": out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "groups": 1,
            "bias": False,
            "use_bn": True,
            "act_func": self.act_func,
        }

    def extract(self, in_channels: int, out_channels: int) -> ConvLayer:
        layer = layer_from_config(self.active_config(in_channels, out_channels)).to(_device_of(self))
        assert isinstance(layer, ConvLayer) and layer.bn is not None
        with torch.no_grad():
            layer.conv.weight.copy_(self.conv.active_weight(out_channels, in_channels))
        copy_bn(layer.bn, self.bn.bn)
        return layer


class ElasticBottleneck(nn.Module):
    """ResNet-D bottleneck with elastic expand ratio and width (OFA ``DynamicResNetBottleneckBlock``).

    The middle width is :func:`middle_channels` of the output width.
    """

    def __init__(
        self,
        in_channels_list: Sequence[int],
        out_channels_list: Sequence[int],
        expand_ratios: Sequence[float],
        kernel_size: int = 3,
        stride: int = 1,
        act_func: str = "relu",
    ) -> None:
        super().__init__()
        self.in_channels_list, self.out_channels_list = list(in_channels_list), list(out_channels_list)
        self.expand_ratios = sorted(expand_ratios)
        self.kernel_size, self.stride, self.act_func = kernel_size, stride, act_func
        max_in, max_out = max(self.in_channels_list), max(self.out_channels_list)
        max_mid = middle_channels(max_out, max(self.expand_ratios))
        self.conv1 = _ElasticParts(
            ("conv", ElasticConv2d(max_in, max_mid)),
            ("bn", ElasticBatchNorm2d(max_mid)),
            ("act", build_activation(act_func)),
        )
        self.conv2 = _ElasticParts(
            ("conv", ElasticConv2d(max_mid, max_mid, kernel_size, stride)),
            ("bn", ElasticBatchNorm2d(max_mid)),
            ("act", build_activation(act_func)),
        )
        self.conv3 = _ElasticParts(("conv", ElasticConv2d(max_mid, max_out)), ("bn", ElasticBatchNorm2d(max_out)))
        self.has_identity = stride == 1 and self.in_channels_list == self.out_channels_list
        if self.has_identity:
            self.downsample: nn.Identity | _ElasticParts = nn.Identity()
        else:
            self.downsample = _ElasticParts(
                ("avg_pool", nn.AvgPool2d(stride, stride, 0, ceil_mode=True)),
                ("conv", ElasticConv2d(max_in, max_out)),
                ("bn", ElasticBatchNorm2d(max_out)),
            )
        self.final_act = build_activation(act_func)
        self.active_expand_ratio = max(self.expand_ratios)
        self.active_out_channel = max_out

    def forward(self, x: Tensor) -> Tensor:
        out = self.active_out_channel
        mid = middle_channels(out, self.active_expand_ratio)
        ds = self.downsample
        if isinstance(ds, nn.Identity):  # has_identity
            residual = x
        else:
            residual = ds.bn(ds.conv(ds.avg_pool(x), out))
        x = self.conv1.act(self.conv1.bn(self.conv1.conv(x, mid)))
        x = self.conv2.act(self.conv2.bn(self.conv2.conv(x, mid)))
        x = self.conv3.bn(self.conv3.conv(x, out))
        return _apply(self.final_act, x + residual)

    def active_config(self, in_channels: int, out_channels: int, expand_ratio: float) -> dict[str, Any]:
        return {
            "name": "ResNetBottleneckBlock",
            "in_channels": in_channels,
            "out_channels": out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "expand_ratio": expand_ratio,
            "mid_channels": middle_channels(out_channels, expand_ratio),
            "act_func": self.act_func,
            "groups": 1,
            "downsample_mode": "avgpool_conv",
        }

    def extract(self, in_channels: int, out_channels: int, expand_ratio: float) -> BottleneckBlock:
        layer = layer_from_config(self.active_config(in_channels, out_channels, expand_ratio)).to(_device_of(self))
        assert isinstance(layer, BottleneckBlock)
        mid = layer.mid_channels
        if isinstance(layer.downsample, nn.Identity) != self.has_identity:
            raise ValueError("an elastic bottleneck's shortcut kind must not change with its width")
        with torch.no_grad():
            layer.conv1.conv.weight.copy_(self.conv1.conv.active_weight(mid, in_channels))
            layer.conv2.conv.weight.copy_(self.conv2.conv.active_weight(mid, mid))
            layer.conv3.conv.weight.copy_(self.conv3.conv.active_weight(out_channels, mid))
        copy_bn(layer.conv1.bn, self.conv1.bn.bn)
        copy_bn(layer.conv2.bn, self.conv2.bn.bn)
        copy_bn(layer.conv3.bn, self.conv3.bn.bn)
        source, target = self.downsample, layer.downsample
        if isinstance(source, _ElasticParts) and isinstance(target, _StaticParts):  # not has_identity (checked above)
            with torch.no_grad():
                target.conv.weight.copy_(source.conv.active_weight(out_channels, in_channels))
            copy_bn(target.bn, source.bn.bn)
        return layer


class ElasticLinearLayer(nn.Module):
    """Fully connected layer on the first input features of a wider one (OFA ``DynamicLinearLayer``)."""

    def __init__(self, max_in: int, out_features: int, bias: bool = True, dropout_rate: float = 0.0) -> None:
        super().__init__()
        self.out_features, self.bias, self.dropout_rate = out_features, bias, dropout_rate
        self.dropout = nn.Dropout(dropout_rate) if dropout_rate > 0 else None
        self.linear = _LinearHolder(max_in, out_features, bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.dropout is not None:
            x = self.dropout(x)
        lin = self.linear.linear
        return F.linear(x, lin.weight[:, : x.size(1)].contiguous(), lin.bias)

    def extract(self, in_features: int) -> LinearLayer:
        layer = LinearLayer(in_features, self.out_features, self.bias, self.dropout_rate).to(
            self.linear.linear.weight.device
        )
        with torch.no_grad():
            layer.linear.weight.copy_(self.linear.linear.weight[:, :in_features])
            if self.bias:
                layer.linear.bias.copy_(self.linear.linear.bias)
        return layer


class _LinearHolder(nn.Module):
    """Holds ``.linear`` so that parameter names read ``<layer>.linear.linear.*`` as in OFA."""

    def __init__(self, max_in: int, out_features: int, bias: bool) -> None:
        super().__init__()
        self.linear = nn.Linear(max_in, out_features, bias)


def init_weights(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """OFA's initialisation: He (fan-out) normal for convolutions, ones/zeros for norms, uniform for linears."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            with torch.no_grad():
                m.weight.normal_(0, math.sqrt(2.0 / n), generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            with torch.no_grad():
                m.weight.fill_(1)
                m.bias.zero_()
        elif isinstance(m, nn.Linear):
            stdv = 1.0 / math.sqrt(m.weight.size(1))
            with torch.no_grad():
                m.weight.uniform_(-stdv, stdv, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
