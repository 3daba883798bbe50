import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import elasticnas as en


@pytest.fixture
def space() -> en.SearchSpace:
    return en.SearchSpace(
        {
            "ks": en.Choice([3, 5, 7], size=20),
            "e": en.Choice([3, 4, 6], size=20),
            "d": en.Choice([2, 3, 4], size=5),
            "r": en.Choice([160, 176, 192, 208, 224]),
        }
    )


def test_sample_has_the_documented_shape(space):
    cfg = space.sample(seed=0)
    assert len(cfg["ks"]) == 20 and len(cfg["e"]) == 20 and len(cfg["d"]) == 5
    assert cfg["r"] in (160, 176, 192, 208, 224)
    assert space.validate(cfg) == cfg


def test_same_seed_same_sample_and_different_seeds_differ(space):
    assert space.sample(seed=7) == space.sample(seed=7)
    assert space.sample(seed=7) != space.sample(seed=8)
    assert space.sample_many(5, seed=1) == space.sample_many(5, seed=1)


def test_ofa_style_config_with_one_element_resolution_is_accepted(space):
    cfg = space.sample(seed=0)
    ofa = {**cfg, "r": [cfg["r"]]}
    assert space.validate(ofa) == cfg
    assert space.config_id(ofa) == space.config_id(cfg)


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"ks": [3] * 19 + [4]}, "key 'ks' position 19: 4 is not allowed; allowed values: 3, 5, 7"),
        ({"ks": [3] * 19}, "key 'ks' takes a list of 20 values, got 19"),
        ({"r": 100}, "key 'r': 100 is not allowed"),
        ({"r": [160, 176]}, "key 'r' takes one value"),
        ({"extra": 1}, "unknown key 'extra'"),
        ({"d": 3}, "key 'd' takes a list of 5 values"),
    ],
)
def test_validate_names_key_position_and_allowed_values(space, change, fragment):
    cfg = {**space.sample(seed=0), **change}
    with pytest.raises(en.InvalidConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        space.validate(cfg)


def test_missing_key_and_wrong_type(space):
    cfg = space.sample(seed=0)
    del cfg["e"]
    with pytest.raises(en.InvalidConfigError, match="missing key 'e'"):
        space.validate(cfg)
    with pytest.raises(en.InvalidConfigError, match="JSON object"):
        space.validate([1, 2])


def test_config_id_is_stable_and_distinguishes(space):
    a, b = space.sample(seed=0), space.sample(seed=1)
    assert space.config_id(a) == space.config_id(json.loads(json.dumps(a)))
    assert space.config_id(a) != space.config_id(b)
    assert len(space.config_id(a)) == 16


def test_mutation_changes_something_and_is_seeded(space):
    cfg = space.sample(seed=0)
    m1 = space.mutate(cfg, seed=5)
    assert m1 != cfg and space.contains(m1)
    assert m1 == space.mutate(cfg, seed=5)
    heavy = space.mutate(cfg, prob=1.0, seed=5)
    assert all(x != y for x, y in zip(heavy["ks"], cfg["ks"], strict=True))


def test_crossover_takes_each_position_from_a_parent(space):
    a, b = space.sample(seed=0), space.sample(seed=1)
    child = space.crossover(a, b, seed=3)
    for key in ("ks", "e", "d"):
        assert all(c in (x, y) for c, x, y in zip(child[key], a[key], b[key], strict=True))
    assert child["r"] in (a["r"], b["r"])


def test_encodings(space):
    cfgs = space.sample_many(4, seed=0)
    onehot = space.encode(cfgs, "onehot")
    assert onehot.shape == (4, 20 * 3 + 20 * 3 + 5 * 3 + 5)
    assert np.all(onehot.sum(axis=1) == space.n_genes)
    ordinal = space.encode(cfgs, "ordinal")
    assert ordinal.shape == (4, space.n_genes)
    assert ordinal.min() >= 0 and ordinal.max() <= 1
    assert np.array_equal(space.encode(cfgs[0]), onehot[0])
    with pytest.raises(ValueError, match="unknown encoding"):
        space.encode(cfgs, "binary")  # type: ignore[arg-type]


def test_space_json_round_trip(space):
    again = en.SearchSpace.from_json(json.loads(json.dumps(space.to_json())))
    assert again == space
    cfg = space.sample(seed=0)
    assert space.loads(space.dumps(cfg)) == cfg


def test_loads_reports_malformed_json(space):
    with pytest.raises(en.InvalidConfigError, match="not valid JSON"):
        space.loads("{'ks': [3]")


def test_choice_rejects_bad_definitions():
    with pytest.raises(ValueError):
        en.Choice([])
    with pytest.raises(ValueError):
        en.Choice([3, 3])
    with pytest.raises(ValueError):
        en.Choice([3, 5], size=0)


# -- properties -----------------------------------------------------------------------------
choice_values = st.one_of(
    st.lists(st.integers(-50, 50), min_size=1, max_size=5, unique=True),
    st.lists(st.text("abcxyz", min_size=1, max_size=3), min_size=1, max_size=4, unique=True),
)
spaces = st.dictionaries(
    st.text("abcdefgh", min_size=1, max_size=4),
    st.tuples(choice_values, st.one_of(st.none(), st.integers(1, 6))),
    min_size=1,
    max_size=4,
).map(lambda d: en.SearchSpace({k: en.Choice(v, size=s) for k, (v, s) in d.items()}))


@settings(max_examples=60, deadline=None)
@given(space=spaces, seed=st.integers(0, 2**32 - 1))
def test_property_genes_json_and_encodings_round_trip(space, seed):
    cfg = space.sample(seed=seed)
    assert space.validate(cfg) == cfg
    assert space.from_genes(space.to_genes(cfg)) == cfg
    assert space.loads(space.dumps(cfg)) == cfg
    assert space.config_id(json.loads(json.dumps(cfg))) == space.config_id(cfg)
    ordinal = space.encode(cfg, "ordinal")
    genes = np.rint(ordinal * np.maximum(space.cardinalities - 1, 1)).astype(int)
    assert space.from_genes(genes) == cfg
    assert space.encode(cfg, "onehot").sum() == space.n_genes


@settings(max_examples=60, deadline=None)
@given(space=spaces, seed=st.integers(0, 2**32 - 1), junk=st.one_of(st.integers(100, 200), st.text("QRS", min_size=1)))
def test_property_an_invalid_value_is_always_rejected(space, seed, junk):
    cfg = space.sample(seed=seed)
    name = space.names[0]
    cfg[name] = junk if space.choices[name].size is None else [junk] + cfg[name][1:]
    with pytest.raises(en.InvalidConfigError, match=repr(name)):
        space.validate(cfg)
