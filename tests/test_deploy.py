"""Choosing and exporting what a study measured, and a study that Optuna reads the same way."""

from __future__ import annotations

import json
import math

import numpy as np
import optuna
import pytest

import elasticnas as en
from elasticnas.cli import main
from elasticnas.errors import ElasticNASError, StorageError
from elasticnas.study import REFERENCE_TRIALS

SPACE = en.SearchSpace({"a": en.Choice(list(range(8)), size=3), "b": en.Choice([0, 1, 2, 3])})


def evaluate(cfg):
    width = sum(cfg["a"]) / 21
    return {"acc": 60 + 30 * width + cfg["b"], "lat": 1 + 9 * width + 0.5 * cfg["b"] ** 2}


OBJECTIVES = {"acc": "maximize", "lat": "minimize"}


def _study(storage=None, name="s", constraints=None, n=40, seed=0):
    study = en.create_study(SPACE, OBJECTIVES, storage=storage, study_name=name, constraints=constraints)
    study.optimize(evaluate, n_evals=n, searcher="random", seed=seed)
    return study


# -- choosing the deployment point -----------------------------------------------------------------
def test_select_is_the_fastest_within_the_drop_and_best_under_respects_bounds():
    study = _study()
    front = study.pareto_front()
    best_acc = max(r.metrics["acc"] for r in front)
    chosen = study.select(max_drop={"acc": 2.0}, optimize="lat")
    assert chosen.metrics["acc"] >= best_acc - 2.0
    assert chosen.metrics["lat"] == min(r.metrics["lat"] for r in front if r.metrics["acc"] >= best_acc - 2.0)
    bound = sorted(r.metrics["lat"] for r in front)[len(front) // 2]
    under = study.best_under(lat=bound)  # optimises the first objective left free: acc
    assert under.metrics["lat"] <= bound
    assert under.metrics["acc"] == max(r.metrics["acc"] for r in front if r.metrics["lat"] <= bound)
    assert study.best_under(acc=best_acc).metrics["acc"] == best_acc  # a lower bound on a maximised metric
    with pytest.raises(ElasticNASError, match="no feasible trial .* meets lat <= -1"):
        study.best_under(lat=-1.0)
    with pytest.raises(ElasticNASError, match="not an objective"):
        study.select(max_drop={"speed": 1.0})


def test_pareto_pick_on_the_command_line(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'p.db'}"
    study = _study(storage)
    expected = study.select(max_drop={"acc": 1.5}, optimize="lat")
    assert main(["pareto", "--storage", storage, "--study", "s", "--pick", "acc>=best-1.5"]) == 0
    out = capsys.readouterr().out
    assert f"picked trial {expected.number}:" in out and json.dumps(dict(expected.config)) in out
    for bad, message in [("acc<=90", "maximized, so bound it with >="), ("lat>=best-1", "minimized"),
                         ("speed<=3", "not an objective"), ("acc>=lots", "expected METRIC")]:
        assert main(["pareto", "--storage", storage, "--study", "s", "--pick", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err


# -- Optuna sees the same study ----------------------------------------------------------------------------
def test_optuna_best_trials_metric_names_and_columns_match_elasticnas(tmp_path):
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    study = _study(storage, constraints=["lat<=6"])
    plain = optuna.load_study(study_name="s", storage=storage)
    assert sorted(t.number for t in plain.best_trials) == sorted(r.number for r in study.pareto_front())
    assert all(r.metrics["lat"] <= 6 for r in study.pareto_front())
    assert plain.metric_names == ["acc", "lat"]
    # one user attribute per metric: one column each in trials_dataframe() (pandas is not installed here)
    complete = [t for t in plain.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert all(t.user_attrs["acc"] == t.values[0] and t.user_attrs["lat"] == t.values[1] for t in complete)


def test_a_foreign_optuna_study_is_refused_and_left_untouched(tmp_path):
    storage = f"sqlite:///{tmp_path / 'plain.db'}"
    plain = optuna.create_study(storage=storage, study_name="s")
    plain.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    with pytest.raises(StorageError, match="not created by elasticnas"):
        en.create_study(SPACE, OBJECTIVES, storage=storage, study_name="s")
    with pytest.raises(StorageError, match="not created by elasticnas"):
        en.load_study(storage, "s")
    again = optuna.load_study(storage=storage, study_name="s")
    assert len(again.trials) == 3 and again.user_attrs == {} and len(again.directions) == 1


def test_a_study_of_another_format_version_is_refused(tmp_path):
    storage = f"sqlite:///{tmp_path / 'v.db'}"
    study = en.create_study(SPACE, OBJECTIVES, storage=storage, study_name="s")
    meta = dict(study.optuna_study.user_attrs["elasticnas"], version=99)
    study.optuna_study.set_user_attr("elasticnas", meta)
    with pytest.raises(StorageError, match="format version 99"):
        en.load_study(storage, "s")


# -- hypervolume against a fixed reference point ---------------------------------------------------------
def test_reference_point_is_fixed_once_and_hypervolume_never_falls(tmp_path):
    storage = f"sqlite:///{tmp_path / 'r.db'}"
    study = _study(storage, n=REFERENCE_TRIALS - 1)
    assert "elasticnas_reference_point" not in study.optuna_study.user_attrs
    study.optimize(evaluate, n_evals=60, searcher="random", seed=1)
    fixed = study.optuna_study.user_attrs["elasticnas_reference_point"]
    first = study.trials[:REFERENCE_TRIALS]
    expected = en.pareto.default_reference_point(np.array([[-r.metrics["acc"], r.metrics["lat"]] for r in first]))
    assert np.allclose(fixed, [-expected[0], expected[1]])
    reopened = en.load_study(storage, "s")
    assert np.allclose(reopened.reference_point(), expected)
    history = reopened.hypervolume_history()
    assert np.all(np.diff(history) >= 0) and history[-1] == pytest.approx(reopened.hypervolume())


# -- what the study records about its runs -------------------------------------------------------------------
def test_runs_record_searcher_seed_and_versions():
    study = _study(n=5, seed=3)
    study.optimize(evaluate, n_evals=8, searcher="nsga2", seed=4)
    runs = study.runs
    assert [(r["searcher"], r["seed"]) for r in runs] == [("random", 3), ("nsga2", 4)]
    assert runs[0]["elasticnas"] == en.__version__ and runs[0]["cores"] >= 1 and runs[0]["cpu"]


@pytest.mark.parametrize("searcher", ["random", "nsga2", "predicted_hvi"])
def test_an_exhausted_space_stops_with_a_clear_message(searcher, tmp_path):
    small = en.SearchSpace({"a": en.Choice([1, 2, 3]), "b": en.Choice([0, 1])})
    study = en.create_study(small, {"a": "maximize", "b": "minimize"}, storage=f"sqlite:///{tmp_path / 'e.db'}",
                            study_name="e")
    with pytest.raises(ElasticNASError, match="exhausted"):
        study.optimize(lambda c: {"a": c["a"], "b": c["b"]}, n_evals=10, searcher=searcher, seed=0)
    assert study.n_evals == 6


def test_a_metric_too_large_for_a_float_fails_the_trial_not_the_search():
    study = en.create_study(SPACE, OBJECTIVES)
    study.optimize(lambda c: {"acc": 10**400 if c["b"] == 0 else 1.0, "lat": 1.0}, n_evals=12, searcher="random",
                   seed=0)
    assert study.n_evals == 12
    assert all("non-finite" in r.error for r in study.failed_trials)
    assert all(math.isfinite(r.metrics["acc"]) for r in study.trials)


def test_studies_lists_every_study_with_its_counts(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'l.db'}"
    _study(storage, name="mine", n=6)
    optuna.create_study(storage=storage, study_name="theirs").optimize(lambda t: t.suggest_float("x", 0, 1),
                                                                       n_trials=2)
    assert main(["studies", "--storage", storage]) == 0
    lines = capsys.readouterr().out.splitlines()
    mine = next(line for line in lines if line.split()[0] == "mine")
    theirs = next(line for line in lines if line.split()[0] == "theirs")
    assert mine.split()[1:4] == ["6", "0", "0"] and mine.rstrip().endswith("yes")
    assert theirs.split()[1:4] == ["2", "0", "0"] and theirs.rstrip().endswith("no")
    missing = tmp_path / "typo.db"
    assert main(["studies", "--storage", f"sqlite:///{missing}"]) == 2
    assert not missing.exists()
