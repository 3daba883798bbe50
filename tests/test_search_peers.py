"""The benchmark-only peer searchers (benchmarks/search_peers.py): a short run gives a full, monotone hypervolume
trace, and the same seed gives the same trace. Peers whose libraries this interpreter lacks are skipped (the main
venv has Optuna only; Syne Tune and BoTorch live in /work/st-venv)."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def peers() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("search_peers", BENCHMARKS / "search_peers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("method", ["optuna_gp", "syne_morea", "syne_ehvi", "botorch_qnehvi"])
def test_a_peer_run_is_a_full_monotone_trace_and_a_seed_repeats_it(peers: ModuleType, method: str) -> None:
    missing = peers.missing_libraries(method)
    if missing:
        pytest.skip(f"{method} needs {', '.join(missing)}")
    first = peers.run_peer("hwgpt_s_gpu", method, 3, 11)  # 10 random start-up trials, then the model
    assert set(first) == {"problem", "method", "seed", "seconds", "hv"}
    hv = np.array(first["hv"])
    assert len(hv) == 11 and np.all(np.diff(hv) >= 0) and 0 <= hv[0] and hv[-1] <= 1
    assert peers.run_peer("hwgpt_s_gpu", method, 3, 11)["hv"] == first["hv"]


def test_a_method_without_its_library_is_refused_with_the_venv_to_use(
    peers: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(peers.PEERS, "optuna_gp", (("no_such_module_xyz",), "/some/venv"))
    assert peers.main(["--methods", "optuna_gp", "--out", "unused.json"]) == 2
    assert "/some/venv/bin/python" in capsys.readouterr().err
