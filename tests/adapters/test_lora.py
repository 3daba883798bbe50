"""Elastic LoRA super-networks (elasticnas.adapters) over tiny random Hugging Face models and a toy MLP."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from torch import Tensor, nn  # noqa: E402

from elasticnas.adapters import LoraSupernet, merge_lora  # noqa: E402
from elasticnas.errors import InvalidConfigError  # noqa: E402
from elasticnas.export import ExportError, export_subnet, load_subnet  # noqa: E402
from elasticnas.measure import FAST_POLICY, Measurer  # noqa: E402
from elasticnas.space import Choice, Config, SearchSpace  # noqa: E402
from elasticnas.supernets import SUPERNETS, Supernet, register_supernet  # noqa: E402
from elasticnas.supernets.hf import HFSupernet  # noqa: E402
from elasticnas.testing.supernets import SupernetContract, max_abs_diff  # noqa: E402
from elasticnas.training import SandwichTrainer, TrainConfig  # noqa: E402

transformers.utils.logging.set_verbosity_error()

VOCAB = 48


def tiny_model(family: str, seed: int = 0) -> Any:
    """A seeded tiny random GPT-2 (Conv1D layers) or Llama (GQA) causal LM."""
    torch.manual_seed(seed)
    if family == "gpt2":
        config = transformers.GPT2Config(n_layer=2, n_head=4, n_embd=32, vocab_size=VOCAB, n_positions=16,
                                         initializer_range=0.2)  # fmt: skip
        return transformers.GPT2LMHeadModel(config)
    config = transformers.LlamaConfig(
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, hidden_size=32, intermediate_size=64,
        vocab_size=VOCAB, max_position_embeddings=16, initializer_range=0.2,
    )  # fmt: skip
    return transformers.LlamaForCausalLM(config)


def lora_net(family: str, seed: int = 0, **options: Any) -> LoraSupernet:
    """A LoRA super-network over a tiny model; adapters random (not peft's zero lora_B) so that they show."""
    base = HFSupernet(tiny_model(family, seed))
    torch.manual_seed(seed + 1)
    return LoraSupernet(base, init_lora_weights=False, **options)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def with_ranks(net: LoraSupernet, config: Mapping[str, Any], rank: int) -> Config:
    """``config`` with every rank gene at ``rank``."""
    out = dict(config)
    for name, choice in net.rank_space.choices.items():
        out[name] = rank if choice.size is None else [rank] * choice.size
    return net.search_space.validate(out)


# -- elastic rank = a peft LoRA of that rank -----------------------------------------------------------
@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_elastic_rank_equals_a_peft_lora_of_that_rank(family: str) -> None:
    """The super-network at rank r runs what peft runs for a rank-r LoRA (alpha = scaling * r) holding the
    first r rows of lora_A and columns of lora_B: the scaling rule that makes PEFT exports exact."""
    net = lora_net(family, base_config=HFSupernet(tiny_model(family)).max_config())
    targets = {"gpt2": ["c_attn", "c_fc", "mlp.c_proj"], "llama": ["q_proj", "k_proj", "v_proj", "gate_proj",
                                                                   "up_proj", "down_proj"]}[family]  # fmt: skip
    for rank in net.ranks:
        cfg = with_ranks(net, net.max_config(), rank)
        x = net.example_inputs(cfg, 2, seed=3)
        reference = copy.deepcopy(net.extract_base(cfg)).hf_model
        config = peft.LoraConfig(r=rank, lora_alpha=net.scaling * rank, target_modules=targets,
                                 fan_in_fan_out=family == "gpt2", init_lora_weights=False)  # fmt: skip
        model = peft.get_peft_model(reference, config).eval()
        names = {s.path.removeprefix("model."): layer for s, layer in zip(net.sites, net.lora_layers, strict=True)}
        with torch.no_grad():
            for name, module in model.base_model.model.named_modules():
                if isinstance(module, peft.tuners.lora.LoraLayer):
                    mine = names[name]
                    module.lora_A["default"].weight.copy_(mine.lora_A["default"].weight[:rank])
                    module.lora_B["default"].weight.copy_(mine.lora_B["default"].weight[:, :rank])
            net.activate(cfg)
            expected = model(input_ids=x[0], attention_mask=torch.ones_like(x[0])).logits
            got = net(*x)
        assert max_abs_diff(got, expected) <= 1e-6
        assert got.abs().max() > 1e-3


# -- the shipped contract ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def registered() -> Iterator[None]:
    """LoNAS-style super-networks (architecture x ranks) over tiny GPT-2 and Llama, for this module only."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SUPERNETS, "_entries", dict(SUPERNETS._entries))
        for family in ("gpt2", "llama"):
            register_supernet(f"lora_tiny_{family}", lambda family=family, seed=0: lora_net(family, seed))
        yield


class TestContract(SupernetContract):
    @pytest.fixture(params=["gpt2", "llama"])
    def supernet_name(self, request: pytest.FixtureRequest, registered: None) -> str:
        return f"lora_tiny_{request.param}"


# -- training ----------------------------------------------------------------------------------------------
def lm_data(n: int = 32, seq: int = 12, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Next-token data of a simple rule (each token is the previous plus one, modulo the vocabulary)."""
    gen = torch.Generator().manual_seed(seed)
    start = torch.randint(0, VOCAB, (n, 1), generator=gen)
    ids = (start + torch.arange(seq + 1)[None, :]) % VOCAB
    return ids[:, :-1], ids[:, 1:]


def test_only_adapter_parameters_get_gradients() -> None:
    net = lora_net("llama")
    trainer = SandwichTrainer(net, TrainConfig.finetuning(epochs=1, batch_size=8, lr=1e-2, num_random=1))
    inputs, target = lm_data(8)
    trainer._train_step((inputs,), target, np.random.default_rng(0))
    adapter = {n for n, p in net.named_parameters() if "lora_" in n}
    assert adapter and all(p.grad is not None for n, p in net.named_parameters() if n in adapter)
    assert all(p.grad is None and not p.requires_grad for n, p in net.named_parameters() if n not in adapter)
    both = lora_net("llama", train_base=True)
    trainer = SandwichTrainer(both, TrainConfig.finetuning(epochs=1, batch_size=8, lr=1e-2, num_random=1))
    trainer._train_step((inputs,), target, np.random.default_rng(0))
    assert all(p.grad is not None for n, p in both.named_parameters() if "embed" not in n and "lm_head" not in n)


def train(net: LoraSupernet, out: Path, epochs: int = 3, callback: Any = None) -> Any:
    trainer = SandwichTrainer(net, TrainConfig.finetuning(epochs=epochs, batch_size=8, lr=3e-2, num_random=1))
    out.mkdir(exist_ok=True)
    return trainer.fit(lm_data(32), out=out / "ckpt.pt", progress=False, callback=callback)


def test_sandwich_training_lowers_the_loss_of_every_rank(tmp_path: Path) -> None:
    net = lora_net("gpt2", base_config=HFSupernet(tiny_model("gpt2")).max_config())
    inputs, target = lm_data(32, seed=5)

    def loss(cfg: Config) -> float:
        net.eval()
        net.activate(cfg)
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(net(inputs).flatten(0, 1), target.flatten()))

    before = [loss(c) for c in (net.max_config(), net.min_config())]
    base_before = {n: p.clone() for n, p in net.named_parameters() if "lora_" not in n}
    result = train(net, tmp_path)
    after = [loss(c) for c in (net.max_config(), net.min_config())]
    assert result.history[-1].loss < result.history[0].loss
    assert all(a < 0.9 * b for a, b in zip(after, before, strict=True))
    assert all(torch.equal(p, base_before[n]) for n, p in net.named_parameters() if "lora_" not in n)


def test_same_seed_same_result_and_resumption(tmp_path: Path) -> None:
    class Stop(Exception):
        pass

    def stop_after_one(result: Any) -> None:
        if result.epoch == 1:
            raise Stop

    a, b, interrupted = lora_net("llama"), lora_net("llama"), lora_net("llama")
    train(a, tmp_path / "a", epochs=2)
    train(b, tmp_path / "b", epochs=2)
    with pytest.raises(Stop):
        train(interrupted, tmp_path / "c", epochs=2, callback=stop_after_one)
    resumed = lora_net("llama")
    assert train(resumed, tmp_path / "c", epochs=2).resumed_from == 1
    state = a.state_dict()
    for other in (b, resumed):
        assert all(torch.equal(state[k], other.state_dict()[k]) for k in state)


# -- export --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_peft_export_round_trip(family: str, tmp_path: Path) -> None:
    """A PEFT adapter folder that PeftModel.from_pretrained loads onto its base/ folder reproduces the super-network
    for the exported configuration (uniform architecture cut too: LoNAS)."""
    net = lora_net(family)
    ranks = net.rank_space.sample(seed=2)
    space = net.base.search_space.choices
    arch = {**net.base.max_config(), "ffn": [space["ffn"].values[1]] * 2}
    if family == "llama":  # GPT-2's Hugging Face config needs hidden = heads x head_dim
        arch.update(hidden=space["hidden"].values[1], heads=[space["heads"].values[0]] * 2)
    cfg = net.search_space.validate({**arch, **ranks})
    record = export_subnet(net, cfg, "peft", tmp_path / "adapter")
    assert record.max_abs_diff <= 1e-5 and record.format == "peft"
    folder = Path(record.path)
    assert {"adapter_config.json", "adapter_model.safetensors", "elasticnas.json"} <= {p.name for p in folder.iterdir()}
    base = transformers.AutoModelForCausalLM.from_pretrained(folder / "base", attn_implementation="eager")
    model = peft.PeftModel.from_pretrained(base, folder).eval()
    pattern = json.loads((folder / "adapter_config.json").read_text())["rank_pattern"]
    assert sorted(pattern.values()) == sorted(net.rank_of(s, cfg) for s in net.sites)
    x = net.example_inputs(cfg, 2, seed=7)
    net.activate(cfg)
    with torch.no_grad():
        got = model(input_ids=x[0], attention_mask=torch.ones_like(x[0])).logits
        assert max_abs_diff(got, net(*x)) <= 1e-5
    assert load_subnet(folder).elasticnas_info["config"] == cfg


def test_merged_exports_equal_the_unmerged_sub_network(tmp_path: Path) -> None:
    net = lora_net("llama")
    merged = lora_net("llama", merged=True)
    cfg = with_ranks(net, net.max_config(), net.ranks[1])
    x = net.example_inputs(cfg, 2, seed=1)
    sub, flat = net.extract(cfg), merged.extract(cfg)
    assert not any(isinstance(m, peft.tuners.lora.LoraLayer) for m in flat.modules())
    with torch.no_grad():
        assert max_abs_diff(sub(*x), flat(*x)) <= 1e-5
    assert merged.costs(cfg)["params"] == net.costs(cfg)["params"] - net.costs(cfg)["adapter_params"]
    assert merged.costs(cfg)["adapter_params"] == net.costs(cfg)["adapter_params"]
    hf = export_subnet(net, cfg, "hf", tmp_path / "hf")  # the hf format merges
    onnx = export_subnet(merged, cfg, "onnx", tmp_path / "merged.onnx")
    assert hf.max_abs_diff <= 1e-5 and onnx.max_abs_diff <= 1e-4
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf", attn_implementation="eager").eval()
    with torch.no_grad():
        assert max_abs_diff(model(input_ids=x[0]).logits, sub(*x)) <= 1e-5
    with pytest.raises(ExportError, match="adapter super-networks"):
        plain = HFSupernet(tiny_model("llama"))
        export_subnet(plain, plain.max_config(), "peft", tmp_path / "no")
    assert merge_lora(nn.Linear(2, 2)).weight.shape == (2, 2)  # nothing to merge: unchanged


# -- metrics and search ----------------------------------------------------------------------------------------
def test_adapter_metrics_and_a_search_over_ranks_and_widths() -> None:
    from elasticnas import create_study

    net = lora_net("gpt2")
    measurer = Measurer(net, runtime="torch", policy=FAST_POLICY, context_len=8)
    cfg = net.min_config()
    values = measurer.measure(cfg, ["adapter_params", "latency_ms", "latency_merged_ms", "peak_memory_merged_mb"])
    assert values["adapter_params"] == net.costs(cfg)["adapter_params"] > 0
    assert values["latency_merged_ms"] > 0 and values["peak_memory_merged_mb"] > 0
    inputs, target = lm_data(8, seed=3)

    def evaluate(config: Config) -> dict[str, float]:
        net.activate(config)
        with torch.no_grad():
            return {"loss": float(torch.nn.functional.cross_entropy(net(inputs).flatten(0, 1), target.flatten()))}

    study = create_study(net.search_space, {"loss": "minimize", "adapter_params": "minimize"})
    study.optimize(evaluate, n_evals=6, seed=0, cheap_metrics=measurer.cheap_metrics(["adapter_params"]),
                   show_progress=False)  # fmt: skip
    assert len(study.pareto_front()) >= 1
    with pytest.raises(Exception, match="adapter super-networks"):
        plain = HFSupernet(tiny_model("gpt2"))
        Measurer(plain).measure(plain.min_config(), ["adapter_params"])


# -- any nn.Linear of a user's super-network ----------------------------------------------------------------
class ToyMLP(Supernet):
    """A user's super-network: an MLP of elastic hidden width (first-k), inputs (N, 4, 6) of 4 positions."""

    task = "sequence-classification"

    def __init__(self) -> None:
        super().__init__()
        self.search_space = SearchSpace({"width": Choice([8, 16])})
        self.fc1, self.fc2 = nn.Linear(6, 16), FirstColumns(16, 3)

    def _activate(self, config: Config) -> None:
        self.width = int(config["width"])

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.fc1(x)[..., : self.active_config["width"]])
        return self.fc2(h).mean(1)  # type: ignore[no-any-return]

    def _extract(self, config: Config) -> nn.Module:
        w = int(config["width"])
        sub = _Sub(w)
        with torch.no_grad():
            sub.fc1.weight.copy_(self.fc1.weight[:w]), sub.fc1.bias.copy_(self.fc1.bias[:w])
            sub.fc2.weight.copy_(self.fc2.weight[:, :w]), sub.fc2.bias.copy_(self.fc2.bias)
        return sub

    def _arch(self, config: Config) -> dict[str, Any]:
        return dict(config)

    def _costs(self, config: Config) -> dict[str, int]:
        w = int(config["width"])
        return {"macs": 4 * (6 * w + w * 3), "params": 6 * w + w + w * 3 + 3}

    def example_inputs(self, config: Mapping[str, Any], batch_size: int = 1, *, seed: int = 0) -> tuple[Tensor, ...]:
        return (torch.randn(batch_size, 4, 6, generator=torch.Generator().manual_seed(seed)),)


class FirstColumns(nn.Linear):
    """A linear layer reading as many inputs as it is given (its first weight columns)."""

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight[:, : x.shape[-1]], self.bias)


class _Sub(nn.Module):
    """The extracted MLP: its linear modules keep the super-network's names."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, width), nn.Linear(width, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(torch.relu(self.fc1(x))).mean(1)  # type: ignore[no-any-return]


def test_any_linear_of_a_users_supernet() -> None:
    torch.manual_seed(0)
    base = ToyMLP()
    net = LoraSupernet(base, targets={"mlp": [r"fc\d"]}, ranks=[2, 4], init_lora_weights=False)
    assert net.search_space.names == ["width", "rank_mlp"]
    for cfg in net.search_space.sample_many(4, seed=0):
        net.activate(cfg)
        x = net.example_inputs(cfg, 3)
        sub = net.extract(cfg)
        with torch.no_grad():
            assert max_abs_diff(net(*x), sub(*x)) <= 1e-6
        w, r = cfg["width"], cfg["rank_mlp"]
        assert net.costs(cfg)["adapter_params"] == r * (6 + w) + r * (w + 3)
        assert net.costs(cfg)["params"] == sum(p.numel() for p in sub.parameters())


# -- bad input -----------------------------------------------------------------------------------------------
def test_bad_input_is_one_clear_error() -> None:
    base = HFSupernet(tiny_model("llama"))
    with pytest.raises(ValueError, match="module group 'attn': unknown role 'x_proj'"):
        LoraSupernet(base, targets={"attn": ["q", "x_proj"]})
    with pytest.raises(ValueError, match="ranks must be positive integers"):
        LoraSupernet(HFSupernet(tiny_model("llama")), ranks=[0, 4])
    with pytest.raises(ValueError, match="matches no linear module"):
        LoraSupernet(ToyMLP(), targets={"mlp": ["nothing"]})
    with pytest.raises(ValueError, match="not an elastic transformer"):
        LoraSupernet(ToyMLP())
    net = lora_net("llama")
    too_big = with_ranks(net, net.max_config(), net.ranks[-1]) | {"rank_up": [net.ranks[-1] * 2] * 2}
    with pytest.raises(
        InvalidConfigError, match=r"key 'rank_up' position 0: 8 is not allowed; allowed values: 2, 3, 4"
    ):
        net.activate(too_big)
    with pytest.raises(InvalidConfigError, match="unknown key 'rank_gate'"):
        net.activate({**net.max_config(), "rank_gate": 2})


def test_ranks_of_dropped_blocks_are_inactive() -> None:
    """With depth 1 the second block's rank genes change nothing: they take their first value, one config id."""
    net = lora_net("gpt2")
    space = net.search_space
    cfg = {**net.max_config(), "depth": 1}
    other = {**cfg, "rank_qkv": [cfg["rank_qkv"][0], net.ranks[0]]}
    dropped = 1 - net.base.layer_order[0]  # the block depth 1 leaves out
    assert space.validate(cfg)["rank_qkv"][dropped] == net.ranks[0]
    assert space.config_id(cfg) == space.config_id(other)
    assert net.costs(cfg) == net.costs(other)


# -- the user's whole path: train, search, export from the study alone --------------------------------------------
def test_an_adapter_study_exports_each_front_trial_as_it_was_measured(tmp_path: Path) -> None:
    """A pretrained Hugging Face folder, adapters trained and saved, searched on the built-in text, recorded in a
    study: Study.export rebuilds the adapter super-network (base folder, options, trained adapters) from the study
    alone, and each PEFT folder's own loss on the recorded data is the recorded loss."""
    from elasticnas import create_study
    from elasticnas.errors import ElasticNASError
    from elasticnas.problems import supernet_problem
    from elasticnas.supernets import create_supernet, rebuild_supernet

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, hidden_size=32, intermediate_size=64,
        vocab_size=256, max_position_embeddings=128,
    )  # fmt: skip
    transformers.LlamaForCausalLM(config).save_pretrained(tmp_path / "base")
    base = create_supernet(f"hf:{tmp_path / 'base'}")
    net = LoraSupernet(base, ranks=(2, 4), base_config=base.max_config())
    trainer = SandwichTrainer(net, TrainConfig.finetuning(epochs=1, batch_size=8, lr=3e-2, num_random=1))
    ids = torch.randint(0, 256, (16, 13), generator=torch.Generator().manual_seed(0))
    trainer.fit((ids[:, :-1], ids[:, 1:]), progress=False)
    with pytest.raises(ElasticNASError, match="never saved"):
        rebuild_supernet(net.recipe())
    trainer.export_weights(tmp_path / "adapters.pt")
    problem = supernet_problem(net, ["loss", "adapter_params"], val_data="pystdlib:val", max_val_batches=1)
    study = create_study(problem.space, problem.objectives, storage=f"sqlite:///{tmp_path / 's.db'}", study_name="a")
    study.set_measurement(problem.measurement)
    study.optimize(problem.evaluate, n_evals=4, seed=0, cheap_metrics=problem.cheap_metrics, show_progress=False)
    front = study.pareto_front()
    assert len(front) >= 2 and study.measurement["recipe"]["wrapper"] == "lora"
    for record in front:
        exported = study.export(record.number, "peft", tmp_path / f"t{record.number}")
        assert exported.loss == pytest.approx(exported.recorded_loss, abs=1e-4)
