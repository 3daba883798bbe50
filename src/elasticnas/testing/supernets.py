"""The contract every super-network keeps, as a pytest test class.

Use it for a super-network of your own (registered with ``register_supernet``)::

    import pytest
    from elasticnas.testing.supernets import SupernetContract

    @pytest.fixture(params=["my_supernet"])
    def supernet_name(request):
        return request.param

    class TestMySupernet(SupernetContract):
        pass

The checks: the search space is valid and serialisable, and gives one canonical gene row per
network (config id); ``example_inputs`` are seeded
batches; activate and extract agree (max abs difference <= 1e-5 in eval mode) on the
largest, smallest and random sub-networks; analytic costs equal a count of the extracted
module's forward pass and rise with the largest choices; ``pt`` and ``onnx`` exports
round-trip; layer specs (where the family lists them) chain; checkpoints load strictly and
wrong ones fail with a clear error. Inputs come from the family's ``example_inputs``
(images of an :class:`~elasticnas.supernets.ImageSupernet` at ``max_forward_size`` px at most).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.flop_counter import FlopCounterMode

from elasticnas.errors import CheckpointError, InvalidConfigError
from elasticnas.space import Config, SearchSpace
from elasticnas.supernets import ImageSupernet, Supernet, create_supernet

PARITY_ATOL = 1e-5
ONNX_ATOL = 1e-4


def size_overrides(supernet: Supernet, config: Mapping[str, Any], max_size: int) -> dict[str, int]:
    """``{"resolution": ...}`` capping an image family's input size at ``max_size``; ``{}`` for other families.

    Pass it to ``example_inputs``, ``costs`` and ``layer_specs``, which then agree on the input size.
    """
    if isinstance(supernet, ImageSupernet):
        return {"resolution": min(supernet.resolution(supernet.search_space.validate(config)), max_size)}
    return {}


def perturb_supernet(supernet: Supernet, seed: int = 0, size: int = 32, batch: int = 4) -> None:
    """Make a randomly initialised super-network's outputs informative for parity tests.

    Batch-norm affine parameters and OFA's kernel transformation matrices get random
    values, and batch-norm statistics are set from one training-mode forward pass of
    the active (largest) sub-network on its ``example_inputs`` (images of ``size`` px at most).
    """
    gen = torch.Generator().manual_seed(seed)
    bns = [m for m in supernet.modules() if isinstance(m, _BatchNorm)]
    with torch.no_grad():
        for name, p in supernet.named_parameters():
            if name.endswith("_matrix"):
                p.add_(0.1 * torch.randn(p.shape, generator=gen))
        for m in bns:
            m.weight.uniform_(0.5, 1.5, generator=gen)
            m.bias.normal_(0.0, 0.2, generator=gen)
    momenta = {}
    for m in bns:
        momenta[m] = m.momentum
        m.momentum = None  # cumulative average: one batch sets the statistics
        m.reset_running_stats()
    was_training = supernet.training
    cfg = supernet.max_config()
    supernet.activate(cfg)
    xs = supernet.example_inputs(cfg, batch, seed=seed, **size_overrides(supernet, cfg, size))
    supernet.train()
    with torch.no_grad():
        supernet(*xs)
    supernet.train(was_training)
    for m, momentum in momenta.items():
        m.momentum = momentum


def count_by_forward(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> dict[str, int]:
    """MACs per sample and parameters of ``module`` measured on a real forward pass of ``inputs``.

    Independent of the analytic counters: PyTorch's ``FlopCounterMode`` counts the matrix
    products and convolutions that run (half its FLOPs are MACs: ``in/groups * kh * kw``
    per convolution output element, ``in * out`` per linear output row, both factors of a
    batched matrix product); parameters are counted once each.
    """
    was_training = module.training
    module.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            module(*inputs)
    finally:
        module.train(was_training)
    return {
        "macs": counter.get_total_flops() // 2 // inputs[0].shape[0],
        "params": sum(p.numel() for p in module.parameters()),
    }


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


class SupernetContract:
    """Tests every registered super-network must pass. Needs a ``supernet_name`` fixture.

    Forward passes of large networks run at ``max_forward_size`` px at most (the
    networks are resolution-agnostic); analytic costs are compared at that size too.
    """

    max_forward_size: ClassVar[int] = 64
    n_random_configs: ClassVar[int] = 2
    _cache: ClassVar[dict[str, Supernet]] = {}

    @pytest.fixture(autouse=True)
    def _one_thread(self) -> Any:
        """Small-tensor work is fastest (and steadiest on shared machines) on one thread."""
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(before)

    # -- helpers -------------------------------------------------------------------
    def make_supernet(self, name: str) -> Supernet:
        """A seeded, perturbed instance (cached per name: super-networks are slow to build)."""
        if name not in self._cache:
            net = create_supernet(name, seed=0)
            perturb_supernet(net, seed=0, size=min(32, self.max_forward_size))
            self._cache[name] = net.eval()
        net = self._cache[name]
        net.eval()
        return net

    def configs(self, supernet: Supernet) -> list[Config]:
        space = supernet.search_space
        return [supernet.max_config(), supernet.min_config(), *space.sample_many(self.n_random_configs, seed=1)]

    def sizes(self, supernet: Supernet, config: Mapping[str, Any]) -> dict[str, int]:
        """Input-size overrides for ``example_inputs``, ``costs`` and ``layer_specs`` (see :func:`size_overrides`)."""
        return size_overrides(supernet, config, self.max_forward_size)

    def inputs(
        self, supernet: Supernet, config: Mapping[str, Any], batch: int = 2, seed: int = 0
    ) -> tuple[torch.Tensor, ...]:
        return supernet.example_inputs(config, batch, seed=seed, **self.sizes(supernet, config))

    # -- search space -------------------------------------------------------------------
    def test_search_space_is_valid(self, supernet_name: str) -> None:
        net = self.make_supernet(supernet_name)
        space = net.search_space
        assert isinstance(space, SearchSpace)
        assert SearchSpace.from_json(space.to_json()) == space
        for cfg in self.configs(net):
            assert space.validate(cfg) == cfg
            assert space.config_id(cfg) == space.config_id(space.loads(space.dumps(cfg)))
        assert net.max_config() != net.min_config()
        with pytest.raises(InvalidConfigError):
            net.activate({"no_such_key": 1})

    def test_one_gene_row_per_network(self, supernet_name: str) -> None:
        """Searchers tell networks apart by canonical gene rows and the study by config ids: the two agree
        (a gene that :meth:`~elasticnas.space.SearchSpace.config_id` ignores is declared in ``inactive_mask``)."""
        space = self.make_supernet(supernet_name).search_space
        rng = np.random.default_rng(0)
        card = space.cardinalities
        for genes in rng.integers(0, card, size=(20, space.n_genes)):
            base = space.config_id(space.from_genes(genes))
            for j in np.flatnonzero(card > 1):
                other = genes.copy()
                other[j] = (other[j] + 1 + rng.integers(card[j] - 1)) % card[j]
                same_network = space.config_id(space.from_genes(other)) == base
                same_row = np.array_equal(space.canonical_genes(genes), space.canonical_genes(other))
                what = "keeps the config id but not" if same_network else "changes the config id but not"
                assert same_network == same_row, (
                    f"changing gene {j} {what} the canonical gene row: "
                    "declare the genes config_id ignores in inactive_mask"
                )

    def test_example_inputs_are_seeded_batches(self, supernet_name: str) -> None:
        net = self.make_supernet(supernet_name)
        cfg = net.min_config()
        xs = net.example_inputs(cfg, 3, seed=4)
        assert isinstance(xs, tuple) and xs and all(isinstance(x, torch.Tensor) and x.shape[0] == 3 for x in xs)
        assert all(torch.equal(a, b) for a, b in zip(xs, net.example_inputs(cfg, 3, seed=4), strict=True))
        assert [x.shape[0] for x in net.example_inputs(cfg)] == [1] * len(xs)  # batch_size defaults to 1
        if isinstance(net, ImageSupernet):
            c, h, w = net.input_shape(cfg)
            assert xs[0].shape == (3, net.in_channels, h, w) and h == w == net.resolution(cfg) > 0

    # -- activate / extract ---------------------------------------------------------------
    def test_activate_and_extract_agree(self, supernet_name: str) -> None:
        net = self.make_supernet(supernet_name)
        outputs = []
        for cfg in self.configs(net):
            x = self.inputs(net, cfg)
            net.activate(cfg)
            assert net.active_config == net.search_space.validate(cfg)
            sub = net.extract(cfg)
            assert not sub.training
            with torch.no_grad():
                y_super, y_sub = net(*x), sub(*x)
            assert y_super.shape == y_sub.shape and y_super.shape[0] == 2
            assert y_super.abs().max() > 1e-3, "outputs vanish: the parity check would be vacuous"
            assert max_abs_diff(y_super, y_sub) <= PARITY_ATOL
            outputs.append(y_super[:, :5].clone())
        # different sub-networks are different functions
        assert max_abs_diff(outputs[0], outputs[1]) > 1e-4

    def test_extract_holds_only_active_weights(self, supernet_name: str) -> None:
        net = self.make_supernet(supernet_name)
        cfg = net.min_config()
        sub = net.extract(cfg)
        n_sub = sum(p.numel() for p in sub.parameters())
        assert n_sub == net.costs(cfg)["params"]
        assert n_sub < sum(p.numel() for p in net.parameters())
        for p_sub in sub.parameters():  # independent storage: editing the copy leaves the super-network alone
            assert all(p_sub.data_ptr() != p.data_ptr() for p in net.parameters())

    # -- costs ------------------------------------------------------------------------------
    def test_costs_equal_a_count_of_the_extracted_module(self, supernet_name: str) -> None:
        net = self.make_supernet(supernet_name)
        for cfg in self.configs(net):
            expected = count_by_forward(net.extract(cfg), self.inputs(net, cfg, batch=1))
            costs = net.costs(cfg, **self.sizes(net, cfg))
            assert {k: costs[k] for k in expected} == expected  # families may count more (params_non_embedding)

    def test_costs_rise_with_the_largest_choices(self, supernet_name: str) -> None:
        net = self.make_supernet(supernet_name)
        space = net.search_space
        lo, hi = net.costs(net.min_config()), net.costs(net.max_config())
        assert isinstance(lo["macs"], int) and isinstance(lo["params"], int)
        assert 0 < lo["macs"] < hi["macs"] and 0 < lo["params"] < hi["params"]
        for cfg in space.sample_many(10, seed=2):
            c = net.costs(cfg)
            assert lo["macs"] <= c["macs"] <= hi["macs"]
            assert lo["params"] <= c["params"] <= hi["params"]
            # raising any one choice to its largest value never lowers the costs
            genes = space.to_genes(cfg)
            for i in range(0, space.n_genes, max(1, space.n_genes // 6)):
                g = genes.copy()
                g[i] = space.cardinalities[i] - 1
                up = net.costs(space.from_genes(g))
                assert up["macs"] >= c["macs"] and up["params"] >= c["params"]

    # -- layer specs ----------------------------------------------------------------------------
    def test_layer_specs_chain_into_the_sub_network(self, supernet_name: str) -> None:
        net = self.make_supernet(supernet_name)
        cfg = net.search_space.sample(seed=3)
        sizes = self.sizes(net, cfg)
        try:
            specs = net.layer_specs(cfg, **sizes)
        except NotImplementedError:
            pytest.skip(f"{supernet_name} has no layer specs")
        assert specs and len({id(sp) for sp in specs}) == len(specs)
        inputs = self.inputs(net, cfg, batch=1)
        assert len(inputs) == 1 and specs[0].input_shape == tuple(inputs[0].shape[1:])
        x = inputs[0]
        macs = 0
        for spec, nxt in zip(specs, [*specs[1:], None], strict=True):
            assert tuple(x.shape[1:]) == spec.input_shape, spec.key
            layer = spec.build().eval()
            macs += count_by_forward(layer, (torch.randn(1, *spec.input_shape),))["macs"]
            with torch.no_grad():
                x = layer(x)
            if nxt is not None and x.dim() == 2 and len(nxt.input_shape) == 3:  # pooled features into a 1x1 conv
                x = x[:, :, None, None]
        with torch.no_grad():
            assert x.shape[-1] == net.extract(cfg)(*inputs).shape[-1]
        assert macs == net.costs(cfg, **sizes)["macs"]

    # -- export --------------------------------------------------------------------------------
    def test_export_round_trip(self, supernet_name: str, tmp_path: Path) -> None:
        from elasticnas.export import export_subnet, load_subnet

        net = self.make_supernet(supernet_name)
        cfg = net.search_space.sample(seed=4)
        record = export_subnet(net, cfg, "pt", tmp_path / "sub.pt", recalibrate=False)
        assert record.max_abs_diff == 0.0 and record.supernet_diff <= PARITY_ATOL
        assert record.params == net.costs(cfg)["params"]
        loaded = load_subnet(record.path)
        x = self.inputs(net, cfg, seed=5)
        with torch.no_grad():
            assert max_abs_diff(loaded(*x), net.extract(cfg)(*x)) == 0.0
        info = cast("dict[str, Any]", loaded.elasticnas_info)  # set by the export
        assert info["config"] == net.search_space.validate(cfg)
        onnx_record = export_subnet(net, net.min_config(), "onnx", tmp_path / "sub.onnx", recalibrate=False)
        assert Path(onnx_record.path).stat().st_size > 0
        assert onnx_record.max_abs_diff <= ONNX_ATOL

    def test_export_recalibrates_exactly_as_extract_does(self, supernet_name: str, tmp_path: Path) -> None:
        from elasticnas.export import ExportError, export_subnet, load_subnet
        from elasticnas.measure.accuracy import Calibration, has_batchnorm

        net = self.make_supernet(supernet_name)
        cfg = net.search_space.sample(seed=7)
        batches = [self.inputs(net, cfg, batch=4, seed=s) for s in range(4)]
        if len(batches[0]) != 1 and has_batchnorm(net):
            pytest.skip("calibration data are (inputs, labels) pairs: one input per sample")
        data = (torch.cat([b[0] for b in batches]), torch.zeros(16).long())
        calibration = Calibration(data, batches=3, batch_size=4, seed=1)
        record = export_subnet(net, cfg, "pt", tmp_path / "sub.pt", calibration_data=calibration)
        assert record.calibration_batches == (3 if has_batchnorm(net) else 0)
        x = self.inputs(net, cfg, seed=8)
        with torch.no_grad():
            assert max_abs_diff(load_subnet(record.path)(*x), net.extract(cfg, calibration)(*x)) == 0.0
        if has_batchnorm(net):  # the statistics are the sub-network's own, not the super-network's
            with torch.no_grad():
                assert max_abs_diff(net.extract(cfg, calibration)(*x), net.extract(cfg).eval()(*x)) > 0.0
            with pytest.raises(ExportError, match="BatchNorm"):
                export_subnet(net, cfg, "pt", tmp_path / "refused.pt")
            assert not (tmp_path / "refused.pt").exists()

    # -- checkpoints ------------------------------------------------------------------------------
    def test_checkpoints_load_strictly(self, supernet_name: str, tmp_path: Path) -> None:
        net = self.make_supernet(supernet_name)
        path = tmp_path / "ckpt.pt"
        torch.save({"state_dict": net.state_dict()}, path)
        clone = create_supernet(supernet_name, weights=path, seed=1)
        cfg = net.search_space.sample(seed=6)
        x = self.inputs(net, cfg)
        net.activate(cfg)
        clone.activate(cfg)
        with torch.no_grad():
            assert max_abs_diff(net(*x), clone(*x)) == 0.0
        state = net.state_dict()
        first = next(k for k in state if not k.endswith("num_batches_tracked"))
        broken = dict(state)
        broken[first] = torch.zeros(3, 3)
        with pytest.raises(CheckpointError, match=first.replace(".", r"\.")):
            clone.load_weights(broken)
        missing = {k: v for k, v in state.items() if k != first}
        with pytest.raises(CheckpointError, match="missing keys"):
            clone.load_weights(missing)
        with pytest.raises(CheckpointError, match="unexpected keys: extra.weight"):
            clone.load_weights({**state, "extra.weight": torch.zeros(1)})
        with pytest.raises(CheckpointError):
            clone.load_weights(tmp_path / "does_not_exist.pt")
