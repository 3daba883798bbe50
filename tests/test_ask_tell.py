"""The ask/tell contract of a study: what optimize, the Ray driver and the benchmarks are loops over."""

from __future__ import annotations

import optuna
import pytest

import elasticnas as en
from elasticnas.errors import ElasticNASError, EvaluationError

SPACE = en.SearchSpace({"a": en.Choice(list(range(6)), size=2), "b": en.Choice([0, 1, 2])})
OBJECTIVES = {"acc": "maximize", "lat": "minimize"}


def metrics(cfg):
    return {"acc": sum(cfg["a"]) + cfg["b"], "lat": 1.0 + cfg["a"][0] + 2 * cfg["b"]}


def test_ask_claims_distinct_running_trials_and_tell_finishes_them(tmp_path):
    storage = f"sqlite:///{tmp_path / 'a.db'}"
    study = en.create_study(SPACE, OBJECTIVES, storage=storage, study_name="s")
    study.set_searcher("random", seed=0)
    trials = study.ask(4)
    assert len(trials) == 4 and len({t.config_id for t in trials}) == 4
    plain = optuna.load_study(storage=storage, study_name="s")
    assert [t.state for t in plain.trials] == [optuna.trial.TrialState.RUNNING] * 4
    assert [t.number for t in trials] == [t.number for t in plain.trials]
    records = [study.tell(t, metrics(t.config)) for t in trials]
    assert [r.number for r in records] == [t.number for t in trials] and all(r.ok for r in records)
    assert {r.config_id for r in records} <= set(study.searcher.history)
    assert study.n_evals == 4
    # a second process never gets what this one finished
    other = en.load_study(storage, "s")
    other.set_searcher("random", seed=0)
    assert not {t.config_id for t in other.ask(5)} & {t.config_id for t in trials}


def test_tell_an_error_fails_the_trial_an_interruption_releases_it():
    study = en.create_study(SPACE, OBJECTIVES)
    study.set_searcher("random", seed=1)
    failed, interrupted, unusable = study.ask(3)
    record = study.tell(failed, error=ValueError("nan loss"))
    assert record is not None and record.state == "failed" and record.error == "ValueError: nan loss"
    assert study.tell(interrupted, error=KeyboardInterrupt()) is None
    with pytest.raises(EvaluationError, match="did not return objective 'lat'"):
        study.tell(unusable, {"acc": 1.0})
    assert study.n_evals == 1  # only the failed evaluation counts; the other two are evaluated again
    again = {t.config_id for t in study.ask(2)}
    assert again == {interrupted.config_id, unusable.config_id}


def test_tell_needs_metrics_or_an_error_and_ask_a_positive_count():
    study = en.create_study(SPACE, OBJECTIVES)
    (trial,) = study.ask(1)
    with pytest.raises(ElasticNASError, match="metrics or error="):
        study.tell(trial)
    with pytest.raises(ElasticNASError, match="n >= 1"):
        study.ask(0)


def test_ask_tell_by_hand_equals_optimize_for_the_same_seed():
    by_hand = en.create_study(SPACE, OBJECTIVES)
    by_hand.set_searcher("nsga2", seed=5)
    while by_hand.n_evals < 15:
        for trial in by_hand.ask(1):
            by_hand.tell(trial, metrics(trial.config))
    looped = en.create_study(SPACE, OBJECTIVES)
    looped.optimize(metrics, n_evals=15, searcher="nsga2", seed=5)
    assert [r.config_id for r in by_hand.trials] == [r.config_id for r in looped.trials]


def test_initial_configs_come_first_unless_held_or_cheap_infeasible():
    study = en.create_study(SPACE, OBJECTIVES, constraints=["cost<=9"])
    big, small = en.extremes(SPACE)
    assert big == {"a": [5, 5], "b": 2} and small == {"a": [0, 0], "b": 0}
    cost = {"cost": lambda c: float(sum(c["a"]))}  # the largest configuration costs 10: never evaluated
    held = {"a": [1, 2], "b": 1}
    study.evaluate_config(lambda c: {**metrics(c), "cost": 0.0}, held)
    study.set_searcher("random", seed=0, cheap_metrics=cost, initial_configs=[big, small, held, small])
    first = study.ask(1)
    assert [t.config for t in first] == [small]
    assert all(t.config not in (big, small, held) for t in study.ask(3))
    again = en.create_study(SPACE, OBJECTIVES)
    records = again.optimize(metrics, n_evals=4, searcher="random", seed=0, initial_configs=en.extremes(SPACE))
    assert [r.config for r in records[:2]] == en.extremes(SPACE)
