"""SVG plots: the Pareto staircase follows the dominated region's boundary, points carry their hover text."""

import xml.etree.ElementTree as ET
from itertools import pairwise

import numpy as np
import pytest

from elasticnas.pareto import hypervolume, non_dominated_mask
from elasticnas.records import Objective, TrialRecord
from elasticnas.report import hypervolume_plot, pareto_plot, staircase
from elasticnas.report.plots import nice_ticks

DIRECTIONS = [("maximize", "minimize"), ("minimize", "minimize"), ("maximize", "maximize"), ("minimize", "maximize")]


def signs(directions):
    return np.array([1.0 if d == "minimize" else -1.0 for d in directions])


def trade_off(seed, n, s):
    """``n`` points in objective units whose minimisation form trades one objective for the other."""
    u = np.random.default_rng(seed).uniform(1, 9, n)
    v = 10 - u + np.random.default_rng(seed + 1).uniform(0, 3, n)
    return np.column_stack([u, v]) * s


def on_boundary(q, front):
    """In minimisation form: ``q`` is weakly dominated by a front point and strictly by none."""
    return bool(np.any(np.all(front <= q + 1e-9, axis=1))) and not np.any(np.all(front < q - 1e-9, axis=1))


def check_staircase(corners, front):
    """``corners`` (minimisation form) run along the boundary of the region ``front`` dominates."""
    assert all(a[0] == b[0] or a[1] == b[1] for a, b in pairwise(corners))  # axis-aligned steps
    assert sorted(map(tuple, corners[1:-1:2])) == sorted(map(tuple, front))  # every other corner is a front point
    for a, b in pairwise(corners):
        assert on_boundary(a, front) and on_boundary((a + b) / 2, front)
    assert on_boundary(corners[-1], front)


def shoelace(polygon):
    x, y = polygon[:, 0], polygon[:, 1]
    return abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2


@pytest.mark.parametrize("directions", DIRECTIONS)
def test_staircase_is_the_boundary_of_the_dominated_region_and_encloses_the_hypervolume(directions):
    s = signs(directions)
    points = trade_off(0, 60, s)
    F = points * s  # minimisation form
    ref_min = F.max(axis=0) + 1.0
    corners = staircase([tuple(p) for p in points], directions, tuple(ref_min * s))
    C = np.array(corners) * s
    front = F[non_dominated_mask(F)]
    assert len(front) >= 5 and len(C) == 2 * len(front) + 1
    check_staircase(C, front)
    assert C[0][1] == ref_min[1] and C[-1][0] == ref_min[0]  # from one edge of the reference box to the other
    assert shoelace(np.vstack([C, ref_min])) == pytest.approx(hypervolume(front, ref_min))


def test_staircase_leaves_out_points_not_better_than_the_reference():
    points = [(1.0, 5.0), (2.0, 2.0), (4.0, 1.0)]  # both minimised
    assert staircase(points, ("minimize", "minimize"), (3.0, 6.0)) == [
        (1.0, 6.0), (1.0, 5.0), (2.0, 5.0), (2.0, 2.0), (3.0, 2.0)
    ]
    assert staircase(points, ("minimize", "minimize"), (0.5, 9.0)) == []


def record(number, **metrics):
    return TrialRecord(number=number, config={"ks": [3, 5], "r": 160 + number}, config_id=str(number), metrics=metrics)


def svg_tree(svg):
    return ET.fromstring(svg)


def points_of(tree):
    return [g for g in tree.iter("g") if "pt" in g.get("class", "").split()]


def centre(g):
    shape = g[0]
    if shape.tag == "circle":
        return float(shape.get("cx")), float(shape.get("cy"))
    return float(shape.get("x")) + 3.5, float(shape.get("y")) + 3.5


@pytest.mark.parametrize("directions", DIRECTIONS)
def test_pareto_plot_draws_the_staircase_through_the_drawn_front(directions):
    x, y = Objective("f", directions[0]), Objective("g", directions[1])
    s = signs(directions)
    values = trade_off(1, 40, s)
    records = [record(i, f=a, g=b, extra=a + b) for i, (a, b) in enumerate(values)]
    front = {i for i, m in enumerate(non_dominated_mask(values * s)) if m}
    reference = tuple(((values * s).max(axis=0) + 0.5) * s)
    tree = svg_tree(pareto_plot(records, x, y, front=front, reference=reference))

    drawn_front = [g for g in points_of(tree) if "front" in g.get("class").split()]
    assert {int(g.get("data-trial")) for g in drawn_front} == front
    # in pixels, y grows downwards: minimisation form is (sx * px, -sy * py)
    pixel_sign = s * [1.0, -1.0]
    front_px = np.array([centre(g) for g in drawn_front]) * pixel_sign
    line = next(e for e in tree.iter("polyline") if e.get("class") == "staircase")
    corners = np.array([[float(v) for v in p.split(",")] for p in line.get("points").split()]) * pixel_sign
    check_staircase(corners, front_px)


def test_points_carry_trial_metrics_and_configuration_and_marked_ones_are_labelled():
    records = [record(i, f=float(i), g=float(10 - i)) for i in range(5)]
    tree = svg_tree(pareto_plot(records, Objective("f", "minimize"), Objective("g", "minimize"),
                                front={0, 1, 2, 3, 4}, highlight={3: "exported"}))
    points = points_of(tree)
    assert sorted(int(g.get("data-trial")) for g in points) == list(range(5))
    for g in points:
        tip = g.find("title").text
        n = int(g.get("data-trial"))
        assert tip.startswith(f"trial {n}: Pareto front")
        assert f"f = {float(n):g}" in tip and f"g = {float(10 - n):g}" in tip
        assert "ks = [3, 5]" in tip and f"r = {160 + n}" in tip
    marked = [g for g in points if "marked" in g.get("class").split()]
    assert [int(g.get("data-trial")) for g in marked] == [3] and points[-1] is marked[0]  # drawn on top
    assert [t.text for t in marked[0].iter("text")] == ["exported"]
    assert "(exported)" in marked[0].find("title").text


def test_hypervolume_plot_steps_once_per_evaluation():
    history = [0.0, 0.0, 1.0, 1.5, 1.5, 4.0]
    path = next(svg_tree(hypervolume_plot(history)).iter("path"))
    d = path.get("d")
    assert d.count("H") == d.count("V") == len(history) - 1
    heights = [float(v.split("H")[0]) for v in d.split("V")[1:]]
    assert heights == sorted(heights, reverse=True)  # pixel y falls as the hypervolume grows
    assert path.find("title").text.endswith("6 evaluations: 4")


@pytest.mark.parametrize("lo, hi", [(0.0, 1.0), (77.7, 82.3), (-3e-4, 5e-4), (1.0, 30.0), (1e5, 1e7)])
def test_nice_ticks_are_round_evenly_spaced_and_inside_the_range(lo, hi):
    ticks = nice_ticks(lo, hi)
    assert 3 <= len(ticks) <= 11
    assert lo <= ticks[0] and ticks[-1] <= hi
    assert np.allclose(np.diff(ticks), ticks[1] - ticks[0])
