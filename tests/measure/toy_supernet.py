"""A small elastic conv-net super-network for measurement tests (elastic width, depth and resolution).

It implements the public methods of :class:`elasticnas.supernets.Supernet` that the
measurement code uses (duck-typed, so these tests do not depend on the base's hooks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from elasticnas.space import Choice, SearchSpace

WIDTHS = (8, 16, 32)
MAX_DEPTH = 3


@dataclass(frozen=True)
class ToyLayerSpec:
    key: str
    input_shape: tuple[int, ...]
    build: Callable[[], nn.Module]


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class _Head(nn.Module):
    def __init__(self, cin: int, classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((2, 3)))


class ToySupernet(nn.Module):
    """Stem + up to 3 conv blocks of elastic width + linear head; ``r`` elastic in {8, 12}."""

    name = "toy_convnet"

    def __init__(self, in_channels: int = 1, classes: int = 10, resolutions: tuple[int, ...] = (8, 12)) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.classes = classes
        self.search_space = SearchSpace(
            {"w": Choice(WIDTHS, size=MAX_DEPTH), "d": Choice(range(1, MAX_DEPTH + 1)), "r": Choice(resolutions)}
        )
        cmax = max(WIDTHS)
        self.blocks = nn.ModuleList(_Block(in_channels if i == 0 else cmax, cmax) for i in range(MAX_DEPTH))
        self.head = nn.Linear(cmax, classes)
        self._cfg: dict[str, Any] = self.max_config()

    def max_config(self) -> dict[str, Any]:
        return self.search_space.from_genes(self.search_space.cardinalities - 1)

    def min_config(self) -> dict[str, Any]:
        return self.search_space.from_genes(self.search_space.cardinalities * 0)

    def activate(self, config: Mapping[str, Any]) -> None:
        self._cfg = self.search_space.validate(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self._cfg
        cin = self.in_channels
        for i in range(cfg["d"]):
            b, cout = self.blocks[i], cfg["w"][i]
            x = F.conv2d(x, b.conv.weight[:cout, :cin], padding=1)
            x = F.batch_norm(
                x,
                b.bn.running_mean[:cout],
                b.bn.running_var[:cout],
                b.bn.weight[:cout],
                b.bn.bias[:cout],
                self.training,
                0.1 if b.bn.momentum is None else b.bn.momentum,
                b.bn.eps,
            )
            x = F.relu(x)
            cin = cout
        return F.linear(x.mean((2, 3)), self.head.weight[:, :cin], self.head.bias)

    def extract(self, config: Mapping[str, Any]) -> nn.Module:
        cfg = self.search_space.validate(config)
        layers: list[nn.Module] = []
        cin = self.in_channels
        for i in range(cfg["d"]):
            cout = cfg["w"][i]
            blk = _Block(cin, cout)
            src = self.blocks[i]
            with torch.no_grad():
                blk.conv.weight.copy_(src.conv.weight[:cout, :cin])
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(blk.bn, name).copy_(getattr(src.bn, name)[:cout])
            layers.append(blk)
            cin = cout
        head = _Head(cin, self.classes)
        with torch.no_grad():
            head.fc.weight.copy_(self.head.weight[:, :cin])
            head.fc.bias.copy_(self.head.bias)
        layers.append(head)
        return nn.Sequential(*layers).eval()

    def costs(self, config: Mapping[str, Any]) -> dict[str, float]:
        cfg = self.search_space.validate(config)
        r, cin, macs, params = cfg["r"], self.in_channels, 0, 0
        for i in range(cfg["d"]):
            cout = cfg["w"][i]
            macs += 9 * cin * cout * r * r
            params += 9 * cin * cout + 2 * cout
            cin = cout
        macs += cin * self.classes
        params += cin * self.classes + self.classes
        return {"macs": float(macs), "params": float(params)}

    def input_shape(self, config: Mapping[str, Any]) -> tuple[int, int, int]:
        r = self.search_space.validate(config)["r"]
        return (self.in_channels, r, r)

    def example_inputs(self, config: Mapping[str, Any], batch_size: int = 1, *, seed: int = 0) -> tuple[torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        return (torch.randn((batch_size, *self.input_shape(config)), generator=gen),)

    def layer_specs(self, config: Mapping[str, Any]) -> list[ToyLayerSpec]:
        cfg = self.search_space.validate(config)
        r, cin, specs = cfg["r"], self.in_channels, []
        for i in range(cfg["d"]):
            cout = cfg["w"][i]
            specs.append(ToyLayerSpec(f"block-{cin}-{cout}-{r}", (cin, r, r), lambda a=cin, b=cout: _Block(a, b)))
            cin = cout
        specs.append(ToyLayerSpec(f"head-{cin}-{r}", (cin, r, r), lambda a=cin: _Head(a, self.classes)))
        return specs
