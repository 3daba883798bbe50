"""Pareto tables: rows of a study's front, as text or CSV."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from elasticnas._io import atomic_write_text
from elasticnas.records import TrialRecord
from elasticnas.study import Study


def pareto_rows(study: Study, target: str | None = None) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of the (feasible) Pareto front, best first in the first objective; the front of
    hardware target ``target`` when given (its objectives first: :meth:`Study.target_objectives`)."""
    objs = study.target_objectives(target)
    return _rows(study, study.pareto_front(target=target), [o.name for o in objs])


def target_rows(study: Study) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of every hardware target's front of a study with targets, one block of rows per
    target (a leading ``target`` column), in the same columns."""
    names = [o.name for o in study.objectives]
    header, _ = _rows(study, study.trials, names)
    rows = [[t, *row] for t in study.targets or () for row in _rows(study, study.pareto_front(target=t), names)[1]]
    return ["target", *header], rows


def _rows(study: Study, records: Sequence[TrialRecord], first: Sequence[str]) -> tuple[list[str], list[list[Any]]]:
    """``records`` best first in the first of the columns ``first``, every other metric after them."""
    lead = next(o for o in study.objectives if o.name == first[0])
    ordered = sorted(records, key=lambda r: r.metrics[lead.name], reverse=lead.direction == "maximize")
    extra = sorted({k for r in ordered for k in r.metrics} - set(first))
    header = ["trial", *first, *extra, "config_id", "config"]
    rows = [
        [r.number, *(r.metrics[n] for n in first), *(r.metrics.get(k, "") for k in extra), r.config_id,
         json.dumps(dict(r.config))]
        for r in ordered
    ]
    return header, rows


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int = 60) -> str:
    """A plain-text table, cells cut to ``max_width`` characters."""

    def cell(v: Any) -> str:
        text = f"{v:.4g}" if isinstance(v, float) else str(v)
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    cells = [[cell(h) for h in header]] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i < len(header) - 1 else c for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_csv(path: str | os.PathLike[str], header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    """Write a CSV file atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return atomic_write_text(path, buf.getvalue())
