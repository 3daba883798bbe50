import numpy as np
import onnxruntime as ort

import elasticnas as en
from elasticnas.cli import main
from elasticnas.cli._study_commands import _pick_for_export


def test_demo_writes_study_report_table_and_a_working_onnx_model(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n-evals", "4"]) == 0
    printed = capsys.readouterr().out
    assert "exported trial" in printed
    study = en.load_study(f"sqlite:///{out / 'study.db'}", "demo")
    assert study.n_evals == 4
    assert all(0 <= r.metrics["accuracy_top1"] <= 100 and r.metrics["latency_ms"] > 0 for r in study.trials)
    assert "<svg" in (out / "report.html").read_text()
    assert (out / "pareto.csv").read_text().count("\n") == len(study.pareto_front()) + 1
    session = ort.InferenceSession(str(out / "subnet.onnx"), providers=["CPUExecutionProvider"])
    shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
    logits = session.run(None, {session.get_inputs()[0].name: np.zeros(shape, dtype=np.float32)})[0]
    assert logits.shape[-1] == 10


def test_pick_for_export_is_the_fastest_within_one_point():
    def rec(n, acc, lat):
        return en.TrialRecord(number=n, config={}, config_id=str(n), metrics={"accuracy_top1": acc, "latency_ms": lat})

    front = [rec(0, 97.0, 5.0), rec(1, 96.5, 3.0), rec(2, 95.9, 1.0), rec(3, 90.0, 0.5)]
    assert _pick_for_export(front).number == 1
