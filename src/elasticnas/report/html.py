"""A self-contained HTML report of a study: one file, inline SVG and script, nothing fetched.

Every user-supplied string (study, objective, metric and configuration names and values,
constraints, labels, run facts) is escaped; the one script embeds no data.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from html import escape
from itertools import combinations
from pathlib import Path
from typing import Any

from elasticnas import __version__
from elasticnas._io import atomic_write_text
from elasticnas.records import TrialRecord
from elasticnas.report.plots import format_value, hypervolume_plot, pareto_plot, role_of
from elasticnas.study import Study

POOR_TAU = 0.3  # a predictor whose cross-validated Kendall tau is below this ranks its metric poorly

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1200px;color:#1f2933;
padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #e4e7eb}
.meta{color:#52606d}table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{border:1px solid #e4e7eb;padding:.25rem .5rem;text-align:right;vertical-align:top}th{background:#f5f7fa}
td.cfg{text-align:left;font-family:monospace;font-size:.75rem;max-width:520px;word-break:break-all}
table.facts td,table.facts th{text-align:left}.scroll{overflow-x:auto}
.warning{background:#fff8e6;border:1px solid #f0b429;border-left:6px solid #de911d;border-radius:4px;
padding:.6rem 1rem;margin:1rem 0}
.warning p{margin:.3rem 0}.plots{display:flex;gap:1rem;align-items:flex-start}
.figs{display:flex;flex-direction:column;gap:1rem;flex:0 1 640px;min-width:0}.figs svg{max-width:100%;height:auto}
.pt{cursor:pointer}.pt:hover>:first-child{stroke:#1f2933;stroke-width:2}
#point{position:sticky;top:1rem;flex:1;min-width:200px;max-height:90vh;overflow:auto;margin:0;background:#f5f7fa;
border:1px solid #e4e7eb;padding:.5rem;font-size:.75rem;white-space:pre-wrap}
"""

# Shows the hovered point's hover text in the #point panel (where it can be selected and copied).
_SCRIPT = """document.addEventListener("mouseover",function(e){var g=e.target.closest&&e.target.closest(".pt");
if(g){document.getElementById("point").textContent=g.querySelector("title").textContent;}});"""


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], cfg_col: int | None = None, css: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f"<td{' class=cfg' if i == cfg_col else ''}>{escape(format_value(v))}</td>" for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    cls = f" class='{css}'" if css else ""
    return f"<div class='scroll'><table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def _facts(title: str, facts: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A section with a key/value table, one value column per dict in ``facts`` ("not recorded" when empty)."""
    heading = f"<h2>{escape(title)}</h2>"
    if not facts:
        return heading + "<p class='meta'>Not recorded with this study.</p>"
    keys = list(dict.fromkeys(k for d in facts for k in d))
    rows = [[k, *(d.get(k, "") for d in facts)] for k in keys]
    return heading + _table(["", *columns], rows, css="facts")


def poor_predictions(quality: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Metric to cross-validated Kendall tau, for the metrics whose predictor ranks below :data:`POOR_TAU`."""
    taus = {m: q.get("kendall_tau") for m, q in quality.items()}
    return {m: float(t) for m, t in taus.items() if isinstance(t, (int, float)) and not t >= POOR_TAU}


def _warning(quality: Mapping[str, Mapping[str, Any]]) -> str:
    """The warning box for the poorly predicted metrics ("" when there is none)."""
    poor = poor_predictions(quality)
    if not poor:
        return ""
    lines = [
        f"<p><strong>The searcher's predictor ranks <code>{escape(m)}</code> poorly</strong> (cross-validated "
        f"Kendall τ = {tau:.2f}, below {POOR_TAU}): its proposals are little better than random for this metric.</p>"
        for m, tau in sorted(poor.items())
    ]
    advice = ("<p>The front may then be far from the best reachable. More evaluations, or a searcher that does not "
              "rely on a predictor (for example <code>nsga2</code>), may find better trade-offs.</p>")
    return f"<div class='warning' role='alert'>{''.join(lines)}{advice}</div>"


def _summary(study: Study, n_ok: int, n_failed: int) -> str:
    objectives = ", ".join(f"{o.name} ({o.direction})" for o in study.objectives)
    constraints = f"; constraints: {', '.join(map(str, study.constraints))}" if study.constraints else ""
    return escape(
        f"{n_ok} completed, {n_failed} failed evaluations; objectives: {objectives}{constraints}; search space of "
        f"10^{study.space.log10_size:.1f} configurations. elasticnas {__version__}."
    )


def _status(record: TrialRecord, front: set[int], infeasible: set[int]) -> str:
    return role_of(record.number, front, infeasible) if record.ok else f"failed: {record.error}"


def _plots(study: Study, trials: list[TrialRecord], front: set[int], infeasible: set[int],
           marks: Mapping[int, str], target: str | None) -> str:
    """The Pareto plot of each pair of the objectives (of ``target``), with the panel the hovered point is shown in."""
    objs = study.target_objectives(target)
    if len(objs) < 2:
        return "<p class='meta'>One objective: the front is the best feasible trial; see the table below.</p>"
    reference = None
    if len(objs) == 2:  # a staircase only for two objectives: projections of a larger front are not one
        ref = study.reference_point(trials, target)
        reference = (objs[0].sign * float(ref[0]), objs[1].sign * float(ref[1]))
    svgs = [pareto_plot(trials, objs[i], objs[j], front=front, infeasible=infeasible, highlight=marks,
                        reference=reference) for i, j in combinations(range(len(objs)), 2)]
    panel = "<pre id='point'>Hover over a point to see its trial, metrics and configuration here.</pre>"
    return f"<div class='plots'><div class='figs'>{''.join(svgs)}</div>{panel}</div>"


def _marked(finished: list[TrialRecord], marks: Mapping[int, str], columns: list[str], front: set[int],
            infeasible: set[int]) -> str:
    """The table of the trials marked in ``marks``, in trial order, with where each stands."""
    by_number = {r.number: r for r in finished}
    rows = []
    for number, label in sorted(marks.items()):
        r = by_number.get(number)
        if r is None:
            rows.append([label, number, "not an evaluation of this study", *([""] * (len(columns) + 1))])
        else:
            rows.append([label, number, _status(r, front, infeasible), *(r.metrics.get(c, "") for c in columns),
                         dict(r.config)])
    header = ["mark", "trial", "status", *columns, "configuration"]
    return "<h2>Marked trials</h2>" + _table(header, rows, cfg_col=len(header) - 1)


def _hypervolume(study: Study, finished: list[TrialRecord], trials: list[TrialRecord], target: str | None) -> str:
    history = study.hypervolume_history(finished, target)
    ref = ", ".join(f"{o.name} = {o.sign * x:.6g}" for o, x in zip(study.target_objectives(target),
                                                                     study.reference_point(trials, target),
                                                                     strict=True))
    origin = ("fixed, stored with the study" if study.reference_point_fixed else
              "the worst completed values pushed out by 10 % of their range; it moves as trials are added, so "
              "compare these hypervolumes only within this report")
    return (f"<h2>Hypervolume</h2><div class='figs'>{hypervolume_plot(list(history))}</div>"
            f"<p class='meta'>Final hypervolume {history[-1]:.6g} of the feasible trials, against the reference "
            f"point {escape(ref)} ({origin}).</p>")


def _front_section(study: Study, finished: list[TrialRecord], trials: list[TrialRecord],
                   front_records: list[TrialRecord], infeasible: set[int], marks: Mapping[int, str],
                   target: str | None) -> str:
    """Plots, hypervolume and table of ``front_records``, the Pareto front over the objectives of ``target``
    (all for None)."""
    objs = study.target_objectives(target)
    front = {r.number for r in front_records}
    columns = [o.name for o in objs] + sorted({k for r in trials for k in r.metrics} - {o.name for o in objs})
    front_sorted = sorted(front_records, key=lambda r: r.metrics[objs[0].name],
                          reverse=objs[0].direction == "maximize")
    rows = [[r.number, *(r.metrics.get(c, "") for c in columns), dict(r.config)] for r in front_sorted]
    title = "feasible Pareto configurations" if study.constraints else "Pareto configurations"
    heading = "Pareto front" if target is None else f"Target <code>{escape(target)}</code>: Pareto front"
    return "\n".join([
        f"<h2>{heading}</h2>",
        _plots(study, trials, front, infeasible, marks, target),
        _hypervolume(study, finished, trials, target),
        f"<h2>{len(front_records)} {title}</h2>",
        _table(["trial", *columns, "configuration"], rows, cfg_col=len(columns) + 1),
    ])  # fmt: skip


def render_report(study: Study, *, highlight: Mapping[int, str] | None = None) -> str:
    """The report of ``study`` as one self-contained HTML page (works offline).

    ``highlight`` maps trial numbers to labels (such as ``{12: "exported"}``): those trials are
    ringed and labelled in the plots and listed. The study's trials are read once.
    """
    marks = dict(highlight or {})
    finished = study._finished()  # the one read of the study's trials
    trials = [r for r in finished if r.ok]
    feasible = study.feasible(trials)
    infeasible = {r.number for r in trials} - {r.number for r in feasible} if study.constraints else set()
    targets: list[str | None] = list(study.targets) if study.targets else [None]
    fronts = {t: study.pareto_front(records=trials, target=t) for t in targets}
    front = {r.number for records in fronts.values() for r in records}
    objs = study.objectives
    metric_names = sorted({k for r in trials for k in r.metrics} - {o.name for o in objs})
    columns = [o.name for o in objs] + metric_names
    diagnostics = study.optuna_study.user_attrs.get("searcher_diagnostics", {})
    quality = diagnostics.get("predictor_quality") or {}

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>elasticnas report: {escape(study.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Study <code>{escape(study.name)}</code></h1>",
        f"<p class='meta'>{_summary(study, len(trials), len(finished) - len(trials))}</p>",
        _warning(quality),
    ]
    marked = _marked(finished, marks, columns, front, infeasible) if marks else ""
    if trials:
        parts.append(marked)
        parts += [_front_section(study, finished, trials, fronts[t], infeasible, marks, t) for t in targets]
    else:
        parts += ["<p>No completed trials yet.</p>", marked]
    measurement = getattr(study, "measurement", None)
    parts.append(_facts("How the trials were measured", [measurement] if measurement else [], ["value"]))
    runs = list(getattr(study, "runs", None) or [])
    parts.append(_facts("Search runs", runs, [f"run {i}" for i in range(1, len(runs) + 1)]))
    if quality:
        parts.append("<h2>Predictor quality (cross-validated)</h2>")
        qrows = [[m, *(q.get(k, "") for k in ("kendall_tau", "mae", "n_train"))] for m, q in sorted(quality.items())]
        parts.append(_table(["metric", "Kendall τ", "MAE", "training trials"], qrows))
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts)


def write_report(
    study: Study, path: str | os.PathLike[str], *, highlight: Mapping[int, str] | None = None
) -> Path:
    """Write the HTML report of ``study`` (see :func:`render_report`) to ``path`` atomically."""
    return atomic_write_text(path, render_report(study, highlight=highlight))
