"""Optional dependencies: what needs numba or onnxscript says so in one line when it is missing.

A missing package is simulated by ``sys.modules[name] = None``, which makes ``import name`` raise
ImportError exactly as an environment without it does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import elasticnas as en
from elasticnas.cli import main
from elasticnas.export import ExportError, export_subnet
from elasticnas.measure.latency import MeasurementError, export_onnx
from elasticnas.supernets import create_supernet

NUMBA_LINE = "searcher 'agemoea' needs numba: pip install 'elasticnas[agemoea]'"
ONNXSCRIPT_HINT = "the fallback torch.export-based exporter needs onnxscript: pip install 'elasticnas[onnxscript]'"


@pytest.fixture
def no_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numba", None)


@pytest.fixture
def torchscript_exporter_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The TorchScript ONNX exporter fails (as when it refuses an op, or is gone); the other one is untouched."""
    real_export = torch.onnx.export

    def export(*args: object, dynamo: bool = True, **kwargs: object) -> object:
        if not dynamo:
            raise RuntimeError("Unsupported: ONNX export of operator foo\n(second line of the report)")
        return real_export(*args, dynamo=dynamo, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", export)


def test_agemoea_without_numba_is_one_clear_error(no_numba: None) -> None:
    space = en.SearchSpace({"a": en.Choice([0, 1, 2], size=4)})
    study = en.create_study(space, {"x": "minimize", "y": "minimize"})
    with pytest.raises(en.ElasticNASError) as info:
        study.optimize(lambda c: {"x": sum(c["a"]), "y": -sum(c["a"])}, n_evals=4, searcher="agemoea", seed=0,
                       show_progress=False)
    assert str(info.value) == NUMBA_LINE
    assert len(study.trials) == 0


def test_agemoea_without_numba_on_the_command_line(no_numba: None, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["search", "--problem", "ofa_mbv3_note10", "--storage", f"sqlite:///{tmp_path / 's.db'}",
                   "--study", "s", "--quiet", "--n-evals", "4", "--searcher", "agemoea"])
    assert status == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"elasticnas search: error: {NUMBA_LINE}"]


def test_other_searchers_run_without_numba(no_numba: None) -> None:
    space = en.SearchSpace({"a": en.Choice([0, 1, 2], size=4)})
    study = en.create_study(space, {"x": "minimize", "y": "minimize"})
    study.optimize(lambda c: {"x": sum(c["a"]), "y": -sum(c["a"])}, n_evals=6, searcher="nsga2", seed=0,
                   show_progress=False)
    assert len(study.trials) == 6


def test_fallback_onnx_exporter_without_onnxscript_is_one_line(
    torchscript_exporter_refuses: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    reason = "the TorchScript ONNX exporter failed (RuntimeError: Unsupported: ONNX export of operator foo) and "
    with pytest.raises(MeasurementError) as measured:
        export_onnx(torch.nn.Linear(3, 2), torch.randn(1, 3), tmp_path / "m.onnx")
    assert str(measured.value) == reason + ONNXSCRIPT_HINT
    net = create_supernet("tiny_mbv3")
    with pytest.raises(ExportError) as exported:
        export_subnet(net, net.search_space.sample(seed=0), "onnx", tmp_path / "net.onnx", recalibrate=False)
    assert str(exported.value) == reason + ONNXSCRIPT_HINT
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "net.onnx").exists()


def test_fallback_onnx_exporter_runs_with_onnxscript(torchscript_exporter_refuses: None, tmp_path: Path) -> None:
    pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install 'elasticnas[onnxscript]')")
    import onnxruntime as ort

    model, x = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU()).eval(), torch.randn(2, 3)
    export_onnx(model, x, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), model(x).detach(), rtol=1e-5, atol=1e-6)
