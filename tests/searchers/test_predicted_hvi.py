import numpy as np
import pytest
from pymoo.indicators.hv import HV

import elasticnas as en
from elasticnas.pareto import hypervolume, non_dominated_mask
from elasticnas.problems import create_problem
from elasticnas.records import TrialRecord
from elasticnas.searchers import create_searcher
from elasticnas.searchers._predicted_hvi import (
    expected_hypervolume_improvement_2d,
    hypervolume_improvement,
    hypervolume_improvement_2d,
)


def _run(problem_name: str, method: str, n: int, seed: int, constraints=(), **kw):
    p = create_problem(problem_name)
    s = create_searcher(method, p.space, p.objective_list, constraints=constraints,
                        cheap_metrics=dict(p.cheap_metrics), seed=seed, **kw)
    rows, i = [], 0
    while len(rows) < n:
        recs = []
        for c in s.ask(5):
            m = p(c)
            recs.append(TrialRecord(i, c, p.space.config_id(c), m))
            rows.append(m)
            i += 1
        s.tell(recs)
    return p, rows, s


def _hv(p, rows):
    F = np.array([[o.sign * r[o.name] for o in p.objective_list] for r in rows])
    return hypervolume(F, p.reference_point_min())


def test_hvi_2d_matches_pymoo() -> None:
    rng = np.random.default_rng(0)
    ref = np.array([1.0, 1.0])
    front = rng.random((12, 2))
    points = rng.random((40, 2))
    hv = HV(ref_point=ref)
    base = hv(front)
    expected = [max(hv(np.vstack([front, p])) - base, 0.0) for p in points]
    np.testing.assert_allclose(hypervolume_improvement_2d(front, points, ref), expected, atol=1e-12)
    # the general path (3 objectives) agrees with its own definition
    f3, p3, r3 = rng.random((6, 3)), rng.random((5, 3)), np.ones(3)
    b3 = HV(ref_point=r3)(f3)
    exp3 = [max(HV(ref_point=r3)(np.vstack([f3, p])) - b3, 0.0) for p in p3]
    np.testing.assert_allclose(hypervolume_improvement(f3, p3, r3), exp3, atol=1e-12)


@pytest.mark.parametrize("exact_col", [0, 1])
def test_expected_hvi_2d_is_the_mean_improvement_over_the_gaussian(exact_col: int) -> None:
    rng = np.random.default_rng(exact_col)
    t = np.sort(rng.random(6))
    front = np.column_stack([t, 1 - np.sqrt(t)]) + 0.3  # a front with room between its points
    ref = np.array([1.5, 1.5])
    exact, mean, std = rng.random(8) + 0.2, rng.random(8) + 0.2, rng.random(8) * 0.3
    got = expected_hypervolume_improvement_2d(front, exact, mean, std, ref, exact_col)
    draws = mean[:, None] + std[:, None] * rng.standard_normal((8, 100_000))
    monte_carlo = []
    for i in range(8):
        points = np.empty((draws.shape[1], 2))
        points[:, exact_col], points[:, 1 - exact_col] = exact[i], draws[i]
        monte_carlo.append(hypervolume_improvement_2d(front, points, ref).mean())
    assert np.ptp(got) > 0.05  # the points differ
    np.testing.assert_allclose(got, monte_carlo, atol=2e-3)
    # without uncertainty: the improvement of the mean itself
    at_mean = np.empty((8, 2))
    at_mean[:, exact_col], at_mean[:, 1 - exact_col] = exact, mean
    np.testing.assert_allclose(
        expected_hypervolume_improvement_2d(front, exact, mean, np.zeros(8), ref, exact_col),
        hypervolume_improvement_2d(front, at_mean, ref),
        atol=1e-9,
    )


@pytest.mark.parametrize("problem_name", ["ofa_mbv3_note10", "hwgpt_s_gpu"])
def test_beats_random_and_nsga2_at_equal_budget(problem_name: str) -> None:
    n = 80
    p, ours, _ = _run(problem_name, "predicted_hvi", n, seed=0)
    for baseline in ("random", "nsga2"):
        _, theirs, _ = _run(problem_name, baseline, n, seed=0)
        assert _hv(p, ours) > _hv(p, theirs)


def test_cheap_constraint_never_violated_and_batches_are_full() -> None:
    cons = en.records.as_constraints(["latency_note10_ms<=20"])
    p, rows, s = _run("ofa_mbv3_note10", "predicted_hvi", 40, seed=1, constraints=cons)
    assert all(r["latency_note10_ms"] <= 20 for r in rows)
    assert len(s.ask(7)) == 7


def test_same_seed_same_proposals() -> None:
    a = _run("ofa_mbv3_note10", "predicted_hvi", 30, seed=4)[1]
    b = _run("ofa_mbv3_note10", "predicted_hvi", 30, seed=4)[1]
    c = _run("ofa_mbv3_note10", "predicted_hvi", 30, seed=5)[1]
    assert a == b
    assert a != c


def test_study_records_predictor_quality_and_is_the_default() -> None:
    from elasticnas import study as study_module

    p = create_problem("ofa_mbv3_note10")
    study = en.create_study(**p.study_kwargs())
    study.optimize(p.evaluate, n_evals=50, seed=0, cheap_metrics=p.cheap_metrics, searcher="predicted_hvi")
    diag = study.optuna_study.user_attrs["searcher_diagnostics"]
    q = diag["predictor_quality"]["accuracy_top1"]
    assert q["n_train"] == 50 and -1 <= q["kendall_tau"] <= 1 and q["mae"] > 0
    assert q["kendall_tau"] > 0.3  # the OFA accuracy is learnable from 50 points
    assert all("latency_note10_ms" in r.metrics for r in study.trials)
    assert study_module.DEFAULT_SEARCHER == "predicted_hvi"


def _front_of_finished(s):
    """(finished trials, the front rows of those trials that the searcher compares candidates with), after one
    more ask has conditioned the predictors on every result."""
    s.ask(1)
    done = [r for r in s.history.values() if r.ok]
    return done, s._state(done)["front"][: len(done)]


@pytest.mark.parametrize("model_front", [None, True, False])
def test_with_one_predicted_objective_candidates_meet_the_front_as_the_model_predicts_it(model_front) -> None:
    _, _, s = _run("hwgpt_s_gpu", "predicted_hvi", 40, seed=0, model_front=model_front)
    done, front = _front_of_finished(s)
    measured = np.array([[r.metrics["perplexity"], r.metrics["latency_ms"]] for r in done])
    np.testing.assert_array_equal(front[:, 1], measured[:, 1])  # the exact objective stays measured
    if model_front is False:
        np.testing.assert_array_equal(front[:, 0], measured[:, 0])
        return
    y_window, loo = s._predictors["perplexity"].loo_predictions()
    np.testing.assert_allclose(y_window, measured[-len(loo):, 0])
    expected = measured[:, 0].copy()
    expected[-len(loo):] = np.maximum(measured[-len(loo):, 0], loo)
    np.testing.assert_allclose(front[:, 0], expected)
    assert (front[:, 0] > measured[:, 0]).any()  # some trials the model predicts worse than they measured


@pytest.mark.parametrize("model_front", [None, True])
def test_with_two_predicted_objectives_the_front_stays_measured_unless_asked(model_front) -> None:
    p = create_problem("hwgpt_s_gpu")
    s = create_searcher("predicted_hvi", p.space, p.objective_list, cheap_metrics={}, seed=0, model_front=model_front)
    for i in range(30):
        (c,) = s.ask(1)
        s.tell([TrialRecord(i, c, p.space.config_id(c), p(c))])
    done, front = _front_of_finished(s)
    assert set(s._predictors) == {"perplexity", "latency_ms"}
    measured = np.array([[r.metrics["perplexity"], r.metrics["latency_ms"]] for r in done])
    if model_front is None:
        np.testing.assert_array_equal(front, measured)
    else:
        assert np.all(front >= measured) and (front > measured).any()


@pytest.mark.parametrize("cheap", [True, False])
def test_the_expected_improvement_decides_by_the_shape_of_the_problem(cheap) -> None:
    """Two objectives, one predicted: picks maximise the expected improvement (and differ from the optimistic
    picks); with both predicted they are optimistic, and forcing the expected improvement is an error."""
    p = create_problem("hwgpt_s_gpu")
    cheap_metrics = dict(p.cheap_metrics) if cheap else {}

    def searcher(**kw):
        return create_searcher("predicted_hvi", p.space, p.objective_list, cheap_metrics=cheap_metrics, seed=0, **kw)

    def proposals(s):
        ids = []
        for i in range(30):
            (c,) = s.ask(1)
            s.tell([TrialRecord(i, c, p.space.config_id(c), p(c))])
            ids.append(p.space.config_id(c))
        return ids

    if cheap:
        default, optimistic = searcher(), searcher(expected_improvement=False)
        assert default.diagnostics()["acquisition"] == "expected"
        assert optimistic.diagnostics()["acquisition"] == "optimistic"
        default_ids, optimistic_ids = proposals(default), proposals(optimistic)
        assert optimistic_ids[:20] == default_ids[:20] and optimistic_ids != default_ids
    else:
        assert searcher().diagnostics()["acquisition"] == "optimistic"
        with pytest.raises(ValueError, match="two objectives, one predicted and one cheap"):
            searcher(expected_improvement=True)


def test_the_front_bias_is_the_mean_leave_one_out_z_score_of_the_evaluated_front() -> None:
    _, _, s = _run("hwgpt_s_gpu", "predicted_hvi", 30, seed=9)
    s.ask(1)  # conditions the predictor on every result
    assert s._predictors["perplexity"]._warp is not None  # the leave-one-out values are mapped back from the warp
    done = [r for r in s.history.values() if r.ok]
    F, feasible = s._history_objectives(done)
    bias = s._state(done)["front_bias"]
    (o,) = [o for o in s.objectives if o.name not in s.cheap_metrics]
    y, loo = s._predictors[o.name].loo_predictions()
    front = non_dominated_mask(F)
    z = o.sign * (loo - y)[front] / s._predictors[o.name].loo_std()[front]
    assert bias == pytest.approx(min(max(z.mean(), 0.0), 3.0))
    assert bias > 0  # the model predicts the evaluated front worse than it measured (survivorship)
    assert s.diagnostics()["front_bias"] == bias


def _offspring_of_table_rows(problem_name: str, **kw) -> tuple[int, np.ndarray]:
    """(offspring asked for, the new canonical offspring) of 150 parents drawn from the problem's space."""
    p = create_problem(problem_name)
    s = create_searcher("predicted_hvi", p.space, p.objective_list, cheap_metrics=dict(p.cheap_metrics), seed=0, **kw)
    parents = np.unique(p.space.canonical_genes(s.rng.integers(0, s._card, size=(150, len(s._card)))), axis=0)
    seen = {g.tobytes() for g in parents}
    return 1000, s._offspring(parents, 1000, seen)


def test_a_generation_is_drawn_again_while_most_offspring_fold_onto_known_configurations() -> None:
    """In a space projected onto a table (5,000 OFA rows at the devices' resolutions) most small mutations of a
    parent project back onto a known row: drawing again fills the generation to at least half of what it asked
    for; where offspring are new anyway (the full OFA space) the second draw never happens, so the first draw's
    offspring, and the searcher's random stream, are unchanged."""
    asked, once = _offspring_of_table_rows("ofa_mbv3_devices", offspring_draws=1)
    _, again = _offspring_of_table_rows("ofa_mbv3_devices")
    assert len(once) < asked / 2 <= len(again)
    np.testing.assert_array_equal(again[: len(once)], once)  # the first draw is kept as it was
    assert len({g.tobytes() for g in again}) == len(again)  # no offspring twice across draws
    _, full_once = _offspring_of_table_rows("ofa_mbv3_note10", offspring_draws=1)
    _, full = _offspring_of_table_rows("ofa_mbv3_note10")
    assert len(full_once) >= asked / 2
    np.testing.assert_array_equal(full, full_once)


@pytest.mark.parametrize(
    "name",
    [
        "round_size",
        "pool_generations",
        "offspring_per_generation",
        "offspring_draws",
        "max_parents",
        "light_offspring",
        "shortlist_size",
        "evolution_population",
        "credit_window",
    ],
)
@pytest.mark.parametrize("value", [0, -1])
def test_a_count_below_one_is_refused_by_name(name: str, value: int) -> None:
    p = create_problem("hwgpt_s_gpu")

    def searcher(count: int) -> object:
        kw = {name: count}
        return create_searcher("predicted_hvi", p.space, p.objective_list, cheap_metrics=p.cheap_metrics, **kw)

    with pytest.raises(en.ElasticNASError, match=f"^{name} must be >= 1, got {value}$"):
        searcher(value)
    searcher(1)  # the least accepted


@pytest.mark.parametrize("per_choice", [True, False])
def test_the_predictor_is_told_which_choice_each_feature_column_encodes(per_choice: bool) -> None:
    """One length-scale group per choice: its one-hot columns and its ordinal column, over every position
    (nothing with ``length_scale_per_choice=False``: one length scale)."""
    space = en.SearchSpace({"width": en.Choice([8, 16, 32]), "depth": en.Choice([1, 2], size=3)})
    objectives = [en.Objective("loss", "minimize"), en.Objective("macs", "minimize")]
    s = create_searcher("predicted_hvi", space, objectives, cheap_metrics={"macs": lambda c: float(c["width"])},
                        seed=0, n_initial=6, length_scale_per_choice=per_choice)
    recs: list[TrialRecord] = []
    while len(recs) < 12:
        new = [TrialRecord(len(recs) + i, c, space.config_id(c), {"loss": float(c["width"] + sum(c["depth"])),
                                                                   "macs": float(c["width"])})
               for i, c in enumerate(s.ask(3))]
        s.tell(new)
        recs += new
    gp = s._predictors["loss"]
    if not per_choice:
        assert gp.feature_groups is None and len(gp.theta) == 3
        return
    G = np.array([space.to_genes(r.config) for r in recs])
    assert len(gp.feature_groups) == s._features(G).shape[1]
    np.testing.assert_array_equal(gp.feature_groups, [0, 0, 0] + [1] * 6 + [0, 1, 1, 1])
    assert len(gp.theta) == 4  # a second length scale
