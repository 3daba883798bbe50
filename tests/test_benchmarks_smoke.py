"""Every benchmark's smoke mode runs, so the benchmarks never rot (full runs: benchmarks/README.md)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize(
    "script",
    [
        "search_efficiency.py",
        "search_ceiling.py",
        "overhead.py",
        "latency.py",
        "gpu_check.py",
        "elastic_transformers.py",
        "many_targets.py",
    ],
)
def test_smoke_mode_runs_and_writes_its_results(script, tmp_path):
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--smoke", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result  # numbers were written


def _doc(command: str, runs: list[dict]) -> dict:
    return {"command": command, "wall_seconds": 1.0, "budget": 100, "budgets": {r["method"]: 100 for r in runs},
            "seeds": 1, "methods": sorted({r["method"] for r in runs}), "summary": {}, "runs": runs}


def test_merge_keeps_every_run_and_later_files_win(tmp_path):
    run = lambda method, hv: {"problem": "p", "method": method, "seed": 0, "seconds": 0.1, "hv": hv}  # noqa: E731
    rising = [i / 100 for i in range(1, 101)]
    first = _doc("first", [run("random", rising), run("nsga2", [0.1] * 100)])
    second = _doc("second", [run("nsga2", [0.6] * 100)])
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path, doc in zip(paths, (first, second), strict=True):
        path.write_text(json.dumps(doc))
    out = tmp_path / "merged.json"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "search_efficiency.py"), "--merge", *map(str, paths), "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    merged = json.loads(out.read_text())
    assert merged["command"] == ["first", "second"]
    run_lines = [line for line in out.read_text().splitlines() if line.lstrip().startswith('{"problem"')]
    assert [json.loads(line.rstrip(",")) for line in run_lines] == merged["runs"]  # one line per run
    by_method = {r["method"]: r["hv"] for r in merged["runs"]}
    assert by_method == {"random": rising, "nsga2": [0.6] * 100}
    reach = merged["summary"]["p"]["evals_to_reach"]["nsga2@100"]
    assert reach["target_hv_fraction"] == 0.6 and reach["methods"]["random"]["median"] == 60


def test_the_runs_a_stopped_benchmark_finished_are_kept_and_merge(tmp_path):
    """Each finished run is appended to OUT.runs.jsonl at once; a benchmark killed later leaves them, and
    --merge reads them like a results file."""
    out = tmp_path / "result.json"
    argv = [sys.executable, str(BENCHMARKS / "search_efficiency.py"), "--problems", "hwgpt_s_gpu", "--methods",
            "random", "--seeds", "3", "--budget", "30", "--workers", "1", "--out", str(out)]
    proc = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    partial = tmp_path / "result.runs.jsonl"
    first = proc.stdout.readline()  # printed after the first run was written
    proc.kill()
    proc.wait()
    assert "seed  0" in first and not out.exists()
    kept = [json.loads(line) for line in partial.read_text().splitlines()]
    assert [(r["method"], r["seed"], len(r["hv"])) for r in kept] == [("random", 0, 30)]
    merged_path = tmp_path / "merged.json"
    proc2 = subprocess.run([sys.executable, str(BENCHMARKS / "search_efficiency.py"), "--merge", str(partial), "--out",
                            str(merged_path)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc2.returncode == 0, proc2.stderr[-2000:]
    assert json.loads(merged_path.read_text())["runs"] == kept


def test_beta_optimistic_and_offspring_draws_reach_our_searcher_and_name_their_runs(tmp_path):
    """``--beta`` runs ours with that optimism, ``--optimistic`` with the optimistic improvement instead of the
    expected one, ``--offspring-draws 1`` with one draw per pool generation, each under its own name; the initial
    design depends on none of them."""

    def run(*extra: str) -> dict:
        out = tmp_path / f"run{''.join(extra)}.json"
        argv = [sys.executable, str(BENCHMARKS / "search_efficiency.py"), "--problems", "hwgpt_s_gpu", "--methods",
                "predicted_hvi", "--seeds", "1", "--budget", "35", "--workers", "1", "--out", str(out), *extra]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        (result,) = json.loads(out.read_text())["runs"]
        return result

    default, beta, optimistic, one_draw = run(), run("--beta", "4"), run("--optimistic"), run("--offspring-draws", "1")
    assert [r["method"] for r in (default, beta, optimistic, one_draw)] == [
        "predicted_hvi", "predicted_hvi/beta4", "predicted_hvi/optimistic", "predicted_hvi/draws1"
    ]
    for other in (beta, optimistic, one_draw):
        assert default["hv"][:20] == other["hv"][:20] and default["hv"] != other["hv"]
