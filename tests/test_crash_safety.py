"""Crash safety: a search killed at any moment loses no finished evaluation, and a re-run completes it.

Heartbeats are shortened through ``ELASTICNAS_HEARTBEAT_S`` / ``ELASTICNAS_GRACE_S``.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import pytest

import elasticnas as en
from elasticnas import study as study_mod
from elasticnas.testing.searchers import toy_metrics, toy_space

OBJ = {"accuracy": "maximize", "latency_ms": "minimize"}
HEARTBEAT_ENV = {"ELASTICNAS_HEARTBEAT_S": "1", "ELASTICNAS_GRACE_S": "2"}


@pytest.fixture
def short_heartbeat(monkeypatch):
    monkeypatch.setattr(study_mod, "HEARTBEAT_INTERVAL_S", 1)
    monkeypatch.setattr(study_mod, "GRACE_PERIOD_S", 2)


# -- a worker dying in each phase of an evaluation (deterministic) ---------------------------------------
def _die_in_phase(url: str, phase: str, seed: int) -> None:
    """Run in a forked child: take a configuration as far as ``phase``, then die as SIGKILL would."""
    study = en.load_study(url, "s")
    space = study.space
    config = space.sample(seed)
    if phase == "after-claim":
        study._claim(config, space.config_id(config))
    elif phase == "mid-evaluation":
        def evaluate(c):
            time.sleep(0.3)
            os._exit(9)
        study.evaluate_config(evaluate, config)
    elif phase == "while-finishing":  # metrics written, trial not yet complete
        trial_id = study._claim(config, space.config_id(config))
        study._storage.set_trial_user_attr(trial_id, "metrics", toy_metrics(space, config))
    elif phase == "before-first-heartbeat":  # the trial created, its first heartbeat not yet recorded
        study._storage.record_heartbeat = lambda trial_id: os._exit(9)
        study._claim(config, space.config_id(config))
    os._exit(9)


@pytest.mark.parametrize("phase", ["after-claim", "mid-evaluation", "while-finishing"])
def test_a_worker_dying_in_any_phase_is_detected_and_its_config_requeued(phase, tmp_path, short_heartbeat):
    url = f"sqlite:///{tmp_path / 's.db'}"
    space = toy_space()
    study = en.create_study(space, OBJ, storage=url, study_name="s")
    study.optimize(lambda c: toy_metrics(space, c), n_evals=3, searcher="random", seed=0)
    before = {r.config_id: dict(r.metrics) for r in study.trials}
    child = multiprocessing.get_context("fork").Process(target=_die_in_phase, args=(url, phase, 12345))
    child.start()
    child.join(30)
    assert child.exitcode == 9
    dead_id = space.config_id(space.sample(12345))
    states = {t.user_attrs["config_id"]: t.state.name for t in study.optuna_study.get_trials()}
    assert states[dead_id] == "RUNNING"  # left behind by the dead worker
    assert study.n_evals == 3  # an unfinished evaluation is not counted
    time.sleep(study_mod.GRACE_PERIOD_S + 1.1)  # its heartbeat goes stale
    assert [space.config_id(c) for c in study._requeue_abandoned()] == [dead_id]
    # a re-run evaluates the abandoned configuration first, exactly once, and keeps what was finished
    new = study.optimize(lambda c: toy_metrics(space, c), n_evals=5, searcher="random", seed=0)
    assert new[0].config_id == dead_id
    finished = study._finished()
    assert len(finished) == 5 and len({r.config_id for r in finished}) == 5
    assert {r.config_id: dict(r.metrics) for r in study.trials if r.config_id in before} == before
    assert study.failed_trials == []
    assert "RUNNING" not in {t.state.name for t in study.optuna_study.get_trials()}


def test_a_worker_dying_before_its_trials_first_heartbeat_leaves_nothing_running(tmp_path, short_heartbeat):
    """Optuna never finds a RUNNING trial without a heartbeat stale: the trial waits until its first heartbeat."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    space = toy_space()
    study = en.create_study(space, OBJ, storage=url, study_name="s")
    study.optimize(lambda c: toy_metrics(space, c), n_evals=3, searcher="random", seed=0)
    child = multiprocessing.get_context("fork").Process(
        target=_die_in_phase, args=(url, "before-first-heartbeat", 12345)
    )
    child.start()
    child.join(30)
    assert child.exitcode == 9
    dead_id = space.config_id(space.sample(12345))
    states = {t.user_attrs["config_id"]: t.state.name for t in study.optuna_study.get_trials()}
    assert states[dead_id] == "WAITING"  # counted by no search: its configuration is not taken
    assert study.n_evals == 3
    time.sleep(study_mod.GRACE_PERIOD_S + 1.1)
    study.optimize(lambda c: toy_metrics(space, c), n_evals=5, searcher="random", seed=0)
    finished = study._finished()
    assert len(finished) == 5 and len({r.config_id for r in finished}) == 5
    assert study.failed_trials == []
    assert "RUNNING" not in {t.state.name for t in study.optuna_study.get_trials()}


def test_a_live_search_requeues_what_a_dead_worker_held(tmp_path, short_heartbeat):
    """Another process dies; a search already running picks its configuration up, without a restart."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    space = toy_space()
    study = en.create_study(space, OBJ, storage=url, study_name="s")
    child = multiprocessing.get_context("fork").Process(target=_die_in_phase, args=(url, "mid-evaluation", 777))
    child.start()
    child.join(30)
    dead_id = space.config_id(space.sample(777))

    def slow(c):
        time.sleep(0.25)
        return toy_metrics(space, c)

    study.optimize(slow, n_evals=16, searcher="random", seed=1)  # lasts longer than the grace period
    ids = [r.config_id for r in study._finished()]
    assert dead_id in ids and len(ids) == len(set(ids)) == 16


# -- the command killed with SIGKILL at random moments, then re-run ------------------------------------------
SEARCH = ["search", "--supernet", "tiny_mbv3", "--objectives", "macs,latency_ms", "--runtime", "torch",
          "--threads", "1", "--searcher", "random", "--seed", "3", "--study", "crash", "--quiet"]
N_EVALS = 8
N_KILLS = 5


def _trials(db: str) -> list[tuple[int, str, str]]:
    """(number, state, config_id) of every trial, read with plain sqlite3 (fast enough to poll);
    none while the process that creates the file has not created Optuna's tables yet."""
    with sqlite3.connect(db, timeout=30) as con:
        try:
            return con.execute(
                "SELECT t.number, t.state, a.value_json FROM trials t LEFT JOIN trial_user_attributes a "
                "ON a.trial_id = t.trial_id AND a.key = 'config_id' ORDER BY t.number"
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            return []


def _finished_values(url: str) -> dict[str, tuple[float, ...]]:
    study = en.load_study(url, "crash")
    return {r.config_id: tuple(r.values(study.objectives)) for r in study._finished()}


def test_search_killed_at_random_moments_then_rerun_completes(tmp_path):
    db = tmp_path / "crash.db"
    url = f"sqlite:///{db}"
    argv = [sys.executable, "-m", "elasticnas.cli", *SEARCH, "--n-evals", str(N_EVALS), "--storage", url]
    env = {**os.environ, **HEARTBEAT_ENV}
    rng = random.Random(20261122)
    saved: dict[str, tuple[float, ...]] = {}
    orphans: list[str] = []  # configurations left RUNNING by a killed process
    for kill in range(N_KILLS):
        before = {number for number, _, _ in _trials(db)} if db.exists() else set()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # wait until this process is evaluating, then kill it a random moment later
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists() and any(n not in before and s == "RUNNING" for n, s, _ in _trials(db)):
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"run {kill} ended before it could be killed: {proc.stderr.read()!r}"
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        orphans += [cid for _, s, cid in _trials(db) if s == "RUNNING"]
        now = _finished_values(url)
        assert now.items() >= saved.items(), "a finished evaluation was lost or changed"
        saved = now
    assert orphans, "no kill landed mid-evaluation"
    assert len(saved) < N_EVALS, "the study finished before the last kill"
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    final = _finished_values(url)
    assert len(final) == N_EVALS
    assert final.items() >= saved.items()  # every evaluation finished before a kill is present, unchanged
    study = en.load_study(url, "crash")
    counts = Counter(r.config_id for r in study._finished())
    assert max(counts.values()) == 1  # none evaluated twice
    trials = study.optuna_study.get_trials()
    assert "RUNNING" not in {t.state.name for t in trials}  # dead processes' trials were detected
    for cid in orphans:  # ...and their configurations re-queued and evaluated once
        assert counts[json_str(cid)] == 1
    assert study.failed_trials == []


def json_str(value_json: str) -> str:
    import json

    return json.loads(value_json)
