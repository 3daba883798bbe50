import itertools
import json

import pytest
from toy_supernet import WIDTHS, ToySupernet

from elasticnas.measure import (
    FAST_POLICY,
    LookupTable,
    LUTEntry,
    LUTError,
    build_lut,
    collect_layer_specs,
    list_runtimes,
    lut_error,
)


def _all_keys(net: ToySupernet) -> set[str]:
    keys = set()
    for w, d, r in itertools.product(itertools.product(WIDTHS, repeat=3), (1, 2, 3), (8, 12)):
        keys |= {s.key for s in net.layer_specs({"w": list(w), "d": d, "r": r})}
    return keys


def test_collected_keys_cover_the_whole_space():
    net = ToySupernet()
    specs = collect_layer_specs(net, seed=0)
    assert set(specs) == _all_keys(net)


def test_fixed_choices_restrict_the_collection():
    net = ToySupernet()
    specs = collect_layer_specs(net, fixed={"r": 12}, seed=0)
    assert set(specs) == {k for k in _all_keys(net) if k.endswith("-12")}


def test_given_configs_are_the_only_ones_covered():
    net = ToySupernet()
    cfg = {"w": [8, 16, 32], "d": 2, "r": 8}
    specs = collect_layer_specs(net, configs=[cfg])
    assert list(specs) == ["block-1-8-8", "block-8-16-8", "head-16-8"]


def _table(**entries: float) -> LookupTable:
    return LookupTable(
        supernet="toy_convnet", runtime="onnxruntime", device="cpu", batch_size=1, threads=1, overhead_ms=0.01,
        entries={k: LUTEntry(v, v * 1.1, v * 0.05, 100, (1, 8, 8)) for k, v in entries.items()},
    )


def test_estimate_adds_the_overhead_once():
    lut = _table(**{"block-1-8-8": 0.11, "head-8-8": 0.005})
    # 0.01 overhead + (0.11 - 0.01) + max(0.005 - 0.01, 0)
    assert lut.estimate_ms(["block-1-8-8", "head-8-8"]) == pytest.approx(0.11)
    assert lut.latency_ms(ToySupernet(), {"w": [8, 8, 8], "d": 1, "r": 8}) == pytest.approx(0.11)


def test_missing_layer_and_other_supernet_are_clear_errors():
    lut = _table(**{"block-1-8-8": 0.1})
    with pytest.raises(LUTError, match="not in the lookup table"):
        lut.estimate_ms(["block-1-16-8"])
    other = ToySupernet()
    other.name = "other_net"
    with pytest.raises(LUTError, match="built for 'toy_convnet'"):
        lut.latency_ms(other, {"w": [8, 8, 8], "d": 1, "r": 8})


def test_json_round_trip_and_bad_files(tmp_path):
    lut = _table(a=0.5, b=0.25)
    lut.save(tmp_path / "lut.json")
    back = LookupTable.load(tmp_path / "lut.json")
    assert back == lut
    assert list(tmp_path.iterdir()) == [tmp_path / "lut.json"]  # no temporary file left behind
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(LUTError, match="not valid JSON"):
        LookupTable.load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(LUTError, match="not an elasticnas lookup table"):
        LookupTable.load(tmp_path / "y.json")
    data = lut.to_json()
    del data["entries"]["a"]["median_ms"]
    (tmp_path / "z.json").write_text(json.dumps(data))
    with pytest.raises(LUTError, match="malformed"):
        LookupTable.load(tmp_path / "z.json")
    with pytest.raises(LUTError, match="cannot read"):
        LookupTable.load(tmp_path / "missing.json")


@pytest.mark.parametrize("runtime", list_runtimes())
def test_build_times_every_distinct_layer(runtime):
    net = ToySupernet()
    cfgs = [{"w": [8, 16, 32], "d": 3, "r": 8}, {"w": [8, 16, 8], "d": 2, "r": 8}]
    specs = collect_layer_specs(net, configs=cfgs)
    calls = []
    lut = build_lut(
        net, runtime=runtime, policy=FAST_POLICY, specs=specs, calibrate=0, progress=lambda d, t: calls.append((d, t))
    )
    assert set(lut.entries) == set(specs) and len(lut) == 5
    assert calls == [(i, 5) for i in range(1, 6)]
    assert (lut.scale, lut.calibration_n) == (1.0, 0)
    assert lut.runtime == runtime and lut.threads == 1 and lut.supernet == "toy_convnet"
    assert lut.overhead_ms > 0 and all(e.median_ms > 0 and e.runs >= 10 for e in lut.entries.values())
    assert lut.machine["threads"] == "1"
    for cfg in cfgs:
        assert lut.latency_ms(net, cfg) > lut.overhead_ms


def test_lut_error_report():
    rep = lut_error([1.1, 1.8, 3.0], [1.0, 2.0, 3.0])
    assert rep.n == 3
    assert rep.median_abs_pct_error == pytest.approx(10.0)
    assert rep.max_abs_pct_error == pytest.approx(10.0)
    assert rep.mean_abs_pct_error == pytest.approx(20 / 3)
    assert rep.kendall_tau == pytest.approx(1.0)
    with pytest.raises(LUTError):
        lut_error([1.0], [1.0, 2.0])


def test_scale_is_fitted_on_whole_subnetworks(monkeypatch):
    """Whole networks 25 % slower than the sum of their layers above the overhead: the scale is 1.25."""
    import elasticnas.measure.lut as lut_module
    from elasticnas.measure.latency import LatencyResult

    overhead = 0.01

    def fake_measure(module, shape, **kw):
        if isinstance(module, lut_module._overhead_class()):
            ms = overhead
        elif hasattr(module, "layer_sum"):  # a whole sub-network (see below)
            ms = overhead + 1.25 * module.layer_sum
        else:
            ms = overhead + sum(p.numel() for p in module.parameters()) * 1e-4
        return LatencyResult(ms, ms, 0.0, ms, ms, 30, True, "onnxruntime", "cpu", 1, 1, "thread", 10, 0.1, "default")

    net = ToySupernet()
    extract = net.extract

    def extract_with_sum(cfg):
        module = extract(cfg)
        module.layer_sum = sum(sum(p.numel() for p in s.build().parameters()) * 1e-4 for s in net.layer_specs(cfg))
        return module

    monkeypatch.setattr(lut_module, "measure_latency", fake_measure)
    monkeypatch.setattr(net, "extract", extract_with_sum)
    calls = []
    lut = build_lut(net, fixed={"r": 8}, calibrate=4, seed=3, progress=lambda d, t: calls.append(t))
    assert lut.calibration_n == 4 and lut.scale == pytest.approx(1.25)
    assert set(calls) == {len(lut) + 4}
    assert all(k.endswith("-8") for k in lut.entries)  # fixed applies to the collection and the calibration
    cfg = {"w": [8, 16, 32], "d": 3, "r": 8}
    assert lut.latency_ms(net, cfg) == pytest.approx(fake_measure(extract_with_sum(cfg), None).median_ms)


def test_scale_survives_json_and_old_tables_read_as_unscaled(tmp_path):
    import dataclasses

    lut = dataclasses.replace(_table(a=0.5, b=0.25), scale=1.2, calibration_n=10)
    lut.save(tmp_path / "lut.json")
    assert LookupTable.load(tmp_path / "lut.json") == lut
    assert lut.estimate_ms(["a", "b"]) == pytest.approx(0.01 + 1.2 * (0.49 + 0.24))
    old = lut.to_json()
    old["version"] = 1
    del old["scale"], old["calibration_n"]
    back = LookupTable.from_json(old)
    assert (back.scale, back.calibration_n) == (1.0, 0)
