"""The shipped contract suite, run for every built-in super-network and for two toy families.

The toy families show that adding a family is one module plus its registration: an MLP
on vectors (with BatchNorm) and a small Transformer-like network on token ids and an
attention mask (elastic depth and feed-forward width), written in plain PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from elasticnas.export import ExportError, export_subnet, load_subnet
from elasticnas.space import Choice, Config, SearchSpace
from elasticnas.supernets import (
    SUBNET_BUILDERS,
    SUPERNETS,
    LayerSpec,
    Supernet,
    create_supernet,
    list_supernets,
    register_subnet_builder,
    register_supernet,
)
from elasticnas.testing.supernets import SupernetContract

# -- an MLP family: vectors in, BatchNorm1d, elastic depth and widths ---------------------------------

MLP_IN, MLP_CLASSES, MLP_WIDTHS, MLP_DEPTH = 12, 5, (8, 16, 32), 3


class MLPBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.fc, self.bn = nn.Linear(cin, cout), nn.BatchNorm1d(cout)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.fc(x)))


def build_mlp(arch: Mapping[str, Any]) -> nn.Module:
    widths = [arch["in_features"], *arch["widths"]]
    blocks = [MLPBlock(a, b) for a, b in zip(widths, widths[1:], strict=False)]
    return nn.Sequential(*blocks, nn.Linear(widths[-1], arch["classes"]))


class ToyMLP(Supernet):
    family = "toy_mlp"

    def __init__(self, seed: int | None = 0) -> None:
        super().__init__()
        if seed is not None:
            torch.manual_seed(seed)
        w = max(MLP_WIDTHS)
        self.blocks = nn.ModuleList(MLPBlock(MLP_IN if i == 0 else w, w) for i in range(MLP_DEPTH))
        self.head = nn.Linear(w, MLP_CLASSES)
        self.search_space = SearchSpace({"d": Choice(range(1, MLP_DEPTH + 1)), "w": Choice(MLP_WIDTHS, size=MLP_DEPTH)})

    def _widths(self, config: Config) -> list[int]:
        return list(config["w"][: config["d"]])

    def _activate(self, config: Config) -> None:
        pass  # forward reads the active configuration

    def forward(self, x: Tensor) -> Tensor:
        cin = x.shape[1]
        for block, cout in zip(self.blocks, self._widths(self.active_config), strict=False):
            bn = block.bn
            x = F.linear(x, block.fc.weight[:cout, :cin], block.fc.bias[:cout])
            x = F.batch_norm(
                x, bn.running_mean[:cout], bn.running_var[:cout], bn.weight[:cout], bn.bias[:cout],
                self.training, 0.1 if bn.momentum is None else bn.momentum, bn.eps,
            )  # fmt: skip
            x, cin = F.relu(x), cout
        return F.linear(x, self.head.weight[:, :cin], self.head.bias)

    def _arch(self, config: Config) -> dict[str, Any]:
        return {"in_features": MLP_IN, "widths": self._widths(config), "classes": MLP_CLASSES}

    def _extract(self, config: Config) -> nn.Module:
        net = build_mlp(self._arch(config))
        cin = MLP_IN
        with torch.no_grad():
            for block, src in zip(net[:-1], self.blocks, strict=False):
                cout = block.fc.out_features
                block.fc.weight.copy_(src.fc.weight[:cout, :cin])
                block.fc.bias.copy_(src.fc.bias[:cout])
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(block.bn, name).copy_(getattr(src.bn, name)[:cout])
                block.bn.momentum, cin = src.bn.momentum, cout
            net[-1].weight.copy_(self.head.weight[:, :cin])
            net[-1].bias.copy_(self.head.bias)
        return net

    def _costs(self, config: Config) -> dict[str, int]:
        macs = params = 0
        widths = [MLP_IN, *self._widths(config), MLP_CLASSES]
        for i, (cin, cout) in enumerate(zip(widths, widths[1:], strict=False)):
            macs += cin * cout
            params += cin * cout + cout + (2 * cout if i < len(widths) - 2 else 0)  # + BatchNorm affine
        return {"macs": macs, "params": params}

    def _layer_specs(self, config: Config) -> list[LayerSpec]:
        widths = [MLP_IN, *self._widths(config)]
        specs = [
            LayerSpec(f"block-{a}-{b}", (a,), lambda a=a, b=b: MLPBlock(a, b))
            for a, b in zip(widths, widths[1:], strict=False)
        ]
        return [*specs, LayerSpec(f"head-{widths[-1]}", (widths[-1],), lambda: nn.Linear(widths[-1], MLP_CLASSES))]

    def example_inputs(self, config: Mapping[str, Any], batch_size: int = 1, *, seed: int = 0) -> tuple[Tensor, ...]:
        self.search_space.validate(config)
        return (torch.randn(batch_size, MLP_IN, generator=torch.Generator().manual_seed(seed)),)


# -- a Transformer-like family: token ids + attention mask, elastic depth and feed-forward width -------

VOCAB, SEQ, D_MODEL, HEADS, CLASSES, FFN, LAYERS = 50, 8, 16, 2, 3, (16, 32, 64), 3


class EncoderLayer(nn.Module):
    def __init__(self, ffn: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D_MODEL), nn.LayerNorm(D_MODEL)
        self.q, self.k, self.v, self.o = (nn.Linear(D_MODEL, D_MODEL) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(D_MODEL, ffn), nn.Linear(ffn, D_MODEL)

    def run(self, x: Tensor, mask: Tensor, ffn: int) -> Tensor:
        """Pre-LN self-attention over the unmasked tokens, then the first ``ffn`` feed-forward units."""
        b, t, _ = x.shape
        h = self.ln1(x)
        q, k, v = (lin(h).view(b, t, HEADS, -1).transpose(1, 2) for lin in (self.q, self.k, self.v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(D_MODEL // HEADS)
        scores = scores + (1.0 - mask[:, None, None, :].to(scores.dtype)) * -1e4
        att = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, D_MODEL)
        x = x + self.o(att)
        h = F.relu(F.linear(self.ln2(x), self.fc1.weight[:ffn], self.fc1.bias[:ffn]))
        return x + F.linear(h, self.fc2.weight[:, :ffn], self.fc2.bias)


class TinyEncoder(nn.Module):
    """Embeddings, encoder layers of the given feed-forward widths, masked mean pooling, classifier."""

    def __init__(self, ffns: list[int]) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D_MODEL)
        self.pos = nn.Parameter(torch.zeros(SEQ, D_MODEL))
        self.layers = nn.ModuleList(EncoderLayer(f) for f in ffns)
        self.ln, self.classifier = nn.LayerNorm(D_MODEL), nn.Linear(D_MODEL, CLASSES)

    def run(self, ids: Tensor, mask: Tensor, ffns: list[int]) -> Tensor:
        x = self.embed(ids) + self.pos[: ids.shape[1]]
        for layer, ffn in zip(self.layers, ffns, strict=False):
            x = layer.run(x, mask, ffn)
        m = mask[:, :, None].to(x.dtype)
        return self.classifier((self.ln(x) * m).sum(1) / m.sum(1))

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        return self.run(ids, mask, [layer.fc1.out_features for layer in self.layers])


def build_encoder(arch: Mapping[str, Any]) -> nn.Module:
    return TinyEncoder(list(arch["ffn"]))


class ToyTransformer(Supernet):
    family = "toy_transformer"

    def __init__(self, seed: int | None = 0) -> None:
        super().__init__()
        if seed is not None:
            torch.manual_seed(seed)
        self.net = TinyEncoder([max(FFN)] * LAYERS)
        with torch.no_grad():
            self.net.pos.normal_()
        self.search_space = SearchSpace({"depth": Choice(range(1, LAYERS + 1)), "ffn": Choice(FFN, size=LAYERS)})

    def _ffns(self, config: Config) -> list[int]:
        return list(config["ffn"][: config["depth"]])

    def _activate(self, config: Config) -> None:
        pass  # forward reads the active configuration

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        return self.net.run(ids, mask, self._ffns(self.active_config))

    def _arch(self, config: Config) -> dict[str, Any]:
        return {"ffn": self._ffns(config)}

    def _extract(self, config: Config) -> nn.Module:
        ffns = self._ffns(config)
        sub = build_encoder(self._arch(config))
        own = self.net.state_dict()
        state = {}
        for key, target in sub.state_dict().items():
            state[key] = own[key][tuple(slice(0, n) for n in target.shape)].clone()
        sub.load_state_dict(state)
        assert [layer.fc1.out_features for layer in sub.layers] == ffns
        return sub

    def _costs(self, config: Config) -> dict[str, int]:
        d = D_MODEL
        macs = d * CLASSES
        params = VOCAB * d + SEQ * d + 2 * d + d * CLASSES + CLASSES
        for f in self._ffns(config):
            macs += SEQ * (4 * d * d + 2 * d * f) + 2 * SEQ * SEQ * d  # projections, feed-forward, QK^T and AV
            params += 4 * (d * d + d) + 4 * d + (d * f + f) + (f * d + d)
        return {"macs": macs, "params": params}

    def example_inputs(self, config: Mapping[str, Any], batch_size: int = 1, *, seed: int = 0) -> tuple[Tensor, ...]:
        self.search_space.validate(config)
        gen = torch.Generator().manual_seed(seed)
        ids = torch.randint(0, VOCAB, (batch_size, SEQ), generator=gen)
        lengths = torch.randint(1, SEQ + 1, (batch_size, 1), generator=gen)
        return ids, (torch.arange(SEQ)[None, :] < lengths).long()


TOYS = {"toy_mlp": (ToyMLP, build_mlp), "toy_transformer": (ToyTransformer, build_encoder)}


@pytest.fixture(scope="module", autouse=True)
def registered_toys() -> Iterator[None]:
    """The toy families registered as a user's module would register them, for this module only."""
    with pytest.MonkeyPatch.context() as mp:
        for registry in (SUPERNETS, SUBNET_BUILDERS):
            mp.setattr(registry, "_entries", dict(registry._entries))
        for name, (factory, builder) in TOYS.items():
            register_supernet(name, factory)
            register_subnet_builder(factory.family, builder)
        yield


@pytest.fixture(params=list_supernets())
def supernet_name(request: pytest.FixtureRequest) -> str:
    return request.param


class TestEveryRegisteredSupernet(SupernetContract):
    pass


class TestToyFamilies(SupernetContract):
    @pytest.fixture(params=sorted(TOYS))
    def supernet_name(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)


def test_the_transformer_masks_padding_and_lists_no_layers() -> None:
    net = create_supernet("toy_transformer")
    cfg = net.max_config()
    ids, mask = net.example_inputs(cfg, 4, seed=3)
    assert ids.dtype == mask.dtype == torch.long and mask[:, 0].all() and not mask.all()
    changed = ids.masked_fill(mask == 0, 7)  # padded tokens do not change the output
    with torch.no_grad():
        assert torch.allclose(net(ids, mask), net(changed, mask), atol=1e-6)
    with pytest.raises(NotImplementedError, match="toy_transformer"):
        net.layer_specs(cfg)


def test_a_family_without_a_builder_exports_onnx_but_not_pt(tmp_path, monkeypatch) -> None:
    net = create_supernet("toy_transformer")
    monkeypatch.setattr(SUBNET_BUILDERS, "_entries", {})
    with pytest.raises(ExportError, match="family 'toy_transformer' has no sub-network builder"):
        export_subnet(net, net.min_config(), "pt", tmp_path / "sub.pt")
    assert not (tmp_path / "sub.pt").exists()
    record = export_subnet(net, net.min_config(), "onnx", tmp_path / "sub.onnx", batch_size=3)
    assert record.input_shape == ((SEQ,), (SEQ,)) and record.max_abs_diff <= 1e-4

    import onnxruntime as ort

    session = ort.InferenceSession(record.path, providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape[0]) for i in session.get_inputs()] == [("input_0", "batch"), ("input_1", "batch")]


def test_a_pt_file_of_an_unregistered_family_names_it(tmp_path, monkeypatch) -> None:
    from elasticnas.errors import CheckpointError

    net = create_supernet("toy_mlp")
    record = export_subnet(net, net.max_config(), "pt", tmp_path / "sub.pt", recalibrate=False)
    monkeypatch.setattr(SUBNET_BUILDERS, "_entries", {})
    with pytest.raises(CheckpointError, match="family 'toy_mlp'.*register_subnet_builder"):
        load_subnet(record.path)
