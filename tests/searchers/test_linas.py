import numpy as np

import elasticnas as en
from elasticnas.pareto import non_dominated_mask
from elasticnas.problems import create_problem
from elasticnas.records import TrialRecord
from elasticnas.searchers import create_searcher


def _loop(s, p, n):
    rows, i = [], 0
    while len(rows) < n:
        batch = s.ask(10)
        assert batch
        recs = [TrialRecord(i + k, c, p.space.config_id(c), p(c)) for k, c in enumerate(batch)]
        i += len(recs)
        rows.extend(r.metrics for r in recs)
        s.tell(recs)
    return rows


def test_linas_population_then_predictor_guided_loop() -> None:
    p = create_problem("ofa_mbv3_note10")
    cons = en.records.as_constraints(["latency_note10_ms<=30"])
    s = create_searcher("linas", p.space, p.objective_list, constraints=cons, cheap_metrics=dict(p.cheap_metrics),
                        seed=0, population_size=20, inner_evals=600)
    rows = _loop(s, p, 10)
    assert s.diagnostics()["loops"] == 0  # first population is random
    rows += _loop(s, p, 10)
    rows += _loop(s, p, 20)
    assert s.diagnostics()["loops"] >= 1
    # after the loop, the predictor-guided population respects the cheap constraint (the random one may not)
    assert all(r["latency_note10_ms"] <= 30 for r in rows[20:])
    # ... and improves the front: some predictor-guided sub-network is on the joint Pareto front
    F = np.array([[-r["accuracy_top1"], r["latency_note10_ms"]] for r in rows])
    assert non_dominated_mask(F)[20:].any()


def test_optuna_searchers_honour_cheap_constraints() -> None:
    p = create_problem("ofa_mbv3_note10")
    for name in ("optuna_nsga2", "optuna_tpe"):
        study = en.create_study(p.space, dict(p.objectives), constraints=["latency_note10_ms<=25"])
        study.optimize(p.evaluate, n_evals=25, seed=0, cheap_metrics=p.cheap_metrics, searcher=name)
        assert all(r.metrics["latency_note10_ms"] <= 25 for r in study.trials)
