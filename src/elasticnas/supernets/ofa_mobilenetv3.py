"""Once-for-All MobileNetV3 super-networks (w1.0 and w1.2); their search space is `MobileNetV3Space` (`_mbv3_space`).

The architecture is OFA's ``OFAMobileNetV3`` (Cai et al., "Once-for-All: Train One
Network and Specialize it for Efficient Deployment", ICLR 2020; reference code
github.com/mit-han-lab/once-for-all, MIT licence): a 3x3 stride-2 hard-swish stem,
one fixed 3x3 inverted residual block, five stages of up to four elastic blocks
(kernel 3/5/7, expand ratio 3/4/6, depth 2/3/4; base widths 24, 40, 80, 112, 160;
strides 2, 2, 2, 1, 2; hard-swish in the last three stages; squeeze-excite in stages
1, 3 and 4), a 1x1 expand to 960 and a 1x1 mix to 1280 after global pooling, all
widths scaled by the width multiplier and rounded by ``make_divisible(., 8)``.

Resolution: OFA trains these networks on 128..224 px in steps of 4
(``MyRandomResizedCrop`` with ``IMAGE_SIZE_SEG = 4``), so the search space's ``r``
takes those 25 values. (OFA's evolutionary-search tutorial restricts itself to
160..224 step 16, DyNAS-T to 224.) Costs can be counted at any resolution with
``costs(cfg, resolution=...)``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from elasticnas.space import Choice, Config
from elasticnas.supernets._layers import (
    ConvLayer,
    ElasticMBConv,
    LinearLayer,
    MBConvLayer,
    ResidualBlock,
    global_avg_pool,
    init_weights,
    layer_from_config,
    make_divisible,
    out_size,
)
from elasticnas.supernets._mbv3_space import MobileNetV3Space
from elasticnas.supernets._ofa import (
    GlobalAvgPool,
    bn_param,
    chain_costs,
    layer_costs,
    mb_mid_channels,
    set_arch_bn_param,
    set_bn_param,
    shape_key,
    spec_builder,
)
from elasticnas.supernets.base import ImageSupernet, LayerSpec

OFA_BASE_STAGE_WIDTH = (16, 16, 24, 40, 80, 112, 160, 960, 1280)
OFA_STRIDE_STAGES = (1, 2, 2, 2, 1, 2)
OFA_ACT_STAGES = ("relu", "relu", "relu", "h_swish", "h_swish", "h_swish")
OFA_SE_STAGES = (False, False, True, False, True, True)
OFA_RESOLUTIONS = tuple(range(128, 225, 4))
FAMILY = "MobileNetV3"  # the name of OFA's net.config, which the pt export records


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
        logits: Tensor = self.classifier(torch.flatten(x, 1))
        return logits

    @property
    def config(self) -> dict[str, Any]:
        return {
            "name": FAMILY,
            "bn": bn_param(self),
            "first_conv": self.first_conv.config,
            "blocks": [b.config for b in self.blocks],
            "final_expand_layer": self.final_expand_layer.config,
            "feature_mix_layer": self.feature_mix_layer.config,
            "classifier": self.classifier.config,
        }


def build_mobilenetv3(arch: Mapping[str, Any]) -> MobileNetV3Net:
    """The static MobileNetV3 an architecture (OFA ``net.config``) describes, weights random."""
    net = MobileNetV3Net(
        layer_from_config(arch["first_conv"]),
        [layer_from_config(b) for b in arch["blocks"]],
        layer_from_config(arch["final_expand_layer"]),
        layer_from_config(arch["feature_mix_layer"]),
        layer_from_config(arch["classifier"]),
    )
    set_arch_bn_param(net, arch)
    return net


def mobilenetv3_costs(arch: Mapping[str, Any], resolution: int) -> dict[str, int]:
    """Exact MACs and parameters of a MobileNetV3 architecture on ``resolution x resolution`` inputs."""
    macs, params, _ = chain_costs([arch["first_conv"], *arch["blocks"], arch["final_expand_layer"]], resolution)
    for layer in (arch["feature_mix_layer"], arch["classifier"]):  # after global pooling: 1 x 1
        m, p, _ = layer_costs(layer, 1)
        macs, params = macs + m, params + p
    return {"macs": int(macs), "params": int(params)}


def mobilenetv3_layer_specs(arch: Mapping[str, Any], resolution: int) -> list[LayerSpec]:
    """One :class:`LayerSpec` per layer, keyed as OFA's latency lookup tables spell them.

    Keys: ``Conv-input:HxWxC-output:HxWxC``, ``expanded_conv-input:..-output:..-expand:MID-
    kernel:K-stride:S-idskip:0|1-se:0|1-hs:0|1``, ``Conv_1-...``, ``AvgPool2D-...``, ``Conv_2-...``,
    ``Logits-input:1x1xC-output:N``.
    """
    size = resolution
    fc = arch["first_conv"]
    o = out_size(size, fc["stride"])
    specs = [
        LayerSpec(
            f"Conv-input:{shape_key(fc['in_channels'], size)}-output:{shape_key(fc['out_channels'], o)}",
            (fc["in_channels"], size, size),
            spec_builder(fc),
        )
    ]
    size = o
    for block in arch["blocks"]:
        conv = block["conv"] if "conv" in block else block["mobile_inverted_conv"]
        o = out_size(size, conv["stride"])
        key = (
            f"expanded_conv-input:{shape_key(conv['in_channels'], size)}-output:{shape_key(conv['out_channels'], o)}"
            f"-expand:{mb_mid_channels(conv)}-kernel:{conv['kernel_size']}-stride:{conv['stride']}"
            f"-idskip:{int(block.get('shortcut') is not None)}-se:{int(bool(conv.get('use_se')))}"
            f"-hs:{int(conv.get('act_func') == 'h_swish')}"
        )
        specs.append(LayerSpec(key, (conv["in_channels"], size, size), spec_builder(block)))
        size = o
    fe, fm, cl = arch["final_expand_layer"], arch["feature_mix_layer"], arch["classifier"]
    c = fe["out_channels"]
    specs += [
        LayerSpec(
            f"Conv_1-input:{shape_key(fe['in_channels'], size)}-output:{shape_key(c, size)}",
            (fe["in_channels"], size, size),
            spec_builder(fe),
        ),
        LayerSpec(f"AvgPool2D-input:{shape_key(c, size)}-output:{shape_key(c, 1)}", (c, size, size), GlobalAvgPool),
        LayerSpec(
            f"Conv_2-input:{shape_key(fm['in_channels'], 1)}-output:{shape_key(fm['out_channels'], 1)}",
            (fm["in_channels"], 1, 1),
            spec_builder(fm),
        ),
        LayerSpec(
            f"Logits-input:{shape_key(cl['in_features'], 1)}-output:{cl['out_features']}",
            (cl["in_features"], 1, 1),
            spec_builder(cl, wrap_flatten=True),
        ),
    ]
    return specs


class ElasticMobileNetV3(ImageSupernet):
    """An OFA-style elastic MobileNetV3; the OFA super-networks and ``tiny_mbv3`` are instances.

    Parameter names equal those of OFA's ``OFAMobileNetV3``, so its checkpoints load
    strictly (older checkpoints naming blocks ``mobile_inverted_conv`` too).
    """

    family = FAMILY

    def __init__(
        self,
        *,
        width_mult: float = 1.0,
        base_stage_width: Sequence[int] = OFA_BASE_STAGE_WIDTH,
        stride_stages: Sequence[int] = OFA_STRIDE_STAGES,
        act_stages: Sequence[str] = OFA_ACT_STAGES,
        se_stages: Sequence[bool] = OFA_SE_STAGES,
        first_stride: int = 2,
        ks_list: Sequence[int] = (3, 5, 7),
        expand_ratio_list: Sequence[float] = (3, 4, 6),
        depth_list: Sequence[int] = (2, 3, 4),
        resolutions: Sequence[int] = OFA_RESOLUTIONS,
        in_channels: int = 3,
        num_classes: int = 1000,
        dropout_rate: float = 0.1,
        bn_param: tuple[float, float] = (0.1, 1e-5),
        seed: int | None = 0,
    ) -> None:
        super().__init__()
        n_stages = len(stride_stages) - 1
        if not (len(base_stage_width) == n_stages + 4 and len(act_stages) == len(se_stages) == n_stages + 1):
            raise ValueError("base_stage_width needs n_stages + 4 entries, act/se_stages n_stages + 1")
        self.width_mult = width_mult
        self.ks_list, self.expand_ratio_list = sorted(ks_list), sorted(expand_ratio_list)
        self.depth_list = sorted(depth_list)
        self._in_channels, self.num_classes = in_channels, num_classes
        max_depth = max(self.depth_list)
        widths = [make_divisible(w * width_mult) for w in base_stage_width[:-2]]
        final_expand_width = make_divisible(base_stage_width[-2] * width_mult)
        last_channel = make_divisible(base_stage_width[-1] * width_mult)

        self.first_conv = ConvLayer(in_channels, widths[0], 3, first_stride, act_func="h_swish")
        first_block = MBConvLayer(widths[0], widths[1], 3, stride_stages[0], 1, None, act_stages[0], se_stages[0])
        blocks: list[nn.Module] = [ResidualBlock(first_block, widths[0] == widths[1])]
        self.block_group_info: list[list[int]] = []
        feature_dim = widths[1]
        for width, stride, act, se in zip(widths[2:], stride_stages[1:], act_stages[1:], se_stages[1:], strict=True):
            self.block_group_info.append(list(range(len(blocks), len(blocks) + max_depth)))
            for i in range(max_depth):
                s = stride if i == 0 else 1
                conv = ElasticMBConv(feature_dim, width, self.ks_list, self.expand_ratio_list, s, act, se)
                blocks.append(ResidualBlock(conv, s == 1 and feature_dim == width))
                feature_dim = width
        self.blocks = nn.ModuleList(blocks)
        self.final_expand_layer = ConvLayer(feature_dim, final_expand_width, 1, act_func="h_swish")
        self.feature_mix_layer = ConvLayer(
            final_expand_width, last_channel, 1, bias=False, use_bn=False, act_func="h_swish"
        )
        self.classifier = LinearLayer(last_channel, num_classes, dropout_rate=dropout_rate)
        set_bn_param(self, *bn_param)
        if seed is not None:
            init_weights(self, torch.Generator().manual_seed(seed))
        else:
            init_weights(self)

        n_blocks = n_stages * max_depth
        self.search_space = MobileNetV3Space(
            {
                "ks": Choice(self.ks_list, size=n_blocks),
                "e": Choice(self.expand_ratio_list, size=n_blocks),
                "d": Choice(self.depth_list, size=n_stages),
                "r": Choice(sorted(resolutions)),
            }
        )
        self.runtime_depth = [max_depth] * n_stages

    # -- facts ---------------------------------------------------------------------
    @property
    def in_channels(self) -> int:
        return self._in_channels

    def resolution(self, config: Mapping[str, Any]) -> int:
        return int(config["r"])

    @functools.cached_property
    def _elastic_blocks(self) -> list[tuple[ElasticMBConv, bool]]:
        """Each elastic block (blocks 1, 2, ...) with whether it has a shortcut, looked up once: the architecture
        description of every candidate a search ranks (for its MACs) would otherwise index the module lists again."""
        residual = [cast(ResidualBlock, block).shortcut is not None for block in self.blocks]
        return [(self._block(i), residual[i]) for i in range(1, len(self.blocks))]

    def _first_block(self) -> ResidualBlock:
        """The static first block (a residual block around an :class:`MBConvLayer`)."""
        return cast(ResidualBlock, self.blocks[0])

    def _block(self, i: int) -> ElasticMBConv:
        """The elastic inverted residual of block ``i`` >= 1 (inside its residual block)."""
        return cast(ElasticMBConv, cast(ResidualBlock, self.blocks[i]).conv)

    # -- forward ---------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        if self._active is None:
            self.activate(self.max_config())
        x = self.first_conv(x)
        x = self.blocks[0](x)
        for depth, idx in zip(self.runtime_depth, self.block_group_info, strict=True):
            for i in idx[:depth]:
                x = self.blocks[i](x)
        x = self.final_expand_layer(x)
        x = global_avg_pool(x)
        x = self.feature_mix_layer(x)
        logits: Tensor = self.classifier(torch.flatten(x, 1))
        return logits

    # -- hooks -------------------------------------------------------------------------
    def _activate(self, config: Config) -> None:
        for (block, _), k, e in zip(self._elastic_blocks, config["ks"], config["e"], strict=True):
            block.active_kernel_size, block.active_expand_ratio = k, e
        self.runtime_depth = list(config["d"])

    def _active_blocks(self, config: Config) -> list[tuple[int, int, float]]:
        """(block index, kernel, expand ratio) of every block that runs."""
        out = []
        for stage, idx in enumerate(self.block_group_info):
            for i in idx[: config["d"][stage]]:
                out.append((i, config["ks"][i - 1], config["e"][i - 1]))
        return out

    def _arch(self, config: Config) -> dict[str, Any]:
        blocks = [self._first_block().config]
        cin = cast(MBConvLayer, self._first_block().conv).out_channels
        elastic = self._elastic_blocks
        for i, k, e in self._active_blocks(config):
            block, residual = elastic[i - 1]
            conv = block.active_config(cin, k, e)
            shortcut = {"name": "IdentityLayer", "in_channels": [cin], "out_channels": [cin]} if residual else None
            blocks.append({"name": "ResidualBlock", "conv": conv, "shortcut": shortcut})
            cin = conv["out_channels"]
        first_bn = self.first_conv.bn
        assert first_bn is not None  # the stem is built with use_bn=True
        return {
            "name": FAMILY,
            "bn": {"momentum": first_bn.momentum, "eps": first_bn.eps},
            "first_conv": self.first_conv.config,
            "blocks": blocks,
            "final_expand_layer": self.final_expand_layer.config,
            "feature_mix_layer": self.feature_mix_layer.config,
            "classifier": self.classifier.config,
        }

    def _extract(self, config: Config) -> nn.Module:
        blocks: list[nn.Module] = [copy.deepcopy(self.blocks[0])]
        cin = cast(MBConvLayer, self._first_block().conv).out_channels
        for i, k, e in self._active_blocks(config):
            block = self._block(i)
            blocks.append(
                ResidualBlock(block.extract(cin, k, e), cast(ResidualBlock, self.blocks[i]).shortcut is not None)
            )
            cin = block.out_channels
        return MobileNetV3Net(
            copy.deepcopy(self.first_conv),
            blocks,
            copy.deepcopy(self.final_expand_layer),
            copy.deepcopy(self.feature_mix_layer),
            copy.deepcopy(self.classifier),
        )

    def _costs_at(self, config: Config, resolution: int) -> dict[str, int]:
        return mobilenetv3_costs(self._arch(config), resolution)

    def _layer_specs_at(self, config: Config, resolution: int) -> list[LayerSpec]:
        return mobilenetv3_layer_specs(self._arch(config), resolution)

    def _convert_state_dict(self, state_dict: Mapping[str, Any]) -> dict[str, Any]:
        """Accept OFA's older block name ``mobile_inverted_conv`` and its flat/nested spellings."""
        own = self.state_dict()
        out: dict[str, Any] = {}
        for key, value in state_dict.items():
            new = key.replace(".mobile_inverted_conv.", ".conv.")
            if new not in own:
                for a, b in ((".bn.bn.", ".bn."), (".conv.conv.weight", ".conv.weight"), (".bn.", ".bn.bn."),
                             ("conv.weight", "conv.conv.weight"), (".linear.linear.", ".linear.")):  # fmt: skip
                    if a in new and new.replace(a, b) in own:
                        new = new.replace(a, b)
                        break
            out[new] = value
        return out


def ofa_mbv3(width_mult: float, **kwargs: Any) -> ElasticMobileNetV3:
    """OFA's ``ofa_mbv3_d234_e346_k357_w<width_mult>`` super-network."""
    return ElasticMobileNetV3(width_mult=width_mult, **kwargs)


def ofa_mbv3_w10(**kwargs: Any) -> ElasticMobileNetV3:
    """OFA-MobileNetV3, width 1.0 (``ofa_mbv3_d234_e346_k357_w1.0``)."""
    return ofa_mbv3(1.0, **kwargs)


def ofa_mbv3_w12(**kwargs: Any) -> ElasticMobileNetV3:
    """OFA-MobileNetV3, width 1.2 (``ofa_mbv3_d234_e346_k357_w1.2``)."""
    return ofa_mbv3(1.2, **kwargs)
