"""Elastic LoRA over any super-network: :class:`LoraSupernet` (LoNAS / Shears / SQFT), built on peft."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from peft import LoraConfig, get_peft_model, inject_adapter_in_model
from torch import Tensor, nn
from transformers.pytorch_utils import Conv1D

from elasticnas.adapters._layer import ADAPTER, ElasticLora, make_elastic, merge_lora
from elasticnas.space import Choice, Config, ProductSpace, SearchSpace
from elasticnas.supernets import ImageSupernet, Supernet, build_subnet, register_subnet_builder
from elasticnas.supernets.base import IN_MEMORY_WEIGHTS
from elasticnas.supernets.hf import HFSubnet, HFSupernet, TransformerSpace, load_hf_subnet
from elasticnas.supernets.hf._modules import Index, take
from elasticnas.supernets.hf._supernet import role_shape

FAMILY = "lora"  # the sub-network builder of unmerged adapter sub-networks
WRAPPER = "lora"  # the registered name that rebuilds it (elasticnas.supernets.rebuild_supernet)
PUBLISHED_RANKS = (16, 24, 32)  # LoNAS / Shears / SQFT rank choices, for adapted layers of >= 128 features
DEFAULT_GROUPS: dict[str, tuple[str, ...]] = {"qkv": ("q", "k", "v", "qkv"), "up": ("up",), "down": ("down",)}
GENE_PREFIX = "rank_"  # rank genes are named rank_<group>
BASE_DIR = "base"  # in a peft export folder: the base model (Hugging Face folder) the adapter loads onto


@dataclass(frozen=True)
class Site:
    """One adapted linear or convolution module: its path in the base super-network and its rank gene (name,
    position); for elastic transformers also its block, its path inside the block and its role."""

    path: str
    gene: str
    position: int | None
    block: int | None = None
    local: str = ""
    role: str = ""


@dataclass(frozen=True)
class SubSite:
    """An adapted module of an extracted sub-network: its path there, the slice of the super-network's
    adapter it takes (output rows, input columns: channels of a convolution), its features, the positions per
    sample it runs on (a convolution's output pixels) and its kernel's size (``kh * kw``; 1 for linear modules)."""

    site: Site
    path: str
    out_index: Index
    in_index: Index
    out_features: int
    in_features: int
    rows: int
    kernel: int = 1

    def adapter_params(self, rank: int) -> int:
        """The parameters of its rank-``rank`` adapter: ``lora_A`` (rank x in x kernel) and ``lora_B``
        (out x rank); each runs once per position, so its MACs per sample are ``rows`` times as many."""
        return rank * (self.in_features * self.kernel + self.out_features)


class RankSpace(SearchSpace):
    """The rank genes ``rank_<group>`` (one per block, or shared); in a product with an elastic transformer's
    :class:`~elasticnas.supernets.hf.TransformerSpace`, the per-block genes of the blocks its depth drops are
    inactive."""

    def inactive_mask_within(self, genes: np.ndarray, product: ProductSpace, product_genes: np.ndarray) -> np.ndarray:
        mask = self.inactive_mask(genes)
        arch = next((p for p in product.parts if isinstance(p, TransformerSpace)), None)
        if arch is None:
            return mask
        n = len(arch.layer_order)
        offset = sum(p.n_genes for p in product.parts[: product.parts.index(arch)])
        depths = np.asarray(arch.choices["depth"].values, dtype=np.int64)[np.atleast_2d(product_genes)[:, offset]]
        order = np.empty(n, dtype=np.int64)
        order[list(arch.layer_order)] = np.arange(n)
        dropped = order[None, :] >= depths[:, None]  # (rows, blocks)
        start = 0
        for choice in self.choices.values():
            if choice.size == n:
                mask[:, start : start + n] |= dropped
            start += choice.length
        return mask


def default_ranks(features: int) -> tuple[int, ...]:
    """The published ranks {16, 24, 32} (1/2, 3/4 and all of the largest rank), the largest scaled down to a
    quarter of the smallest adapted layer's features (a multiple of 4, at least 4) for small models."""
    top = min(PUBLISHED_RANKS[-1], max(4, features // 16 * 4))
    return tuple(sorted({top // 2, top * 3 // 4, top}))


def lora_config(targets: Sequence[str], ranks: Sequence[int], alphas: Sequence[float], fan_in_fan_out: bool) -> Any:
    """A peft ``LoraConfig`` giving each module of ``targets`` its rank and alpha (``rank_pattern`` /
    ``alpha_pattern``)."""
    return LoraConfig(
        target_modules=list(targets), r=int(ranks[0]),
        lora_alpha=alphas[0],  # type: ignore[arg-type]  # peft annotates int, and divides any number by r
        rank_pattern=dict(zip(targets, (int(r) for r in ranks), strict=True)),
        alpha_pattern=dict(zip(targets, alphas, strict=True)), lora_dropout=0.0, bias="none",
        fan_in_fan_out=fan_in_fan_out, init_lora_weights=False,
    )  # fmt: skip


class LoraSupernet(Supernet):
    """Elastic LoRA ranks over a super-network ``base``, with peft's LoRA layers (LoNAS, Shears, SQFT).

    peft injects one adapter of the largest rank into each target module of ``base`` (its
    ``nn.Linear`` / transformers ``Conv1D``, or ``nn.Conv2d`` of a super-network other than an
    elastic transformer); each layer becomes an :class:`ElasticLoraLinear` (:class:`ElasticLoraConv2d`)
    running the first ``r`` rows of ``lora_A`` and columns of ``lora_B`` (output / input channels)
    of the rank ``r`` its group's gene chooses, over the base layer's active slice. All ranks share
    the scaling ``lora_alpha / max(ranks)``: a rank-``r`` adapter exports as a PEFT adapter of rank
    ``r`` and alpha ``r * lora_alpha / max(ranks)``, which reproduces it exactly.

    ``targets``: module groups, one rank gene ``rank_<group>`` each. For an elastic transformer
    (:class:`~elasticnas.supernets.hf.HFSupernet`) a group lists linear roles (``q``, ``k``, ``v``,
    ``qkv``, ``o``, ``up`` (gate and up), ``down``; default LoNAS's ``qkv`` / ``up`` / ``down``),
    with one gene per block when ``per_layer`` (else shared); for any other super-network a group
    lists regular expressions matching the full names of its linear and ``nn.Conv2d`` modules (one
    shared gene), whose active slices are the first features / channels. Convolutions must be
    ungrouped, with dilation 1 and zero padding (what peft's LoRA ``Conv2d`` runs exactly and
    merges); ``nn.Linear`` and ``Conv1D`` modules may not be mixed (peft's one ``fan_in_fan_out``),
    convolutions go with either. ``ranks``: the rank choices (default :func:`default_ranks`).
    ``base_config``: None searches the base's architecture too (LoNAS: the space is
    ``base.search_space * rank space``); a configuration of ``base`` fixes the base to that
    sub-network and searches the ranks only (Shears, SQFT). ``train_base``: the base's
    weights are trained too (else frozen: only the adapters get gradients). ``merged``:
    :meth:`extract` returns sub-networks with the adapters merged into the base weights (costs,
    latency and memory then measure the merged model); else the base with peft LoRA layers.
    ``costs`` add ``adapter_params`` and ``adapter_macs``, the adapters' share of the configuration.
    """

    def __init__(
        self,
        base: Supernet,
        *,
        targets: Mapping[str, Sequence[str]] | None = None,
        ranks: Sequence[int] | None = None,
        per_layer: bool = True,
        lora_alpha: float | None = None,
        lora_dropout: float = 0.0,
        init_lora_weights: bool = True,
        base_config: Mapping[str, Any] | None = None,
        train_base: bool = False,
        merged: bool = False,
    ) -> None:
        super().__init__()
        self.name = f"{base.name}+lora" if base.name else "lora"
        # None: the adapters as built (B = 0, outputs the base's); peft's random B cannot be built again
        self.weights_source = None if init_lora_weights else IN_MEMORY_WEIGHTS
        self.task = getattr(base, "task", None) or ("image-classification" if isinstance(base, ImageSupernet) else None)
        self.merged = merged
        self.seq_len: int | None = getattr(base, "seq_len", None)  # tokens per input of a token base
        self.family = base.family if merged else FAMILY
        self.base_config = None if base_config is None else base.search_space.validate(base_config)
        self.sites = tuple(
            _hf_sites(base, targets or DEFAULT_GROUPS, per_layer) if isinstance(base, HFSupernet)
            else _regex_sites(base, targets)
        )  # fmt: skip
        modules = [base.get_submodule(s.path) for s in self.sites]
        smallest = min(min(_features(m)) for m in modules)
        self.ranks = _checked_ranks(ranks, default_ranks(smallest))
        r_max = self.ranks[-1]
        self.lora_alpha = float(2 * r_max if lora_alpha is None else lora_alpha)
        if not (math.isfinite(self.lora_alpha) and self.lora_alpha > 0):
            raise ValueError(f"lora_alpha must be a finite number > 0, got {lora_alpha!r}")
        self.scaling = self.lora_alpha / r_max
        for s, m in zip(self.sites, modules, strict=True):
            if isinstance(m, nn.Conv2d):
                _check_conv(s.path, m)
        linear_kinds = {isinstance(m, Conv1D) for m in modules if not isinstance(m, nn.Conv2d)}
        if len(linear_kinds) > 1:
            raise ValueError(
                "the adapted modules mix nn.Linear and Conv1D layers; adapt one kind of linear module per "
                "super-network (nn.Conv2d modules may go with either)"
            )
        self.fan_in_fan_out = True in linear_kinds  # peft's flag for Conv1D weights; convolutions ignore it
        genes: dict[str, int | None] = {}
        for s in self.sites:
            genes[s.gene] = None if s.position is None else max(s.position + 1, genes.get(s.gene) or 0)
        rank_space = RankSpace({g: Choice(self.ranks, size=size) for g, size in genes.items()})
        self.rank_space = rank_space
        self.search_space = rank_space if self.base_config is not None else base.search_space * rank_space
        base.activate(self.base_config or base.max_config())  # before the wrappers: the base sees its own modules
        config = LoraConfig(
            target_modules=[s.path for s in self.sites], r=r_max,
            lora_alpha=self.lora_alpha,  # type: ignore[arg-type]  # peft annotates int, and divides any number by r
            lora_dropout=lora_dropout, init_lora_weights=init_lora_weights, fan_in_fan_out=self.fan_in_fan_out,
            bias="none",
        )  # fmt: skip
        inject_adapter_in_model(config, base)
        if "peft_config" in base.__dict__:
            del base.peft_config  # the config lives here; a Supernet attribute it is not
        self.base = base
        self.lora_layers: tuple[ElasticLora, ...] = tuple(make_elastic(base.get_submodule(s.path)) for s in self.sites)
        self._parents = tuple(
            (base.get_submodule(s.path.rpartition(".")[0]), s.path.rpartition(".")[2]) for s in self.sites
        )
        if not isinstance(base, HFSupernet):
            self._check_sites_run()
        if train_base:
            for p in base.parameters():
                p.requires_grad_(True)
        self._sub_sites_cache: dict[str, tuple[SubSite, ...]] = {}
        self._options = {
            "targets": None if targets is None else {g: list(p) for g, p in targets.items()},
            "ranks": list(self.ranks), "per_layer": per_layer, "lora_alpha": self.lora_alpha,
            "lora_dropout": lora_dropout, "base_config": self.base_config, "train_base": train_base, "merged": merged,
        }  # fmt: skip
        self.eval()

    def recipe(self) -> dict[str, Any]:
        """The ``lora`` wrapper's recipe: this class's arguments, its own weights (None: as built) and its base's."""
        return {"wrapper": WRAPPER, "options": dict(self._options), "weights": self.weights_source,
                "base": self.base.recipe()}

    # -- the base, seen without the adapters -------------------------------------------------
    @contextmanager
    def bare(self) -> Iterator[Supernet]:
        """The base super-network with its own modules in place of the LoRA layers (restored on exit):
        its methods (activate, extract, costs, ...) work on the modules they know."""
        for (parent, child), layer in zip(self._parents, self.lora_layers, strict=True):
            setattr(parent, child, layer.base_layer)
        try:
            yield self.base
        finally:
            for (parent, child), layer in zip(self._parents, self.lora_layers, strict=True):
                setattr(parent, child, layer)

    def _check_sites_run(self) -> None:
        """Refuse target modules that the base's largest sub-network does not call (a wrapper reading their weight
        itself, as OFA's elastic convolutions do): their adapters would never run."""
        ran: set[str] = set()
        hooks = [
            layer.register_forward_hook(lambda *_, path=s.path: ran.add(path))
            for s, layer in zip(self.sites, self.lora_layers, strict=True)
        ]
        training = self.base.training
        try:
            with self.bare() as base:
                base.activate(base.max_config())
                xs = base.example_inputs(base.max_config(), 1)
            self.base.eval()
            with torch.no_grad():
                self.base(*xs)
        finally:
            for h in hooks:
                h.remove()
            self.base.train(training)
            with self.bare() as base:
                base.activate(self.base_config or base.max_config())
        idle = [s.path for s in self.sites if s.path not in ran]
        if idle:
            for (parent, child), layer in zip(self._parents, self.lora_layers, strict=True):
                setattr(parent, child, layer.base_layer)  # the base as it was given
            raise ValueError(
                f"target module(s) {', '.join(idle[:4])}{', ...' if len(idle) > 4 else ''} never run in the forward "
                "pass of the largest sub-network (their weights are read by another module, e.g. an elastic "
                "wrapper): their adapters would never run; target modules the forward pass calls"
            )

    def base_part(self, config: Mapping[str, Any]) -> Config:
        """The base's configuration within (valid) configuration ``config``."""
        if self.base_config is not None:
            return dict(self.base_config)
        return {k: config[k] for k in self.base.search_space.choices}

    def rank_of(self, site: Site, config: Mapping[str, Any]) -> int:
        """The rank (valid) configuration ``config`` gives ``site``."""
        value = config[site.gene]
        return int(value if site.position is None else value[site.position])

    def sub_sites(self, config: Mapping[str, Any]) -> tuple[SubSite, ...]:
        """The adapted modules that run in sub-network ``config`` (validated), as its extracted module names them."""
        arch = self.base_part(self.search_space.validate(config))
        key = json.dumps(arch, sort_keys=True)
        if key not in self._sub_sites_cache:
            found = self._hf_sub_sites(arch) if isinstance(self.base, HFSupernet) else self._traced_sub_sites(arch)
            self._sub_sites_cache[key] = found
        return self._sub_sites_cache[key]

    def _hf_sub_sites(self, arch: Config) -> tuple[SubSite, ...]:
        base = cast(HFSupernet, self.base)
        plan = base.plan(arch)
        position = {layer: j for j, layer in enumerate(plan.layers)}
        out = []
        for s in self.sites:
            if s.block not in position:
                continue
            j = position[s.block]
            heads, ffn = plan.heads[j], plan.ffn[j]
            out_index, in_index = base._role_index(s.role, heads, ffn, plan.hidden)  # type: ignore[arg-type]  # a LayerRole
            out_f, in_f = role_shape(s.role, base.dims, heads, ffn, plan.hidden)  # type: ignore[arg-type]  # a LayerRole
            path = f"hf_model.{base.spec.layers}.{j}.{s.local}"
            out.append(SubSite(s, path, out_index, in_index, out_f, in_f, base.seq_len))
        return tuple(out)

    def _traced_sub_sites(self, arch: Config) -> tuple[SubSite, ...]:
        """The adapted modules found at their own paths in the extracted base sub-network that run in one forward
        pass of its example inputs (the first channels of the super-network's modules)."""
        with self.bare() as base:
            sub = base.extract(arch).eval()
            xs = base.example_inputs(arch, 1)
        rows: dict[str, int] = {}
        hooks = []
        for s in self.sites:
            try:
                module = sub.get_submodule(s.path)
            except AttributeError:
                continue

            def record(m: nn.Module, inputs: tuple[Any, ...], output: Any, path: str = s.path) -> None:
                if isinstance(m, nn.Conv2d):  # lora_A and lora_B run once per output pixel
                    rows[path] = int(output.shape[-2] * output.shape[-1])
                else:
                    rows[path] = inputs[0].numel() // inputs[0].shape[0] // inputs[0].shape[-1]

            hooks.append(module.register_forward_hook(record))
        with torch.no_grad():
            sub(*xs)
        for h in hooks:
            h.remove()
        if not rows:
            raise ValueError(
                "no adapted module runs at its own name in the extracted sub-network: "
                "LoraSupernet adapts super-networks"
                " whose extracted sub-networks keep the names of their linear and convolution modules"
            )
        out = []
        for s in self.sites:
            if s.path in rows:
                full_out, full_in = _features(self.base.get_submodule(s.path))
                module = sub.get_submodule(s.path)
                out_f, in_f = _features(module)
                out.append(
                    SubSite(s, s.path, None if out_f == full_out else out_f, None if in_f == full_in else in_f,
                            out_f, in_f, rows[s.path], _kernel(module))
                )  # fmt: skip
        return tuple(out)

    def adapter_weights(self, sub_site: SubSite, rank: int) -> tuple[Tensor, Tensor]:
        """``lora_A`` (rank, in) and ``lora_B`` (out, rank) of a sub-network's module (a convolution's: (rank, in,
        kh, kw) and (out, rank, 1, 1)): the super-network's first ``rank`` ranks over the module's slice (copies)."""
        layer = self.lora_layers[self.sites.index(sub_site.site)]
        a = take(cast(nn.Linear, layer.lora_A[ADAPTER]).weight[:rank], 1, sub_site.in_index)
        b = take(cast(nn.Linear, layer.lora_B[ADAPTER]).weight[:, :rank], 0, sub_site.out_index)
        return a.detach().clone(), b.detach().clone()

    def adapter_config(self, config: Mapping[str, Any], *, prefix: str = "") -> Any:
        """The peft ``LoraConfig`` of sub-network ``config``'s adapters, for modules named without ``prefix``."""
        cfg = self.search_space.validate(config)
        subs = self.sub_sites(cfg)
        ranks = [self.rank_of(ss.site, cfg) for ss in subs]
        return lora_config(
            [ss.path.removeprefix(prefix) for ss in subs], ranks, [self.scaling * r for r in ranks], self.fan_in_fan_out
        )

    def _load_adapters(self, module: nn.Module, config: Config, *, prefix: str = "") -> None:
        """Copy sub-network ``config``'s adapter weights into the peft layers injected into ``module``."""
        with torch.no_grad():
            for ss in self.sub_sites(config):
                a, b = self.adapter_weights(ss, self.rank_of(ss.site, config))
                layer: Any = module.get_submodule(ss.path.removeprefix(prefix))
                layer.lora_A[ADAPTER].weight.copy_(a)
                layer.lora_B[ADAPTER].weight.copy_(b)

    # -- Supernet hooks ---------------------------------------------------------------------
    def _activate(self, config: Config) -> None:
        with self.bare() as base:
            base.activate(self.base_part(config))
        for site, layer in zip(self.sites, self.lora_layers, strict=True):
            layer.elastic_rank = self.rank_of(site, config)

    def forward(self, *inputs: Tensor) -> Tensor:
        self.active_config  # noqa: B018 - activates the largest sub-network on first use
        out: Tensor = self.base(*inputs)
        return out

    def extract_base(self, config: Mapping[str, Any]) -> nn.Module:
        """The base's sub-network of ``config`` without adapters (a standalone copy)."""
        with self.bare() as base:
            return base.extract(self.base_part(self.search_space.validate(config)))

    def _extract(self, config: Config) -> nn.Module:
        sub = self.extract_base(config)
        if self.sub_sites(config):
            inject_adapter_in_model(self.adapter_config(config), sub)
            self._load_adapters(sub, config)
        return merge_lora(sub) if self.merged else sub

    def _arch(self, config: Config) -> dict[str, Any]:
        with self.bare() as base:
            base_arch = base.arch(self.base_part(config))
        if self.merged:
            return base_arch
        peft = self.adapter_config(config)
        targets = sorted(peft.rank_pattern)
        return {
            "name": FAMILY,
            "base_family": self.base.family,
            "base": base_arch,
            "targets": targets,
            "ranks": [peft.rank_pattern[t] for t in targets],
            "alphas": [peft.alpha_pattern[t] for t in targets],
            "fan_in_fan_out": self.fan_in_fan_out,
        }

    def _costs(self, config: Config) -> dict[str, int]:
        with self.bare() as base:
            costs = dict(base.costs(self.base_part(config)))
        params = macs = 0
        for ss in self.sub_sites(config):
            n = ss.adapter_params(self.rank_of(ss.site, config))
            params, macs = params + n, macs + ss.rows * n
        if not self.merged:
            for key, extra in (("params", params), ("macs", macs), ("params_non_embedding", params)):
                if key in costs:
                    costs[key] += extra
        return {**costs, "adapter_params": params, "adapter_macs": macs}

    def _calibrate(self, module: nn.Module, config: Config, calibration: Any) -> int:
        with self.bare() as base:
            return base.calibrate(module, self.base_part(config), calibration)

    def example_inputs(
        self, config: Mapping[str, Any], batch_size: int = 1, *, seed: int = 0, **sizes: Any
    ) -> tuple[Tensor, ...]:
        """The base's example inputs of ``config``'s base sub-network (``sizes``: the base's ``seq_len=`` or
        ``resolution=``)."""
        arch = self.base_part(self.search_space.validate(config))
        return self.base.example_inputs(arch, batch_size, seed=seed, **sizes)

    # -- files ------------------------------------------------------------------------------
    def save_subnet_pretrained(self, config: Mapping[str, Any], sub: nn.Module, directory: str) -> None:
        """Write ``sub`` (sub-network ``config`` as :meth:`extract` gave it) with its adapters merged as a
        Hugging Face folder (``hf`` export), where the base's sub-network has one."""
        import copy

        from elasticnas.export import ExportError

        save = getattr(self.base, "save_subnet_pretrained", None)
        if save is None:
            raise ExportError(f"the base {self.base.name or type(self.base).__name__!r} has no Hugging Face export")
        merged = merge_lora(copy.deepcopy(sub))
        with self.bare():
            save(self.base_part(self.search_space.validate(config)), merged, directory)

    def save_peft_pretrained(self, config: Mapping[str, Any], directory: str) -> None:
        """Write sub-network ``config`` as a PEFT adapter folder (``adapter_config.json``,
        ``adapter_model.safetensors``) with its base model, a Hugging Face folder, in ``base/``:
        ``PeftModel.from_pretrained(AutoModelFor...from_pretrained(directory + "/base"), directory)``
        runs it (:func:`load_peft_subnet`)."""
        from elasticnas.export import ExportError

        cfg = self.search_space.validate(config)
        base_sub = self.extract_base(cfg).eval()
        if not isinstance(base_sub, HFSubnet):
            raise ExportError("peft export needs a Hugging Face base (an elastic transformer, hf:PATH)")
        with self.bare() as base:
            cast(HFSupernet, base).save_subnet_pretrained(
                self.base_part(cfg), base_sub, os.path.join(directory, BASE_DIR)
            )
        model = get_peft_model(base_sub.hf_model, self.adapter_config(cfg, prefix="hf_model."))
        self._load_adapters(model.base_model.model, cfg, prefix="hf_model.")
        model.save_pretrained(directory)


def load_peft_subnet(path: str | os.PathLike[str]) -> HFSubnet:
    """A PEFT adapter folder written by :meth:`LoraSupernet.save_peft_pretrained` (the ``peft`` export): its
    ``base/`` model with the adapter loaded by ``peft.PeftModel.from_pretrained``, returning logits (eval mode)."""
    from peft import PeftModel

    src = os.fspath(path)
    sub = load_hf_subnet(os.path.join(src, BASE_DIR))
    sub.hf_model = PeftModel.from_pretrained(sub.hf_model, src).eval()  # type: ignore[assignment]  # runs as the model
    return sub


def build_lora_subnet(arch: Mapping[str, Any]) -> nn.Module:
    """The unmerged adapter sub-network :meth:`LoraSupernet.arch` describes (weights arbitrary)."""
    sub = build_subnet(arch["base"], arch["base_family"])
    inject_adapter_in_model(lora_config(arch["targets"], arch["ranks"], arch["alphas"], arch["fan_in_fan_out"]), sub)
    return sub.eval()


register_subnet_builder(FAMILY, build_lora_subnet)


def _features(module: nn.Module) -> tuple[int, int]:
    """(out, in) features of an ``nn.Linear`` or transformers ``Conv1D``; (out, in) channels of an (ungrouped)
    ``nn.Conv2d``."""
    weight = cast(Tensor, module.weight)
    out_f, in_f = weight.shape[:2]
    return (int(in_f), int(out_f)) if isinstance(module, Conv1D) else (int(out_f), int(in_f))


def _kernel(module: nn.Module) -> int:
    """Weights per input channel and output channel: ``kh * kw`` of a convolution, 1 of a linear module."""
    weight = cast(Tensor, module.weight)
    return math.prod(int(k) for k in weight.shape[2:]) if isinstance(module, nn.Conv2d) else 1


def _check_conv(path: str, conv: nn.Conv2d) -> None:
    """Refuse a convolution whose peft LoRA ``Conv2d`` would not be exact: peft's ``lora_A`` takes the base's
    kernel, stride and padding only (dilation 1, zero padding), its grouped ``lora_B`` neither keeps its first
    ranks apart nor merges."""
    if conv.groups != 1:
        raise ValueError(
            f"module {path!r} is a grouped convolution (groups={conv.groups}); LoraSupernet adapts ungrouped "
            "nn.Conv2d modules only (peft's LoRA of a grouped convolution does not merge, nor do its ranks nest): "
            "leave it out of the targets"
        )
    if tuple(conv.dilation) != (1, 1):
        raise ValueError(
            f"module {path!r} is a dilated convolution (dilation={tuple(conv.dilation)}); peft's LoRA Conv2d runs "
            "lora_A undilated: leave it out of the targets"
        )
    if conv.padding_mode != "zeros":
        raise ValueError(
            f"module {path!r} pads with {conv.padding_mode!r}; peft's LoRA Conv2d pads lora_A with zeros: "
            "leave it out of the targets"
        )


def _checked_ranks(ranks: Sequence[int] | None, default: tuple[int, ...]) -> tuple[int, ...]:
    out = default if ranks is None else tuple(sorted({int(r) for r in ranks}))
    if not out or any(r < 1 for r in out) or (ranks is not None and any(int(r) != r for r in ranks)):
        raise ValueError(f"ranks must be positive integers, got {list(ranks or [])}")
    return out


def _hf_sites(base: HFSupernet, groups: Mapping[str, Sequence[str]], per_layer: bool) -> list[Site]:
    """One site per block and linear module whose role a group lists."""
    roles = {role for _, role in base.spec.linears}
    sites: list[Site] = []
    for group, members in _checked_groups(groups).items():
        unknown = [m for m in members if m not in {"q", "k", "v", "qkv", "o", "up", "down"}]
        if unknown:
            raise ValueError(
                f"module group {group!r}: unknown role {unknown[0]!r}; an elastic transformer's linear roles are "
                "q, k, v, qkv, o, up, down"
            )
        if not roles & set(members):
            raise ValueError(
                f"module group {group!r} ({', '.join(members)}) matches no linear module of a "
                f"{base.spec.name} block (roles {', '.join(sorted(roles))})"
            )
        for block in range(base.dims.layers):
            for local, role in base.spec.linears:
                if role in members:
                    sites.append(Site(f"model.{base.spec.layers}.{block}.{local}", GENE_PREFIX + group,
                                      block if per_layer else None, block, local, role))  # fmt: skip
    _check_disjoint(sites)
    return sites


def _regex_sites(base: Supernet, groups: Mapping[str, Sequence[str]] | None) -> list[Site]:
    """One site per linear or ``nn.Conv2d`` module of ``base`` whose full name a group's regular expressions
    match."""
    if groups is None:
        raise ValueError(
            f"super-network {base.name or type(base).__name__!r} is not an elastic transformer: name the linear "
            "and convolution modules to adapt, targets={group: [regular expressions of module names]}"
        )
    sites: list[Site] = []
    kinds = {n: _kind(m) for n, m in base.named_modules() if isinstance(m, nn.Linear | Conv1D | nn.Conv2d)}
    for group, patterns in _checked_groups(groups).items():
        try:
            found = [n for n in kinds if any(re.fullmatch(p, n) for p in patterns)]
        except re.error as exc:
            raise ValueError(f"module group {group!r}: bad regular expression: {exc}") from None
        if not found:
            listed = [f"{n} ({k})" for n, k in kinds.items()]
            raise ValueError(
                f"module group {group!r} ({', '.join(patterns)}) matches no linear module or nn.Conv2d; "
                "adaptable modules: " + (", ".join(listed[:8]) or "none") + (", ..." if len(listed) > 8 else "")
            )
        sites.extend(Site(n, GENE_PREFIX + group, None) for n in found)
    _check_disjoint(sites)
    return sites


def _kind(module: nn.Module) -> str:
    """The kind of an adaptable module, as error messages name it."""
    return "Conv2d" if isinstance(module, nn.Conv2d) else "Conv1D" if isinstance(module, Conv1D) else "Linear"


def _checked_groups(groups: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    if not groups:
        raise ValueError("targets must name at least one module group")
    out = {}
    for group, members in groups.items():
        if not isinstance(group, str) or not re.fullmatch(r"[A-Za-z0-9_]+", group):
            raise ValueError(f"module group names are letters, digits and underscores, got {group!r}")
        if isinstance(members, str) or not members:
            raise ValueError(f"module group {group!r} needs a list of module names or roles, got {members!r}")
        out[group] = tuple(str(m) for m in members)
    return out


def _check_disjoint(sites: Sequence[Site]) -> None:
    seen: dict[str, str] = {}
    for s in sites:
        if s.path in seen and seen[s.path] != s.gene:
            raise ValueError(f"module {s.path!r} is in two groups ({seen[s.path]} and {s.gene})")
        seen[s.path] = s.gene
