"""The quantization benchmark's smoke mode runs and writes its results (full run: benchmarks/README.md)."""

import json
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "quantization.py"


def test_smoke_mode_runs_and_writes_its_results(tmp_path):
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARK), "--smoke", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert set(result["part1_tiny_digits"]["summary"]["hypervolume_accuracy_latency_ms"]) == {
        "joint", "fp32_then_int8", "fp32"
    }  # fmt: skip
    assert result["part2_latency"]["int8_over_fp32_latency_by_layer_type"]
