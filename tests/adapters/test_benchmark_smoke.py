"""The adapter benchmark's smoke mode runs and writes its numbers (full run: benchmarks/README.md)."""

import json
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "adapters.py"


def test_adapters_benchmark_smoke_mode(tmp_path: Path) -> None:
    out = tmp_path / "adapters.json"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARK), "--smoke", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    hv = result["summary"]["hypervolume"]
    assert set(hv) == {"predicted_hvi_median", "nsga2_median", "fixed_rank_lora", "shears_heuristic"}
    assert all(v >= 0 for v in hv.values())
    assert set(result["fixed_rank_lora"]) == {"2", "4", "8"}
