import csv
import json
from pathlib import Path

import numpy as np
import pytest

from elasticnas.measure.ofa_lut import OFALookupTable
from elasticnas.pareto import non_dominated_mask
from elasticnas.problems import create_problem, list_problems
from elasticnas.problems._ofa_mbv3 import OFAAccuracyPredictor, OFAMobileNetV3Oracle, accuracy_predictor, note10_lut

DATA = Path(__file__).parent / "data"


@pytest.fixture(params=list_problems())
def problem_name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_builtin_problems_registered() -> None:
    assert {"ofa_mbv3_note10", "hwgpt_s_gpu", "hwgpt_s_cpu"} <= set(list_problems())


def test_problem_contract(problem_name: str) -> None:
    p = create_problem(problem_name)
    cfg = p.space.sample(seed=0)
    expensive = p.evaluate(cfg)
    assert set(expensive).isdisjoint(p.cheap_metrics)
    metrics = p(cfg)
    assert set(p.objectives) <= set(metrics)
    assert p(cfg) == metrics  # deterministic
    ref = p.reference_point_min()
    front = p.reference_front() * np.array([o.sign for o in p.objective_list])
    assert non_dominated_mask(front).all()
    assert np.all(front < ref)
    F = np.array([[o.sign * p(c)[o.name] for o in p.objective_list] for c in p.space.sample_many(30, seed=1)])
    assert np.all(F < ref)  # random configurations lie inside the reference box
    with pytest.raises(AttributeError):
        p.name = "other"  # type: ignore[misc]


def test_ofa_predictor_and_lut_reproduce_published_values() -> None:
    lut = OFALookupTable.load()
    problem = create_problem("ofa_mbv3_note10")
    with (DATA / "dynast_measured_w10_sample.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        cfg = json.loads(r["subnet"])
        assert lut.latency_ms(cfg) == pytest.approx(float(r["lat_note10_lut_w12_ms"]), abs=1e-3)
        assert problem.evaluate(problem.space.validate(cfg))["accuracy_top1"] == pytest.approx(
            float(r["top1_ofa_predictor_w12"]), abs=1e-3
        )


def test_lut_names_a_missing_resolution() -> None:
    with pytest.raises(KeyError, match="resolution 128"):
        OFALookupTable.load().latency_ms({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": 128})


def test_ofa_skipped_blocks_share_one_id_and_vectorised_paths_agree() -> None:
    p = create_problem("ofa_mbv3_note10")
    cfg = p.space.sample(seed=3)
    cfg["d"][0] = 2
    other = {**cfg, "ks": list(cfg["ks"]), "e": list(cfg["e"])}
    other["ks"][3] = 7 if cfg["ks"][3] != 7 else 5
    assert p.space.config_id(cfg) == p.space.config_id(other)
    G = np.random.default_rng(0).integers(0, p.space.cardinalities, size=(50, p.space.n_genes))
    canon = np.array([p.space.to_genes(p.space.from_genes(g)) for g in G])
    np.testing.assert_array_equal(p.space.canonical_genes(G), canon)
    oracle = OFAMobileNetV3Oracle(p.space, note10_lut(), accuracy_predictor())
    configs = [p.space.from_genes(g) for g in G]
    np.testing.assert_allclose(oracle.latency(G), [note10_lut().latency_ms(c) for c in configs])
    np.testing.assert_allclose(oracle.accuracy(G), [p.evaluate(c)["accuracy_top1"] for c in configs], rtol=1e-12)


def test_ofa_predictor_features_follow_the_ofa_layout() -> None:
    space = create_problem("ofa_mbv3_note10").space
    for cfg in space.sample_many(20, seed=4):
        expected = np.zeros(128)
        for s, depth in enumerate(cfg["d"]):
            for j in range(depth):  # active blocks only
                i = 4 * s + j
                expected[3 * i + [3, 5, 7].index(cfg["ks"][i])] = 1.0
                expected[60 + 3 * i + [3, 4, 6].index(cfg["e"][i])] = 1.0
        expected[120 + (cfg["r"] - 112) // 16] = 1.0
        np.testing.assert_array_equal(OFAAccuracyPredictor.features(space, space.to_genes(cfg))[0], expected)


def test_inactive_genes_are_zero_in_the_onehot_encoding() -> None:
    ofa = create_problem("ofa_mbv3_note10").space
    G = ofa.validate_genes(np.random.default_rng(1).integers(0, ofa.cardinalities, size=(30, ofa.n_genes)))
    mask = ofa.inactive_mask(G)
    assert mask.any() and not mask[:, 40:].any()  # only kernel sizes and expand ratios of skipped blocks
    assert np.all(G[mask] == 0)
    onehot = ofa.encode_genes(G, "onehot")
    assert np.array_equal(onehot.sum(axis=1), ofa.n_genes - mask.sum(axis=1))
    gpt = create_problem("hwgpt_s_cpu").space
    row = gpt.to_genes({"embed_dim": 384, "n_layer": 10, "mlp_ratio": [4] * 12, "n_head": [8] * 12})
    assert gpt.inactive_mask(row)[0].tolist() == [False] * 12 + [True] * 2 + [False] * 10 + [True] * 2


def test_hwgpt_projects_onto_table_architectures() -> None:
    from elasticnas.problems._hwgpt import load_table

    p = create_problem("hwgpt_s_gpu")
    table = load_table()["genes"]
    # table architectures are fixed points; anything else lands on some table architecture
    np.testing.assert_array_equal(p.space.canonical_genes(table[:200]), table[:200])
    G = np.random.default_rng(0).integers(0, p.space.cardinalities, size=(100, p.space.n_genes))
    rows = {g.tobytes() for g in table}
    assert all(g.tobytes() in rows for g in p.space.canonical_genes(G))
    # the exhaustive front is the non-dominated set of the whole table
    F = np.column_stack([load_table()["perplexity"], load_table()["lat_ms_a100"]])
    assert len(p.reference_front()) == int(non_dominated_mask(F).sum())
    cpu = create_problem("hwgpt_s_cpu")
    cfg = p.space.sample(seed=2)
    assert cpu(cfg)["perplexity"] == p(cfg)["perplexity"]
    assert cpu(cfg)["latency_ms"] != p(cfg)["latency_ms"]


def test_a_product_of_problem_spaces_keeps_each_part_canonical_and_round_trips() -> None:
    from elasticnas.space import Choice, SearchSpace

    ofa, gpt = create_problem("ofa_mbv3_note10").space, create_problem("hwgpt_s_cpu").space
    with pytest.raises(ValueError, match="share choice names: ks, e, d, r"):
        ofa * gpt * ofa
    product = ofa * SearchSpace({"bits": Choice([4, 8], size=2)}) * gpt
    again = SearchSpace.from_json(json.loads(json.dumps(product.to_json())))
    assert again == product and [type(p) for p in again.parts] == [type(p) for p in product.parts]
    G = np.random.default_rng(0).integers(0, product.cardinalities, size=(20, product.n_genes))
    canon = product.canonical_genes(G)
    np.testing.assert_array_equal(canon[:, : ofa.n_genes], ofa.canonical_genes(G[:, : ofa.n_genes]))
    np.testing.assert_array_equal(canon[:, ofa.n_genes + 2 :], gpt.canonical_genes(G[:, ofa.n_genes + 2 :]))
    for cfg in product.from_genes_many(G):
        o, _, g = product.split(cfg)
        assert again.config_id(cfg) == product.config_id(cfg)
        assert product.config_id(cfg) == product.config_id({**cfg, **ofa.validate(o), **gpt.validate(g)})
