"""Once-for-All ResNet50D super-network (``ofa_resnet50``) and its search space.

The architecture is OFA's ``OFAResNets(depth_list=[0, 1, 2], expand_ratio_list=[0.2,
0.25, 0.35], width_mult_list=[0.65, 0.8, 1.0])`` (Cai et al., ICLR 2020; reference
code github.com/mit-han-lab/once-for-all, MIT licence): a ResNet-D deep stem (3x3
stride-2 conv, a residual 3x3 conv that may be skipped, 3x3 conv), 3x3 stride-2 max
pooling, four stages of bottleneck blocks (2, 2, 4, 2 blocks plus 0-2 more; widths
256, 512, 1024, 2048 times the width multiplier; average-pool + 1x1 shortcut when
the shape changes), global pooling and a linear classifier.

Configuration, as OFA writes it: ``d`` (5): ``d[0]`` keeps the stem's residual conv
when it equals 2 (OFA samples 0 or 2; 0 and 1 both skip it), ``d[1..4]`` extra blocks
per stage; ``e`` (18): expand ratio per block; ``w`` (6): width-multiplier index for
the stem's first two convs, its last conv and each stage; ``r``: resolution, one of
the sizes of OFA's ResNet50D tutorial (128-256).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from elasticnas.space import Choice, Config, SearchSpace
from elasticnas.supernets._layers import (
    ElasticBottleneck,
    ElasticConvLayer,
    ElasticLinearLayer,
    ResidualBlock,
    global_avg_pool,
    init_weights,
    layer_from_config,
    make_divisible,
    out_size,
)
from elasticnas.supernets._ofa import (
    GlobalAvgPool,
    bn_param,
    chain_costs,
    layer_costs,
    set_arch_bn_param,
    set_bn_param,
    shape_key,
    spec_builder,
)
from elasticnas.supernets.base import ImageSupernet, LayerSpec

BASE_DEPTH_LIST = (2, 2, 4, 2)
STAGE_WIDTH_LIST = (256, 512, 1024, 2048)
OFA_RESNET_RESOLUTIONS = (128, 144, 160, 176, 192, 224, 240, 256)
FAMILY = "ResNets"  # the name of OFA's net.config, which the pt export records


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
        logits: Tensor = self.classifier(global_avg_pool(x, keep_dim=False))
        return logits

    @property
    def config(self) -> dict[str, Any]:
        return {
            "name": FAMILY,
            "bn": bn_param(self),
            "input_stem": [layer.config for layer in self.input_stem],
            "blocks": [b.config for b in self.blocks],
            "classifier": self.classifier.config,
        }


def build_resnet(arch: Mapping[str, Any]) -> ResNetNet:
    """The static ResNet an architecture (OFA ``net.config``) describes, weights random."""
    net = ResNetNet(
        [layer_from_config(c) for c in arch["input_stem"]],
        [layer_from_config(b) for b in arch["blocks"]],
        layer_from_config(arch["classifier"]),
    )
    set_arch_bn_param(net, arch)
    return net


def resnet_costs(arch: Mapping[str, Any], resolution: int) -> dict[str, int]:
    """Exact MACs and parameters of a ResNet architecture on ``resolution x resolution`` inputs."""
    m0, p0, size = chain_costs(list(arch["input_stem"]), resolution)
    m1, p1, _ = chain_costs(list(arch["blocks"]), out_size(size, 2))  # after max pooling
    m2, p2, _ = layer_costs(arch["classifier"], 1)  # after global pooling
    return {"macs": int(m0 + m1 + m2), "params": int(p0 + p1 + p2)}


def resnet_layer_specs(arch: Mapping[str, Any], resolution: int) -> list[LayerSpec]:
    """One :class:`LayerSpec` per layer: ``Conv-``/``ResidualConv-``, ``MaxPool-``,
    ``bottleneck-...-mid:M-kernel:K-stride:S-idskip:0|1``, ``AvgPool2D-``, ``Logits-``."""
    specs: list[LayerSpec] = []
    size = resolution
    for layer in arch["input_stem"]:
        conv = layer["conv"] if layer["name"] == "ResidualBlock" else layer
        kind = "ResidualConv" if layer["name"] == "ResidualBlock" else "Conv"
        o = out_size(size, conv["stride"])
        specs.append(
            LayerSpec(
                f"{kind}-input:{shape_key(conv['in_channels'], size)}-output:{shape_key(conv['out_channels'], o)}"
                f"-kernel:{conv['kernel_size']}-stride:{conv['stride']}",
                (conv["in_channels"], size, size),
                spec_builder(layer),
            )
        )
        size = o
    c = arch["input_stem"][-1]["out_channels"]
    o = out_size(size, 2)
    specs.append(
        LayerSpec(
            f"MaxPool-input:{shape_key(c, size)}-output:{shape_key(c, o)}-kernel:3-stride:2",
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
                f"bottleneck-input:{shape_key(block['in_channels'], size)}-output:{shape_key(block['out_channels'], o)}"
                f"-mid:{block['mid_channels']}-kernel:{block['kernel_size']}-stride:{block['stride']}-idskip:{ident}",
                (block["in_channels"], size, size),
                spec_builder(block),
            )
        )
        size = o
    cl = arch["classifier"]
    c = cl["in_features"]
    specs.append(
        LayerSpec(f"AvgPool2D-input:{shape_key(c, size)}-output:{shape_key(c, 1)}", (c, size, size), GlobalAvgPool)
    )
    specs.append(
        LayerSpec(
            f"Logits-input:{shape_key(c, 1)}-output:{cl['out_features']}",
            (c, 1, 1),
            spec_builder(cl, wrap_flatten=True),
        )
    )
    return specs


class ResNetSpace(SearchSpace):
    """``d`` (stem + per-stage extra depth), ``e`` per block, ``w`` width index per unit, ``r``.

    ``e`` of skipped blocks is an inactive gene (:meth:`inactive_mask`) and ``d[0]`` only
    matters as "keep the stem's residual conv" (``d[0] == max(d)``): validation sets both
    to their first value where they do not change the network (:meth:`canonical_genes`),
    so configurations of one network share one gene row and one config id.
    """

    def __init__(self, choices: Mapping[str, Choice]) -> None:
        super().__init__(choices)
        if list(self.choices) != ["d", "e", "w", "r"]:
            raise ValueError(f"a ResNetSpace needs choices d, e, w, r (in this order), got {self.names}")
        d, e = self.choices["d"], self.choices["e"]
        if d.size is None or e.size is None or self.choices["w"].size != d.size + 1:
            raise ValueError("d, e and w must be lists, w one longer than d")
        self.max_extra = max(int(v) for v in d.values)
        n_stages = d.size - 1
        if n_stages != len(BASE_DEPTH_LIST) or e.size != sum(BASE_DEPTH_LIST) + n_stages * self.max_extra:
            raise ValueError("e must have one entry per block of the deepest network")

    def active_blocks(self, config: Mapping[str, Any]) -> list[bool]:
        out = []
        for stage, base in enumerate(BASE_DEPTH_LIST):
            n = base + self.max_extra
            out += [b < base + config["d"][stage + 1] for b in range(n)]
        return out

    def inactive_mask(self, genes: np.ndarray) -> np.ndarray:
        """``e`` of every block its stage's depth skips."""
        G = np.asarray(genes, dtype=np.int64).reshape(-1, self.n_genes)
        e_start = 1 + len(BASE_DEPTH_LIST)  # d: the stem, then one extra depth per stage
        extra = np.asarray(self.choices["d"].values, dtype=np.int64)[G[:, 1:e_start]]
        stages = enumerate(BASE_DEPTH_LIST)
        skipped = np.hstack([np.arange(base + self.max_extra)[None, :] >= base + extra[:, [s]] for s, base in stages])
        mask = np.zeros(G.shape, dtype=bool)
        mask[:, e_start : e_start + skipped.shape[1]] = skipped
        return mask.reshape(np.shape(genes))

    def canonical_genes(self, genes: np.ndarray) -> np.ndarray:
        """Inactive genes at 0, and ``d[0]`` at its first value unless it keeps the stem's residual conv."""
        G = super().canonical_genes(genes)
        keep = self.choices["d"].values.index(self.max_extra)
        G[:, 0] = np.where(G[:, 0] == keep, keep, 0)
        return G

    def network_form(self, config: Mapping[str, Any]) -> Config:
        """``config`` validated, ``e`` of skipped blocks ``None`` and ``d[0]`` as 0 (skip) or max."""
        cfg = self.validate(config)
        d = list(cfg["d"])
        d[0] = self.max_extra if d[0] == self.max_extra else 0
        return {
            "d": d,
            "e": [v if a else None for v, a in zip(cfg["e"], self.active_blocks(cfg), strict=True)],
            "w": list(cfg["w"]),
            "r": cfg["r"],
        }

    def config_id(self, config: Mapping[str, Any]) -> str:
        """A stable id of the network (the hash of :meth:`network_form`, as before validation canonicalised
        the genes that do not change it, so that studies written then keep their ids)."""
        text = json.dumps(self.network_form(config), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class ElasticResNet(ImageSupernet):
    """OFA's elastic ResNet50D; parameter names equal those of OFA's ``OFAResNets``."""

    family = FAMILY

    def __init__(
        self,
        *,
        depth_list: Sequence[int] = (0, 1, 2),
        expand_ratio_list: Sequence[float] = (0.2, 0.25, 0.35),
        width_mult_list: Sequence[float] = (0.65, 0.8, 1.0),
        resolutions: Sequence[int] = OFA_RESNET_RESOLUTIONS,
        in_channels: int = 3,
        num_classes: int = 1000,
        dropout_rate: float = 0.0,
        bn_param: tuple[float, float] = (0.1, 1e-5),
        seed: int | None = 0,
    ) -> None:
        super().__init__()
        self.depth_list, self.expand_ratio_list = sorted(depth_list), sorted(expand_ratio_list)
        self.width_mult_list = sorted(width_mult_list)
        self._in_channels, self.num_classes = in_channels, num_classes
        max_extra = max(self.depth_list)
        input_channel = [make_divisible(64 * w) for w in self.width_mult_list]
        mid_input_channel = [make_divisible(c // 2) for c in input_channel]
        stage_widths = [[make_divisible(width * w) for w in self.width_mult_list] for width in STAGE_WIDTH_LIST]

        self.input_stem = nn.ModuleList(
            [
                ElasticConvLayer(in_channels, mid_input_channel, 3, 2),
                ResidualBlock(ElasticConvLayer(max(mid_input_channel), mid_input_channel, 3, 1), True),
                ElasticConvLayer(max(mid_input_channel), input_channel, 3, 1),
            ]
        )
        self.max_pooling = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        blocks: list[nn.Module] = []
        self.grouped_block_index: list[list[int]] = []
        channels = input_channel
        for base, widths, stride in zip(BASE_DEPTH_LIST, stage_widths, (1, 2, 2, 2), strict=True):
            n = base + max_extra
            self.grouped_block_index.append(list(range(len(blocks), len(blocks) + n)))
            for i in range(n):
                blocks.append(ElasticBottleneck(channels, widths, self.expand_ratio_list, 3, stride if i == 0 else 1))
                channels = widths
        self.blocks = nn.ModuleList(blocks)
        self.classifier = ElasticLinearLayer(max(channels), num_classes, dropout_rate=dropout_rate)
        set_bn_param(self, *bn_param)
        init_weights(self, torch.Generator().manual_seed(seed) if seed is not None else None)

        self.search_space = ResNetSpace(
            {
                "d": Choice(self.depth_list, size=len(BASE_DEPTH_LIST) + 1),
                "e": Choice(self.expand_ratio_list, size=len(blocks)),
                "w": Choice(list(range(len(self.width_mult_list))), size=len(BASE_DEPTH_LIST) + 2),
                "r": Choice(sorted(resolutions)),
            }
        )
        self._stem_skip = False
        self._runtime_blocks: list[list[int]] = [list(idx) for idx in self.grouped_block_index]

    @property
    def in_channels(self) -> int:
        return self._in_channels

    def resolution(self, config: Mapping[str, Any]) -> int:
        return int(config["r"])

    def forward(self, x: Tensor) -> Tensor:
        if self._active is None:
            self.activate(self.max_config())
        for i, layer in enumerate(self.input_stem):
            if i == 1 and self._stem_skip:
                continue
            x = layer(x)
        x = self.max_pooling(x)
        for idx in self._runtime_blocks:
            for i in idx:
                x = self.blocks[i](x)
        logits: Tensor = self.classifier(global_avg_pool(x, keep_dim=False))
        return logits

    # -- hooks -----------------------------------------------------------------------
    def _stem_conv(self, i: int) -> ElasticConvLayer:
        """The elastic convolution of stem layer ``i`` (layer 1 is a residual block around one)."""
        layer = self.input_stem[i]
        return cast(ElasticConvLayer, layer.conv if isinstance(layer, ResidualBlock) else layer)

    def _block(self, i: int) -> ElasticBottleneck:
        return cast(ElasticBottleneck, self.blocks[i])

    def _plan(self, config: Config) -> tuple[bool, list[int], list[list[int]]]:
        """(skip stem conv, stem widths [first two, last], active block indices per stage)."""
        max_extra = max(self.depth_list)
        stem0, stem2 = self._stem_conv(0), self._stem_conv(2)
        w = config["w"]
        widths = [stem0.out_channels_list[w[0]], stem2.out_channels_list[w[1]]]
        active = [
            idx[: base + config["d"][s + 1]]
            for s, (idx, base) in enumerate(zip(self.grouped_block_index, BASE_DEPTH_LIST, strict=True))
        ]
        return config["d"][0] != max_extra, widths, active

    def _activate(self, config: Config) -> None:
        skip, (w0, w1), active = self._plan(config)
        self._stem_conv(0).active_out_channel = w0
        self._stem_conv(1).active_out_channel = w0
        self._stem_conv(2).active_out_channel = w1
        for stage, idx in enumerate(self.grouped_block_index):
            width = self._block(idx[0]).out_channels_list[config["w"][stage + 2]]
            for i in idx:
                self._block(i).active_out_channel = width
        for block, e in zip(self.blocks, config["e"], strict=True):
            block.active_expand_ratio = e
        self._stem_skip, self._runtime_blocks = skip, active

    def _units(self, config: Config) -> tuple[list[tuple[nn.Module, int, int]], list[tuple[int, int, int, float]], int]:
        skip, (w0, w1), active = self._plan(config)
        stem = [(self.input_stem[0], self.in_channels, w0)]
        if not skip:
            stem.append((self.input_stem[1], w0, w0))
        stem.append((self.input_stem[2], w0, w1))
        blocks = []
        cin = w1
        for stage, idx in enumerate(active):
            for i in idx:
                cout = self._block(i).out_channels_list[config["w"][stage + 2]]
                blocks.append((i, cin, cout, config["e"][i]))
                cin = cout
        return stem, blocks, cin

    def _arch(self, config: Config) -> dict[str, Any]:
        stem, blocks, cin = self._units(config)
        stem_cfg = []
        for layer, i, o in stem:
            if isinstance(layer, ResidualBlock):
                conv = cast(ElasticConvLayer, layer.conv).active_config(i, o)
                stem_cfg.append(
                    {
                        "name": "ResidualBlock",
                        "conv": conv,
                        "shortcut": {"name": "IdentityLayer", "in_channels": [i], "out_channels": [o]},
                    }
                )
            else:
                stem_cfg.append(cast(ElasticConvLayer, layer).active_config(i, o))
        bn = self._stem_conv(0).bn.bn
        return {
            "name": FAMILY,
            "bn": {"momentum": bn.momentum, "eps": bn.eps},
            "input_stem": stem_cfg,
            "blocks": [self._block(i).active_config(ci, co, e) for i, ci, co, e in blocks],
            "classifier": {
                "name": "LinearLayer",
                "in_features": cin,
                "out_features": self.num_classes,
                "bias": True,
                "use_bn": False,
                "act_func": None,
                "dropout_rate": self.classifier.dropout_rate,
            },
        }

    def _extract(self, config: Config) -> nn.Module:
        stem, blocks, cin = self._units(config)
        stem_layers: list[nn.Module] = []
        for layer, i, o in stem:
            if isinstance(layer, ResidualBlock):
                stem_layers.append(ResidualBlock(cast(ElasticConvLayer, layer.conv).extract(i, o), True))
            else:
                stem_layers.append(cast(ElasticConvLayer, layer).extract(i, o))
        return ResNetNet(
            stem_layers,
            [self._block(i).extract(ci, co, e) for i, ci, co, e in blocks],
            self.classifier.extract(cin),
        )

    def _costs_at(self, config: Config, resolution: int) -> dict[str, int]:
        return resnet_costs(self._arch(config), resolution)

    def _layer_specs_at(self, config: Config, resolution: int) -> list[LayerSpec]:
        return resnet_layer_specs(self._arch(config), resolution)

    def _convert_state_dict(self, state_dict: Mapping[str, Any]) -> dict[str, Any]:
        """Accept the flat spellings OFA's own loader accepts (``.bn.`` for ``.bn.bn.`` etc.)."""
        own = self.state_dict()
        out: dict[str, Any] = {}
        for key, value in state_dict.items():
            new = key
            if new not in own:
                for a, b in ((".linear.", ".linear.linear."), ("bn.", "bn.bn."), ("conv.weight", "conv.conv.weight")):
                    if a in new and new.replace(a, b) in own:
                        new = new.replace(a, b)
                        break
            out[new] = value
        return out


def ofa_resnet50(**kwargs: Any) -> ElasticResNet:
    """OFA's ``ofa_resnet50`` super-network (ResNet50D; d 0/1/2, e 0.2/0.25/0.35, w 0.65/0.8/1.0)."""
    return ElasticResNet(**kwargs)
