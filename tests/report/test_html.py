"""The HTML report: one read of the study's trials, the same numbers as the study's own methods."""

import math

import elasticnas as en
from elasticnas.report import render_report
from elasticnas.testing.searchers import toy_metrics, toy_space

OBJ = {"accuracy": "maximize", "latency_ms": "minimize"}


def test_report_reads_the_trials_once_and_shows_the_study(tmp_path, monkeypatch):
    space = toy_space()
    study = en.create_study(space, OBJ, storage=f"sqlite:///{tmp_path / 's.db'}", study_name="s",
                            constraints=["latency_ms<=13"])
    study.optimize(lambda c: {**toy_metrics(space, c), "accuracy": math.nan} if c["r"] == 160
                   else toy_metrics(space, c), n_evals=20, searcher="random", seed=0)
    n_complete, n_failed, n_front = len(study.trials), len(study.failed_trials), len(study.pareto_front())
    hv = study.hypervolume_history()[-1]
    reads = []
    get_all_trials = study._storage.get_all_trials
    monkeypatch.setattr(study._storage, "get_all_trials", lambda *a, **k: reads.append(1) or get_all_trials(*a, **k))
    html = render_report(study)
    assert len(reads) == 1
    assert f"{n_complete} completed, {n_failed} failed evaluations" in html
    assert f"Final hypervolume {hv:.6g} " in html
    assert f"<h2>{n_front} feasible Pareto configurations</h2>" in html
    assert n_failed > 0 and n_front > 0


def test_report_plots_exactly_the_infeasible_trials(tmp_path, monkeypatch):
    import elasticnas.report.html as html_module

    space = toy_space()
    study = en.create_study(space, OBJ, storage=f"sqlite:///{tmp_path / 's.db'}", study_name="s",
                            constraints=["latency_ms<=13"])
    study.optimize(lambda c: toy_metrics(space, c), n_evals=20, searcher="random", seed=1)
    plotted = {}
    scatter = html_module.pareto_scatter

    def spy(trials, front, objs, infeasible=()):
        plotted["infeasible"] = sorted(r.number for r in infeasible)
        return scatter(trials, front, objs, infeasible)

    monkeypatch.setattr(html_module, "pareto_scatter", spy)
    render_report(study)
    expected = sorted(r.number for r in study.trials if r.metrics["latency_ms"] > 13)
    assert expected and plotted["infeasible"] == expected
