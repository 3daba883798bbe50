"""Elastic transformer super-networks over transformers models (elasticnas.supernets.hf).

Each family is a tiny random model (GPT-2, Llama with grouped-query attention, BERT for
sequence classification, ViT for image classification) saved with ``save_pretrained`` and
reloaded with ``from_pretrained``; nothing is downloaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

transformers = pytest.importorskip("transformers")

from elasticnas.supernets import (  # noqa: E402
    SUBNET_BUILDERS,
    SUPERNETS,
    build_subnet,
    create_supernet,
    register_supernet,
)
from elasticnas.supernets.hf import HFSupernet, elasticize, score_importance  # noqa: E402
from elasticnas.supernets.hf._supernet import AUTO_CLASSES  # noqa: E402
from elasticnas.testing.supernets import SupernetContract, count_by_forward, max_abs_diff  # noqa: E402

transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()

TINY = dict(num_hidden_layers=4, num_attention_heads=4, initializer_range=0.2)
CONFIGS: dict[str, Any] = {
    "gpt2": transformers.GPT2Config(
        n_embd=32, n_layer=4, n_head=4, vocab_size=61, n_positions=16, initializer_range=0.2,
        bos_token_id=0, eos_token_id=0,
    ),
    "llama": transformers.LlamaConfig(
        hidden_size=32, intermediate_size=48, num_key_value_heads=2, vocab_size=61, max_position_embeddings=16,
        bos_token_id=0, eos_token_id=0, **TINY,
    ),
    "bert": transformers.BertConfig(
        hidden_size=32, intermediate_size=48, vocab_size=61, max_position_embeddings=16, num_labels=3, **TINY
    ),
    "vit": transformers.ViTConfig(
        hidden_size=32, intermediate_size=48, image_size=16, patch_size=4, num_channels=3, num_labels=3, **TINY
    ),
}  # fmt: skip
CLASSES = {
    "gpt2": "GPT2LMHeadModel",
    "llama": "LlamaForCausalLM",
    "bert": "BertForSequenceClassification",
    "vit": "ViTForImageClassification",
}
TASKS = {"gpt2": "causal-lm", "llama": "causal-lm", "bert": "sequence-classification", "vit": "image-classification"}
FAMILIES = list(CONFIGS)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each tiny model, seeded, with perturbed norms (so that hidden channels differ), in a save_pretrained folder."""
    out = {}
    for name, config in CONFIGS.items():
        torch.manual_seed(0)
        model = getattr(transformers, CLASSES[name])(config)
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() == 1:
                    p.add_(0.3 * torch.randn_like(p))
        out[name] = tmp_path_factory.mktemp(name)
        model.save_pretrained(out[name])
    return out


def load(folders: dict[str, Path], name: str) -> Any:
    return getattr(transformers, AUTO_CLASSES[TASKS[name]]).from_pretrained(folders[name]).eval()


def inputs(name: str, batch: int = 3, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    config = CONFIGS[name]
    if name == "vit":
        return (torch.randn(batch, 3, 16, 16, generator=gen),)
    ids = torch.randint(0, config.vocab_size, (batch, 12), generator=gen)
    if name == "bert":
        return ids, (torch.arange(12)[None, :] < torch.randint(4, 13, (batch, 1), generator=gen)).long()
    return (ids,)


def calibration(name: str) -> list[tuple[torch.Tensor, ...]]:
    """Batches of inputs followed by a target."""
    return [(*inputs(name, 4, seed=10 + s), torch.zeros(4, dtype=torch.long)) for s in range(3)]


def logits(model: Any, name: str, xs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    keys = ("pixel_values",) if name == "vit" else ("input_ids", "attention_mask")
    with torch.no_grad():
        return model(**dict(zip(keys, xs, strict=False))).logits


def supernet(folders: dict[str, Path], name: str, **options: Any) -> HFSupernet:
    return elasticize(load(folders, name), calibration(name), **options)


# -- parity with the original model ---------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILIES)
def test_the_largest_sub_network_is_the_original_model_before_and_after_sorting(folders, name) -> None:
    xs = inputs(name)
    reference = logits(load(folders, name), name, xs)
    first_k = elasticize(load(folders, name), method="first-k")
    assert first_k.layer_order == (0, 1, 2, 3) and first_k.task == TASKS[name]
    sorted_net = supernet(folders, name)
    for net in (first_k, sorted_net):
        net.activate(net.max_config())
        with torch.no_grad():
            assert max_abs_diff(net(*xs), reference) <= 1e-4
        with torch.no_grad():
            assert max_abs_diff(net.extract(net.max_config())(*xs), reference) <= 1e-4
    assert first_k.method == "first-k" and sorted_net.method == "activation"


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("per_layer", [True, False])
def test_activate_and_extract_agree_and_costs_count_the_extracted_module(folders, name, per_layer) -> None:
    net = supernet(folders, name, per_layer=per_layer)
    for cfg in net.search_space.sample_many(4, seed=3):
        xs = net.example_inputs(cfg, 2, seed=1)
        net.activate(cfg)
        sub = net.extract(cfg)
        with torch.no_grad():
            assert max_abs_diff(net(*xs), sub(*xs)) <= 1e-5
        costs = net.costs(cfg)
        counted = count_by_forward(sub, net.example_inputs(cfg, 1))
        assert costs["macs"] == counted["macs"] and costs["params"] == counted["params"]
        hf = sub.hf_model
        embedding = {
            id(p): p.numel() for m in hf.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()
        }
        if name == "vit":
            embedding.update({id(p): p.numel() for p in hf.vit.embeddings.parameters(recurse=False)})
        if TASKS[name] == "causal-lm":
            embedding[id(hf.lm_head.weight)] = hf.lm_head.weight.numel()
        assert costs["params_non_embedding"] == costs["params"] - sum(embedding.values())
        assert hf.config.num_hidden_layers == cfg["depth"] and hf.config.hidden_size == cfg["hidden"]


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_costs_at_another_sequence_length_count_that_length(folders, name) -> None:
    from elasticnas.measure import Measurer

    net = supernet(folders, name)
    cfg = net.search_space.sample(seed=5)
    short = net.seq_len // 2
    counted = count_by_forward(net.extract(cfg), net.example_inputs(cfg, 1, seq_len=short))
    assert net.costs(cfg, seq_len=short)["macs"] == counted["macs"] < net.costs(cfg)["macs"]
    assert Measurer(net, seq_len=short).costs(cfg)["macs"] == counted["macs"]


@pytest.mark.parametrize("name", FAMILIES)
def test_the_space_defaults_and_overrides(folders, name) -> None:
    net = supernet(folders, name)
    choices = net.search_space.choices
    assert choices["depth"].values == (2, 3, 4) and choices["hidden"].values == (16, 24, 32)
    assert choices["heads"].values == ((2, 4) if name == "llama" else (1, 2, 3, 4)) and choices["heads"].size == 4
    assert choices["ffn"].values == ((32, 64, 96, 128) if name == "gpt2" else (12, 24, 36, 48))
    shared = elasticize(
        load(folders, name), method="first-k", per_layer=False, depths=[1, 4], ffn=[8, 48 if name != "gpt2" else 128]
    )
    assert shared.search_space.choices["heads"].size is None and shared.search_space.choices["depth"].values == (1, 4)
    with pytest.raises(ValueError, match="heads choices"):
        elasticize(load(folders, name), method="first-k", heads=[5])


# -- depth: the most important blocks, the others' genes inactive ---------------------------------------


def test_depth_keeps_the_top_ranked_blocks_in_order_and_their_genes_alone_count(folders) -> None:
    net = supernet(folders, "llama")
    space = net.search_space
    net.layer_order  # noqa: B018
    cfg = dict(net.max_config(), depth=2, heads=[2, 4, 2, 4])
    kept = tuple(sorted(net.layer_order[:2]))
    assert space.active_layers(cfg) == kept
    dropped = [i for i in range(4) if i not in kept]
    other = dict(
        cfg,
        heads=[4 if i in dropped else cfg["heads"][i] for i in range(4)],
        ffn=[12 if i in dropped else 48 for i in range(4)],
    )
    assert space.validate(other) == space.validate(cfg) and space.config_id(other) == space.config_id(cfg)
    canonical = space.validate(cfg)
    assert [canonical["heads"][i] for i in dropped] == [2, 2]  # inactive genes at their first value
    mask = space.inactive_mask(space.to_genes(cfg)[None, :])[0]
    assert mask.sum() == 2 * len(dropped)
    assert net.arch(cfg)["layers"] == list(kept)
    xs = net.example_inputs(cfg, 2)
    net.activate(cfg)
    with torch.no_grad():
        assert max_abs_diff(net(*xs), net.extract(cfg)(*xs)) <= 1e-5


# -- importance sorting ---------------------------------------------------------------------------------


def test_elasticize_ranks_zeroed_units_and_an_identity_block_last(folders) -> None:
    model = load(folders, "gpt2")
    E, hd = 32, 8
    with torch.no_grad():
        h = model.transformer.h
        h[1].mlp.c_fc.weight[:, 5] = 0  # FFN neuron 5 of block 1 never fires (GELU(0) = 0)
        h[1].mlp.c_fc.bias[5] = 0
        v = slice(2 * E + 1 * hd, 2 * E + 2 * hd)  # head 1 of block 0 has zero values: zero output
        h[0].attn.c_attn.weight[:, v] = 0
        h[0].attn.c_attn.bias[v] = 0
        for m in (h[2].attn.c_proj, h[2].mlp.c_proj):  # block 2 adds nothing: its output is its input
            m.weight.zero_()
            m.bias.zero_()
        for ln in (
            *[b.ln_1 for b in h],
            *[b.ln_2 for b in h],
            model.transformer.ln_f,
        ):  # hidden channel 7 is 0 after every norm
            ln.weight[7] = 0
            ln.bias[7] = 0
    net = elasticize(model, calibration("gpt2"))
    assert net.layer_order[-1] == 2
    h = net.model.transformer.h
    assert h[1].mlp.c_fc.weight[:, -1].abs().max() == 0 and h[1].mlp.c_fc.bias[-1] == 0
    assert h[0].attn.c_attn.weight[:, 2 * E + 3 * hd :].abs().max() == 0
    assert all(ln.weight[-1] == 0 for b in h for ln in (b.ln_1, b.ln_2))


@pytest.mark.parametrize("name", FAMILIES)
def test_after_sorting_the_scores_descend_within_each_slice(folders, name) -> None:
    net = supernet(folders, name)
    imp = score_importance(net.model, calibration(name), task=net.task)
    groups = 2 if name == "llama" else 1
    for heads, ffn in zip(imp.heads, imp.ffn, strict=True):
        per_group = heads.view(groups, -1)
        assert (per_group[:, :-1] >= per_group[:, 1:] - 1e-9).all()
        assert (ffn[:-1] >= ffn[1:] - 1e-9).all()
    assert (imp.hidden[:-1] >= imp.hidden[1:] - 1e-9).all()
    assert list(net.layer_order) == sorted(range(4), key=lambda i: -float(imp.layers[i]))
    assert elasticize(load(folders, name), calibration(name)).layer_order == net.layer_order  # deterministic


# -- standalone sub-networks ------------------------------------------------------------------------------


def uniform_config(net: HFSupernet) -> dict[str, Any]:
    heads = 2
    hidden = heads * net.dims.head_dim if net.spec.name in ("gpt2", "bert") else 24
    ffn = net.search_space.choices["ffn"].values[1]
    return {"depth": 3, "heads": [heads] * 4, "ffn": [ffn] * 4, "hidden": hidden}


@pytest.mark.parametrize("name", FAMILIES)
def test_a_uniform_sub_network_round_trips_through_save_pretrained(folders, name, tmp_path) -> None:
    net = supernet(folders, name)
    cfg = uniform_config(net)
    assert net.is_uniform(cfg)
    assert not net.is_uniform(dict(cfg, heads=[2, 4, 4, 4] if name == "llama" else [1, 2, 3, 4], depth=4))
    sub = net.extract(cfg)
    sub.hf_model.save_pretrained(tmp_path)
    reloaded = getattr(transformers, AUTO_CLASSES[net.task]).from_pretrained(tmp_path).eval()
    xs = net.example_inputs(cfg, 2, seed=2)
    net.activate(cfg)
    with torch.no_grad():
        assert max_abs_diff(logits(reloaded, name, xs), net(*xs)) <= 1e-4


@pytest.mark.parametrize("name", FAMILIES)
def test_build_subnet_from_the_json_arch_reproduces_extract(folders, name) -> None:
    net = supernet(folders, name)
    cfg = net.search_space.sample(seed=5)
    arch = json.loads(json.dumps(net.arch(cfg)))
    assert "hf" in SUBNET_BUILDERS and arch["name"] == "hf"
    sub = net.extract(cfg)
    rebuilt = build_subnet(arch)
    rebuilt.load_state_dict(sub.state_dict())
    xs = net.example_inputs(cfg, 2, seed=4)
    with torch.no_grad():
        assert max_abs_diff(rebuilt.eval()(*xs), sub(*xs)) == 0.0


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_an_extracted_decoder_generates_with_a_kv_cache(folders, name) -> None:
    net = supernet(folders, name)
    cfg = dict(
        net.max_config(),
        depth=3,
        heads=[2, 4, 2, 4] if name == "llama" else [1, 2, 3, 4],
        ffn=[*net.search_space.choices["ffn"].values],
        hidden=24,
    )
    model = net.extract(cfg).hf_model
    prompt = inputs(name, 1, seed=7)[0][:, :5]
    generated = model.generate(prompt, max_new_tokens=6, do_sample=False, use_cache=True, pad_token_id=0)
    ids = prompt
    with torch.no_grad():
        for _ in range(6):  # greedy decoding without a cache: full forward passes
            ids = torch.cat([ids, model(ids, use_cache=False).logits[:, -1:].argmax(-1)], dim=1)
        assert torch.equal(generated, ids)
        out = model(prompt, use_cache=True)  # one decode step on the cache equals the full forward pass
        step = model(ids[:, 5:6], cache=out.cache, use_cache=True)
        assert max_abs_diff(step.logits[:, -1], model(ids[:, :6]).logits[:, -1]) <= 1e-5


# -- folders ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["llama", "vit"])
def test_save_pretrained_and_hf_folders_in_create_supernet(folders, name, tmp_path) -> None:
    source = tmp_path / "source"
    load(folders, name).save_pretrained(source)
    (source / "tokenizer.json").write_text("{}")
    model = getattr(transformers, AUTO_CLASSES[TASKS[name]]).from_pretrained(source)
    net = elasticize(model, calibration(name), per_layer=False)
    net.save_pretrained(tmp_path)
    assert (tmp_path / "tokenizer.json").read_text() == "{}"  # the source folder's tokenizer goes along
    info = json.loads((tmp_path / "elasticnas.json").read_text())
    assert info["layer_order"] == list(net.layer_order) and info["method"] == "activation"
    again = create_supernet(f"hf:{tmp_path}")
    assert again.name == f"hf:{tmp_path}" and again.layer_order == net.layer_order
    assert again.search_space == net.search_space and again.task == net.task
    cfg = net.search_space.sample(seed=1)
    xs = net.example_inputs(cfg, 2)
    net.activate(cfg)
    again.activate(cfg)
    with torch.no_grad():
        assert max_abs_diff(again(*xs), net(*xs)) == 0.0
    plain = create_supernet(f"hf:{folders[name]}")  # a folder without elasticnas.json: first-k, task inferred
    assert plain.layer_order == (0, 1, 2, 3) and plain.method == "first-k" and plain.task == TASKS[name]
    assert plain.search_space.choices["heads"].size == 4


def test_elasticize_is_a_lazy_top_level_name() -> None:
    import elasticnas

    assert elasticnas.elasticize is elasticize and "elasticize" in elasticnas.__all__


def test_the_hf_export_format_writes_a_loadable_folder(folders, tmp_path) -> None:
    from elasticnas.export import export_subnet, load_subnet

    net = supernet(folders, "llama")
    net.name = "hf:llama"
    cfg = uniform_config(net)
    record = export_subnet(net, cfg, "hf", tmp_path / "sub")
    assert record.max_abs_diff <= 1e-5 and record.params == net.costs(cfg)["params"]
    loaded = load_subnet(record.path)
    assert loaded.hf_model.config.num_hidden_layers == 3
    xs = net.example_inputs(cfg, 2, seed=3)
    with torch.no_grad():
        assert max_abs_diff(loaded(*xs), net.extract(cfg)(*xs)) <= 1e-5


# -- the shipped contract ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registered(folders) -> Iterator[None]:
    """Each family registered as an elasticized super-network ``hf_tiny_<family>``, for this module only."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SUPERNETS, "_entries", dict(SUPERNETS._entries))
        for name in FAMILIES:
            register_supernet(f"hf_tiny_{name}", lambda name=name, seed=0: supernet(folders, name))
        yield


class TestContract(SupernetContract):
    @pytest.fixture(params=FAMILIES)
    def supernet_name(self, request: pytest.FixtureRequest, registered: None) -> str:
        return f"hf_tiny_{request.param}"


@pytest.mark.parametrize(
    "make",
    [
        lambda: transformers.LlamaForCausalLM(
            transformers.LlamaConfig(hidden_size=32, intermediate_size=48, vocab_size=61, num_key_value_heads=4, **TINY)
        ),
        lambda: transformers.Qwen2ForCausalLM(
            transformers.Qwen2Config(hidden_size=32, intermediate_size=48, vocab_size=61, num_key_value_heads=2, **TINY)
        ),
    ],
    ids=["llama-mha", "qwen2"],
)
def test_multi_head_llama_and_qwen2(make) -> None:
    torch.manual_seed(0)
    model = make().eval()
    xs = inputs("llama")
    reference = logits(model, "llama", xs)
    net = elasticize(model, calibration("llama"))
    assert net.search_space.choices["heads"].values == ((1, 2, 3, 4) if net.dims.kv_heads == 4 else (2, 4))
    with torch.no_grad():
        assert max_abs_diff(net(*xs), reference) <= 1e-4
    for cfg in net.search_space.sample_many(2, seed=2):
        net.activate(cfg)
        sub = net.extract(cfg)
        with torch.no_grad():
            assert max_abs_diff(net(*xs), sub(*xs)) <= 1e-5
        counted = count_by_forward(sub, net.example_inputs(cfg, 1))
        assert {k: net.costs(cfg)[k] for k in counted} == counted
