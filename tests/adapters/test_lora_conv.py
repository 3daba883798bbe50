"""Elastic LoRA on the nn.Conv2d modules of a user's super-network (elasticnas.adapters, peft's LoRA Conv2d)."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from torch import Tensor, nn  # noqa: E402
from transformers.pytorch_utils import Conv1D  # noqa: E402

from elasticnas.adapters import ElasticLoraConv2d, ElasticLoraLinear, LoraSupernet, merge_lora  # noqa: E402
from elasticnas.space import Choice, Config, SearchSpace  # noqa: E402
from elasticnas.supernets import (  # noqa: E402
    SUBNET_BUILDERS,
    SUPERNETS,
    Supernet,
    register_subnet_builder,
    register_supernet,
)
from elasticnas.testing.supernets import SupernetContract, count_by_forward, max_abs_diff  # noqa: E402
from elasticnas.training import SandwichTrainer, TrainConfig  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

IN, WIDTHS, MID, CLASSES, SIZE = 3, (4, 8), 6, 5, 8  # image channels, conv1's widths, conv2/3 channels, classes, px


class ElasticConv(nn.Conv2d):
    """A user's elastic convolution: it reads as many input channels as it is given and computes its first
    ``active_out`` output channels (None: all)."""

    active_out: int | None = None

    def forward(self, x: Tensor) -> Tensor:
        n = self.active_out or self.out_channels
        bias = None if self.bias is None else self.bias[:n]
        return nn.functional.conv2d(x, self.weight[:n, : x.shape[1]], bias, self.stride, self.padding)


def head_layer(kind: str) -> nn.Module:
    """The classifier: an nn.Linear, or a transformers Conv1D (transposed weights: peft's fan_in_fan_out)."""
    return Conv1D(CLASSES, MID) if kind == "conv1d" else nn.Linear(MID, CLASSES)


def add_layers(module: nn.Module, width: int, head: str, conv: type[nn.Conv2d] = nn.Conv2d) -> None:
    """conv1 (3x3, ``width`` channels) -> conv2 (3x3, stride 2) -> conv3 (1x1, residual) -> pooled head."""
    module.conv1 = conv(IN, width, 3, padding=1)
    module.conv2 = conv(width, MID, 3, stride=2, padding=1)
    module.conv3 = conv(MID, MID, 1)
    module.head = head_layer(head)


def run(module: nn.Module, x: Tensor) -> Tensor:
    h = torch.relu(module.conv1(x))
    h = torch.relu(module.conv2(h))
    h = torch.relu(module.conv3(h)) + h
    return module.head(h.mean((2, 3)))  # type: ignore[no-any-return]


class ConvNet(nn.Module):
    """The extracted sub-network: plain convolutions, the super-network's module names kept."""

    def __init__(self, width: int, head: str = "linear") -> None:
        super().__init__()
        add_layers(self, width, head)

    def forward(self, x: Tensor) -> Tensor:
        return run(self, x)


def build_convnet(arch: Mapping[str, Any]) -> nn.Module:
    return ConvNet(int(arch["width"]), str(arch["head"]))


class ToyConvNet(Supernet):
    """A user's convolutional super-network: conv1's output width is elastic (its first channels), conv2 reads
    the channels it is given; images (N, 3, 8, 8)."""

    task = "image-classification"
    family = "toy_convnet"

    def __init__(self, seed: int | None = 0, head: str = "linear") -> None:
        super().__init__()
        if seed is not None:
            torch.manual_seed(seed)
        self.search_space = SearchSpace({"width": Choice(WIDTHS)})
        self.head_kind = head
        add_layers(self, max(WIDTHS), head, ElasticConv)

    def _activate(self, config: Config) -> None:
        self.conv1.active_out = int(config["width"])

    def forward(self, x: Tensor) -> Tensor:
        self.active_config  # noqa: B018 - activates the largest sub-network on first use
        return run(self, x)

    def _arch(self, config: Config) -> dict[str, Any]:
        return {"width": int(config["width"]), "head": self.head_kind}

    def _extract(self, config: Config) -> nn.Module:
        sub = build_convnet(self._arch(config))
        own = self.state_dict()
        sub.load_state_dict(
            {k: own[k][tuple(slice(0, n) for n in v.shape)].clone() for k, v in sub.state_dict().items()}
        )
        return sub

    def _costs(self, config: Config) -> dict[str, int]:
        w, pixels, half = int(config["width"]), SIZE * SIZE, (SIZE // 2) ** 2
        macs = pixels * w * IN * 9 + half * MID * w * 9 + half * MID * MID + MID * CLASSES
        params = (w * IN * 9 + w) + (MID * w * 9 + MID) + (MID * MID + MID) + (MID * CLASSES + CLASSES)
        return {"macs": macs, "params": params}

    def example_inputs(self, config: Mapping[str, Any], batch_size: int = 1, *, seed: int = 0) -> tuple[Tensor, ...]:
        self.search_space.validate(config)
        return (torch.randn(batch_size, IN, SIZE, SIZE, generator=torch.Generator().manual_seed(seed)),)


CONVS = {"conv": [r"conv\d"]}
WITH_HEAD = {"conv": [r"conv\d"], "head": ["head"]}  # convolutions and a linear module, one gene each


def conv_lora(
    seed: int = 0, head: str = "linear", targets: Mapping[str, list[str]] = CONVS, **options: Any
) -> LoraSupernet:
    """A LoRA super-network over the toy (architecture x ranks); adapters random (not peft's zero lora_B)."""
    base = ToyConvNet(seed, head)
    torch.manual_seed(seed + 1)
    return LoraSupernet(base, targets=targets, ranks=[2, 3, 4], init_lora_weights=False, **options)


def with_ranks(net: LoraSupernet, config: Mapping[str, Any], rank: int) -> Config:
    return net.search_space.validate({**config, **{g: rank for g in net.rank_space.choices}})


def configs(net: LoraSupernet) -> list[Config]:
    """Every width at every rank (conv and head genes at the same rank)."""
    return [with_ranks(net, {"width": w}, r) for w in WIDTHS for r in net.ranks]


# -- elastic rank = a peft LoRA Conv2d of that rank ------------------------------------------------------------
@pytest.mark.parametrize("head", ["linear", "conv1d"])
def test_elastic_rank_equals_a_peft_lora_conv2d_of_that_rank(head: str) -> None:
    """At every width and rank r, the super-network runs what peft runs for rank-r LoRA Conv2d layers (alpha =
    scaling * r) on the width's plain convolutions, holding the first r output channels of lora_A and input
    channels of lora_B over the width's channels."""
    net = conv_lora(head=head, targets=WITH_HEAD)
    assert [type(layer) for layer in net.lora_layers] == [ElasticLoraConv2d] * 3 + [ElasticLoraLinear]
    assert net.fan_in_fan_out == (head == "conv1d")
    layers = {s.path: layer for s, layer in zip(net.sites, net.lora_layers, strict=True)}
    for cfg in configs(net):
        rank = cfg["rank_conv"]
        reference = net.extract_base(cfg)
        assert type(reference) is ConvNet and type(reference.conv1) is nn.Conv2d
        config = peft.LoraConfig(r=rank, lora_alpha=net.scaling * rank, target_modules=["conv1", "conv2", "conv3",
                                 "head"], fan_in_fan_out=head == "conv1d", init_lora_weights=False)  # fmt: skip
        peft.inject_adapter_in_model(config, reference)
        reference.eval()
        with torch.no_grad():
            for name in ("conv1", "conv2", "conv3", "head"):
                theirs, mine = reference.get_submodule(name), layers[name]
                assert type(theirs) is (peft.tuners.lora.Conv2d if name != "head" else peft.tuners.lora.Linear)
                a, b = theirs.lora_A["default"].weight, theirs.lora_B["default"].weight
                if name == "head" and head == "conv1d":  # peft's fan_in_fan_out keeps nn.Linear-shaped adapters
                    assert a.shape == (rank, MID)
                a.copy_(mine.lora_A["default"].weight[:rank, : a.shape[1]])
                b.copy_(mine.lora_B["default"].weight[: b.shape[0], :rank])
            x = net.example_inputs(cfg, 2, seed=3)
            net.activate(cfg)
            got, expected = net(*x), reference(*x)
        assert max_abs_diff(got, expected) <= 1e-6
        with torch.no_grad():
            bare = net.extract_base(cfg).eval()(*x)
        assert max_abs_diff(got, bare) > 1e-3  # the adapters show


def test_the_adapter_reads_the_active_channels_of_an_elastic_convolution() -> None:
    """conv1 computes only its first width channels: its adapter's lora_B runs the same first output channels
    (checked by hand against slices of the full-width adapter)."""
    net = conv_lora()
    cfg = with_ranks(net, {"width": WIDTHS[0]}, 3)
    net.activate(cfg)
    conv1 = net.base.conv1
    assert isinstance(conv1, ElasticLoraConv2d) and conv1.elastic_rank == 3
    x = net.example_inputs(cfg, 2, seed=1)[0]
    with torch.no_grad():
        out = conv1(x)
        a, b = conv1.lora_A["default"].weight[:3], conv1.lora_B["default"].weight[: WIDTHS[0], :3]
        by_hand = conv1.base_layer(x) + net.scaling * nn.functional.conv2d(nn.functional.conv2d(x, a, padding=1), b)
    assert out.shape[1] == WIDTHS[0] and max_abs_diff(out, by_hand) <= 1e-6


# -- merging, costs, gradients ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("head", ["linear", "conv1d"])
def test_merged_extraction_equals_the_unmerged_sub_network(head: str) -> None:
    net = conv_lora(head=head, targets=WITH_HEAD)
    merged = conv_lora(head=head, targets=WITH_HEAD, merged=True)
    for cfg in configs(net):
        x = net.example_inputs(cfg, 2, seed=1)
        sub, flat = net.extract(cfg), merged.extract(cfg)
        assert sum(isinstance(m, peft.tuners.lora.Conv2d) for m in sub.modules()) == 3
        assert not any(isinstance(m, peft.tuners.lora.LoraLayer) for m in flat.modules())
        assert type(flat.get_submodule("conv2")) is nn.Conv2d
        net.activate(cfg)
        with torch.no_grad():
            assert max_abs_diff(sub(*x), flat(*x)) <= 1e-5
            assert max_abs_diff(net(*x), sub(*x)) <= 1e-6
            assert max_abs_diff(merge_lora(copy.deepcopy(sub))(*x), sub(*x)) <= 1e-5
        costs, flat_costs = net.costs(cfg), merged.costs(cfg)
        assert (
            flat_costs["params"]
            == costs["params"] - costs["adapter_params"]
            == sum(p.numel() for p in flat.parameters())
        )
        assert flat_costs["macs"] == costs["macs"] - costs["adapter_macs"] == count_by_forward(flat, x[:1])["macs"]
        assert flat_costs["adapter_params"] == costs["adapter_params"]


def test_adapter_params_and_macs_equal_a_hand_count() -> None:
    """params: r * (in * kh * kw) + out * r per convolution; MACs: those times its output pixels (8 x 8 for conv1,
    4 x 4 after conv2's stride); the head's r * (in + out) once."""
    net = conv_lora(targets=WITH_HEAD)
    for cfg in [*configs(net), net.search_space.validate({"width": 4, "rank_conv": 2, "rank_head": 4})]:
        w, r, h = cfg["width"], cfg["rank_conv"], cfg["rank_head"]
        convs = [(r * IN * 9 + w * r, SIZE * SIZE), (r * w * 9 + MID * r, 16), (r * MID + MID * r, 16)]
        params = sum(p for p, _ in convs) + h * (MID + CLASSES)
        macs = sum(p * pixels for p, pixels in convs) + h * (MID + CLASSES)
        costs = net.costs(cfg)
        assert (costs["adapter_params"], costs["adapter_macs"]) == (params, macs)
        sub = net.extract(cfg)
        adapter = sum(p.numel() for n, p in sub.named_parameters() if "lora_" in n)
        assert adapter == params and costs["params"] == sum(p.numel() for p in sub.parameters())
        assert costs["macs"] == count_by_forward(sub, net.example_inputs(cfg))["macs"]


def image_data(n: int = 16, seed: int = 0) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, IN, SIZE, SIZE, generator=gen), torch.randint(0, CLASSES, (n,), generator=gen)


def test_only_adapter_parameters_get_gradients() -> None:
    net = conv_lora()
    trainer = SandwichTrainer(net, TrainConfig.finetuning(epochs=1, batch_size=8, lr=1e-2, num_random=1))
    inputs, target = image_data(8)
    before = {n: p.clone() for n, p in net.named_parameters()}
    trainer._train_step((inputs,), target, np.random.default_rng(0))
    adapter = {n for n, p in net.named_parameters() if "lora_" in n}
    assert len(adapter) == 6  # lora_A and lora_B of three convolutions
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in net.named_parameters() if n in adapter)
    assert all(p.grad is None and not p.requires_grad for n, p in net.named_parameters() if n not in adapter)
    assert all(torch.equal(p, before[n]) != (n in adapter) for n, p in net.named_parameters())


def test_same_seed_same_result(tmp_path: Path) -> None:
    def trained(out: Path) -> LoraSupernet:
        net = conv_lora(targets=WITH_HEAD)
        trainer = SandwichTrainer(net, TrainConfig.finetuning(epochs=2, batch_size=8, lr=3e-2, num_random=1))
        trainer.fit(image_data(16), out=out, progress=False)
        return net

    a, b = trained(tmp_path / "a.pt"), trained(tmp_path / "b.pt")
    state = a.state_dict()
    assert all(torch.equal(state[k], b.state_dict()[k]) for k in state)
    assert any(not torch.equal(state[k], conv_lora(targets=WITH_HEAD).state_dict()[k]) for k in state)
    cfg = a.search_space.sample(seed=0)
    x = a.example_inputs(cfg, 2)
    with torch.no_grad():
        assert torch.equal(a.extract(cfg)(*x), b.extract(cfg)(*x))
    assert a.recipe()["options"]["targets"] == WITH_HEAD


def test_the_recipe_rebuilds_trained_conv_adapters(tmp_path: Path, registered: None) -> None:
    """recipe() names the registered base, the conv targets and the trained weights: rebuild_supernet gives the
    same super-network (how a study's trials are exported again)."""
    from elasticnas.errors import ElasticNASError
    from elasticnas.supernets import create_supernet, rebuild_supernet

    net = LoraSupernet(create_supernet("toy_convnet"), targets=WITH_HEAD, ranks=[2, 4])
    trainer = SandwichTrainer(net, TrainConfig.finetuning(epochs=1, batch_size=8, lr=3e-2, num_random=1))
    trainer.fit(image_data(16), progress=False)
    with pytest.raises(ElasticNASError, match="never saved"):
        rebuild_supernet(net.recipe())
    trainer.export_weights(tmp_path / "adapters.pt")
    recipe = net.recipe()
    assert recipe["base"]["supernet"] == "toy_convnet" and recipe["options"]["targets"] == WITH_HEAD
    again = rebuild_supernet(recipe)
    assert isinstance(again, LoraSupernet) and [type(m) for m in again.lora_layers] == [
        type(m) for m in net.lora_layers
    ]
    for cfg in net.search_space.sample_many(3, seed=1):
        x = net.example_inputs(cfg, 2)
        net.activate(cfg)
        again.activate(cfg)
        with torch.no_grad():
            assert torch.equal(net(*x), again(*x))


# -- bad input --------------------------------------------------------------------------------------------------
def test_a_grouped_dilated_or_reflect_padded_conv_target_is_one_clear_error() -> None:
    for conv, what in (
        (nn.Conv2d(MID, MID, 3, padding=1, groups=MID), r"module 'conv3' is a grouped convolution \(groups=6\)"),
        (nn.Conv2d(MID, MID, 1, groups=2), r"module 'conv3' is a grouped convolution \(groups=2\)"),
        (nn.Conv2d(MID, MID, 3, padding=2, dilation=2), r"module 'conv3' is a dilated convolution"),
        (nn.Conv2d(MID, MID, 3, padding=1, padding_mode="reflect"), r"module 'conv3' pads with 'reflect'"),
    ):
        base = ToyConvNet()
        base.conv3 = conv
        with pytest.raises(ValueError, match=what):
            LoraSupernet(base, targets=CONVS)
        assert not any(isinstance(m, peft.tuners.lora.LoraLayer) for m in base.modules())  # nothing injected
        LoraSupernet(base, targets={"conv": [r"conv[12]"]})  # left out of the targets, it stays


def test_a_target_the_forward_pass_never_calls_is_one_clear_error() -> None:
    """OFA's elastic convolutions run F.conv2d on their inner nn.Conv2d's weight: an adapter there would never run."""
    from elasticnas.supernets import create_supernet

    base = create_supernet("tiny_mbv3", weights="random")
    with pytest.raises(ValueError, match=r"blocks\.1\.conv\.point_linear\.conv\.conv, .* never run in the forward"):
        LoraSupernet(base, targets={"pw": [r"blocks\.\d\.conv\.point_linear\.conv\.conv"]})
    assert not any(isinstance(m, peft.tuners.lora.LoraLayer) for m in base.modules())  # the base as it was


def test_a_group_matching_nothing_lists_the_modules_and_their_kinds() -> None:
    with pytest.raises(
        ValueError,
        match=r"matches no linear module or nn\.Conv2d; adaptable modules: "
        r"conv1 \(Conv2d\), conv2 \(Conv2d\), conv3 \(Conv2d\), head \(Conv1D\)",
    ):
        LoraSupernet(ToyConvNet(head="conv1d"), targets={"x": ["nothing"]})  # fmt: skip
    base = ToyConvNet()
    base.extra = Conv1D(2, 2)  # nn.Linear and Conv1D together: peft has one fan_in_fan_out
    with pytest.raises(ValueError, match="mix nn.Linear and Conv1D"):
        LoraSupernet(base, targets={"lin": ["head", "extra"]})


# -- the shipped contract ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def registered() -> Iterator[None]:
    """LoRA over the toy convolutional super-network (architecture x ranks; convolutions, and convolutions with a
    Conv1D head), the toy itself and its sub-network builder, for this module only."""
    with pytest.MonkeyPatch.context() as mp:
        for registry in (SUPERNETS, SUBNET_BUILDERS):
            mp.setattr(registry, "_entries", dict(registry._entries))
        register_supernet("lora_toy_conv", lambda seed=0: conv_lora(seed))
        register_supernet("lora_toy_conv_head", lambda seed=0: conv_lora(seed, "conv1d", WITH_HEAD))
        register_supernet("toy_convnet", ToyConvNet)
        register_subnet_builder(ToyConvNet.family, build_convnet)
        yield


class TestContract(SupernetContract):
    @pytest.fixture(params=["lora_toy_conv", "lora_toy_conv_head"])
    def supernet_name(self, request: pytest.FixtureRequest, registered: None) -> str:
        return str(request.param)
