"""The OFA super-networks are Once-for-All's: costs, architectures and parameter names."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fresh_interpreter import run_json

from elasticnas.errors import UnknownNameError
from elasticnas.space import SearchSpace
from elasticnas.supernets import build_subnet, create_supernet, list_supernets
from elasticnas.supernets.ofa_mobilenetv3 import mobilenetv3_costs
from elasticnas.testing.supernets import max_abs_diff, perturb_supernet

DATA = Path(__file__).parent.parent / "data" / "ofa_mbv3"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mbv3() -> dict[float, object]:
    return {1.0: create_supernet("ofa_mbv3_w10"), 1.2: create_supernet("ofa_mbv3_w12")}


def _dynast_rows() -> list[dict[str, str]]:
    with open(DATA / "dynast_measured_w10_costs.csv", newline="") as f:
        return list(csv.DictReader(f))


def _specialized() -> dict[str, dict]:
    return json.loads((DATA / "specialized_mbv3.json").read_text())


# -- costs -------------------------------------------------------------------------------------


def test_costs_reproduce_all_dynast_rows_exactly(mbv3) -> None:
    net = mbv3[1.0]
    rows = _dynast_rows()
    assert len(rows) == 2223
    wrong = []
    for row in rows:
        got = net.costs(json.loads(row["subnet"]))
        if got != {"macs": int(row["macs"]), "params": int(row["params"])}:
            wrong.append((row["subnet"], got, row["macs"], row["params"]))
    assert not wrong, f"{len(wrong)} of {len(rows)} rows differ, first: {wrong[0]}"


@pytest.mark.parametrize("name", sorted(_specialized()))
def test_costs_reproduce_the_specialized_networks(mbv3, name: str) -> None:
    spec = _specialized()[name]
    net = mbv3[spec["width_mult"]]
    cfg = {k: v for k, v in spec["subnet"].items() if k != "r"}
    cfg["r"] = 224  # the network's own size (e.g. 260) lies outside the search space
    expected = {"macs": spec["macs"], "params": spec["params"]}
    assert net.costs(cfg, resolution=spec["image_size"]) == expected
    assert mobilenetv3_costs(spec["net_config"], spec["image_size"]) == expected


def _layer_facts(cfg: dict) -> tuple:
    keys = ("in_channels", "out_channels", "in_features", "out_features", "kernel_size", "stride", "act_func",
            "use_se", "use_bn", "bias", "mid_channels")  # fmt: skip
    return tuple((k, cfg[k]) for k in keys if k in cfg and not (k == "mid_channels" and cfg[k] is None))


def _block_facts(block: dict) -> tuple:
    conv = dict(block["conv"] if "conv" in block else block["mobile_inverted_conv"])
    if conv.get("mid_channels") is None:  # OFA leaves it out when it is round(in * expand_ratio)
        conv["mid_channels"] = round(conv["in_channels"] * conv["expand_ratio"])
    facts = _layer_facts(conv)
    if conv["expand_ratio"] == 1:
        facts = facts + (("expand_ratio", 1),)
    return facts + (("shortcut", block["shortcut"] is not None),)


@pytest.mark.parametrize("name", sorted(_specialized()))
def test_architecture_equals_ofa_net_config(mbv3, name: str) -> None:
    spec = _specialized()[name]
    ofa = spec["net_config"]
    mine = mbv3[spec["width_mult"]].arch({**spec["subnet"], "r": 224})
    assert [_block_facts(b) for b in mine["blocks"]] == [_block_facts(b) for b in ofa["blocks"]]
    for key in ("first_conv", "final_expand_layer", "feature_mix_layer"):
        assert _layer_facts(mine[key]) == _layer_facts(ofa[key]), key
    assert _layer_facts(mine["classifier"]) == _layer_facts(ofa["classifier"])
    assert mine["bn"] == {"momentum": ofa["bn"]["momentum"], "eps": ofa["bn"]["eps"]}


def test_ofa_net_config_builds_and_runs() -> None:
    spec = _specialized()["note10_lat-8ms_top1-71.4_finetune-25"]
    net = build_subnet(spec["net_config"]).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 64)).shape == (1, 1000)
    assert sum(p.numel() for p in net.parameters()) == spec["params"]


# -- OFA's parameter names and shapes --------------------------------------------------------------


def _md(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _bn(prefix: str, c: int) -> dict[str, tuple]:
    return {f"{prefix}.{n}": (c,) for n in ("weight", "bias", "running_mean", "running_var")} | {
        f"{prefix}.num_batches_tracked": ()
    }


def ofa_mbv3_shapes(width_mult: float) -> dict[str, tuple]:
    """OFAMobileNetV3(ks 3/5/7, e 3/4/6, d 2/3/4).state_dict() names and shapes, written from OFA's code."""
    w = [_md(b * width_mult) for b in (16, 16, 24, 40, 80, 112, 160)]
    final, last = _md(960 * width_mult), _md(1280 * width_mult)
    s: dict[str, tuple] = {"first_conv.conv.weight": (w[0], 3, 3, 3), **_bn("first_conv.bn", w[0])}
    s["blocks.0.conv.depth_conv.conv.weight"] = (w[0], 1, 3, 3)
    s |= _bn("blocks.0.conv.depth_conv.bn", w[0])
    s["blocks.0.conv.point_linear.conv.weight"] = (w[1], w[0], 1, 1)
    s |= _bn("blocks.0.conv.point_linear.bn", w[1])
    cin, i = w[1], 1
    for width, se in zip(w[2:], (False, True, False, True, True), strict=False):
        for _ in range(4):
            p, mid = f"blocks.{i}.conv", _md(round(cin * 6))
            s[f"{p}.inverted_bottleneck.conv.conv.weight"] = (mid, cin, 1, 1)
            s |= _bn(f"{p}.inverted_bottleneck.bn.bn", mid)
            s[f"{p}.depth_conv.conv.conv.weight"] = (mid, 1, 7, 7)
            s[f"{p}.depth_conv.conv.7to5_matrix"] = (25, 25)
            s[f"{p}.depth_conv.conv.5to3_matrix"] = (9, 9)
            s |= _bn(f"{p}.depth_conv.bn.bn", mid)
            if se:
                r = _md(mid // 4)
                s[f"{p}.depth_conv.se.fc.reduce.weight"], s[f"{p}.depth_conv.se.fc.reduce.bias"] = (r, mid, 1, 1), (r,)
                s[f"{p}.depth_conv.se.fc.expand.weight"], s[f"{p}.depth_conv.se.fc.expand.bias"] = (
                    (mid, r, 1, 1),
                    (mid,),
                )
            s[f"{p}.point_linear.conv.conv.weight"] = (width, mid, 1, 1)
            s |= _bn(f"{p}.point_linear.bn.bn", width)
            cin, i = width, i + 1
    s["final_expand_layer.conv.weight"] = (final, cin, 1, 1)
    s |= _bn("final_expand_layer.bn", final)
    s["feature_mix_layer.conv.weight"] = (last, final, 1, 1)
    s["classifier.linear.weight"], s["classifier.linear.bias"] = (1000, last), (1000,)
    return s


def ofa_resnet50_shapes() -> dict[str, tuple]:
    """OFAResNets(d 0/1/2, e 0.2/0.25/0.35, w 0.65/0.8/1.0).state_dict() names and shapes, from OFA's code."""
    stem_out, stem_mid = 64, _md(64 // 2)
    s: dict[str, tuple] = {"input_stem.0.conv.conv.weight": (stem_mid, 3, 3, 3), **_bn("input_stem.0.bn.bn", stem_mid)}
    s["input_stem.1.conv.conv.conv.weight"] = (stem_mid, stem_mid, 3, 3)
    s |= _bn("input_stem.1.conv.bn.bn", stem_mid)
    s["input_stem.2.conv.conv.weight"] = (stem_out, stem_mid, 3, 3)
    s |= _bn("input_stem.2.bn.bn", stem_out)
    cin, i = stem_out, 0
    for width, n in zip((256, 512, 1024, 2048), (4, 4, 6, 4), strict=True):
        for j in range(n):
            p, mid = f"blocks.{i}", _md(round(width * 0.35))
            s[f"{p}.conv1.conv.conv.weight"] = (mid, cin, 1, 1)
            s[f"{p}.conv2.conv.conv.weight"] = (mid, mid, 3, 3)
            s[f"{p}.conv3.conv.conv.weight"] = (width, mid, 1, 1)
            s |= _bn(f"{p}.conv1.bn.bn", mid) | _bn(f"{p}.conv2.bn.bn", mid) | _bn(f"{p}.conv3.bn.bn", width)
            if j == 0:
                s[f"{p}.downsample.conv.conv.weight"] = (width, cin, 1, 1)
                s |= _bn(f"{p}.downsample.bn.bn", width)
            cin, i = width, i + 1
    s["classifier.linear.linear.weight"], s["classifier.linear.linear.bias"] = (1000, 2048), (1000,)
    return s


@pytest.mark.parametrize(
    ("name", "expected"),
    [("ofa_mbv3_w10", lambda: ofa_mbv3_shapes(1.0)), ("ofa_mbv3_w12", lambda: ofa_mbv3_shapes(1.2)),
     ("ofa_resnet50", ofa_resnet50_shapes)],  # fmt: skip
)
def test_state_dict_names_and_shapes_are_ofas(mbv3, name: str, expected) -> None:
    net = mbv3[1.0] if name == "ofa_mbv3_w10" else mbv3[1.2] if name == "ofa_mbv3_w12" else create_supernet(name)
    mine = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert mine == expected()


def _ofa_checkpoint(name: str, legacy: bool, seed: int = 3) -> dict[str, torch.Tensor]:
    """A state dict as OFA writes it, random values; ``legacy``: the older spelling
    (``mobile_inverted_conv``, flat ``.bn.`` / ``conv.weight``) OFA's own loader accepts."""
    gen = torch.Generator().manual_seed(seed)
    shapes = (
        ofa_mbv3_shapes(1.0 if name == "ofa_mbv3_w10" else 1.2)
        if name.startswith("ofa_mbv3")
        else ofa_resnet50_shapes()
    )
    out = {}
    for key, shape in shapes.items():
        value = torch.randint(0, 5, shape, generator=gen) if not shape else 0.1 * torch.randn(shape, generator=gen)
        if key.endswith("running_var"):
            value = value.abs() + 0.5
        if legacy:
            key = key.replace(".bn.bn.", ".bn.").replace(".conv.conv.weight", ".conv.weight")
            key = key.replace(".linear.linear.", ".linear.")
            if key.startswith("blocks.") and name.startswith("ofa_mbv3"):
                key = key.replace(".conv.", ".mobile_inverted_conv.", 1)
        out[key] = value
    return out


@pytest.mark.parametrize("name", ["ofa_mbv3_w10", "ofa_mbv3_w12", "ofa_resnet50"])
def test_ofa_checkpoints_load_strictly_in_both_spellings(tmp_path: Path, name: str) -> None:
    path = tmp_path / "ofa.pth"
    torch.save({"state_dict": _ofa_checkpoint(name, legacy=False)}, path)
    new = create_supernet(name, weights=path)
    torch.save({"state_dict": _ofa_checkpoint(name, legacy=True)}, path)
    old = create_supernet(name, weights=path)
    for key, value in _ofa_checkpoint(name, legacy=False).items():
        assert torch.equal(new.state_dict()[key], value), key
    cfg = new.search_space.sample(seed=0)
    x = torch.randn(1, 3, 48, 48)
    new.activate(cfg)
    old.activate(cfg)
    with torch.no_grad():
        assert max_abs_diff(new(x), old(x)) == 0.0


def test_a_checkpoint_of_the_other_width_fails_with_the_first_mismatches(tmp_path: Path) -> None:
    path = tmp_path / "w12.pth"
    torch.save({"state_dict": _ofa_checkpoint("ofa_mbv3_w12", legacy=False)}, path)
    from elasticnas.errors import CheckpointError

    with pytest.raises(CheckpointError) as info:
        create_supernet("ofa_mbv3_d234_e346_k357_w1.0", weights=path)
    msg = str(info.value)
    assert "\n" not in msg and "ofa_mbv3_w10" in msg
    assert "first_conv.conv.weight checkpoint (24, 3, 3, 3) vs model (16, 3, 3, 3)" in msg


def test_unsafe_pickles_are_refused(tmp_path: Path) -> None:
    import pickle

    from elasticnas.errors import CheckpointError

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": {"x": object()}}, f, protocol=2)
    with pytest.raises(CheckpointError, match=r"was refused: it holds Python objects other than tensors \(GLOBAL"):
        create_supernet("tiny_mbv3", weights=path)


# -- elastic kernel -----------------------------------------------------------------------------


def test_small_kernels_use_ofas_transformation_matrices(mbv3) -> None:
    net = mbv3[1.0]
    perturb_supernet(net, seed=1)
    block = net.blocks[1].conv
    cfg = {"ks": [3] + [7] * 19, "e": [6] * 20, "d": [4] * 5, "r": 224}
    sub = net.extract(cfg)
    full = block.depth_conv.conv.conv.weight.detach()
    m75 = block.depth_conv.conv.get_parameter("7to5_matrix").detach()
    m53 = block.depth_conv.conv.get_parameter("5to3_matrix").detach()
    k5 = F.linear(full[:, :, 1:6, 1:6].reshape(-1, 25), m75).reshape(-1, 1, 5, 5)
    k3 = F.linear(k5[:, :, 1:4, 1:4].reshape(-1, 9), m53).reshape(-1, 1, 3, 3)
    assert not torch.allclose(k3, full[:, :, 2:5, 2:5])  # the matrices matter
    assert torch.allclose(sub.blocks[1].conv.depth_conv.conv.weight, k3)
    assert torch.equal(sub.blocks[2].conv.depth_conv.conv.weight, net.blocks[2].conv.depth_conv.conv.conv.weight)


# -- search spaces -------------------------------------------------------------------------------


def test_mbv3_space_is_ofas(mbv3) -> None:
    space = mbv3[1.0].search_space
    assert space.names == ["ks", "e", "d", "r"]
    assert space.choices["ks"].values == (3, 5, 7) and space.choices["ks"].size == 20
    assert space.choices["e"].values == (3, 4, 6) and space.choices["e"].size == 20
    assert space.choices["d"].values == (2, 3, 4) and space.choices["d"].size == 5
    assert space.choices["r"].values == tuple(range(128, 225, 4))
    assert SearchSpace.from_json(json.loads(json.dumps(space.to_json()))) == space


def test_config_ids_identify_networks_not_spellings(mbv3) -> None:
    space = mbv3[1.0].search_space
    configs = [json.loads(r["subnet"]) for r in _dynast_rows()]
    networks = set()
    for c in configs:
        d = c["d"]
        active = [b < d[s] for s in range(5) for b in range(4)]
        networks.add((tuple(k if a else 0 for k, a in zip(c["ks"], active, strict=True)),
                      tuple(e if a else 0 for e, a in zip(c["e"], active, strict=True)), tuple(d)))  # fmt: skip
    # DyNAS-T writes values in skipped blocks; validation sets them to the first (the network is the same)
    assert len({json.dumps(c, sort_keys=True) for c in configs}) == len(configs)
    assert len({json.dumps(space.validate(c), sort_keys=True) for c in configs}) == len(networks) < len(configs)
    assert len({space.config_id(c) for c in configs}) == len(networks)
    assert len({space.to_genes(space.validate(c)).tobytes() for c in configs}) == len(networks)


def test_skipped_blocks_agree_on_configs_and_gene_rows_and_the_ofa_problem_space_shares_the_rule(mbv3) -> None:
    from elasticnas.problems._ofa_mbv3 import ofa_mbv3_space

    space = mbv3[1.0].search_space
    rng = np.random.default_rng(0)
    G = space.canonical_genes(rng.integers(0, space.cardinalities, size=(50, space.n_genes)))
    mask = space.active_block_mask(G)
    assert [list(row) for row in mask] == [space.active_blocks(c) for c in space.from_genes_many(G)]
    assert 0 < mask.sum() < mask.size  # some blocks skipped, some not
    problem_space = ofa_mbv3_space()  # the same ks / e / d choices, resolutions 160..224
    P = G.copy()
    P[:, -1] = 0
    assert np.array_equal(problem_space.inactive_mask(P), space.inactive_mask(G))


def test_the_ofa_problem_space_loads_no_torch() -> None:
    result = run_json(
        """
import json, sys
from elasticnas.problems import create_problem
p = create_problem("ofa_mbv3_note10")
p.space.canonical_genes(p.space.to_genes(p.space.sample(seed=0)))
print(json.dumps({"torch": "torch" in sys.modules}))
"""
    )
    assert result == {"torch": False}


def test_resnet_space_and_stem_skip() -> None:
    net = create_supernet("ofa_resnet50")
    space = net.search_space
    assert [space.choices[k].size for k in space.names] == [5, 18, 6, None]
    assert space.choices["e"].values == (0.2, 0.25, 0.35) and space.choices["w"].values == (0, 1, 2)
    cfg = net.max_config()
    skip0, skip1 = dict(cfg, d=[0, 2, 2, 2, 2]), dict(cfg, d=[1, 2, 2, 2, 2])
    assert space.config_id(skip0) == space.config_id(skip1) != space.config_id(cfg)
    assert net.costs(skip0) == net.costs(skip1)
    assert net.costs(cfg)["macs"] - net.costs(skip0)["macs"] == 32 * 32 * 9 * 128 * 128  # the stem's residual conv


# -- registry ---------------------------------------------------------------------------------------


def test_registry_names_and_aliases() -> None:
    assert {"tiny_mbv3", "ofa_mbv3_w10", "ofa_mbv3_w12", "ofa_resnet50"} <= set(list_supernets())
    net = create_supernet("ofa_mbv3_d234_e346_k357_w1.2")
    assert net.name == "ofa_mbv3_w12" and net.width_mult == 1.2
    with pytest.raises(UnknownNameError, match="unknown supernet 'ofa_mbv4'"):
        create_supernet("ofa_mbv4")


def test_tiny_family_options_and_seeds() -> None:
    a, b = create_supernet("tiny_mbv3"), create_supernet("tiny_mbv3", seed=1)
    assert a.in_channels == 1 and a.search_space.choices["r"].values == (8, 12, 16, 20, 24, 28, 32)
    assert torch.equal(a.first_conv.conv.weight, create_supernet("tiny_mbv3").first_conv.conv.weight)
    assert not torch.equal(a.first_conv.conv.weight, b.first_conv.conv.weight)
    rgb = create_supernet("tiny_mbv3", in_channels=3, num_classes=5)
    cfg = rgb.min_config()
    assert rgb.input_shape(cfg) == (3, 8, 8)
    with torch.no_grad():
        assert rgb.extract(cfg)(torch.randn(2, 3, 8, 8)).shape == (2, 5)
    assert type(rgb.blocks[1].conv) is type(create_supernet("ofa_mbv3_w10").blocks[1].conv)  # same code path


def test_layer_specs_use_ofas_latency_table_keys() -> None:
    keys = set((DATA / "note10_lut_224_keys.txt").read_text().split())
    net = create_supernet("ofa_mbv3_w12")
    for cfg in [net.max_config(), net.min_config(), *net.search_space.sample_many(20, seed=0)]:
        specs = net.layer_specs({**cfg, "r": 224})
        assert len(specs) == 1 + 1 + sum(cfg["d"]) + 4
        assert {s.key for s in specs} <= keys
