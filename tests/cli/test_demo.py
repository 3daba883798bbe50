import contextlib
import io
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import elasticnas as en
from elasticnas.cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One ``elasticnas demo`` run (6 evaluations): its folder and what it printed."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["demo", "--out", str(out), "--n-evals", "6", "--seed", "1"]) == 0
    return out, printed.getvalue()


def test_demo_writes_study_report_table_and_a_working_onnx_model(demo):
    out, printed = demo
    assert "exported trial" in printed
    study = en.load_study(f"sqlite:///{out / 'study.db'}", "demo")
    assert study.n_evals == 6
    chosen = study.select(max_drop={"accuracy_top1": 1.0}, optimize="latency_ms")
    assert f"exported trial {chosen.number} " in printed
    assert all(0 <= r.metrics["accuracy_top1"] <= 100 and r.metrics["latency_ms"] > 0 for r in study.trials)
    assert "<svg" in (out / "report.html").read_text()
    assert (out / "pareto.csv").read_text().count("\n") == len(study.pareto_front()) + 1
    session = ort.InferenceSession(str(out / "subnet.onnx"), providers=["CPUExecutionProvider"])
    shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
    logits = session.run(None, {session.get_inputs()[0].name: np.zeros(shape, dtype=np.float32)})[0]
    assert logits.shape[-1] == 10


def test_every_trial_on_the_demo_front_exports_with_its_recorded_accuracy(demo, tmp_path):
    """The user's whole path: demo study -> each Pareto trial exported to ONNX -> scored in ONNX Runtime."""
    out, _ = demo
    study = en.load_study(f"sqlite:///{out / 'study.db'}", "demo")
    front = study.pareto_front()
    assert len(front) >= 2
    for record in front:
        exported = study.export(record.number, "onnx", tmp_path / f"t{record.number}.onnx")
        assert exported.recorded_accuracy_top1 == record.metrics["accuracy_top1"]
        assert abs(exported.accuracy_top1 - record.metrics["accuracy_top1"]) <= 0.1, record.number
