import math

import numpy as np
import optuna
import pytest

import elasticnas as en
from elasticnas.testing.searchers import toy_metrics, toy_space

OBJ = {"accuracy": "maximize", "latency_ms": "minimize"}


def evaluator(space):
    return lambda c: toy_metrics(space, c)


def test_quickstart_api(tmp_path):
    space = toy_space()
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = en.create_study(space, OBJ, storage=storage, study_name="demo")
    study.optimize(evaluator(space), n_evals=30, searcher="nsga2", seed=0)
    assert [r.number for r in study.trials] == sorted(r.number for r in study.trials)
    first = study.trials[0]
    assert set(first.metrics) >= {"accuracy", "latency_ms"}
    assert first.config_id == space.config_id(first.config)
    with pytest.raises(TypeError):
        first.metrics["accuracy"] = 0.0  # records are immutable
    loaded = en.load_study(storage=storage, study_name="demo")
    assert [r.config_id for r in loaded.trials] == [r.config_id for r in study.trials]
    assert [dict(r.metrics) for r in loaded.trials] == [dict(r.metrics) for r in study.trials]
    assert loaded.space == space and loaded.objectives == study.objectives


def test_pareto_front_matches_brute_force():
    space = toy_space()
    study = en.create_study(space, OBJ)
    study.optimize(evaluator(space), n_evals=40, searcher="random", seed=0)
    pts = [(r.metrics["accuracy"], r.metrics["latency_ms"]) for r in study.trials]
    expected = {
        i for i, (a, lat) in enumerate(pts)
        if not any((a2 >= a and l2 <= lat) and (a2 > a or l2 < lat) for a2, l2 in pts)
    }
    assert {study.trials.index(r) for r in study.pareto_front()} == expected


def test_hypervolume_history_is_monotone_and_ends_at_final_value():
    space = toy_space()
    study = en.create_study(space, OBJ)
    study.optimize(evaluator(space), n_evals=30, searcher="random", seed=1)
    hist = study.hypervolume_history()
    assert len(hist) == 30
    assert np.all(np.diff(hist) >= -1e-12)
    assert hist[-1] == pytest.approx(study.hypervolume())


def test_front_reference_point_and_history_of_records_read_before_match_the_study():
    space = toy_space()
    study = en.create_study(space, OBJ, constraints=["latency_ms<=13"])
    evaluate = evaluator(space)
    study.optimize(lambda c: {**evaluate(c), "accuracy": math.nan} if c["r"] == 160 else evaluate(c),
                   n_evals=30, searcher="random", seed=2)
    finished = study._finished()
    trials = [r for r in finished if r.ok]
    assert len(trials) < len(finished) and trials == study.trials
    assert study.pareto_front(records=trials) == study.pareto_front()
    assert study.pareto_front(False, trials) == study.pareto_front(feasible_only=False)
    assert np.array_equal(study.reference_point(trials), study.reference_point())
    assert np.array_equal(study.hypervolume_history(finished), study.hypervolume_history())


def test_trials_are_optuna_trials_with_params_and_values(tmp_path):
    space = toy_space()
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = en.create_study(space, OBJ, storage=storage, study_name="o")
    study.optimize(evaluator(space), n_evals=5, searcher="random", seed=0)
    ostudy = optuna.load_study(study_name="o", storage=storage)
    t = ostudy.trials[0]
    assert t.params["ks_0"] == study.trials[0].config["ks"][0]
    assert t.params["r"] == study.trials[0].config["r"]
    assert t.values == [study.trials[0].metrics["accuracy"], study.trials[0].metrics["latency_ms"]]
    assert len(ostudy.best_trials) == len(study.pareto_front())


def test_non_finite_metric_fails_the_trial_and_keeps_the_rest():
    space = toy_space()
    study = en.create_study(space, OBJ)
    calls = []

    def evaluate(c):
        calls.append(c)
        m = toy_metrics(space, c)
        if len(calls) == 2:
            m["accuracy"] = math.inf
        return m

    study.optimize(evaluate, n_evals=6, searcher="random", seed=0)
    assert len(study.trials) == 5 and len(study.failed_trials) == 1
    failed = study.failed_trials[0]
    assert "non-finite metric 'accuracy'" in failed.error
    assert "latency_ms" in failed.metrics


def test_missing_objective_is_a_clear_error_and_the_config_is_retried_later():
    space = toy_space()
    study = en.create_study(space, OBJ)
    with pytest.raises(en.EvaluationError, match="did not return objective 'latency_ms'"):
        study.optimize(lambda c: {"accuracy": 1.0}, n_evals=3, searcher="random", seed=0)
    assert study.n_evals == 0 and not study.failed_trials  # a usage error is no outcome of the configuration
    attempted = study.optuna_study.trials[0].user_attrs["config_id"]
    study.optimize(evaluator(space), n_evals=3, searcher="random", seed=0)
    assert attempted in {r.config_id for r in study.trials}


def test_missing_constraint_metric_is_a_clear_error():
    space = toy_space()
    study = en.create_study(space, OBJ, constraints=["speed<=3"])
    with pytest.raises(en.EvaluationError, match="did not return constraint metric 'speed'"):
        study.optimize(evaluator(space), n_evals=3, searcher="random", seed=0)


def test_evaluator_exception_is_recorded_then_raised():
    space = toy_space()
    study = en.create_study(space, OBJ)

    def boom(c):
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        study.optimize(boom, n_evals=3, searcher="random", seed=0)
    assert "RuntimeError: out of memory" in study.failed_trials[0].error


def test_reopening_with_a_different_definition_is_refused(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    en.create_study(toy_space(), OBJ, storage=storage, study_name="x")
    with pytest.raises(en.StorageError, match="different space, objectives, constraints or targets"):
        en.create_study(toy_space(), {"accuracy": "maximize"}, storage=storage, study_name="x")


def test_unreachable_and_missing_storage_are_clear_errors(tmp_path):
    with pytest.raises(en.StorageError, match="cannot open storage"):
        en.create_study(toy_space(), OBJ, storage="postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(en.StorageError, match="cannot open storage"):
        en.create_study(toy_space(), OBJ, storage="nosuchdb://x")
    storage = f"sqlite:///{tmp_path / 's.db'}"
    en.create_study(toy_space(), OBJ, storage=storage, study_name="a")
    with pytest.raises(en.StorageError, match="no study named 'b'.*studies there: a"):
        en.load_study(storage, "b")


def test_constraints_restrict_the_front_and_are_stored(tmp_path):
    space = toy_space()
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = en.create_study(space, OBJ, storage=storage, study_name="c", constraints=["latency_ms<=12"])
    study.optimize(evaluator(space), n_evals=30, searcher="random", seed=0)
    front = study.pareto_front()
    assert front and all(r.metrics["latency_ms"] <= 12 for r in front)
    assert en.load_study(storage, "c").constraints == study.constraints


@pytest.mark.parametrize("text", ["latency", "latency_ms=<3", "latency_ms<=abc", "<=3", "latency_ms<=inf"])
def test_bad_constraint_syntax(text):
    with pytest.raises(en.ElasticNASError, match="constraint"):
        en.create_study(toy_space(), OBJ, constraints=[text])


def test_bad_objective_direction():
    with pytest.raises(en.ElasticNASError, match="direction must be 'minimize' or 'maximize'"):
        en.create_study(toy_space(), {"accuracy": "max"})


def test_unknown_searcher_lists_the_known_ones():
    study = en.create_study(toy_space(), OBJ)
    with pytest.raises(en.UnknownNameError, match="unknown searcher 'nsga4'; choose one of: .*nsga2"):
        study.optimize(lambda c: {}, n_evals=1, searcher="nsga4")
