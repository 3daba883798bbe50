"""export_subnet / load_subnet and the ``elasticnas export`` command."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import onnx
import pytest
import torch

from elasticnas._io import OutputPathError
from elasticnas.cli import main
from elasticnas.errors import CheckpointError, InvalidConfigError
from elasticnas.export import ExportError, ExportRecord, export_subnet, load_subnet
from elasticnas.supernets import create_supernet
from elasticnas.testing.supernets import perturb_supernet

TINY_CFG = {"ks": [7, 5, 3, 7, 5, 3, 7, 5, 3], "e": [6, 4, 3, 6, 4, 3, 6, 4, 3], "d": [3, 2, 1], "r": [28]}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny():
    net = create_supernet("tiny_mbv3")
    perturb_supernet(net, seed=0)
    return net.eval()


def test_pt_export_reloads_exactly_and_restores_the_supernet(tiny, tmp_path: Path) -> None:
    before = tiny.min_config()
    tiny.activate(before)
    record = export_subnet(tiny, TINY_CFG, format="pt", path=tmp_path / "net.pt", recalibrate=False)
    assert isinstance(record, ExportRecord) and record.format == "pt" and record.supernet == "tiny_mbv3"
    assert record.max_abs_diff == 0.0 and record.supernet_diff <= 1e-5
    assert record.input_shape == (1, 28, 28) and record.config == tiny.search_space.validate(TINY_CFG)
    assert (record.macs, record.params) == tuple(tiny.costs(TINY_CFG).values())
    assert tiny.active_config == before and not tiny.training
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.path = "elsewhere"  # type: ignore[misc]
    net = load_subnet(record.path)
    assert net.config == tiny.arch(TINY_CFG) and not net.training
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(net(x), tiny.extract(TINY_CFG)(x))
    assert json.loads(json.dumps(record.to_json()))["config_id"] == tiny.search_space.config_id(TINY_CFG)


def test_safetensors_folder_reloads_exactly_and_replaces_only_its_own_folders(tiny, tmp_path: Path) -> None:
    out = tmp_path / "net"
    record = export_subnet(tiny, TINY_CFG, "safetensors", out, recalibrate=False)
    assert record.max_abs_diff == 0.0
    assert sorted(p.name for p in out.iterdir()) == ["elasticnas.json", "model.safetensors"]
    net = load_subnet(out)
    assert net.elasticnas_info["config"] == tiny.search_space.validate(TINY_CFG)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(net(x), tiny.extract(TINY_CFG)(x))
    export_subnet(tiny, tiny.min_config(), "safetensors", out, recalibrate=False)  # its own folder: replaced
    assert load_subnet(out).elasticnas_info["config"] == tiny.min_config()
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"x")
    with pytest.raises(OutputPathError, match="did not write"):
        export_subnet(tiny, TINY_CFG, "safetensors", photos, recalibrate=False)
    assert [p.name for p in photos.iterdir()] == ["cat.jpg"]
    with pytest.raises(CheckpointError, match="not an elasticnas export folder"):
        load_subnet(photos)
    with pytest.raises(ExportError, match="Hugging Face super-networks"):
        export_subnet(tiny, TINY_CFG, "hf", tmp_path / "hf", recalibrate=False)
    assert not (tmp_path / "hf").exists()


def test_onnx_export_matches_pytorch_in_onnxruntime(tiny, tmp_path: Path) -> None:
    record = export_subnet(tiny, TINY_CFG, "onnx", tmp_path / "net.onnx", recalibrate=False)
    model = onnx.load(record.path)
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["input"]
    assert 0.0 <= record.max_abs_diff <= 1e-4
    import onnxruntime as ort

    session = ort.InferenceSession(record.path, providers=["CPUExecutionProvider"])
    x = torch.randn(5, 1, 28, 28)  # a batch size other than the exported one
    (y,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        ref = tiny.extract(TINY_CFG)(x)
    assert ref.abs().max() > 1e-2
    assert float((torch.from_numpy(y) - ref).abs().max()) <= 1e-4


def test_export_errors_are_clear(tiny, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="unknown export format 'tflite'"):
        export_subnet(tiny, TINY_CFG, "tflite", tmp_path / "x")  # type: ignore[arg-type]
    with pytest.raises(ExportError, match="output path"):
        export_subnet(tiny, TINY_CFG, "pt")
    with pytest.raises(InvalidConfigError):
        export_subnet(tiny, {**TINY_CFG, "r": 64}, "pt", tmp_path / "x.pt", recalibrate=False)
    with pytest.raises(ExportError, match="BatchNorm.*calibration_data=.*recalibrate=False"):
        export_subnet(tiny, TINY_CFG, "pt", tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
    not_a_subnet = tmp_path / "weights.pt"
    torch.save({"state_dict": tiny.state_dict()}, not_a_subnet)
    with pytest.raises(CheckpointError, match="not an elasticnas sub-network file"):
        load_subnet(not_a_subnet)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_subnet(tmp_path / "missing.pt")


def test_cli_export_both_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = tmp_path / "tiny.pt"
    net = create_supernet("tiny_mbv3", seed=3)
    perturb_supernet(net, seed=3)
    torch.save(net.state_dict(), weights)
    cfg_file = tmp_path / "cfg.jsonl"
    cfg_file.write_text(json.dumps(TINY_CFG) + "\n" + json.dumps(net.min_config()) + "\n")
    out_pt = tmp_path / "sub.pt"
    assert main(["export", "--supernet", "tiny_mbv3", "--weights", str(weights), "--config", f"@{cfg_file}",
                 "--format", "pt", "--out", str(out_pt), "--no-recalibrate"]) == 0  # fmt: skip
    assert "max |pt - pytorch| = 0.00e+00" in capsys.readouterr().out
    loaded = load_subnet(out_pt)
    x = torch.randn(2, 1, 28, 28)
    net.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), net.extract(TINY_CFG)(x))
    out_onnx = tmp_path / "sub.onnx"
    assert main(["export", "--supernet", "tiny_mbv3", "--config", json.dumps(TINY_CFG), "--format", "onnx",
                 "--out", str(out_onnx)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert out_onnx.stat().st_size > 0 and "onnx - pytorch" in printed
    # tiny_mbv3 has built-in data: recalibrated on its calibration split and scored on its validation split
    assert "re-estimated on 50 calibration batches" in printed or "re-estimated on" in printed
    assert "accuracy of the exported file on the validation data" in printed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--supernet", "nope", "--config", "{}"], "unknown supernet 'nope'"),
        (["--supernet", "tiny_mbv3", "--config", "{not json"], "--config is not valid JSON"),
        (["--supernet", "tiny_mbv3", "--config", "[1, 2]"], "must be a JSON object"),
        (["--supernet", "tiny_mbv3", "--config", "@/no/such/file.json"], "cannot read configuration file"),
        (["--supernet", "tiny_mbv3", "--config", json.dumps({**TINY_CFG, "d": [9, 9, 9]})], "key 'd' position 0: 9"),
        (["--supernet", "tiny_mbv3", "--weights", "/no/such.pt", "--config", json.dumps(TINY_CFG)], "does not exist"),
    ],
)
def test_cli_export_user_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["export", *args, "--out", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("elasticnas export: error:") and "\n" not in err and message in err
    assert not (tmp_path / "x.pt").exists()
