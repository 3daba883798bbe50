"""Quantization policy search: the precision space, QDQ sub-networks on ONNX Runtime, metrics, lookup tables, export."""

from __future__ import annotations

import json
import math

import numpy as np
import onnx
import pytest
import torch

from elasticnas.data._spec import resolve_data
from elasticnas.errors import ElasticNASError, InvalidConfigError
from elasticnas.export import export_subnet
from elasticnas.measure import Calibration, Measurer, measure_latency
from elasticnas.quantization import (
    PrecisionSpace,
    QuantizationError,
    QuantizationSettings,
    QuantLayer,
    layout_of,
    precision_costs,
    quantize_supernet,
)
from elasticnas.quantization._quantize import onnx_scope
from elasticnas.space import SearchSpace
from elasticnas.supernets import create_supernet, rebuild_supernet

SMALL = {"ks": [3] * 9, "e": [3] * 9, "d": [2, 1, 2], "r": 16}


@pytest.fixture(scope="module")
def tiny():
    return create_supernet("tiny_mbv3")


@pytest.fixture(scope="module")
def calibration():
    return Calibration(resolve_data("digits:calib"), batches=4, batch_size=64, seed=0)


@pytest.fixture(scope="module")
def qtiny(tiny, calibration):
    return quantize_supernet(tiny, calibration=calibration, settings=QuantizationSettings(calib_batches=2))


@pytest.fixture(scope="module")
def measurer(qtiny):
    return Measurer(qtiny, val_data="digits:val", calib_data="digits:calib", calib_batches=4)


def _policy(q, arch, pick):
    """Configuration of ``arch`` whose layer ``k`` runs at ``pick(k)``."""
    cfg = q.all_fp32(arch)
    return q.search_space.validate({**cfg, "precision": [pick(k) for k in range(len(cfg["precision"]))]})


# -- the precision space ---------------------------------------------------------------------------


def test_space_has_one_gene_per_layer_and_skipped_layers_are_inactive(tiny, qtiny):
    layers = qtiny.precision_space.layers
    assert [q.name for q in layers[:3]] == ["first_conv", "blocks.0", "blocks.1"] and len(layers) == 14
    assert qtiny.search_space.n_genes == tiny.search_space.n_genes + len(layers)
    cfg = _policy(qtiny, SMALL, lambda k: "int8")  # d = [2, 1, 2]: blocks 3, 5, 6 and 9 skipped
    skipped = {"blocks.3", "blocks.5", "blocks.6", "blocks.9"}
    assert [n for n, p in zip((q.name for q in layers), cfg["precision"], strict=True) if p == "fp32"] == sorted(
        skipped, key=lambda n: int(n.split(".")[1])
    )
    other = {**cfg, "precision": ["int8"] * len(layers)}  # skipped layers written int8: the same network
    assert qtiny.search_space.validate(other) == cfg
    assert qtiny.search_space.config_id(other) == qtiny.search_space.config_id(cfg)
    genes = qtiny.search_space.to_genes(cfg)
    mask = qtiny.search_space.inactive_mask(genes[None, :])[0, tiny.search_space.n_genes :]
    assert {q.name for q, m in zip(layers, mask, strict=True) if m} == skipped
    assert set(qtiny.split(cfg)[1]) == {q.name for q in layers} - skipped


def test_space_samples_canonically_json_round_trips_and_weight_scheme_is_inactive_without_int8(tiny):
    q = quantize_supernet(tiny, weight_schemes=True)
    for cfg in q.search_space.sample_many(20, seed=3):
        assert q.search_space.validate(cfg) == cfg
    assert q.search_space.sample_many(5, seed=7) == q.search_space.sample_many(5, seed=7)
    fp32 = q.all_fp32(SMALL)
    assert q.search_space.config_id({**fp32, "weight_scheme": "asymmetric-tensor"}) == q.search_space.config_id(fp32)
    one_int8 = {**fp32, "precision": ["int8"] + fp32["precision"][1:], "weight_scheme": "asymmetric-tensor"}
    assert q.search_space.validate(one_int8)["weight_scheme"] == "asymmetric-tensor"
    again = SearchSpace.from_json(json.loads(json.dumps(q.precision_space.to_json())))
    assert isinstance(again, PrecisionSpace) and again == q.precision_space


def test_unknown_precision_is_one_clear_error(qtiny):
    cfg = {**qtiny.all_fp32(SMALL), "precision": ["int7"] + ["fp32"] * 13}
    with pytest.raises(InvalidConfigError, match=r"layer 'first_conv': unknown precision 'int7'; allowed: fp32, int8"):
        qtiny.search_space.validate(cfg)
    with pytest.raises(QuantizationError, match="int4"):
        quantize_supernet(qtiny.inner, int4=True)
    with pytest.raises(ValueError, match="unknown precision"):
        PrecisionSpace([QuantLayer("a", "conv")], ("fp16",))


# -- quantized sub-networks ---------------------------------------------------------------------------


def test_all_fp32_policy_gives_the_fp32_models_outputs(tiny, qtiny, calibration):
    cfg = qtiny.all_fp32(SMALL)
    ref = tiny.extract(SMALL, calibration=calibration).eval()
    xs = tiny.example_inputs(SMALL, 4, seed=1)
    with torch.no_grad():
        assert torch.allclose(qtiny.extract(cfg)(*xs), ref(*xs), atol=1e-5)
        assert torch.equal(qtiny(*xs), tiny(*xs))  # the forward pass is the FP32 super-network's


def _weight_is_dequantized(model, node):
    producers = {o: n for n in model.graph.node for o in n.output}
    return node.input[1] in producers and producers[node.input[1]].op_type == "DequantizeLinear"


def test_all_int8_model_keeps_accuracy_and_holds_qdq_only_around_int8_layers(tiny, qtiny, measurer):
    arch = tiny.max_config()
    fp32 = measurer.measure(qtiny.all_fp32(arch), ["accuracy_top1"])["accuracy_top1"]
    int8 = measurer.measure(qtiny.all_int8(arch), ["accuracy_top1"])["accuracy_top1"]
    assert fp32 > 95 and int8 > fp32 - 1.5
    mixed = _policy(qtiny, arch, lambda k: "int8" if k % 2 == 0 else "fp32")
    model = onnx.load_from_string(qtiny.extract(mixed).onnx_model)
    kinds = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= kinds
    plans = {qtiny.layout.layers[p.index].name: p.module for p in qtiny.layout.plan(arch)}
    for k, (name, precision) in enumerate(
        zip((q.name for q in qtiny.precision_space.layers), mixed["precision"], strict=True)
    ):
        convs = [
            n for n in model.graph.node if n.op_type in ("Conv", "Gemm") and n.name.startswith(onnx_scope(plans[name]))
        ]
        assert convs, name
        assert all(_weight_is_dequantized(model, n) == (precision == "int8") for n in convs), (k, name)


def test_a_second_policy_of_an_architecture_reuses_its_calibration(tiny, calibration):
    q = quantize_supernet(tiny, calibration=calibration, settings=QuantizationSettings(calib_batches=1))
    q.extract(q.all_int8(SMALL))
    assert (q.cache_info().hits, q.cache_info().misses) == (0, 1)
    q.extract(_policy(q, SMALL, lambda k: "int8" if k < 4 else "fp32"))
    info = q.cache_info()
    assert (info.hits, info.misses, info.architectures) == (1, 1, 1)


def test_same_configuration_and_seed_give_the_same_model(tiny, calibration):
    cfg = None
    models = []
    for _ in range(2):
        q = quantize_supernet(tiny, calibration=calibration, settings=QuantizationSettings(calib_batches=1))
        cfg = q.search_space.sample(seed=5)
        models.append(q.extract(cfg).onnx_model)
    assert models[0] == models[1] and cfg == q.search_space.sample(seed=5)


# -- cheap metrics ---------------------------------------------------------------------------------------


def _hand_count(sub, paths, x):
    """(MACs, parameters) per module path of ``sub``, counted on its modules and a forward pass."""
    macs = dict.fromkeys(paths, 0)

    def owner(name):
        return next(p for p in paths if name == p or name.startswith(p + "."))

    hooks = []
    for name, module in sub.named_modules():
        if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):

            def count(mod, inp, out, name=name):
                if isinstance(mod, torch.nn.Conv2d):
                    k = mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
                    macs[owner(name)] += out.numel() * k
                else:
                    macs[owner(name)] += mod.in_features * mod.out_features

            hooks.append(module.register_forward_hook(count))
    with torch.no_grad():
        sub(x)
    for h in hooks:
        h.remove()
    params = {p: sum(t.numel() for t in sub.get_submodule(p).parameters()) for p in paths}
    return macs, params


def test_model_size_and_bops_follow_a_hand_count(tiny, qtiny, measurer):
    cfg = _policy(qtiny, SMALL, lambda k: "int8" if k % 3 else "fp32")
    plans = qtiny.layout.plan(SMALL)
    sub = tiny.extract(SMALL).eval()
    macs, params = _hand_count(sub, [p.module for p in plans], tiny.example_inputs(SMALL, 1)[0])
    assert [p.macs for p in plans] == [macs[p.module] for p in plans]
    assert [p.params for p in plans] == [params[p.module] for p in plans]
    precision = dict(zip((q.name for q in qtiny.precision_space.layers), cfg["precision"], strict=True))
    bits = {"fp32": 32, "int8": 8}
    by_hand_size = sum(params[p.module] * bits[precision[qtiny.layout.layers[p.index].name]] for p in plans) / 8
    by_hand_bops = sum(
        macs[p.module] * (64 if precision[qtiny.layout.layers[p.index].name] == "int8" else 1024) for p in plans
    )
    got = measurer.measure(cfg, ["model_size_bytes", "bops", "macs"])
    assert got["model_size_bytes"] == math.ceil(by_hand_size) and got["bops"] == by_hand_bops
    assert sum(macs.values()) == got["macs"]  # every MAC of tiny_mbv3 is in a quantizable layer
    fp32 = Measurer(tiny).measure(SMALL, ["model_size_bytes", "bops"])
    assert fp32 == {"model_size_bytes": 4 * sum(params.values()), "bops": 1024 * sum(macs.values())}
    assert precision_costs([], [], 10, 3) == {"model_size_bytes": 12, "bops": 10240}


# -- lookup tables and latency --------------------------------------------------------------------------------


def test_layer_specs_are_keyed_by_precision_and_int8_layers_time_on_onnx_runtime(tiny, qtiny):
    cfg = _policy(qtiny, SMALL, lambda k: "int8" if k == 2 else "fp32")
    fp32_specs, specs = tiny.layer_specs(SMALL), qtiny.layer_specs(cfg)
    assert [s.key for s in specs] == [s.key + ("@int8" if i == 2 else "") for i, s in enumerate(fp32_specs)]
    layer = specs[2].build()
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load_from_string(layer.onnx_model).graph.node)
    from elasticnas.measure import FAST_POLICY

    result = measure_latency(layer, specs[2].input_shape, runtime="onnxruntime", policy=FAST_POLICY)
    assert result.median_ms > 0
    assert measure_latency(qtiny.extract(cfg), qtiny.input_shape(cfg), policy=FAST_POLICY).median_ms > 0


# -- export -----------------------------------------------------------------------------------------------------


def test_qdq_export_scores_the_file_as_the_study_measured_it(qtiny, measurer, tmp_path):
    cfg = _policy(qtiny, SMALL, lambda k: "int8" if k % 2 else "fp32")
    measured = measurer.measure(cfg, ["accuracy_top1"])["accuracy_top1"]
    record = export_subnet(qtiny, cfg, "qdq", tmp_path / "sub.onnx", val_data="digits:val")
    assert record.format == "qdq" and record.max_abs_diff <= record.atol
    assert record.accuracy_top1 == pytest.approx(measured, abs=1e-9)
    model = onnx.load(str(tmp_path / "sub.onnx"))
    assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)
    with pytest.raises(Exception, match="qdq"):
        export_subnet(qtiny, cfg, "onnx", tmp_path / "plain.onnx")


# -- other families ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ofa_mbv3_w10", "ofa_mbv3_w12", "ofa_resnet50"])
def test_ofa_layouts_cover_every_mac_and_parameter_and_follow_the_depths(name):
    net = create_supernet(name, weights="random")
    layout = layout_of(net)
    for cfg in net.search_space.sample_many(6, seed=0) + [net.min_config(), net.max_config()]:
        plans = layout.plan(cfg)
        costs = net.costs(cfg)
        assert sum(p.macs for p in plans) == costs["macs"] and sum(p.params for p in plans) == costs["params"]
        assert [p.index for p in plans] == [k for k, q in enumerate(layout.layers) if q.is_active(cfg)]
        assert len(layout.spec_layers(cfg)) == len(net.layer_specs(cfg))


def test_resnet_layers_own_their_onnx_nodes(tmp_path):
    net = create_supernet("ofa_resnet50", weights="random")
    q = quantize_supernet(net, settings=QuantizationSettings(calib_batches=1, calib_batch_size=1))
    arch = {**net.min_config(), "r": 128}
    cfg = _policy(q, arch, lambda k: "int8" if k % 2 else "fp32")
    model = onnx.load_from_string(q.extract(cfg).onnx_model)
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm")]
    plans = q.layout.plan(arch)
    assert all(any(n.name.startswith(onnx_scope(p.module)) for p in plans) for n in convs)
    int8 = {p.module for p in plans if cfg["precision"][p.index] == "int8"}
    for n in convs:
        inside = any(n.name.startswith(onnx_scope(m)) for m in int8)
        assert _weight_is_dequantized(model, n) == inside, n.name


def _llama():
    transformers = pytest.importorskip("transformers")
    transformers.utils.logging.set_verbosity_error()
    from elasticnas.supernets.hf import HFSupernet

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=61, max_position_embeddings=16, bos_token_id=0, eos_token_id=0, initializer_range=0.2,
    )  # fmt: skip
    return HFSupernet(transformers.LlamaForCausalLM(config), seq_len=8)


def test_transformer_layers_take_int8_and_int4_weight_only():
    net = _llama()
    q = quantize_supernet(
        net, int4=True, settings=QuantizationSettings(calib_batches=1, calib_batch_size=2, int4_block_size=16)
    )
    n_linear = 7
    assert len(q.precision_space.layers) == 3 * n_linear + 1  # 7 linears per block and the LM head
    arch = {**net.max_config(), "depth": 2}
    skipped = net.search_space.layer_order[2]
    cfg = _policy(q, arch, lambda k: ("int8", "int4", "fp32")[k % 3])
    assert all(p == "fp32" for p in cfg["precision"][skipped * n_linear : (skipped + 1) * n_linear])
    sub = q.extract(cfg)
    kinds = {n.op_type for n in onnx.load_from_string(sub.onnx_model).graph.node}
    assert {"MatMulNBits", "QuantizeLinear", "DequantizeLinear"} <= kinds
    xs = net.example_inputs(arch, 2)
    with torch.no_grad():
        ref = net.extract(arch)(*xs)
        assert torch.allclose(q.extract(q.all_fp32(arch))(*xs), ref, atol=1e-4)
        out = sub(*xs)
    assert out.shape == ref.shape and np.corrcoef(out.flatten(), ref.flatten())[0, 1] > 0.95
    costs = q.costs(cfg)
    assert costs["model_size_bytes"] < 4 * costs["params"] and costs["bops"] < 1024 * costs["macs"]


def test_a_quantized_study_exports_each_front_trial_as_it_was_measured(tiny, tmp_path):
    """The user's whole path: a joint architecture x precision search recorded in a study, then Study.export
    rebuilds the quantized super-network from the study alone; each QDQ file scores what the study recorded."""
    from elasticnas import create_study
    from elasticnas.problems import supernet_problem

    q = quantize_supernet(tiny, calibration=Calibration("digits:calib", batches=4, batch_size=64),
                          settings=QuantizationSettings(calib_batches=2))  # fmt: skip
    problem = supernet_problem(q, ["accuracy_top1", "model_size_bytes"], val_data="digits:val",
                               calib_data="digits:calib", calib_batches=4)  # fmt: skip
    study = create_study(problem.space, problem.objectives, storage=f"sqlite:///{tmp_path / 's.db'}", study_name="q")
    study.set_measurement(problem.measurement)
    study.optimize(problem.evaluate, n_evals=3, seed=0, cheap_metrics=problem.cheap_metrics, show_progress=False,
                   initial_configs=[q.all_int8(SMALL)])  # fmt: skip
    assert study.measurement["recipe"]["wrapper"] == "qdq"
    for record in study.pareto_front():
        exported = study.export(record.number, "qdq", tmp_path / f"t{record.number}.onnx")
        assert exported.accuracy_top1 == pytest.approx(exported.recorded_accuracy_top1, abs=1e-9)
    in_memory = quantize_supernet(tiny, calibration=Calibration(resolve_data("digits:calib")))
    with pytest.raises(ElasticNASError, match="calibrated on data held in memory"):
        rebuild_supernet(in_memory.recipe())
