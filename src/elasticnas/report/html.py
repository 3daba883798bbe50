"""A self-contained HTML report of a study."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from elasticnas import __version__
from elasticnas._io import atomic_write_text
from elasticnas.report.plots import figure_to_svg, hypervolume_curve, pareto_scatter
from elasticnas.study import Study

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1200px;color:#1f2933;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #e4e7eb}
.meta{color:#52606d}table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{border:1px solid #e4e7eb;padding:.25rem .5rem;text-align:right}th{background:#f5f7fa}
td.cfg{text-align:left;font-family:monospace;font-size:.75rem;max-width:520px;word-break:break-all}
.figs{display:flex;flex-wrap:wrap;gap:1rem}.figs svg{max-width:100%;height:auto}
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]], cfg_col: int | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            cls = ' class="cfg"' if i == cfg_col else ""
            cells.append(f"<td{cls}>{html.escape(_fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_report(study: Study) -> str:
    """The report of ``study`` as one HTML page (plots inline as SVG, no external files)."""
    finished = study._finished()  # the one read of the study's trials
    trials = [r for r in finished if r.ok]
    n_failed = len(finished) - len(trials)
    feasible = study.feasible(trials)
    feasible_numbers = {r.number for r in feasible}
    infeasible = [r for r in trials if r.number not in feasible_numbers] if study.constraints else []
    front = study.pareto_front(records=trials)
    objs = study.objectives
    metric_names = sorted({k for r in front for k in r.metrics} - {o.name for o in objs})
    columns = [o.name for o in objs] + metric_names
    front_sorted = sorted(front, key=lambda r: r.metrics[objs[0].name], reverse=objs[0].direction == "maximize")
    rows = [[r.number, *(r.metrics.get(c, "") for c in columns), json.dumps(dict(r.config))] for r in front_sorted]

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>elasticnas report: {html.escape(study.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Study <code>{html.escape(study.name)}</code></h1>",
        f"<p class='meta'>{len(trials)} completed, {n_failed} failed evaluations; "
        f"objectives: {', '.join(f'{o.name} ({o.direction})' for o in objs)}"
        + (f"; constraints: {', '.join(map(str, study.constraints))}" if study.constraints else "")
        + f"; search space of 10^{study.space.log10_size:.1f} configurations. elasticnas {__version__}.</p>",
    ]
    if trials:
        history = study.hypervolume_history(finished)
        parts.append("<h2>Pareto front</h2><div class='figs'>")
        parts.append(figure_to_svg(pareto_scatter(trials, front, objs, infeasible)))
        parts.append(figure_to_svg(hypervolume_curve(list(history))))
        parts.append("</div>")
        ref = ", ".join(f"{o.name}={o.sign * x:.6g}" for o, x in zip(objs, study.reference_point(trials), strict=True))
        parts.append(f"<p class='meta'>Final hypervolume {history[-1]:.6g} (reference point {ref}).</p>")
        title = "feasible Pareto configurations" if study.constraints else "Pareto configurations"
        parts.append(f"<h2>{len(front)} {title}</h2>")
        parts.append(_table(["trial", *columns, "configuration"], rows, cfg_col=len(columns) + 1))
    else:
        parts.append("<p>No completed trials yet.</p>")
    quality = study.optuna_study.user_attrs.get("searcher_diagnostics", {}).get("predictor_quality")
    if quality:
        parts.append("<h2>Predictor quality (cross-validated)</h2>")
        qrows = [[m, *(q.get(k, "") for k in ("kendall_tau", "mae", "n_train"))] for m, q in sorted(quality.items())]
        parts.append(_table(["metric", "Kendall τ", "MAE", "training trials"], qrows))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(study: Study, path: str | os.PathLike[str]) -> Path:
    """Write the HTML report of ``study`` to ``path`` (atomically)."""
    return atomic_write_text(path, render_report(study))
