import numpy as np
import pytest

from elasticnas import create_study
from elasticnas.pareto import non_dominated_mask
from elasticnas.problems import create_problem, list_problems
from elasticnas.problems._hwgpt import (
    DEFAULT_DEVICES,
    DEVICES,
    load_table,
    make_hwgpt_devices_problem,
    target_reference_front,
)
from elasticnas.problems._tables import latency_objective

# Metrics of hwgpt_s_gpu / hwgpt_s_cpu computed with the table as shipped before the device columns were
# added (hwgpt_s_table.csv.gz with columns perplexity, lat_ms_a100, lat_s_cpu_a6000 only), for
# `create_problem("hwgpt_s_gpu").space.sample(seed=s)`, s = 0..3: (config, table row, perplexity,
# GPU latency in ms, CPU latency in ms). The regenerated table must give the same.
BEFORE = [
    (
        {
            "embed_dim": 768,
            "n_layer": 11,
            "mlp_ratio": [3, 4, 2, 2, 2, 2, 4, 3, 3, 3, 3, 2],
            "n_head": [12, 12, 8, 8, 8, 4, 4, 4, 8, 4, 12, 4],
        },
        4768,
        24.6741,
        24.7438,
        7626.0,
    ),
    (
        {
            "embed_dim": 384,
            "n_layer": 11,
            "mlp_ratio": [2, 3, 2, 2, 2, 4, 2, 2, 2, 3, 4, 2],
            "n_head": [12, 8, 8, 8, 4, 8, 8, 12, 12, 8, 12, 4],
        },
        726,
        32.0281,
        15.7884,
        4101.0,
    ),
    (
        {
            "embed_dim": 768,
            "n_layer": 10,
            "mlp_ratio": [2, 4, 3, 3, 3, 2, 3, 4, 4, 2, 2, 2],
            "n_head": [4, 4, 8, 4, 4, 12, 4, 8, 4, 12, 4, 4],
        },
        7508,
        25.8076,
        22.1411,
        8267.0,
    ),
    (
        {
            "embed_dim": 768,
            "n_layer": 10,
            "mlp_ratio": [2, 2, 2, 4, 3, 3, 3, 2, 4, 3, 2, 2],
            "n_head": [12, 8, 12, 12, 4, 4, 8, 4, 12, 12, 4, 4],
        },
        2495,
        25.1332,
        23.7556,
        6468.0,
    ),
]
# same source: reference points, and (length, column sums, first and last row) of the reference fronts
BEFORE_REF = {"gpu": (42.117003000000004, 30.105976000000002), "cpu": (42.117003000000004, 12269.43)}
BEFORE_FRONT = {
    "gpu": (129, (3928.5246, 2393.3664), (41.851, 9.363), (22.1591, 28.9891)),
    "cpu": (55, (1703.1791, 269461.0), (41.851, 1722.0), (22.1591, 9534.0)),
}
# row ppl_index 0 of HW-GPT-Bench's hwgpt_s_table.csv, as printed there (GPUs in ms, CPUs in s)
ROW0 = {
    "p100": 126.531,
    "a100": 13.9336,
    "a40": 20.4794,
    "a6000": 17.6465,
    "h100": 6.4498,
    "rtx2080": 38.042,
    "rtx3080": 25.4832,
    "v100": 25.3972,
    "cpu_a6000": 3.88,
    "cpu_alldlc": 3.091,
    "cpu_meta": 1.559,
    "cpu_mlgpu": 2.873,
    "cpu_p100": 3.675,
    "helix_cpu": 8.73,
}


def test_existing_hwgpt_problems_are_unchanged() -> None:
    gpu, cpu = create_problem("hwgpt_s_gpu"), create_problem("hwgpt_s_cpu")
    for seed, (cfg, row, ppl, gpu_ms, cpu_ms) in enumerate(BEFORE):
        assert gpu.space.sample(seed=seed) == cfg
        assert gpu.space.table_row(cfg) == row
        assert gpu(cfg) == {"perplexity": ppl, "latency_ms": gpu_ms}
        assert cpu(cfg) == {"perplexity": ppl, "latency_ms": cpu_ms}
    for device, p in (("gpu", gpu), ("cpu", cpu)):
        assert p.reference_point == BEFORE_REF[device]
        n, sums, first, last = BEFORE_FRONT[device]
        front = p.reference_front()
        assert len(front) == n
        np.testing.assert_allclose(front.sum(axis=0), sums, rtol=1e-12)
        assert tuple(front[0]) == first and tuple(front[-1]) == last
    assert len(load_table()["genes"]) == 10_000


def test_devices_are_named_after_the_latency_columns() -> None:
    assert set(DEVICES) == set(ROW0) and len(DEVICES) == 14
    assert DEVICES[:8] == ("a100", "p100", "a40", "a6000", "h100", "rtx2080", "rtx3080", "v100")
    table = load_table()
    for device in DEVICES:
        column = table[latency_objective(device)]
        assert column.shape == (10_000,) and np.all(np.isfinite(column)) and np.all(column > 0)
    np.testing.assert_array_equal(table["latency_ms_cpu_meta"], 1000.0 * table["lat_s_cpu_meta"])
    np.testing.assert_array_equal(table["latency_ms_p100"], table["lat_ms_P100"])
    assert "hwgpt_s_devices" in list_problems()


def test_every_device_latency_is_the_tables_for_a_table_row() -> None:
    p = create_problem("hwgpt_s_devices")
    table = load_table()
    assert p.objectives == {"perplexity": "minimize", **{f"latency_ms_{d}": "minimize" for d in DEFAULT_DEVICES}}
    assert set(p.cheap_metrics) == {f"latency_ms_{d}" for d in DEFAULT_DEVICES}
    for row in (0, 1, 726, 4768, 9999):
        cfg = p.space.from_genes(table["genes"][row])
        assert p.space.table_row(cfg) == row
        metrics = p(cfg)
        assert p.evaluate(cfg) == {"perplexity": float(table["perplexity"][row])}
        for d in DEFAULT_DEVICES:
            assert metrics[f"latency_ms_{d}"] == float(table[f"latency_ms_{d}"][row])
    # units: the first row of the source, GPUs in ms, CPUs in s
    metrics = p(p.space.from_genes(table["genes"][0]))
    assert metrics["perplexity"] == 33.1216
    for d, value in ROW0.items():
        if d not in DEFAULT_DEVICES:
            continue
        expected = value if d in DEVICES[:8] else 1000.0 * value
        assert metrics[f"latency_ms_{d}"] == pytest.approx(expected, rel=1e-12)


def test_targets_own_one_latency_each_and_share_perplexity() -> None:
    p = create_problem("hwgpt_s_devices")
    assert p.targets is not None and tuple(p.targets) == DEFAULT_DEVICES == tuple(d for d in DEVICES if d != "cpu_meta")
    owned = [m for names in p.targets.values() for m in names]
    assert sorted(owned) == sorted(m for m in p.objectives if m.startswith("latency_ms_"))
    assert len(owned) == len(set(owned))
    assert all(p.targets[d] == (f"latency_ms_{d}",) for d in DEFAULT_DEVICES)
    assert "perplexity" not in owned
    # reference point: worst of every column + 1 % of its range, as for hwgpt_s_gpu
    table = load_table()
    for j, name in enumerate(p.objectives):
        col = table[name]
        assert p.reference_point is not None
        assert p.reference_point[j] == pytest.approx(col.max() + 0.01 * (col.max() - col.min()), rel=1e-12)
    assert p.reference_point[0] == create_problem("hwgpt_s_gpu").reference_point[0]


def test_a_subset_of_devices_and_unknown_names() -> None:
    p = make_hwgpt_devices_problem(["h100", "cpu_a6000"])
    assert list(p.objectives) == ["perplexity", "latency_ms_h100", "latency_ms_cpu_a6000"]
    assert p.targets == {"h100": ("latency_ms_h100",), "cpu_a6000": ("latency_ms_cpu_a6000",)}
    assert p.name != "hwgpt_s_devices" and len(p.reference_point or ()) == 3
    front = p.reference_front()
    assert front is not None and non_dominated_mask(front).all()
    with pytest.raises(ValueError, match="unknown target .tpu.; known targets: a100, p100"):
        make_hwgpt_devices_problem(["a100", "tpu"])
    with pytest.raises(ValueError, match="cpu_a6000"):
        target_reference_front("cpu")
    with pytest.raises(ValueError, match="twice"):
        make_hwgpt_devices_problem(["a100", "a100"])


@pytest.mark.parametrize("device", DEVICES)
def test_target_reference_front_is_the_exhaustive_front(device: str) -> None:
    table = load_table()
    F = np.column_stack([table["perplexity"], table[f"latency_ms_{device}"]])
    front = target_reference_front(device)
    assert front.shape[1] == 2 and non_dominated_mask(front).all()
    assert np.all(np.diff(front[:, 1]) >= 0)
    assert {tuple(x) for x in front} <= {tuple(x) for x in F}
    # every table row is weakly dominated by a front point
    dominated = np.all(front[None, :, :] <= F[:, None, :], axis=2).any(axis=1)
    assert dominated.all()
    front[0, 0] = -1.0  # a copy
    assert target_reference_front(device)[0, 0] != -1.0


def test_target_fronts_of_the_original_devices_match_the_two_device_problems() -> None:
    np.testing.assert_array_equal(target_reference_front("a100"), create_problem("hwgpt_s_gpu").reference_front())
    np.testing.assert_array_equal(target_reference_front("cpu_a6000"), create_problem("hwgpt_s_cpu").reference_front())


def _run(seed: int) -> list[tuple[str, dict[str, float]]]:
    p = create_problem("hwgpt_s_devices")
    assert p.reference_point is not None
    study = create_study(space=p.space, objectives=dict(p.objectives), reference_point=list(p.reference_point))
    study.optimize(p.evaluate, n_evals=10, searcher="random", seed=seed, cheap_metrics=p.cheap_metrics)
    return [(t.config_id, dict(t.metrics)) for t in study.trials]


def test_a_short_random_study_runs_and_repeats() -> None:
    p = create_problem("hwgpt_s_devices")
    trials = _run(0)
    assert len(trials) == 10 and len({cid for cid, _ in trials}) == 10
    for _, metrics in trials:
        assert set(p.objectives) <= set(metrics)
        assert all(np.isfinite(metrics[m]) for m in p.objectives)
    assert _run(0) == trials
