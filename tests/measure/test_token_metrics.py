"""Metrics of token super-networks: tiny random GPT-2, Llama (GQA) and BERT models wrapped as HFSupernets.

Loss, perplexity and accuracy are checked against hand computations on the sub-network's own
logits; latencies only for sanity (positive, measured as asked); memory for the KV cache it
counts. Nothing is downloaded.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Subset, TensorDataset

transformers = pytest.importorskip("transformers")

import elasticnas as en  # noqa: E402
from elasticnas.data import text_corpus  # noqa: E402
from elasticnas.errors import ElasticNASError  # noqa: E402
from elasticnas.measure import FAST_POLICY, Measurer, evaluate_accuracy  # noqa: E402
from elasticnas.measure.accuracy import IGNORE_INDEX, split_batch  # noqa: E402
from elasticnas.measure.decoding import cache_bytes, prefill  # noqa: E402
from elasticnas.measure.latency import MeasurementError  # noqa: E402
from elasticnas.measure.memory import measure_decode_memory  # noqa: E402
from elasticnas.problems import supernet_problem  # noqa: E402
from elasticnas.supernets.hf import HFSupernet  # noqa: E402

transformers.utils.logging.set_verbosity_error()

POSITIONS = 128
TINY = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, vocab_size=256,
            max_position_embeddings=POSITIONS)  # fmt: skip
MODELS = {
    "gpt2": lambda: transformers.GPT2LMHeadModel(
        transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=256, n_positions=POSITIONS,
                                bos_token_id=0, eos_token_id=0)  # fmt: skip
    ),
    "llama": lambda: transformers.LlamaForCausalLM(
        transformers.LlamaConfig(num_key_value_heads=2, bos_token_id=0, eos_token_id=0, **TINY)
    ),
    "bert": lambda: transformers.BertForSequenceClassification(transformers.BertConfig(num_labels=3, **TINY)),
}
DECODERS = ["gpt2", "llama"]
SEQ = 16  # the measurers' sequence length: short, for speed


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def nets() -> dict[str, HFSupernet]:
    out = {}
    for name, make in MODELS.items():
        torch.manual_seed(0)
        out[name] = HFSupernet(make())
    return out


@pytest.fixture(scope="module")
def windows() -> Subset[tuple[torch.Tensor, torch.Tensor]]:
    """12 validation windows of 16 byte tokens of the built-in corpus."""
    return Subset(text_corpus("pystdlib").windows("val", seq_len=SEQ), range(12))


@pytest.fixture(scope="module")
def labelled() -> TensorDataset:
    """10 sequences of token ids with attention masks (valid prefixes) and 3-class labels."""
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 256, (10, SEQ), generator=gen)
    mask = (torch.arange(SEQ)[None, :] < torch.randint(4, SEQ + 1, (10, 1), generator=gen)).long()
    return TensorDataset(ids, mask, torch.randint(0, 3, (10,), generator=gen))


def _measurer(net: HFSupernet, **kwargs: object) -> Measurer:
    return Measurer(net, runtime="torch", policy=FAST_POLICY.with_budget(0.2), eval_batch_size=5, **kwargs)


def _mid(net: HFSupernet) -> dict[str, object]:
    """A sub-network smaller than the largest: the smallest depth and FFN width, full heads."""
    return dict(net.max_config(), depth=net.min_config()["depth"], ffn=net.min_config()["ffn"])


@pytest.mark.parametrize("family", DECODERS)
def test_loss_perplexity_and_accuracy_of_a_causal_lm_are_per_next_token(nets, windows, family):
    net = nets[family]
    cfg = _mid(net)
    values = _measurer(net, val_data=windows).measure(cfg, "loss,perplexity,accuracy_top1,accuracy_top5")
    sub = net.extract(cfg).eval()
    ids = torch.stack([windows[i][0] for i in range(len(windows))])
    target = torch.stack([windows[i][1] for i in range(len(windows))])
    with torch.no_grad():
        logits = sub.hf_model(input_ids=ids).logits  # (N, T, V): position t predicts token t + 1
        full = torch.cat([ids, target[:, -1:]], dim=1)  # the window's T + 1 bytes
        hf_loss = sub.hf_model(input_ids=full, labels=full).loss  # transformers shifts the labels itself
    loss = F.cross_entropy(logits.flatten(0, 1), target.flatten())
    assert values["loss"] == pytest.approx(float(loss), rel=1e-5)
    assert values["loss"] == pytest.approx(float(hf_loss), rel=1e-5)
    assert values["perplexity"] == pytest.approx(math.exp(values["loss"]), rel=1e-12)
    hits = logits.argmax(-1) == target
    assert values["accuracy_top1"] == pytest.approx(100.0 * float(hits.float().mean()))
    top5 = (logits.topk(5, dim=-1).indices == target[..., None]).any(-1)
    assert values["accuracy_top5"] == pytest.approx(100.0 * float(top5.float().mean()))


def test_ignored_targets_do_not_count(nets, windows):
    sub = nets["gpt2"].extract(nets["gpt2"].max_config()).eval()
    ids, target = (torch.stack(t) for t in zip(*(windows[i] for i in range(4)), strict=True))
    masked = target.clone()
    masked[:, :5] = IGNORE_INDEX
    result = evaluate_accuracy(sub, [(ids, masked)])
    with torch.no_grad():
        logits = sub(ids)[:, 5:]
    assert result.n_samples == 4 * (SEQ - 5)
    assert result.loss == pytest.approx(float(F.cross_entropy(logits.flatten(0, 1), target[:, 5:].flatten())), rel=1e-5)


def test_sequence_classification_accuracy_and_loss_use_every_input(nets, labelled):
    net = nets["bert"]
    cfg = _mid(net)
    values = _measurer(net, val_data=labelled).measure(cfg, "accuracy_top1,accuracy_top5,loss")
    ids, mask, labels = labelled.tensors
    with torch.no_grad():
        logits = net.extract(cfg).eval()(ids, mask)
        unmasked = net.extract(cfg).eval()(ids, torch.ones_like(mask))
    assert not torch.allclose(logits, unmasked)  # the mask reached the model
    assert values["loss"] == pytest.approx(float(F.cross_entropy(logits, labels)), rel=1e-5)
    assert values["accuracy_top1"] == pytest.approx(100.0 * float((logits.argmax(1) == labels).float().mean()))
    assert values["accuracy_top5"] == 100.0  # 3 classes
    for metric in ("perplexity", "decode_latency_ms"):
        with pytest.raises(ElasticNASError, match="causal language models"):
            _measurer(net, val_data=labelled).check(metric)


def test_split_batch_takes_the_last_element_as_the_target():
    x, y, m = torch.zeros(2, 3), torch.ones(2), torch.ones(2, 3)
    assert split_batch((x, y)) == ((x,), y)
    inputs, target = split_batch([x, m, y])
    assert inputs == (x, m) and target is y
    assert split_batch(x) == ((x,), None) and split_batch((x,)) == ((x,), None)
    assert split_batch({"input": x, "label": y}) == ((x,), y)
    with pytest.raises(ElasticNASError, match="cannot read a batch"):
        split_batch(3)


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
@pytest.mark.parametrize("family", list(MODELS))
def test_prefill_latency_on_both_runtimes(nets, family, runtime):
    net = nets[family]
    m = Measurer(net, runtime=runtime, policy=FAST_POLICY.with_budget(0.2), seq_len=SEQ, batch_size=2)
    values = m.measure(net.min_config(), "latency_ms")
    assert values["latency_ms"] > 0 and values["latency_ms_runs"] >= 3
    assert m.latency(m.validate(net.min_config())).runtime == runtime
    inputs = m.example_inputs(m.validate(net.min_config()))
    assert all(x.shape == (2, SEQ) and x.dtype == torch.int64 for x in inputs)
    assert len(inputs) == (2 if family == "bert" else 1)


@pytest.mark.parametrize("family", DECODERS)
def test_decode_latency_is_measured_at_the_context_length(nets, family):
    net = nets[family]
    cfg = net.min_config()
    for context in (8, 64):
        m = _measurer(net, context_len=context)
        values = m.measure(cfg, "decode_latency_ms")
        assert values["decode_latency_ms"] > 0 and values["decode_latency_ms"] <= values["decode_latency_ms_p90"]
        assert m.decode_latency(m.validate(cfg)).runtime == "torch"
    with pytest.raises(ElasticNASError, match="runtime 'torch' only"):
        Measurer(net, runtime="onnxruntime").check("decode_latency_ms")
    with pytest.raises(MeasurementError, match=f"needs {POSITIONS + 1} positions"):
        _measurer(net, context_len=POSITIONS).measure(cfg, "decode_latency_ms")


@pytest.mark.parametrize("family", DECODERS)
def test_a_decode_step_extends_the_cache_exactly(nets, family):
    net = nets[family]
    sub = net.extract(net.max_config()).eval()
    ids = torch.randint(0, 256, (2, 10), generator=torch.Generator().manual_seed(0))
    cache, step = prefill(sub.hf_model, ids)
    step()
    assert cache.get_seq_length() == 11
    cfg = sub.hf_model.config
    kv_heads = getattr(cfg, "num_key_value_heads", cfg.num_attention_heads)
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    assert cache_bytes(cache) == 2 * cfg.num_hidden_layers * 2 * kv_heads * 11 * head_dim * 4
    cache.crop(-1)
    assert cache.get_seq_length() == 10


@pytest.mark.parametrize("family", DECODERS)
def test_decoder_peak_memory_counts_the_kv_cache(nets, family):
    net = nets[family]
    cfg = net.max_config()
    short, long = (_measurer(net, context_len=c, batch_size=2) for c in (16, 64))
    assert (
        long.measure(cfg, "peak_memory_mb")["peak_memory_mb"] > short.measure(cfg, "peak_memory_mb")["peak_memory_mb"]
    )
    a, b = short.memory(short.validate(cfg)), long.memory(long.validate(cfg))
    assert a.kv_cache_mb > 0 and b.kv_cache_mb == pytest.approx(a.kv_cache_mb * 65 / 17)
    assert b.activations_mb >= b.kv_cache_mb and a.weights_mb == b.weights_mb
    assert b.peak_mb == pytest.approx(b.weights_mb + b.input_mb + b.activations_mb)


def test_classifier_peak_memory_grows_with_the_sequence_length(nets):
    net = nets["bert"]
    short, long = (_measurer(net, seq_len=s) for s in (8, 64))
    cfg = net.max_config()
    assert long.memory(long.validate(cfg)).peak_mb > short.memory(short.validate(cfg)).peak_mb
    assert long.memory(long.validate(cfg)).kv_cache_mb == 0.0
    with pytest.raises(MeasurementError, match="needs a transformers causal language model"):
        measure_decode_memory(net.extract(cfg), torch.zeros((1, 8), dtype=torch.long))


@pytest.mark.parametrize("family", list(MODELS))
def test_parameter_counts_are_the_supernets_costs(nets, family):
    net = nets[family]
    m = Measurer(net)
    cfg = _mid(net)
    values = m.measure(cfg, "params,params_non_embedding,macs")
    costs = net.costs(cfg)
    assert values == {k: float(costs[k]) for k in ("params", "params_non_embedding", "macs")}
    assert values["params_non_embedding"] < values["params"]
    assert set(m.cheap_metrics("params_non_embedding")) == {"params_non_embedding"}


def test_settings_record_the_sequence_and_context_lengths(nets):
    net = nets["gpt2"]
    assert Measurer(net).settings()["seq_len"] == Measurer(net).settings()["context_len"] == net.seq_len
    settings = Measurer(net, seq_len=32, context_len=100).settings()
    assert (settings["seq_len"], settings["context_len"]) == (32, 100)
    with pytest.raises(ElasticNASError, match="context_len must be a positive number"):
        Measurer(net, context_len=0)


def test_a_study_constrains_params_and_peak_memory(nets, windows):
    net = nets["gpt2"]
    constraints = ["params<=60e6", "peak_memory_mb<=900"]
    problem = supernet_problem(
        net, ["loss"], extra_metrics=["params", "peak_memory_mb"], runtime="torch", val_data=windows,
        eval_batch_size=6, seq_len=SEQ, context_len=32,
    )  # fmt: skip
    study = en.create_study(net.search_space, problem.objectives, constraints=constraints)
    study.set_measurement(problem.measurement)
    study.optimize(problem.evaluate, n_evals=2, searcher="random", seed=0, cheap_metrics=problem.cheap_metrics,
                   show_progress=False)  # fmt: skip
    assert len(study.trials) == 2 and study.feasible(study.trials) == study.trials
    for t in study.trials:
        assert t.metrics["params"] == net.costs(t.config)["params"] and 0 < t.metrics["peak_memory_mb"] <= 900
        assert t.metrics["loss"] > 0
    assert (study.measurement["seq_len"], study.measurement["context_len"]) == (SEQ, 32)
    tight = en.create_study(net.search_space, problem.objectives, constraints=["peak_memory_mb<=0.001"])
    tight.optimize(problem.evaluate, n_evals=1, searcher="random", seed=0, cheap_metrics=problem.cheap_metrics,
                   show_progress=False)  # fmt: skip
    assert tight.feasible(tight.trials) == []
