import json

import numpy as np
import pytest

from elasticnas import create_study
from elasticnas.pareto import non_dominated_mask
from elasticnas.problems import Problem, create_problem, list_problems
from elasticnas.problems._ofa_devices import (
    HELP_COLUMNS,
    HELP_RESOLUTIONS,
    NOTE10_RESOLUTIONS,
    REFERENCE_POINT,
    TARGETS,
    help_accuracy,
    load_help_table,
    make_ofa_mbv3_devices_problem,
    target_reference_front,
)
from elasticnas.problems._tables import latency_objective
from elasticnas.space import SearchSpace


@pytest.fixture(scope="module")
def problem() -> Problem:
    return create_problem("ofa_mbv3_devices")


@pytest.fixture(scope="module")
def gpus() -> Problem:
    return make_ofa_mbv3_devices_problem([t for t in TARGETS if t != "note10"])


def row_config(k: int) -> dict[str, object]:
    t = load_help_table()
    return {"ks": t["ks"][k].tolist(), "e": t["e"][k].tolist(), "d": t["d"][k].tolist(), "r": int(t["r"][k])}


def test_registered_with_13_targets_and_a_shared_accuracy(problem: Problem) -> None:
    assert "ofa_mbv3_devices" in list_problems()
    assert len(TARGETS) == 13 and TARGETS[0] == "note10" and "rtx2080ti_b1" in TARGETS and "v100_b64" in TARGETS
    latencies = [latency_objective(t) for t in TARGETS]
    assert dict(problem.objectives) == {"accuracy_top1": "maximize", **{m: "minimize" for m in latencies}}
    owned = [m for names in problem.targets.values() for m in names]
    assert sorted(owned) == sorted(latencies)  # every latency in exactly one target
    assert "accuracy_top1" not in owned  # shared by all targets
    assert set(problem.cheap_metrics) == set(latencies)
    assert problem.reference_point == tuple(REFERENCE_POINT[m] for m in problem.objectives)
    assert problem.study_kwargs()["targets"] == {t: [latency_objective(t)] for t in TARGETS}


def test_reference_point_bounds_every_row() -> None:
    table = load_help_table()
    assert np.all(help_accuracy() > REFERENCE_POINT["accuracy_top1"])
    for t in TARGETS:
        known = table[t][~np.isnan(table[t])]
        assert len(known) == (1013 if t == "note10" else 5000)
        assert np.all(known < REFERENCE_POINT[latency_objective(t)])


def test_unknown_targets_are_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown target 'pixel2'; known targets: note10, rtx2080ti_b1"):
        make_ofa_mbv3_devices_problem(["v100_b1", "pixel2"])
    with pytest.raises(ValueError, match="known targets"):
        target_reference_front("pixel2")
    with pytest.raises(ValueError, match="not among"):
        target_reference_front("note10", targets=["v100_b1"])
    with pytest.raises(ValueError, match="targets given twice"):
        make_ofa_mbv3_devices_problem(["v100_b1", "v100_b1"])


def test_a_table_row_projects_onto_itself_with_its_latencies(problem: Problem, gpus: Problem) -> None:
    table = load_help_table()
    for p in (problem, gpus):
        rows = p.space.rows()
        assert len(rows) == (1013 if p is problem else 5000)
        np.testing.assert_array_equal(p.space.canonical_genes(p.space.table_genes()), p.space.table_genes())
        np.testing.assert_array_equal(p.space.table_rows(p.space.table_genes()), rows)
        for k in rows[:: len(rows) // 7]:
            cfg = p.space.validate(row_config(int(k)))
            assert p.space.table_row(cfg) == k
            assert p.space.distance_to_table(p.space.to_genes(cfg))[0] == 0
            metrics = p(cfg)
            for t in p.targets:
                assert metrics[latency_objective(t)] == table[t][k]
            assert metrics["accuracy_top1"] == pytest.approx(help_accuracy()[k], abs=1e-9)


def test_gpu_latencies_are_helps_numbers_unchanged(gpus: Problem) -> None:
    import csv
    import gzip

    from elasticnas.problems._ofa_devices import TABLE_FILE

    with gzip.open(TABLE_FILE, "rt", newline="") as fh:
        first = next(csv.DictReader(fh))
    assert (first["ks"], first["e"], first["d"], first["r"]) == (
        "75557757573753735353",
        "64466343363336346436",
        "22223",
        "204",
    )  # HELP's first OFA architecture
    assert first["lat_2080ti_1"] == "12.081937789916992"
    assert gpus(row_config(0))["latency_ms_rtx2080ti_b1"] == 12.081937789916992
    assert set(HELP_COLUMNS.values()) == {c for c in first if c.startswith("lat_")}


def test_configurations_outside_the_table_project_onto_a_table_row(gpus: Problem) -> None:
    space = gpus.space
    table = {g.tobytes() for g in space.table_genes()}
    G = space._inactive_to_first(np.random.default_rng(0).integers(0, space.cardinalities, size=(200, space.n_genes)))
    assert not any(g.tobytes() in table for g in G)  # random configurations are (almost surely) outside
    C = space.canonical_genes(G)
    assert all(c.tobytes() in table for c in C)
    np.testing.assert_array_equal(space.canonical_genes(G), C)  # the same configuration always to the same row
    np.testing.assert_array_equal(space.canonical_genes(C), C)
    assert np.all(space.distance_to_table(G) > 0)
    for g, c in zip(G[:20], C[:20], strict=True):
        cfg = space.from_genes(g)
        assert space.to_genes(cfg).tolist() == c.tolist()
        assert space.config_id(cfg) == space.config_id(space.from_genes(c))
    # the documented distance: weighted Hamming, resolution 8, each depth 4, each kernel size / expand ratio 1
    w = np.array([1.0] * 40 + [4.0] * 5 + [8.0])
    dist = ((G[:, None, :] != space.table_genes()[None, :, :]) * w).sum(axis=2)
    np.testing.assert_array_equal(space.distance_to_table(G), dist.min(axis=1))
    np.testing.assert_array_equal(space.table_rows(G), space.rows()[np.argmin(dist, axis=1)])  # ties: lower row


def test_inactive_genes_do_not_change_the_projection(problem: Problem) -> None:
    space = problem.space
    rng = np.random.default_rng(1)
    G = rng.integers(0, space.cardinalities, size=(100, space.n_genes))
    G[:, 40:45] = rng.integers(0, 2, size=(100, 5))  # depths 2 or 3: every stage skips blocks
    mask = space.inactive_mask(G)
    assert mask.sum(axis=1).min() >= 10
    other = G.copy()
    other[mask] = rng.integers(0, 3, size=int(mask.sum()))
    assert (other != G).any()
    np.testing.assert_array_equal(space.table_rows(other), space.table_rows(G))
    np.testing.assert_array_equal(space.canonical_genes(other), space.canonical_genes(G))
    np.testing.assert_array_equal(space.distance_to_table(other), space.distance_to_table(G))


def test_note10_latency_and_accuracy_equal_ofa_mbv3_note10s(problem: Problem) -> None:
    note10 = create_problem("ofa_mbv3_note10")
    assert problem.space.choices["r"].values == NOTE10_RESOLUTIONS
    assert set(load_help_table()["r"]) == set(HELP_RESOLUTIONS)
    for k in problem.space.rows()[::50]:
        cfg = problem.space.validate(row_config(int(k)))
        ours = problem(cfg)
        theirs = note10(note10.space.validate(cfg))
        assert ours["latency_ms_note10"] == theirs["latency_note10_ms"]
        assert ours["accuracy_top1"] == theirs["accuracy_top1"]
    # any other configuration gets the Note10 latency of the table architecture it projects onto
    lut_latency = note10.cheap_metrics["latency_note10_ms"]
    rng = np.random.default_rng(5)
    for _ in range(10):
        raw = {
            "ks": rng.choice([3, 5, 7], 20).tolist(),
            "e": rng.choice([3, 4, 6], 20).tolist(),
            "d": rng.choice([2, 3, 4], 5).tolist(),
            "r": int(rng.choice(NOTE10_RESOLUTIONS)),
        }
        projected = problem.space.validate(raw)
        assert projected != note10.space.validate(raw)  # (almost surely) not a table architecture
        assert problem(raw)["latency_ms_note10"] == lut_latency(projected)


@pytest.mark.parametrize("target", ["note10", "v100_b64", "titan_xp_b1"])
def test_target_reference_front_is_the_exhaustive_front(target: str, problem: Problem, gpus: Problem) -> None:
    table, acc = load_help_table(), help_accuracy()
    cases = [(None, problem.space.rows())]
    if target != "note10":
        cases.append(([target], gpus.space.rows()))
    for targets, rows in cases:
        front = target_reference_front(target, targets)
        assert front.shape[1] == 2 and np.all(np.diff(front[:, 1]) > 0)
        signs = np.array([-1.0, 1.0])
        assert non_dominated_mask(front * signs).all()
        F = np.column_stack([acc[rows], table[target][rows]])
        assert len(F) == (1013 if targets is None else 5000)
        # every row is weakly dominated by a front point, and every front point is a row
        weakly = np.all((front[None, :, :] * signs) <= (F[:, None, :] * signs), axis=2).any(axis=1)
        assert weakly.all()
        assert {tuple(f) for f in front} <= {tuple(f) for f in F}


def test_the_problem_front_is_the_table_rows_front(problem: Problem) -> None:
    front = problem.reference_front()
    signs = np.array([o.sign for o in problem.objective_list])
    assert front.shape[1] == 14 and non_dominated_mask(front * signs).all()
    assert np.all(front * signs < problem.reference_point_min())


def test_the_space_round_trips_through_json(problem: Problem, gpus: Problem) -> None:
    for p in (problem, gpus):
        again = SearchSpace.from_json(json.loads(json.dumps(p.space.to_json())))
        assert again == p.space
        cfgs = p.space.sample_many(5, seed=2)
        assert [again.config_id(c) for c in cfgs] == [p.space.config_id(c) for c in cfgs]
    with pytest.raises(ValueError, match="not in the HELP table"):
        SearchSpace.from_json(
            {
                **problem.space.to_json(),
                "choices": {**problem.space.to_json()["choices"], "r": {"values": [160, 230], "size": None}},
            }
        )


def test_a_short_random_study_runs_and_repeats_with_its_seed(problem: Problem) -> None:
    def run() -> list[tuple[str, dict[str, float]]]:
        study = create_study(problem.space, dict(problem.objectives), reference_point=list(problem.reference_point))
        study.optimize(problem.evaluate, n_evals=10, searcher="random", seed=0, cheap_metrics=problem.cheap_metrics)
        return [(t.config_id, dict(t.metrics)) for t in study.trials]

    first = run()
    assert len(first) == 10 and len({cid for cid, _ in first}) == 10
    assert all(set(problem.objectives) <= set(m) for _, m in first)
    assert run() == first
