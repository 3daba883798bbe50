"""A super-network over ``architecture * precision``: its sub-networks are quantized ONNX Runtime models."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import onnx
import torch
from torch import nn

from elasticnas.data._spec import data_spec, resolve_data
from elasticnas.quantization._layouts import LayerPlan, Layout, layout_of
from elasticnas.quantization._quantize import (
    DEFAULT_SETTINGS,
    ArchCache,
    CacheInfo,
    Feed,
    OnnxSubnet,
    QuantizationError,
    QuantizationSettings,
    export_fp32,
    layer_nodes,
    model_feeds,
    quantize_onnx,
)
from elasticnas.quantization._space import BITS, PRECISION_KEY, SCHEME_KEY, PrecisionSpace
from elasticnas.space import Config
from elasticnas.supernets.base import ImageSupernet, LayerSpec, Supernet

Calibration = Any  # elasticnas.measure.accuracy.Calibration (imported where used: it imports the data loaders)
NAME_SUFFIX = "+qdq"
WRAPPER = "qdq"  # the registered name that rebuilds it (elasticnas.supernets.rebuild_supernet)


def precision_costs(
    plans: Sequence[LayerPlan], precisions: Sequence[str], total_macs: int, total_params: int
) -> dict[str, int]:
    """``model_size_bytes`` (each layer's parameters at its weight precision, every other parameter FP32)
    and ``bops`` (each layer's MACs x weight bits x activation bits: 8 x 8 for INT8, 4 x 32 for weight-only
    INT4, 32 x 32 for FP32 and every MAC outside the layers) of a sub-network whose layers ``plans`` run at
    ``precisions``, of ``total_macs`` MACs and ``total_params`` parameters."""
    layer_params = sum(p.params for p in plans)
    layer_macs = sum(p.macs for p in plans)
    bits = (total_params - layer_params) * 32
    bops = (total_macs - layer_macs) * 32 * 32
    for plan, precision in zip(plans, precisions, strict=True):
        w = BITS[precision]
        bits += plan.params * w
        bops += plan.macs * w * (8 if precision == "int8" else 32)
    return {"model_size_bytes": math.ceil(bits / 8), "bops": bops}


class QuantizedSupernet(Supernet):
    """``supernet`` searched over its architecture and a per-layer precision policy (post-training quantization).

    :attr:`search_space` is ``supernet.search_space * precision_space``: one ``precision`` per
    quantizable layer (:func:`~elasticnas.quantization.layout_of`; ``fp32``, ``int8``, and with
    ``int4`` weight-only INT4 for transformer linear layers) and, with ``weight_schemes``, a
    ``weight_scheme``. :meth:`extract` returns the sub-network as ONNX Runtime runs it
    (:class:`~elasticnas.quantization.OnnxSubnet`): extracted, BatchNorm-recalibrated with
    ``calibration``, exported to ONNX and statically quantized (QDQ) in its INT8 layers, so
    the accuracy and latency metrics measure the quantized model. Activation ranges are calibrated on
    ``settings.calib_batches`` batches of ``calibration``'s data (images; otherwise of
    :meth:`example_inputs`), once per architecture. The forward pass runs ``supernet`` in FP32
    (precision changes nothing before extraction); the weights are ``supernet``'s.
    """

    def __init__(
        self,
        supernet: Supernet,
        *,
        calibration: Calibration | None = None,
        settings: QuantizationSettings = DEFAULT_SETTINGS,
        int4: bool = False,
        weight_schemes: bool = False,
    ) -> None:
        super().__init__()
        self.inner = supernet
        self.layout: Layout = layout_of(supernet)
        if int4 and any(q.kind != "linear" for q in self.layout.layers):
            raise QuantizationError(
                f"int4 (weight-only MatMulNBits) is for the linear layers of elastic transformers; "
                f"{supernet.name or type(supernet).__name__!r} has convolutions"
            )
        self.precision_space = PrecisionSpace(
            self.layout.layers, ("fp32", "int8", "int4") if int4 else ("fp32", "int8"), weight_schemes=weight_schemes
        )
        self.search_space = supernet.search_space * self.precision_space
        self.name = supernet.name + NAME_SUFFIX if supernet.name else ""
        self._calibration_spec = None if calibration is None else data_spec(calibration.data)
        if calibration is not None and self._calibration_spec is not None:
            calibration = dataclasses.replace(calibration, data=resolve_data(calibration.data))
        self.calibration = calibration
        self.settings = settings
        self._cache = ArchCache(settings.keep_models)
        self._bn_batches: dict[str, int] = {}

    def recipe(self) -> dict[str, Any]:
        """The ``qdq`` wrapper's recipe: the quantization settings and the calibration, its data by spec
        (``None`` where it was an in-memory object, which :func:`quantized_from_recipe` refuses)."""
        calibration = None
        if self.calibration is not None:
            c = self.calibration
            calibration = {"data": self._calibration_spec, "batches": c.batches, "batch_size": c.batch_size,
                           "seed": c.seed}  # fmt: skip
        options = {
            "calibration": calibration, "settings": dataclasses.asdict(self.settings),
            "int4": "int4" in self.precision_space.precisions,
            "weight_schemes": SCHEME_KEY in self.precision_space.choices,
        }  # fmt: skip
        return {"wrapper": WRAPPER, "options": options, "weights": self.weights_source, "base": self.inner.recipe()}

    # -- configurations ------------------------------------------------------------------------
    def split(self, config: Mapping[str, Any]) -> tuple[Config, dict[str, str], str | None]:
        """(architecture, ``{layer: precision}`` of the layers that run, weight scheme) of a valid configuration."""
        arch = {k: config[k] for k in self.inner.search_space.choices}
        full = self.precision_space.policy(config)
        policy = {self.layout.layers[p.index].name: full[self.layout.layers[p.index].name] for p in self._plan(arch)}
        scheme = config.get(SCHEME_KEY) if SCHEME_KEY in self.precision_space.choices else None
        return arch, policy, scheme

    def _plan(self, arch: Config, resolution: int | None = None) -> list[LayerPlan]:
        return self.layout.plan(arch, resolution)

    def all_int8(self, arch: Mapping[str, Any]) -> Config:
        """The configuration of architecture ``arch`` with every layer INT8 (the scheme, if any, its first)."""
        return self._with_policy(arch, "int8")

    def all_fp32(self, arch: Mapping[str, Any]) -> Config:
        """The configuration of architecture ``arch`` with every layer FP32."""
        return self._with_policy(arch, "fp32")

    def _with_policy(self, arch: Mapping[str, Any], precision: str) -> Config:
        cfg: Config = {**self.inner.search_space.validate(arch), PRECISION_KEY: [precision] * len(self.layout.layers)}
        if SCHEME_KEY in self.precision_space.choices:
            cfg[SCHEME_KEY] = self.precision_space.choices[SCHEME_KEY].values[0]
        return self.search_space.validate(cfg)

    def cache_info(self) -> CacheInfo:
        """How often an architecture's calibration was reused for another policy."""
        return self._cache.info()

    # -- Supernet hooks -------------------------------------------------------------------------
    def _activate(self, config: Config) -> None:
        self.inner.activate({k: config[k] for k in self.inner.search_space.choices})

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        self.active_config  # noqa: B018 - activates the largest sub-network on first use
        out: torch.Tensor = self.inner(*inputs)
        return out

    def example_inputs(
        self, config: Mapping[str, Any], batch_size: int = 1, *, seed: int = 0
    ) -> tuple[torch.Tensor, ...]:
        return self.inner.example_inputs(self.split(self.search_space.validate(config))[0], batch_size, seed=seed)

    def _arch(self, config: Config) -> dict[str, Any]:
        arch, policy, scheme = self.split(config)
        return {**self.inner.arch(arch), "precision": policy, "weight_scheme": scheme}

    def _costs(self, config: Config) -> dict[str, int]:
        return self._costs_for(config, None)

    def _costs_for(self, config: Config, resolution: int | None) -> dict[str, int]:
        arch, policy, _ = self.split(config)
        inner = self.inner.costs(arch) if resolution is None else self.inner.costs(arch, resolution=resolution)  # type: ignore[call-arg]  # an image super-network's
        plans = self._plan(arch, resolution)
        precisions = [policy[self.layout.layers[p.index].name] for p in plans]
        return {**inner, **precision_costs(plans, precisions, int(inner["macs"]), int(inner["params"]))}

    def _layer_specs(self, config: Config) -> list[LayerSpec]:
        return self._specs_for(config, None)

    def _specs_for(self, config: Config, resolution: int | None) -> list[LayerSpec]:
        """The architecture's layer specs; those of layers at a lower precision keyed ``KEY@int8`` and built
        quantized (calibrated on random inputs), the FP32 ones as the architecture's."""
        arch, policy, scheme = self.split(config)
        if resolution is None:
            specs = self.inner.layer_specs(arch)
        else:
            specs = self.inner.layer_specs(arch, resolution=resolution)  # type: ignore[call-arg]  # an image super-network's
        owners = self.layout.spec_layers(arch)
        out = []
        for spec, owner in zip(specs, owners, strict=True):
            precision = "fp32" if owner is None else policy[self.layout.layers[owner].name]
            if precision == "fp32":
                out.append(spec)
                continue
            key = f"{spec.key}@{precision}" + (f"-{scheme}" if scheme else "")
            build = functools.partial(_quantized_layer, spec.build, spec.input_shape, self.settings, scheme)
            out.append(LayerSpec(key, spec.input_shape, build))
        return out

    def _extract(self, config: Config) -> nn.Module:
        arch, policy, scheme = self.split(config)
        return OnnxSubnet(self._quantized(arch, policy, scheme, self.calibration), policy)

    def _calibrate(self, module: nn.Module, config: Config, calibration: Calibration) -> int:
        """Quantize sub-network ``config`` again with ``calibration`` (BatchNorm statistics and activation
        ranges) into ``module`` (an :class:`OnnxSubnet` it extracted); returns the BatchNorm batches used."""
        if not isinstance(module, OnnxSubnet):
            raise QuantizationError(
                f"expected a sub-network extracted by this super-network, got {type(module).__name__}"
            )
        arch, policy, scheme = self.split(config)
        module.replace_model(self._quantized(arch, policy, scheme, calibration))
        return self._bn_batches.get(self._arch_id(arch, calibration), 0)

    # -- quantization ---------------------------------------------------------------------------
    def _arch_id(self, arch: Config, calibration: Calibration | None) -> str:
        own = calibration is self.calibration
        return self.inner.search_space.config_id(arch) + ("" if own else f"-{id(calibration):x}")

    def _quantized(
        self, arch: Config, policy: Mapping[str, str], scheme: str | None, calibration: Calibration | None
    ) -> bytes:
        """The ONNX model of architecture ``arch`` under ``policy``: FP32 as exported when every layer is FP32."""
        own = calibration is self.calibration
        cache = self._cache if own else ArchCache(1)
        arch_id = self._arch_id(arch, calibration)
        path = cache.model_path(arch_id) or cache.add_model(
            arch_id, lambda p: self._export(arch, calibration, p, arch_id)
        )
        if all(p == "fp32" for p in policy.values()):
            with open(path, "rb") as fh:
                return fh.read()
        model = onnx.load(path, load_external_data=False)
        plans = {self.layout.layers[p.index].name: p.module for p in self._plan(arch)}
        by_precision = {
            precision: [plans[name] for name, p in policy.items() if p == precision]
            for precision in ("fp32", "int8", "int4")
        }
        for precision in ("int8", "int4"):
            for module in by_precision[precision]:
                if not layer_nodes(model, [module]):
                    raise QuantizationError(f"layer {module!r} has no node in the exported ONNX graph")
        int8_nodes = layer_nodes(model, by_precision["int8"])
        in_int4 = set(layer_nodes(model, by_precision["int4"]))
        int4_nodes = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.name in in_int4]
        hit = cache.has_ranges(arch_id)
        feeds = None if hit or not int8_nodes else self._feeds(arch, calibration)
        quantized = quantize_onnx(
            path, cache.ranges_path(arch_id), feeds, include=int8_nodes,
            excluded=layer_nodes(model, [*by_precision["fp32"], *by_precision["int4"]]), int4_nodes=int4_nodes,
            settings=self.settings, scheme=scheme,
        )  # fmt: skip
        if int8_nodes:
            cache.note_ranges(arch_id, hit)
        return quantized

    def _export(self, arch: Config, calibration: Calibration | None, path: str, arch_id: str) -> None:
        """Extract architecture ``arch`` (BatchNorm recalibrated with ``calibration``) and export it to ``path``."""
        sub = self.inner.extract(arch)
        self._bn_batches[arch_id] = 0 if calibration is None else self.inner.calibrate(sub, arch, calibration)
        export_fp32(sub.eval(), self.inner.example_inputs(arch, 1), path)

    def _feeds(self, arch: Config, calibration: Calibration | None) -> list[Feed]:
        """Calibration batches: images of ``calibration``'s data for image super-networks, else example inputs."""
        s = self.settings
        if calibration is not None and isinstance(self.inner, ImageSupernet):
            from elasticnas.data import as_loader, resize_batch

            channels, r, _ = self.inner.input_shape(arch)
            loader = as_loader(
                calibration.data, batch_size=s.calib_batch_size, resolution=r, shuffle=True, seed=calibration.seed,
                channels=channels,
            )  # fmt: skip
            batches = [(resize_batch(_images(b).float(), r),) for b in itertools.islice(loader, s.calib_batches)]
            if not batches:
                raise QuantizationError("the calibration data gave no batch")
            return model_feeds(batches)
        seed = 0 if calibration is None else calibration.seed
        return model_feeds(
            [self.inner.example_inputs(arch, s.calib_batch_size, seed=seed + k) for k in range(s.calib_batches)]
        )


class QuantizedImageSupernet(QuantizedSupernet, ImageSupernet):
    """A :class:`QuantizedSupernet` of an image super-network (resolution, input shape, costs at a resolution)."""

    inner: ImageSupernet

    def resolution(self, config: Mapping[str, Any]) -> int:
        return self.inner.resolution(config)

    @property
    def in_channels(self) -> int:
        return self.inner.in_channels

    def _costs(self, config: Config) -> dict[str, int]:
        return self._costs_for(config, None)

    def _costs_at(self, config: Config, resolution: int) -> dict[str, int]:
        return self._costs_for(config, resolution)

    def _layer_specs(self, config: Config) -> list[LayerSpec]:
        return self._specs_for(config, None)

    def _layer_specs_at(self, config: Config, resolution: int) -> list[LayerSpec]:
        return self._specs_for(config, resolution)

    def example_inputs(
        self, config: Mapping[str, Any], batch_size: int = 1, *, seed: int = 0, resolution: int | None = None
    ) -> tuple[torch.Tensor, ...]:
        return ImageSupernet.example_inputs(self, config, batch_size, seed=seed, resolution=resolution)


def quantize_supernet(
    supernet: Supernet,
    *,
    calibration: Calibration | None = None,
    settings: QuantizationSettings = DEFAULT_SETTINGS,
    int4: bool = False,
    weight_schemes: bool = False,
) -> QuantizedSupernet:
    """``supernet`` searched over architecture and per-layer precision (see :class:`QuantizedSupernet`)."""
    cls = QuantizedImageSupernet if isinstance(supernet, ImageSupernet) else QuantizedSupernet
    return cls(supernet, calibration=calibration, settings=settings, int4=int4, weight_schemes=weight_schemes)


def quantized_from_recipe(
    supernet: Supernet,
    *,
    calibration: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    int4: bool = False,
    weight_schemes: bool = False,
) -> QuantizedSupernet:
    """:func:`quantize_supernet` with the JSON options of :meth:`QuantizedSupernet.recipe` (the ``qdq`` wrapper)."""
    from elasticnas.errors import ElasticNASError
    from elasticnas.measure.accuracy import Calibration as _Calibration

    cal = None
    if calibration is not None:
        if calibration.get("data") is None:
            raise ElasticNASError(
                "the quantized super-network was calibrated on data held in memory, which a study cannot record; "
                "name the calibration data by spec (Calibration('digits:calib'), an image folder) to export its trials"
            )
        cal = _Calibration(**calibration)
    quant = DEFAULT_SETTINGS if settings is None else QuantizationSettings(**settings)
    return quantize_supernet(supernet, calibration=cal, settings=quant, int4=int4, weight_schemes=weight_schemes)


def _images(batch: Any) -> torch.Tensor:
    """The images of a data-loader batch (a tensor, or inputs and labels)."""
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, tuple | list):
        return torch.as_tensor(batch[0])
    if isinstance(batch, dict) and "input" in batch:
        return torch.as_tensor(batch["input"])
    raise QuantizationError(f"cannot read images from a batch of type {type(batch).__name__}")


def _quantized_layer(
    build: Callable[[], nn.Module], input_shape: tuple[int, ...], settings: QuantizationSettings, scheme: str | None
) -> nn.Module:
    """One layer (``build()``, weights arbitrary) as an INT8 QDQ model calibrated on seeded random inputs."""
    module = build().eval()
    gen = torch.Generator().manual_seed(0)
    batches = [
        (torch.randn((settings.calib_batch_size, *input_shape), generator=gen),) for _ in range(settings.calib_batches)
    ]
    with tempfile.TemporaryDirectory(prefix="elasticnas-quant-layer-") as tmp:
        path = os.path.join(tmp, "layer.onnx")
        export_fp32(module, (torch.randn((1, *input_shape), generator=gen),), path)
        nodes = [n.name for n in onnx.load(path).graph.node]
        model = quantize_onnx(
            path, os.path.join(tmp, "ranges.json"), model_feeds(batches), include=nodes, excluded=[], int4_nodes=[],
            settings=settings, scheme=scheme,
        )  # fmt: skip
    return OnnxSubnet(model, {"layer": "int8"})
