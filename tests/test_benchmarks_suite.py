"""The generality suite's problems (benchmarks/suite_problems.py): reference fronts and points hold what the
problems can reach, and tabular spaces project every configuration onto one table row."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from suite_problems import SUITE, load_measured_w10, measured_w10_space, suite_problem  # noqa: E402

from elasticnas.pareto import non_dominated_mask  # noqa: E402

TABULAR = [name for name in SUITE if name != "tiny_mbv3_digits"]


def _signs(problem):
    return np.array([o.sign for o in problem.objective_list])


@pytest.mark.parametrize("name", TABULAR)
def test_front_and_reference_point_bound_what_the_problem_reaches(name):
    problem = suite_problem(name)
    assert suite_problem(name) is problem
    assert problem.name == name and problem.targets is None
    assert len(problem.reference_point) == len(problem.objectives)
    signs = _signs(problem)
    front = problem.reference_front() * signs
    assert front.shape[1] == len(problem.objectives) and non_dominated_mask(front).all()
    ref = problem.reference_point_min()
    assert (front < ref).all()
    for config in problem.space.sample_many(20, seed=0):
        metrics = problem(config)
        assert set(problem.objectives) <= set(metrics)
        assert set(problem.evaluate(config)).isdisjoint(problem.cheap_metrics)  # cheap metrics are not evaluated
        v = np.array([metrics[n] for n in problem.objectives]) * signs
        assert (v < ref).all()
        assert (front <= v + 1e-12).all(axis=1).any()  # weakly dominated by the reference front


@pytest.mark.parametrize("name", TABULAR)
def test_a_configuration_projects_onto_one_table_row(name):
    space = suite_problem(name).space
    rows: dict[int, bytes] = {}
    for config in space.sample_many(20, seed=1):
        canonical = space.canonical_genes(space.to_genes(config))[0]
        row = space.table_row(config)
        assert space.table_row(space.from_genes(canonical)) == row  # the row's own genes project onto it
        assert np.array_equal(space.canonical_genes(canonical)[0], canonical)
        assert rows.setdefault(row, canonical.tobytes()) == canonical.tobytes()
    assert len(set(rows.values())) == len(rows)  # distinct rows, distinct genes


def test_measured_w10_rows_are_distinct_and_each_its_own_projection():
    table = load_measured_w10()
    space = measured_w10_space()
    assert len(table["genes"]) == 2162
    assert np.array_equal(space.table_rows(table["genes"]), np.arange(2162))
    assert np.array_equal(space.canonical_genes(table["genes"]), table["genes"])


def test_hwgpt_energy_has_two_expensive_objectives_and_a_cheap_one():
    problem = suite_problem("hwgpt_s_energy")
    config = problem.space.sample(seed=0)
    assert set(problem.evaluate(config)) == {"perplexity", "energy_Wh_a100"}
    assert set(problem.cheap_metrics) == {"latency_ms_a100"}


@pytest.mark.usefixtures("one_torch_thread")
def test_tiny_mbv3_digits_measures_accuracy_and_macs():
    problem = suite_problem("tiny_mbv3_digits")
    config = problem.space.from_genes(np.zeros(problem.space.n_genes, dtype=np.int64))  # the smallest network
    metrics = problem(config)
    assert 50.0 < metrics["accuracy_top1"] <= 100.0 and metrics["macs"] > 0
    if problem.reference_point is not None:
        front = problem.reference_front() * _signs(problem)
        assert non_dominated_mask(front).all() and (front < problem.reference_point_min()).all()
