"""Plots of a study: pure functions from records to matplotlib figures."""

from __future__ import annotations

import io
from collections.abc import Sequence
from itertools import combinations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from elasticnas.records import Objective, TrialRecord  # noqa: E402

_ALL = "#9aa5b1"
_FRONT = "#d1495b"
_INFEASIBLE = "#e0c97a"


def pareto_scatter(
    records: Sequence[TrialRecord],
    front: Sequence[TrialRecord],
    objectives: Sequence[Objective],
    infeasible: Sequence[TrialRecord] = (),
) -> Figure:
    """Scatter of every pair of objectives: all trials, infeasible ones, and the Pareto front."""
    pairs = list(combinations(range(len(objectives)), 2)) or [(0, 0)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.2 * len(pairs), 4.2), squeeze=False)
    front_ids = {r.number for r in front}
    for ax, (i, j) in zip(axes[0], pairs, strict=True):
        xi, yj = objectives[i].name, objectives[j].name

        def xy(rs: Sequence[TrialRecord], xi: str = xi, yj: str = yj) -> tuple[np.ndarray, np.ndarray]:
            return np.array([r.metrics[xi] for r in rs]), np.array([r.metrics[yj] for r in rs])

        rest = [r for r in records if r.number not in front_ids]
        if rest:
            ax.scatter(*xy(rest), s=12, c=_ALL, label="evaluated", alpha=0.7)
        if infeasible:
            ax.scatter(*xy(infeasible), s=12, c=_INFEASIBLE, label="infeasible", alpha=0.8)
        if front:
            ordered = sorted(front, key=lambda r: r.metrics[xi])
            fx, fy = xy(ordered)
            ax.plot(fx, fy, c=_FRONT, lw=1, drawstyle="steps-post" if len(objectives) == 2 else "default", alpha=0.6)
            ax.scatter(fx, fy, s=28, c=_FRONT, label="Pareto front", zorder=3)
        ax.set_xlabel(f"{xi} ({objectives[i].direction})")
        ax.set_ylabel(f"{yj} ({objectives[j].direction})")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def hypervolume_curve(history: Sequence[float]) -> Figure:
    """Hypervolume of the feasible trials against the number of evaluations."""
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ax.plot(np.arange(1, len(history) + 1), history, c=_FRONT)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("hypervolume")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def figure_to_svg(fig: Figure) -> str:
    """The figure as inline SVG text (and close it)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]
