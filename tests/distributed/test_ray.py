"""Ray evaluation workers: a local cluster of 2 workers; a worker killed mid-evaluation is replaced and retried."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'elasticnas[ray]')")

import elasticnas as en  # noqa: E402
from elasticnas.cli import main  # noqa: E402
from elasticnas.distributed import WorkerPool, optimize_parallel  # noqa: E402
from elasticnas.testing.searchers import toy_metrics, toy_space  # noqa: E402

OBJ = {"accuracy": "maximize", "latency_ms": "minimize"}
PROBLEM = "ofa_mbv3_note10"


class SlowToyEvaluator:
    """Factory: each worker notes its construction; evaluations sleep and report pid and times as metrics.

    Behaviour is steered by files in ``control``, so one pool of workers serves every test:
    ``delay`` (seconds per evaluation), ``fail_r`` (raise ValueError for that resolution), and
    ``kill`` (the first evaluation to see it renames it to ``killed``, writes its config id there
    and SIGKILLs its worker in the middle of the evaluation).
    """

    def __init__(self, control: str) -> None:
        self.control = control

    def __call__(self):
        control = Path(self.control)
        (control / f"built-{os.getpid()}").touch()  # one file per construction
        space = toy_space()

        def evaluate(config):
            start = time.time()
            delay = float((control / "delay").read_text()) if (control / "delay").exists() else 0.0
            fail_r = control / "fail_r"
            if fail_r.exists() and config["r"] == int(fail_r.read_text()):
                raise ValueError(f"cannot evaluate resolution {config['r']}")
            try:
                os.rename(control / "kill", control / "killed")  # atomic: exactly one evaluation wins
            except FileNotFoundError:
                pass
            else:
                (control / "killed").write_text(space.config_id(config))
                time.sleep(delay / 2)
                os.kill(os.getpid(), signal.SIGKILL)  # dies mid-evaluation
            time.sleep(delay)
            return {**toy_metrics(space, config), "pid": os.getpid(), "t0": start, "t1": time.time()}

        return evaluate


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray runtime; its workers get this test module by value.

    4 logical CPUs: 2 for the module's pool, 2 for a command-line search joining the cluster.
    """
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def control(tmp_path_factory):
    return tmp_path_factory.mktemp("control")


@pytest.fixture(scope="module")
def pool(ray_cluster, control):
    """Two evaluation workers, built once for the module (building one costs seconds)."""
    with WorkerPool(SlowToyEvaluator(str(control)), n_workers=2) as workers:
        yield workers


@pytest.fixture
def steer(control):
    """Write control files for one test; remove them afterwards."""
    written = []

    def write(name, value):
        (control / name).write_text(str(value))
        written.append(control / name)

    yield write
    for path in [*written, control / "killed"]:
        path.unlink(missing_ok=True)


def _assert_complete(study: en.Study, n: int) -> None:
    ids = [r.config_id for r in study.trials]
    assert len(ids) == n and len(set(ids)) == n
    states = {t.state.name for t in study.optuna_study.get_trials()}
    assert "RUNNING" not in states


def test_two_workers_evaluate_in_parallel_and_build_once(pool, control, steer, tmp_path):
    steer("delay", 1.0)  # long beside the time a loaded machine takes to hand out the next trial
    space = toy_space()
    study = en.create_study(space, OBJ, storage=f"sqlite:///{tmp_path / 's.db'}", study_name="p")
    new = optimize_parallel(study, pool, n_evals=10, searcher="nsga2", seed=0)
    assert len(new) == 10
    _assert_complete(study, 10)
    pids = {int(r.metrics["pid"]) for r in study.trials}
    assert len(pids) == 2 and os.getpid() not in pids
    assert len(list(control.glob("built-*"))) == 2  # each worker built its evaluator once
    # the workers ran at the same time: most evaluations overlap one on the other worker
    spans = [(r.metrics["t0"], r.metrics["t1"], r.metrics["pid"]) for r in study.trials]
    overlapping = [a for a in spans if any(b[2] != a[2] and b[0] < a[1] and a[0] < b[1] for b in spans)]
    assert len(overlapping) >= 8
    for r in study.trials:  # the expensive metrics were computed in the worker
        assert r.metrics["accuracy"] == pytest.approx(toy_metrics(space, dict(r.config))["accuracy"])


def test_worker_killed_mid_evaluation_is_replaced_and_the_config_retried(pool, control, steer, tmp_path):
    steer("delay", 0.2)
    steer("kill", "")
    built_before = len(list(control.glob("built-*")))
    space = toy_space()
    study = en.create_study(space, OBJ, storage=f"sqlite:///{tmp_path / 's.db'}", study_name="k")
    optimize_parallel(study, pool, n_evals=8, searcher="random", seed=1)
    assert (control / "killed").exists() and not (control / "kill").exists()  # a worker really died
    _assert_complete(study, 8)
    killed_id = (control / "killed").read_text()
    assert [r.config_id for r in study.trials].count(killed_id) == 1  # retried elsewhere, recorded once
    assert len(list(control.glob("built-*"))) == built_before + 1  # the dead worker was replaced
    assert pool.n_replaced >= 1 and len(pool.actors) == 2
    assert study.failed_trials == []


def test_evaluator_exception_is_recorded_and_raised(pool, steer, tmp_path):
    steer("delay", 0.05)
    steer("fail_r", 224)
    space = toy_space()
    study = en.create_study(space, OBJ, storage=f"sqlite:///{tmp_path / 's.db'}", study_name="e")
    with pytest.raises(ValueError, match="cannot evaluate resolution"):
        optimize_parallel(study, pool, n_evals=30, searcher="random", seed=2)
    failed = study.failed_trials
    assert len(failed) == 1 and failed[0].error == "ValueError: cannot evaluate resolution 224"
    assert "RUNNING" not in {t.state.name for t in study.optuna_study.get_trials()}
    # what the other worker held was left for the next search: re-queued, not lost, not doubled
    steer("fail_r", 0)
    n = study.n_evals + 3
    optimize_parallel(study, pool, n_evals=n, searcher="random", seed=3)
    ids = [r.config_id for r in study._finished()]
    assert len(ids) == len(set(ids)) == n


def test_an_interrupt_swallowed_on_its_way_stops_the_driver_and_releases_what_is_out(pool, steer, tmp_path,
                                                                                       monkeypatch):
    """Ctrl-C raised where Python only prints exceptions (a finalizer run by the garbage collector) is raised
    again by the driver's next round; evaluations still out are released, none left RUNNING."""
    from elasticnas._interrupts import interrupt

    steer("delay", 0.1)
    study = en.create_study(toy_space(), OBJ, storage=f"sqlite:///{tmp_path / 's.db'}", study_name="i")
    tell, told = study.tell, []

    def tell_during_which_ctrl_c_is_swallowed(*args, **kwargs):
        told.append(1)
        if len(told) == 3:
            with contextlib.suppress(KeyboardInterrupt):
                interrupt(KeyboardInterrupt())
        return tell(*args, **kwargs)

    monkeypatch.setattr(study, "tell", tell_during_which_ctrl_c_is_swallowed)
    with pytest.raises(KeyboardInterrupt):
        optimize_parallel(study, pool, n_evals=40, searcher="random", seed=4)
    assert 3 <= study.n_evals < 40
    assert "RUNNING" not in {t.state.name for t in study.optuna_study.get_trials()}


def test_a_factory_that_fails_is_one_clear_error(ray_cluster):
    def broken():
        raise FileNotFoundError("no checkpoint at /nowhere.pt")

    with pytest.raises(en.ElasticNASError) as exc:
        WorkerPool(broken, n_workers=1)
    assert str(exc.value) == "an evaluation worker could not start: FileNotFoundError: no checkpoint at /nowhere.pt"


def test_workers_the_cluster_cannot_place_are_one_clear_error(ray_cluster):
    with pytest.raises(en.ElasticNASError) as exc:
        WorkerPool(SlowToyEvaluator("/nonexistent"), n_workers=1, actor_options={"num_cpus": 64}, start_timeout_s=2)
    assert str(exc.value) == (
        "1 evaluation workers did not start within 2 s; "
        "does the Ray cluster have free resources for each (num_cpus=64)?"
    )


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "elasticnas.cli", *argv], capture_output=True, text=True,
                          timeout=240)


def test_cli_joins_a_running_cluster_with_ray_address(ray_cluster, tmp_path):
    storage = f"sqlite:///{tmp_path / 'c.db'}"
    out = _cli("search", "--problem", PROBLEM, "--n-evals", "12", "--searcher", "random", "--storage", storage,
               "--study", "r", "--quiet", "--ray-address", ray_cluster, "--workers", "2")
    assert out.returncode == 0, out.stderr
    study = en.load_study(storage, "r")
    _assert_complete(study, 12)


def test_cli_workers_starts_a_local_runtime(tmp_path):
    storage = f"sqlite:///{tmp_path / 'w.db'}"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    out = subprocess.run([sys.executable, "-m", "elasticnas.cli", "search", "--problem", PROBLEM, "--n-evals", "6",
                          "--searcher", "nsga2", "--storage", storage, "--study", "w", "--quiet", "--workers", "2"],
                         capture_output=True, text=True, timeout=240, env=env)
    assert out.returncode == 0, out.stderr
    assert "6 evaluations" in out.stdout
    _assert_complete(en.load_study(storage, "w"), 6)


def test_cli_bad_ray_address_is_one_line_and_exit_2(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'b.db'}"
    status = main(["search", "--problem", PROBLEM, "--n-evals", "2", "--storage", storage, "--study", "b", "--quiet",
                   "--ray-address", "127.0.0.1:1"])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["elasticnas search: error: cannot connect to the Ray cluster at '127.0.0.1:1': Connection refused"]
    assert en.load_study(storage, "b").n_evals == 0  # the study is intact (created, nothing evaluated)
