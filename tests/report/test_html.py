"""The HTML report: one read of the study's trials, the same numbers as the study's own methods,
self-contained, and every user-supplied string escaped."""

import math
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

import elasticnas as en
from elasticnas.report import poor_predictions, render_report, write_report
from elasticnas.study import Study
from elasticnas.testing.searchers import toy_metrics, toy_space

OBJ = {"accuracy": "maximize", "latency_ms": "minimize"}


class Page(HTMLParser):
    """Tags, attributes and the text of each element of an HTML page."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.stack, self.texts = [], [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.stack.append((tag, len(self.tags)))

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data):
        self.texts.append((tuple(self.stack), data))

    def text_in(self, tag):
        """The text of each outermost ``tag`` element, in document order."""
        out = {}
        for stack, data in self.texts:
            outer = next((element for element in stack if element[0] == tag), None)
            if outer is not None:
                out[outer] = out.get(outer, "") + data
        return list(out.values())


def svgs(html):
    return [ET.fromstring(s) for s in re.findall(r"<svg.*?</svg>", html, flags=re.DOTALL)]


def plotted(html, role):
    return sorted(int(g.get("data-trial")) for svg in svgs(html) for g in svg.iter("g")
                  if {"pt", role} <= set(g.get("class", "").split()))


def toy_study(n_evals=20, seed=0, **kwargs):
    space = toy_space()
    study = en.create_study(space, OBJ, **kwargs)
    study.optimize(lambda c: toy_metrics(space, c), n_evals=n_evals, searcher="random", seed=seed)
    return study


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


def test_report_plots_every_trial_once_the_front_and_exactly_the_infeasible_trials():
    study = toy_study(seed=1, constraints=["latency_ms<=13"])
    html = render_report(study)
    expected = sorted(r.number for r in study.trials if r.metrics["latency_ms"] > 13)
    assert expected and plotted(html, "infeasible") == expected
    assert plotted(html, "front") == sorted(r.number for r in study.pareto_front())
    assert plotted(html, "pt") == sorted(r.number for r in study.trials)
    assert len([e for svg in svgs(html) for e in svg.iter("polyline") if e.get("class") == "staircase"]) == 1


def test_marked_trials_are_drawn_distinctly_and_listed(tmp_path):
    study = toy_study()
    chosen = study.pareto_front()[0].number
    path = write_report(study, tmp_path / "r.html", highlight={chosen: "exported", 999: "gone"})
    html = path.read_text()
    assert plotted(html, "marked") == [chosen]
    marked = next(g for g in svgs(html)[0].iter("g") if "marked" in g.get("class", ""))
    assert [t.text for t in marked.iter("text")] == ["exported"]
    page = Page(html)
    rows = [r for r in page.text_in("tr") if r.startswith(("exported", "gone"))]
    assert rows[0].startswith(f"exported{chosen}Pareto front") and rows[1].startswith("gone999not an evaluation")
    assert "Marked trials" not in render_report(study)


def test_hypervolume_curve_and_reference_point_are_shown():
    study = toy_study(reference_point=[70.0, 30.0])
    html = render_report(study)
    history = study.hypervolume_history()
    curve = next(e for svg in svgs(html) for e in svg.iter("path") if e.get("class") == "hypervolume")
    assert curve.get("d").count("H") == len(history) - 1
    assert f"Final hypervolume {history[-1]:.6g} " in html
    assert "reference point accuracy = 70, latency_ms = 30 (fixed, stored with the study)" in html
    assert "it moves as trials are added" in render_report(toy_study(n_evals=6))  # too few trials to fix one


def diagnostics(**taus):
    return {"searcher": "predicted_hvi",
            "predictor_quality": {m: {"kendall_tau": t, "mae": 0.1, "n_train": 30} for m, t in taus.items()}}


def test_a_poorly_ranking_predictor_is_warned_about_near_the_top():
    study = toy_study()
    study.optuna_study.set_user_attr("searcher_diagnostics", diagnostics(accuracy=0.12, latency_ms=0.8))
    html = render_report(study)
    warning = re.search(r"<div class='warning'.*?</div>", html, flags=re.DOTALL)
    assert warning and warning.start() < html.index("<svg")
    text = "".join(Page(warning.group()).text_in("div"))
    assert "ranks accuracy poorly" in text and "τ = 0.12" in text and "little better than random" in text
    assert "latency_ms" not in text
    study.optuna_study.set_user_attr("searcher_diagnostics", diagnostics(accuracy=0.3, latency_ms=0.8))
    assert "class='warning'" not in render_report(study)


def test_poor_predictions_are_those_below_the_threshold_or_not_a_number():
    quality = diagnostics(a=0.29, b=0.3, c=math.nan, d=-0.5)["predictor_quality"]
    quality["e"] = {"mae": 1.0}
    assert sorted(poor_predictions(quality)) == ["a", "c", "d"]


def test_measurement_and_runs_are_key_value_tables_and_absent_ones_are_said(monkeypatch):
    study = toy_study()
    monkeypatch.setattr(Study, "measurement", property(lambda s: None), raising=False)
    monkeypatch.setattr(Study, "runs", property(lambda s: []), raising=False)
    assert Page(render_report(study)).text_in("p").count("Not recorded with this study.") == 2
    monkeypatch.setattr(Study, "measurement", property(lambda s: {"runtime": "onnxruntime", "threads": 4,
                                                                  "batch_sizes": [1, 8]}), raising=False)
    monkeypatch.setattr(Study, "runs", property(lambda s: [{"searcher": "nsga2", "seed": 0},
                                                           {"searcher": "random", "cpu": "x86"}]), raising=False)
    page = Page(render_report(study))
    rows = page.text_in("tr")
    for row in ("runtimeonnxruntime", "threads4", "batch_sizes[1, 8]", "searchernsga2random", "seed0", "cpux86"):
        assert row in rows
    assert "run 1run 2" in rows


EVIL = "<script>alert(1)</script>"


def test_every_user_supplied_string_is_escaped(monkeypatch):
    space = en.SearchSpace({"<i>k</i>": en.Choice(["<img src=x>", "a&b"]), "r": en.Choice([1, 2, 3])})
    study = en.create_study(space, {EVIL: "maximize", "lat$\\alpha$": "minimize"}, study_name="<b>x</b> $x$")
    study.optimize(lambda c: {EVIL: c["r"] * (2 if c["<i>k</i>"] == "a&b" else 1), "lat$\\alpha$": c["r"],
                              "<u>m</u>": 1.0}, n_evals=6, searcher="random", seed=0)
    monkeypatch.setattr(Study, "measurement", property(lambda s: {"<em>key</em>": EVIL}), raising=False)
    monkeypatch.setattr(Study, "runs", property(lambda s: [{"machine": "<b>host</b>"}]), raising=False)
    study.optuna_study.set_user_attr("searcher_diagnostics", diagnostics(**{EVIL: 0.0}))
    html = render_report(study, highlight={0: "<img src=y onerror=alert(2)>"})

    assert "<script>alert" not in html and "<b>" not in html and "<img" not in html
    page = Page(html)
    allowed = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "code", "strong", "div", "pre",
               "table", "thead", "tbody", "tr", "th", "td", "script", "svg", "g", "circle", "rect", "line",
               "polygon", "polyline", "path", "text"}
    assert {tag for tag, _ in page.tags} <= allowed
    assert [s for s in page.text_in("script") if "alert" in s or "<" in s] == []
    assert page.text_in("h1") == ["Study <b>x</b> $x$"]
    plot_texts = [t.text for svg in svgs(html) for t in svg.iter("text")]
    assert f"{EVIL} (maximize)" in plot_texts and "<img src=y onerror=alert(2)>" in plot_texts
    tips = [t.text for svg in svgs(html) for t in svg.iter("title")]
    assert any("<i>k</i> = <img src=x>" in t or "<i>k</i> = a&b" in t for t in tips)
    assert any("<u>m</u> = 1" in t for t in tips)


def test_report_is_self_contained():
    html = render_report(toy_study())
    page = Page(html)
    assert "http" not in html
    assert all(not ({"src", "href"} & set(attrs)) for _, attrs in page.tags)
    assert [tag for tag, _ in page.tags].count("script") == 1


@pytest.mark.parametrize("n_objectives, n_plots", [(1, 0), (3, 3)])
def test_one_plot_per_pair_of_objectives_and_a_staircase_for_two_only(n_objectives, n_plots):
    names = ["accuracy", "latency_ms", "params_m"][:n_objectives]
    space = toy_space()
    study = en.create_study(space, {n: {"accuracy": "maximize"}.get(n, "minimize") for n in names})
    study.optimize(lambda c: toy_metrics(space, c), n_evals=12, searcher="random", seed=0)
    html = render_report(study)
    pareto = [svg for svg in svgs(html) if "pareto" in svg.get("class")]
    assert len(pareto) == n_plots
    assert not [e for svg in pareto for e in svg.iter("polyline")]
    assert "Final hypervolume" in html


def test_a_study_without_trials_is_said_so():
    html = render_report(en.create_study(toy_space(), OBJ))
    assert "No completed trials yet." in html and "<svg" not in html
