"""Plots of a study as inline SVG: pure functions from records to SVG text (no files, no network).

Every user-supplied string (objective and metric names, configurations, labels) is escaped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from itertools import pairwise
from typing import Any

from elasticnas.records import Direction, Objective, TrialRecord

Point = tuple[float, float]

_GREY, _RED, _AMBER, _INK, _SHADE = "#9aa5b1", "#d1495b", "#de911d", "#1f2933", "#f9d7dc"
_TOP, _RIGHT, _BOTTOM, _LEFT = 40, 16, 48, 72  # margins around the plotting area, in pixels
_ROLES = ("evaluated", "infeasible", "Pareto front")  # drawing order: the front on top


def format_value(value: Any) -> str:
    """A value as report text: floats to 6 significant digits, lists and dicts as JSON."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return str(value)


def staircase(points: Sequence[Point], directions: tuple[Direction, Direction], reference: Point) -> list[Point]:
    """Corners of the boundary of the region that ``points`` dominate up to ``reference``.

    The path runs from the reference's edge on one axis, through every non-dominated point
    strictly better than ``reference``, to its edge on the other axis; between two points it
    turns at the corner that keeps the region dominated by them on one side. Empty when no
    point is better than ``reference``. Closed with ``reference`` it is the polygon whose area
    is the hypervolume.
    """
    sx, sy = (1.0 if d == "minimize" else -1.0 for d in directions)
    better = sorted(
        (p for p in points if sx * p[0] < sx * reference[0] and sy * p[1] < sy * reference[1]),
        key=lambda p: (sx * p[0], sy * p[1]),
    )
    steps: list[Point] = []
    for p in better:  # best first in x: a point is non-dominated when it improves on y
        if not steps or sy * p[1] < sy * steps[-1][1]:
            steps.append(p)
    if not steps:
        return []
    corners = [(steps[0][0], reference[1])]
    for prev, cur in pairwise(steps):
        corners += [prev, (cur[0], prev[1])]
    return corners + [steps[-1], (reference[0], steps[-1][1])]


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) within ``[lo, hi]``."""
    raw = (hi - lo) / n
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]


def _limits(values: Sequence[float]) -> tuple[float, float]:
    """The range of ``values`` padded by 5 % on each side (a little more around a single value)."""
    lo, hi = min(values), max(values)
    pad = 0.05 * (hi - lo) if hi > lo else max(0.05 * abs(lo), 0.5)
    return lo - pad, hi + pad


@dataclass(frozen=True)
class _Frame:
    """Maps data to pixels in a ``width`` x ``height`` SVG and draws the axes."""

    xlim: tuple[float, float]
    ylim: tuple[float, float]
    width: int = 640
    height: int = 440

    def px(self, x: float) -> float:
        (x0, x1), span = self.xlim, self.width - _LEFT - _RIGHT
        return _LEFT + (x - x0) / (x1 - x0) * span

    def py(self, y: float) -> float:
        (y0, y1), span = self.ylim, self.height - _TOP - _BOTTOM
        return self.height - _BOTTOM - (y - y0) / (y1 - y0) * span

    def clamped(self, p: Point) -> str:
        """``"x,y"`` pixel coordinates of ``p``, moved onto the plotting area's border when outside it."""
        x = min(max(self.px(p[0]), _LEFT), self.width - _RIGHT)
        y = min(max(self.py(p[1]), _TOP), self.height - _BOTTOM)
        return f"{x:.1f},{y:.1f}"

    def axes(self, xlabel: str, ylabel: str) -> str:
        """Grid, ticks, tick labels, border and the (escaped) axis labels."""
        left, right, top, bottom = _LEFT, self.width - _RIGHT, _TOP, self.height - _BOTTOM
        out = []
        for t in nice_ticks(*self.xlim):
            x = self.px(t)
            out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#e4e7eb"/>'
                       f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{t:.4g}</text>')
        for t in nice_ticks(*self.ylim):
            y = self.py(t)
            out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#e4e7eb"/>'
                       f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{t:.4g}</text>')
        out.append(f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" '
                   f'stroke="{_GREY}"/>')
        out.append(f'<text x="{(left + right) / 2:.1f}" y="{self.height - 10}" text-anchor="middle">'
                   f"{escape(xlabel)}</text>")
        out.append(f'<text transform="translate(16,{(top + bottom) / 2:.1f}) rotate(-90)" text-anchor="middle">'
                   f"{escape(ylabel)}</text>")
        return "".join(out)

    def svg(self, css_class: str, title: str, body: str) -> str:
        """The SVG element around ``body``; ``title`` is its (escaped) accessible name."""
        return (f'<svg class="{css_class}" viewBox="0 0 {self.width} {self.height}" width="{self.width}" '
                f'height="{self.height}" role="img" aria-label="{escape(title)}" font-family="system-ui,sans-serif" '
                f'font-size="12" fill="{_INK}">{body}</svg>')


def role_of(number: int, front: Collection[int], infeasible: Collection[int]) -> str:
    """How completed trial ``number`` is drawn: "Pareto front", "infeasible" or "evaluated"."""
    return "Pareto front" if number in front else "infeasible" if number in infeasible else "evaluated"


def point_tip(record: TrialRecord, role: str, label: str | None = None) -> str:
    """Hover text of a plotted trial: number, role, label, metrics and configuration, one per line."""
    head = f"trial {record.number}: {role}" + (f" ({label})" if label else "")
    metrics = [f"{k} = {format_value(v)}" for k, v in record.metrics.items()]
    config = [f"  {k} = {format_value(v)}" for k, v in record.config.items()]
    return "\n".join([head, *metrics, "configuration:", *config])


def _marker(role: str, x: float, y: float) -> str:
    """The shape of a trial of ``role`` at pixel ``(x, y)``."""
    if role == "infeasible":
        return f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" fill="{_AMBER}" fill-opacity=".75"/>'
    if role == "Pareto front":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{_RED}" stroke="#fff" stroke-width=".8"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{_GREY}" fill-opacity=".45"/>'


def _point(record: TrialRecord, role: str, label: str | None, x: float, y: float, right_edge: float) -> str:
    """One trial's marker, with its hover text; a labelled trial also gets a ring and its label."""
    mark = ""
    if label is not None:
        anchor, dx = ("end", -12) if x > right_edge - 120 else ("start", 12)
        mark = (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="10" fill="none" stroke="{_INK}" stroke-width="2"/>'
                f'<text x="{x + dx:.1f}" y="{y - 10:.1f}" text-anchor="{anchor}" font-weight="bold">'
                f"{escape(label)}</text>")
    css = "pt " + ("front" if role == "Pareto front" else role) + (" marked" if label is not None else "")
    return (f'<g class="{css}" data-trial="{record.number}">{_marker(role, x, y)}{mark}'
            f"<title>{escape(point_tip(record, role, label))}</title></g>")


def _legend(counts: Mapping[str, int], marked: bool, shaded: bool, width: int) -> str:
    """The legend entries above the plotting area of an SVG ``width`` pixels wide, in up to two rows."""
    entries = [(_marker(role, 0, 0), f"{role} ({n})") for role, n in counts.items() if n]
    if marked:
        entries.append((f'<circle r="6" fill="none" stroke="{_INK}" stroke-width="2"/>', "marked"))
    if shaded:
        entries.append((f'<rect x="-6" y="-5" width="12" height="10" fill="{_SHADE}"/>',
                        "dominated region"))
    out, x, y = [], 8.0, 12
    for marker, text in entries:
        step = 28 + 7 * len(text)
        if x + step > width - 8:  # wrap onto a second row
            x, y = 8.0, y + 16
        out.append(f'<g transform="translate({x + 6:.1f},{y})">{marker}<text x="10" y="4">{text}</text></g>')
        x += step
    return "".join(out)


def pareto_plot(
    records: Sequence[TrialRecord],
    x: Objective,
    y: Objective,
    *,
    front: Collection[int] = (),
    infeasible: Collection[int] = (),
    highlight: Mapping[int, str] | None = None,
    reference: Point | None = None,
) -> str:
    """SVG scatter of the completed ``records`` (at least one) on objectives ``x`` and ``y``.

    Every trial is drawn faint, the trials numbered in ``infeasible`` as amber squares, those in
    ``front`` in red, and those in ``highlight`` (trial number to label) ringed and labelled.
    With a ``reference`` point (in the objectives' units) the front's staircase and the region
    it dominates up to the reference are drawn (meaningful for two objectives only). Hovering a
    point shows its ``<title>``: trial number, metrics and configuration.
    """
    marks = highlight or {}
    frame = _Frame(_limits([float(r.metrics[x.name]) for r in records]),
                   _limits([float(r.metrics[y.name]) for r in records]))
    role = {r.number: role_of(r.number, front, infeasible) for r in records}
    body = [frame.axes(f"{x.name} ({x.direction})", f"{y.name} ({y.direction})")]
    corners: list[Point] = []
    if reference is not None:
        front_xy = [(float(r.metrics[x.name]), float(r.metrics[y.name])) for r in records if r.number in front]
        corners = staircase(front_xy, (x.direction, y.direction), reference)
        if corners:
            region = " ".join(frame.clamped(p) for p in [*corners, reference])
            line = " ".join(frame.clamped(p) for p in corners)
            body.append(f'<polygon class="dominated" points="{region}" fill="{_SHADE}" fill-opacity=".6"/>'
                        f'<polyline class="staircase" points="{line}" fill="none" stroke="{_RED}" '
                        'stroke-width="1.5"/>')
    ordered = sorted(records, key=lambda r: (r.number in marks, _ROLES.index(role[r.number])))
    body += [_point(r, role[r.number], marks.get(r.number), frame.px(float(r.metrics[x.name])),
                    frame.py(float(r.metrics[y.name])), frame.width) for r in ordered]
    counts = {name: sum(v == name for v in role.values()) for name in _ROLES}
    body.append(_legend(counts, any(r.number in marks for r in records), bool(corners), frame.width))
    return frame.svg("plot pareto", f"{y.name} against {x.name}", "".join(body))


def hypervolume_plot(history: Sequence[float]) -> str:
    """SVG step curve of the hypervolume after each of the ``history`` evaluations (1, 2, ...; at least one)."""
    n, top = len(history), max(history)
    frame = _Frame(_limits([1.0, float(n)]), (0.0, 1.05 * top if top > 0 else 1.0), height=300)
    steps = [f"M{frame.px(1):.1f},{frame.py(history[0]):.1f}"]
    steps += [f"H{frame.px(i + 1):.1f}V{frame.py(h):.1f}" for i, h in enumerate(history[1:], start=1)]
    body = (frame.axes("evaluations", "hypervolume")
            + f'<path class="hypervolume" d="{"".join(steps)}" fill="none" stroke="{_RED}" stroke-width="2">'
            f"<title>hypervolume after {n} evaluations: {history[-1]:.6g}</title></path>")
    return frame.svg("plot hypervolume", "hypervolume against evaluations", body)
