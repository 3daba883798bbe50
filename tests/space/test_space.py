import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import elasticnas as en
from elasticnas.space import ProductSpace


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


# -- Choice.index ---------------------------------------------------------------------------
def test_choice_index_numbers_by_value_bools_and_strings_by_kind():
    c = en.Choice([1, 2.5, "a"])
    assert c.index(1.0) == 0 and c.index(np.int64(1)) == 0 and c.index(2.5) == 1 and c.index("a") == 2
    for other in (True, "1", 1.5, [1], None):
        with pytest.raises(ValueError):
            c.index(other)
    flags = en.Choice([False, True])
    assert flags.index(True) == 1 and flags.index(False) == 0
    with pytest.raises(ValueError):
        flags.index(1)


# -- inactive genes and gene matrices --------------------------------------------------------
class Skips(en.SearchSpace):
    """Two blocks after a depth: block 1's kernel is inactive at depth 1."""

    def inactive_mask(self, genes):
        G = np.atleast_2d(genes)
        mask = np.zeros(G.shape, dtype=bool)
        mask[:, 2] = G[:, 0] == 0
        return mask


@pytest.fixture
def skips() -> en.SearchSpace:
    return Skips({"d": en.Choice([1, 2]), "ks": en.Choice([3, 5, 7], size=2)})


def test_inactive_genes_are_canonicalised_everywhere(skips):
    a, b = {"d": 1, "ks": [5, 7]}, {"d": 1, "ks": [5, 3]}
    assert skips.validate(a) == skips.validate(b) == {"d": 1, "ks": [5, 3]}
    assert skips.config_id(a) == skips.config_id(b)
    assert skips.validate({"d": 2, "ks": [5, 7]}) == {"d": 2, "ks": [5, 7]}
    G = np.array([[0, 1, 2], [1, 1, 2]])
    np.testing.assert_array_equal(skips.canonical_genes(G), [[0, 1, 0], [1, 1, 2]])
    np.testing.assert_array_equal(skips.validate_genes(G), skips.canonical_genes(G))
    assert (
        skips.from_genes_many(G) == [skips.from_genes(g) for g in G] == [{"d": 1, "ks": [5, 3]}, {"d": 2, "ks": [5, 7]}]
    )
    np.testing.assert_array_equal(skips.encode_genes(G)[0], [1, 0, 0, 1, 0, 0, 0, 0])  # block 1 columns all zero


def test_validate_genes_names_row_key_and_position(space):
    G = np.zeros((3, space.n_genes), dtype=int)
    G[2, 21] = 3
    with pytest.raises(
        en.InvalidConfigError, match=r"row 2: gene 3 out of range for key 'e' position 1; it takes 0..2"
    ):
        space.validate_genes(G)
    with pytest.raises(en.InvalidConfigError, match="expected 46 genes"):
        space.validate_genes(np.zeros((2, 5), dtype=int))
    with pytest.raises(en.InvalidConfigError, match="integers"):
        space.validate_genes(np.full(space.n_genes, 0.5))


def test_vectorised_paths_agree_with_the_dict_paths(space):
    G = np.random.default_rng(0).integers(0, space.cardinalities, size=(40, space.n_genes))
    configs = space.from_genes_many(G)
    assert configs == [space.validate(c) for c in configs]
    np.testing.assert_array_equal(np.array([space.to_genes(c) for c in configs]), space.validate_genes(G))
    np.testing.assert_array_equal(space.encode(configs), space.encode_genes(G))


def test_a_subclass_defining_canonicalize_is_refused():
    with pytest.raises(TypeError, match="inactive_mask"):
        type("Old", (en.SearchSpace,), {"canonicalize": lambda self, c: c})


# -- products ---------------------------------------------------------------------------------
@pytest.fixture
def product(space, skips) -> en.SearchSpace:
    return space * Skips({"depth": en.Choice([1, 2]), "rank": en.Choice([4, 8, 16], size=2)}) * en.SearchSpace(
        {"bits": en.Choice([4, 8], size=3)}
    )


def test_product_is_flat_and_its_parts_canonicalise_their_keys(space, product):
    assert isinstance(product, ProductSpace) and len(product.parts) == 3
    assert product.names == space.names + ["depth", "rank", "bits"]
    assert product.n_genes == space.n_genes + 3 + 3
    arch = space.sample(seed=0)
    cfg = {**arch, "depth": 1, "rank": [8, 16], "bits": [4, 8, 8]}
    assert product.validate(cfg) == {**arch, "depth": 1, "rank": [8, 4], "bits": [4, 8, 8]}
    assert product.split(cfg) == [arch, {"depth": 1, "rank": [8, 4]}, {"bits": [4, 8, 8]}]
    np.testing.assert_array_equal(product.to_genes(cfg), np.concatenate([space.to_genes(arch), [0, 1, 0], [0, 1, 1]]))
    assert (
        product.config_id(cfg) == product.config_id({**cfg, "rank": [8, 4]}) != product.config_id({**cfg, "depth": 2})
    )
    G = np.stack([product.to_genes(cfg)] * 2)
    np.testing.assert_array_equal(
        product.encode_genes(G),
        np.hstack([p.encode_genes(G[:, s]) for p, s in zip(product.parts, product._slices, strict=True)]),
    )


def test_product_refuses_shared_names_and_reports_bad_configs(space, product):
    with pytest.raises(ValueError, match="share choice names: r$"):
        space * en.SearchSpace({"bits": en.Choice([4, 8]), "r": en.Choice([1, 2])})
    cfg = {**space.sample(seed=0), "depth": 1, "rank": [8, 16], "bits": [4, 8, 8]}
    with pytest.raises(en.InvalidConfigError, match="key 'bits' position 2: 3 is not allowed"):
        product.validate({**cfg, "bits": [4, 8, 3]})
    with pytest.raises(en.InvalidConfigError, match="missing key 'depth'"):
        product.validate({k: v for k, v in cfg.items() if k != "depth"})
    with pytest.raises(en.InvalidConfigError, match="unknown key 'lr'"):
        product.validate({**cfg, "lr": 1})


def test_product_samples_variation_and_json(product):
    assert product.sample_many(5, seed=1) == product.sample_many(5, seed=1)
    assert product.sample(seed=1) != product.sample(seed=2)
    a, b = product.sample(seed=3), product.sample(seed=4)
    assert product.contains(product.mutate(a, seed=0)) and product.contains(product.crossover(a, b, seed=0))
    again = en.SearchSpace.from_json(json.loads(json.dumps(product.to_json())))
    assert again == product and type(again.parts[1]) is Skips
    assert again.config_id(a) == product.config_id(a)
    assert product != en.SearchSpace(product.choices)


@settings(max_examples=40, deadline=None)
@given(a=spaces, b=spaces, seed=st.integers(0, 2**32 - 1))
def test_property_product_genes_round_trip(a, b, seed):
    b = en.SearchSpace({f"{n}_b": c for n, c in b.choices.items()})
    product = a * b
    cfg = product.sample(seed=seed)
    assert product.from_genes(product.to_genes(cfg)) == cfg
    np.testing.assert_array_equal(
        product.to_genes(cfg), np.concatenate([a.to_genes(product.split(cfg)[0]), b.to_genes(product.split(cfg)[1])])
    )
