"""Several independent ``elasticnas search`` processes on one PostgreSQL study.

Needs a PostgreSQL server: ``.ci/run`` (with CI=true) installs and starts one from Debian's
packages and exports ``ELASTICNAS_TEST_POSTGRES_URL``; without that variable these tests skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter

import pytest

import elasticnas as en

URL = os.environ.get("ELASTICNAS_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(
    not URL, reason="ELASTICNAS_TEST_POSTGRES_URL is unset (bash .ci/run with CI=true starts a PostgreSQL server)"
)
PROBLEM = "ofa_mbv3_note10"


def _search(study: str, n_evals: int, seed: int, searcher: str) -> subprocess.Popen:
    env = {**os.environ, "ELASTICNAS_HEARTBEAT_S": "1", "ELASTICNAS_GRACE_S": "3"}
    return subprocess.Popen(
        [sys.executable, "-m", "elasticnas.cli", "search", "--problem", PROBLEM, "--n-evals", str(n_evals),
         "--searcher", searcher, "--seed", str(seed), "--storage", URL, "--study", study, "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def test_searches_sharing_one_postgresql_study_never_evaluate_a_config_twice():
    """Three processes with one seed propose the same configurations in the same order: the claims must sort it out."""
    searcher, seeds = "random", [0, 0, 0]
    name = f"many-{uuid.uuid4().hex[:8]}"
    n_evals = 30
    # create the study first, so the processes race on claims, not on creating it
    problem = __import__("elasticnas.problems", fromlist=["create_problem"]).create_problem(PROBLEM)
    en.create_study(problem.space, dict(problem.objectives), storage=URL, study_name=name,
                    reference_point=problem.reference_point)
    procs = [_search(name, n_evals, seed, searcher) for seed in seeds]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    study = en.load_study(URL, name)
    finished = study._finished()
    ids = [r.config_id for r in finished]
    assert Counter(ids).most_common(1)[0][1] == 1  # never a configuration evaluated twice
    # the study reached its target; each process stops once the shared total is reached (at most one
    # evaluation each in flight at that moment may add to it)
    assert n_evals <= len(finished) <= n_evals + len(seeds) - 1
    trials = study.optuna_study.get_trials()
    assert not [t for t in trials if t.state.name == "RUNNING"]  # every trial recorded as finished
    # each finished evaluation is a complete trial with its objectives as Optuna values
    assert all(r.ok for r in finished)
    for t in trials:
        if t.state.name == "COMPLETE":
            assert t.values == [t.user_attrs["metrics"][o.name] for o in study.objectives]
    # lost claims are recorded too, pointing at the trial that won
    by_number = {t.number: t for t in trials}
    for t in trials:
        if "duplicate_of" in t.user_attrs:
            winner = by_number[t.user_attrs["duplicate_of"]]
            assert winner.user_attrs["config_id"] == t.user_attrs["config_id"]
