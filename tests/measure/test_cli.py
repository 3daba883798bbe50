import csv
import json

import pytest
from toy_supernet import ToySupernet

from elasticnas.cli import main
from elasticnas.errors import ElasticNASError
from elasticnas.measure import LookupTable
from elasticnas.supernets import SUPERNETS, create_supernet, register_supernet


@pytest.fixture(scope="module", autouse=True)
def toy_registered():
    register_supernet("toy_convnet", ToySupernet)
    yield
    SUPERNETS._entries.pop("toy_convnet")


def _write_configs(path, configs):
    path.write_text("".join(json.dumps(c) + "\n" for c in configs))
    return str(path)


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_costs_of_many_configs_keep_input_order(tmp_path, capsys):
    net = create_supernet("tiny_mbv3")
    configs = net.search_space.sample_many(50, 3)
    src = _write_configs(tmp_path / "c.jsonl", configs[:25] + [{}] * 0 + configs[25:])
    out = tmp_path / "o.csv"
    assert main(["measure", "--supernet", "tiny_mbv3", "--configs", src, "--metrics", "macs,params",
                 "--out", str(out), "--quiet"]) == 0
    rows = _rows(out)
    assert list(rows[0]) == ["index", "config_id", "macs", "params", "config"]
    assert [int(r["index"]) for r in rows] == list(range(50))
    for row, cfg in zip(rows, configs, strict=True):
        assert json.loads(row["config"]) == net.search_space.validate(cfg)
        assert row["config_id"] == net.search_space.config_id(cfg)
        assert int(row["macs"]) == net.costs(cfg)["macs"] and int(row["params"]) == net.costs(cfg)["params"]
    assert "wrote 50 rows" in capsys.readouterr().out


def test_latency_spread_columns_sit_beside_the_median(tmp_path):
    src = _write_configs(tmp_path / "c.jsonl", [{"w": [8, 8, 8], "d": 1, "r": 8}, {"w": [32, 32, 32], "d": 3, "r": 12}])
    out = tmp_path / "o.csv"
    assert main(["measure", "--supernet", "toy_convnet", "--configs", src, "--metrics", "latency_ms,params",
                 "--runtime", "onnxruntime", "--budget-s", "0.1", "--batch-size", "2", "--out", str(out),
                 "--quiet"]) == 0
    rows = _rows(out)
    assert list(rows[0])[2:7] == ["latency_ms", "latency_ms_p90", "latency_ms_iqr", "latency_ms_runs", "params"]
    for r in rows:
        assert 0 < float(r["latency_ms"]) <= float(r["latency_ms_p90"]) and int(r["latency_ms_runs"]) >= 3


def test_interleave_measures_latency_in_groups(tmp_path, monkeypatch):
    from elasticnas.measure import Measurer

    groups = []
    original = Measurer.measure_latencies

    def spy(self, configs, rounds=5):
        groups.append(len(configs))
        return original(self, configs, rounds)

    monkeypatch.setattr(Measurer, "measure_latencies", spy)
    configs = [
        {"w": [8, 8, 8], "d": 1, "r": 8},
        {"w": [32, 32, 32], "d": 3, "r": 12},
        {"w": [16, 16, 16], "d": 2, "r": 8},
    ]
    src = _write_configs(tmp_path / "c.jsonl", configs)
    out = tmp_path / "o.csv"
    assert main(["measure", "--supernet", "toy_convnet", "--configs", src, "--metrics", "latency_ms",
                 "--budget-s", "0.1", "--interleave", "2", "--out", str(out), "--quiet"]) == 0
    assert groups == [2, 1]
    rows = _rows(out)
    assert len(rows) == 3 and all(float(r["latency_ms"]) > 0 for r in rows)
    assert float(rows[1]["latency_ms"]) > float(rows[0]["latency_ms"])  # the big one is slower


def test_measurer_serves_interleaved_latencies():
    from elasticnas.measure import FAST_POLICY, Measurer

    m = Measurer(create_supernet("toy_convnet"), policy=FAST_POLICY, threads=1)
    cfgs = [{"w": [8, 8, 8], "d": 1, "r": 8}, {"w": [32, 32, 32], "d": 3, "r": 12}]
    results = m.measure_latencies(cfgs, rounds=2)
    assert [m.latency(m.validate(c)) for c in cfgs] == results  # served, not measured again
    assert m.latency(m.validate(cfgs[0])) is results[0]


def test_lut_build_then_measure_with_it(tmp_path):
    lut_path = tmp_path / "lut.json"
    assert main(["lut", "build", "--supernet", "toy_convnet", "--runtime", "torch", "--budget-s", "0.03",
                 "--out", str(lut_path), "--quiet"]) == 0
    lut = LookupTable.load(lut_path)
    assert lut.supernet == "toy_convnet" and lut.runtime == "torch" and len(lut) == 30
    cfg = {"w": [16, 8, 32], "d": 3, "r": 12}
    out = tmp_path / "o.csv"
    src = _write_configs(tmp_path / "c.jsonl", [cfg])
    assert main(["measure", "--supernet", "toy_convnet", "--configs", src, "--metrics", "latency_lut_ms",
                 "--lut", str(lut_path), "--out", str(out), "--quiet"]) == 0
    assert float(_rows(out)[0]["latency_lut_ms"]) == pytest.approx(lut.latency_ms(ToySupernet(), cfg), rel=1e-9)


def test_accuracy_on_image_folders(tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("a", "b", "c"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(4):
                Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8)).save(
                    tmp_path / split / cls / f"{i}.png"
                )
    src = _write_configs(tmp_path / "c.jsonl", [{"w": [8, 8, 8], "d": 1, "r": 8}, {"w": [16, 8, 8], "d": 2, "r": 12}])
    out = tmp_path / "o.csv"
    assert main(["measure", "--supernet", "toy_convnet", "--configs", src, "--out", str(out), "--quiet",
                 "--metrics", "accuracy_top1,accuracy_top5,loss", "--val-data", str(tmp_path / "val"),
                 "--calib-data", str(tmp_path / "train"), "--calib-batches", "1"]) == 0
    for row in _rows(out):
        top1, top5 = float(row["accuracy_top1"]), float(row["accuracy_top5"])
        grid = {100 * k / 12 for k in range(13)}  # 12 validation images
        assert top1 in grid and top5 in grid and top1 <= top5
        assert float(row["loss"]) > 0


@pytest.mark.parametrize(
    "lines, extra, message",
    [
        (['{"w": [8, 8, 8], "d": 1, "r": 8}', "{oops"], [], "c.jsonl line 2 is not valid JSON"),
        (['{"w": [8, 8], "d": 1, "r": 8}'], [], "c.jsonl line 1: key 'w' takes a list of 3 values"),
        (['{"w": [8, 8, 8], "d": 1, "r": 8}'], ["--metrics", "macs,flops"], "unknown metric 'flops'"),
        (['{"w": [8, 8, 8], "d": 1, "r": 8}'], ["--metrics", "latency_lut_ms"], "needs a lookup table"),
        (['{"w": [8, 8, 8], "d": 1, "r": 8}'], ["--metrics", "accuracy_top1"], "validation data"),
        (['{"w": [8, 8, 8], "d": 1, "r": 8}'], ["--device", "gpu"], "unknown device"),
        (['{"w": [8, 8, 8], "d": 1, "r": 8}'], ["--lut", "missing.json", "--metrics", "macs"], "cannot read lookup"),
        ([""], [], "holds no configurations"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_csv(tmp_path, capsys, lines, extra, message):
    src = tmp_path / "c.jsonl"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "o.csv"
    out.write_text("previous results\n")
    code = main(["measure", "--supernet", "toy_convnet", "--configs", str(src), "--out", str(out), "--quiet",
                 "--metrics", "macs", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1 and err.startswith("elasticnas measure: error:")
    assert out.read_text() == "previous results\n"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl", "o.csv"]  # no temporary file left


def test_missing_configs_file_and_unknown_supernet(tmp_path, capsys):
    assert main(["measure", "--supernet", "toy_convnet", "--configs", str(tmp_path / "nope.jsonl"),
                 "--out", str(tmp_path / "o.csv")]) == 2
    assert "cannot read configs file" in capsys.readouterr().err
    assert main(["measure", "--supernet", "nonet", "--configs", "x", "--out", str(tmp_path / "o.csv")]) == 2
    assert "unknown supernet 'nonet'" in capsys.readouterr().err


@pytest.mark.parametrize("stop", [KeyboardInterrupt, ElasticNASError], ids=["ctrl-c", "error"])
def test_stop_midway_keeps_finished_rows_only_after_ctrl_c(tmp_path, monkeypatch, capsys, stop):
    from elasticnas.measure import Measurer

    calls = {"n": 0}
    original = Measurer.measure

    def flaky(self, cfg, metrics):
        calls["n"] += 1
        if calls["n"] == 3:
            raise stop("stopped")
        return original(self, cfg, metrics)

    monkeypatch.setattr(Measurer, "measure", flaky)
    src = _write_configs(tmp_path / "c.jsonl", [{"w": [8, 8, 8], "d": 1, "r": 8}] * 5)
    out = tmp_path / "o.csv"
    status = main(["measure", "--supernet", "toy_convnet", "--configs", src, "--metrics", "macs",
                   "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    if stop is KeyboardInterrupt:  # the two finished rows are written, and the message says so
        assert status == 130
        assert err == [f"elasticnas measure: interrupted; the 2 of 5 sub-networks measured so far are written to {out}"]
        assert [row["index"] for row in csv.DictReader(out.open())] == ["0", "1"]
    else:  # an error: nothing written
        assert status == 2 and err == ["elasticnas measure: error: stopped"]
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl"] + (["o.csv"] if out.exists() else [])


def test_data_specs(tmp_path):
    from elasticnas.data import list_builtin_datasets
    from elasticnas.data._spec import resolve_data
    from elasticnas.errors import ElasticNASError

    assert resolve_data(None) is None
    assert resolve_data(str(tmp_path)) == str(tmp_path)  # an existing folder is an image folder
    with pytest.raises(ElasticNASError, match="neither an existing image folder"):
        resolve_data(str(tmp_path / "missing"))
    with pytest.raises(ElasticNASError, match="unknown split 'test'"):
        resolve_data("digits:test")
    if "digits" not in list_builtin_datasets():
        pytest.skip("no built-in digits dataset in this installation")
    x, y = resolve_data("digits:val")
    assert len(x) == len(y) > 0 and x.dim() == 4
