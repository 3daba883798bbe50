import pytest
import torch
from toy_supernet import ToySupernet

import elasticnas as en
from elasticnas.errors import ElasticNASError, UnknownNameError
from elasticnas.measure import (
    FAST_POLICY,
    Measurer,
    Metric,
    build_lut,
    collect_layer_specs,
    get_metric,
    list_metrics,
    objectives,
    parse_metrics,
    register_metric,
)
from elasticnas.measure.metrics import METRICS

REQUIRED = {"accuracy_top1", "accuracy_top5", "loss", "macs", "params", "latency_ms", "latency_lut_ms",
            "latency_note10_ms", "peak_memory_mb", "perplexity", "decode_latency_ms", "params_non_embedding"}
TOKEN_ONLY = {"perplexity", "decode_latency_ms", "params_non_embedding"}  # tested in test_token_metrics.py
ADAPTER_ONLY = {"adapter_params", "latency_merged_ms", "peak_memory_merged_mb"}  # tested in tests/adapters
CFG = {"w": [16, 8, 32], "d": 3, "r": 8}


def test_the_issue_metrics_are_registered():
    assert REQUIRED <= set(list_metrics())
    assert set(list_metrics(cheap=True)) | set(list_metrics(cheap=False)) == set(list_metrics())
    assert {"macs", "params", "params_non_embedding", "latency_lut_ms", "latency_note10_ms"} <= set(
        list_metrics(cheap=True)
    )
    assert {"accuracy_top1", "latency_ms", "peak_memory_mb", "perplexity", "decode_latency_ms"} <= set(
        list_metrics(cheap=False)
    )


@pytest.mark.parametrize("name", list_metrics())
def test_every_metric_is_well_formed(name):
    m = get_metric(name)
    assert m.name == name and m.columns[0] == name
    assert m.direction in ("minimize", "maximize") and isinstance(m.cheap, bool)
    assert m.objective == en.Objective(name, m.direction)
    assert m.description


@pytest.fixture(scope="module")
def measurer():
    net = ToySupernet()
    gen = torch.Generator().manual_seed(0)
    data = (torch.randn(40, 1, 8, 8, generator=gen), torch.randint(0, 10, (40,), generator=gen))
    lut = build_lut(net, runtime="onnxruntime", policy=FAST_POLICY, specs=collect_layer_specs(net, configs=[CFG]))
    return Measurer(net, runtime="onnxruntime", policy=FAST_POLICY, val_data=data, calib_data=data,
                    calib_batches=2, eval_batch_size=16, lut=lut)


@pytest.mark.parametrize(
    "name", [n for n in list_metrics() if n != "latency_note10_ms" and n not in TOKEN_ONLY | ADAPTER_ONLY]
)
def test_every_metric_measures_the_toy_supernet(measurer, name):
    values = measurer.measure(CFG, [name])
    assert list(values) == list(get_metric(name).columns)
    assert all(isinstance(v, float) and v == v for v in values.values())


def test_values_agree_with_their_sources(measurer):
    v = measurer.measure(CFG, "macs,params,accuracy_top1,accuracy_top5,latency_ms,latency_lut_ms")
    costs = measurer.supernet.costs(CFG)
    assert v["macs"] == costs["macs"] and v["params"] == costs["params"]
    assert 0 <= v["accuracy_top1"] <= v["accuracy_top5"] <= 100
    assert v["latency_ms"] <= v["latency_ms_p90"]
    assert v["latency_lut_ms"] == pytest.approx(measurer.lut.latency_ms(measurer.supernet, CFG))
    # the cached result is reused for the same configuration: identical numbers
    assert measurer.measure(CFG, ["latency_ms"])["latency_ms"] == v["latency_ms"]


def test_missing_requirements_fail_before_measuring():
    bare = Measurer(ToySupernet())
    for name, message in [("accuracy_top1", "validation data"), ("loss", "validation data"),
                          ("latency_lut_ms", "lookup table"), ("latency_note10_ms", "ofa_mbv3_w12"),
                          ("perplexity", "causal language models"), ("decode_latency_ms", "causal language models"),
                          ("params_non_embedding", "not counted by super-network 'toy_convnet'")]:
        with pytest.raises(ElasticNASError, match=message):
            bare.check([name])
    assert [m.name for m in bare.check("macs,latency_ms")] == ["macs", "latency_ms"]


def test_parse_metrics():
    assert [m.name for m in parse_metrics(" macs, params ,macs")] == ["macs", "params"]
    assert [m.name for m in parse_metrics("top1")] == ["accuracy_top1"]
    with pytest.raises(UnknownNameError, match="choose one of"):
        parse_metrics("macs,flops")
    with pytest.raises(ElasticNASError):
        parse_metrics(" , ")
    assert objectives("accuracy_top1,latency_ms") == {"accuracy_top1": "maximize", "latency_ms": "minimize"}


def test_register_a_custom_metric():
    metric = Metric("depth_test_only", "minimize", True, lambda m, cfg: {"depth_test_only": float(cfg["d"])},
                    description="number of blocks")
    register_metric(metric)
    try:
        assert "depth_test_only" in list_metrics(cheap=True)
        assert Measurer(ToySupernet()).measure(CFG, ["depth_test_only"]) == {"depth_test_only": 3.0}
        with pytest.raises(ValueError, match="already registered"):
            register_metric(metric)
    finally:
        METRICS._entries.pop("depth_test_only")


def test_measurer_drives_a_study():
    net = ToySupernet()
    m = Measurer(net, policy=FAST_POLICY)
    study = en.create_study(net.search_space, objectives("params,latency_ms"))
    study.optimize(m.evaluator("params,latency_ms"), n_evals=3, searcher="random", seed=0,
                   cheap_metrics=m.cheap_metrics(["params"]), show_progress=False)
    assert len(study.trials) == 3
    for t in study.trials:
        assert t.metrics["params"] == net.costs(t.config)["params"] and t.metrics["latency_ms"] > 0
    assert set(m.cheap_metrics()) == {"macs", "params"}


def test_note10_latency_of_ofa_w12():
    from elasticnas.measure.ofa_lut import OFALookupTable
    from elasticnas.supernets import create_supernet

    net = create_supernet("ofa_mbv3_w12")
    cfgs = [dict(net.search_space.sample(s), r=r) for s, r in ((0, 160), (1, 224))]
    m = Measurer(net)
    table = OFALookupTable.load()
    for cfg in cfgs:
        assert m.measure(cfg, ["latency_note10_ms"])["latency_note10_ms"] == pytest.approx(table.latency_ms(cfg))
    with pytest.raises(ElasticNASError, match="latency_note10_ms"):
        m.measure(dict(cfgs[0], r=164), ["latency_note10_ms"])  # no published table at r=164
