"""Latency lookup tables: time each distinct layer once, estimate a sub-network as the sum.

A super-network describes the layers of a sub-network with
``supernet.layer_specs(config)``: a list of specs with a ``key`` (unique per
layer type, input shape and hyper-parameters), an ``input_shape`` (C, H, W)
and a ``build()`` returning the layer as a module. :func:`build_lut` collects
the distinct keys over the search space, times each once with
:func:`~elasticnas.measure.latency.measure_latency`, and stores them in a
JSON file (:class:`LookupTable`).

Every timed call carries a fixed per-call cost of the runtime (Python, session
dispatch) that a whole network pays once, not once per layer. We time an
almost empty network of the same runtime (``overhead_ms``). A layer timed
alone also runs at another speed than inside a network, where the other
layers' weights and activations share the caches (ONNX Runtime, one thread:
whole OFA-MobileNetV3 r=160 sub-networks 16 % slower than the sum of their
layers, tiny_mbv3 ones 10 % faster, steadily so). ``build_lut`` therefore measures a few whole
sub-networks directly and fits one ``scale``; a sub-network's estimate is
``overhead_ms + scale * sum(max(layer_ms - overhead_ms, 0))``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from elasticnas._io import InputError, atomic_write_text, parse_json, read_text
from elasticnas.errors import ElasticNASError
from elasticnas.measure.latency import (
    DEFAULT_RUNTIME,
    LatencyResult,
    TimingPolicy,
    create_runtime,
    default_threads,
    measure_latency,
)

if TYPE_CHECKING:  # PyTorch is imported where it is used, so that LUT_POLICY and the tables load without it
    import torch
    from torch import nn

LUT_FORMAT = "elasticnas-latency-lut"
LUT_VERSION = 2  # version 1: no scale (read as 1.0)
LUT_CALIBRATE = 10
LUT_POLICY = TimingPolicy(warmup_runs=10, warmup_s=0.1, min_runs=30, min_time_s=0.3, budget_s=3.0, rel_tol=0.005)


class LUTError(ElasticNASError):
    """A lookup table cannot be read, or does not cover a sub-network."""


class LayerSpecLike(Protocol):
    key: str
    input_shape: tuple[int, ...]

    def build(self) -> nn.Module: ...


@dataclass(frozen=True)
class LUTEntry:
    """Measured latency of one distinct layer."""

    median_ms: float
    p90_ms: float
    iqr_ms: float
    runs: int
    input_shape: tuple[int, ...]


@dataclass(frozen=True)
class LookupTable:
    """Per-layer latencies of one super-network on one runtime, device, batch size and thread count.

    ``scale`` was fitted on ``calibration_n`` directly measured whole sub-networks (1.0 and 0: none).
    """

    supernet: str
    runtime: str
    device: str
    batch_size: int
    threads: int
    overhead_ms: float
    entries: Mapping[str, LUTEntry]
    scale: float = 1.0
    calibration_n: int = 0
    machine: Mapping[str, str] = field(default_factory=dict)
    created: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", MappingProxyType(dict(self.entries)))
        object.__setattr__(self, "machine", MappingProxyType(dict(self.machine)))

    def __len__(self) -> int:
        return len(self.entries)

    def layer_sum_ms(self, keys: Iterable[str]) -> float:
        """Sum of the layers' latencies above the per-call overhead (before ``scale``)."""
        total = 0.0
        for key in keys:
            entry = self.entries.get(key)
            if entry is None:
                raise LUTError(
                    f"layer {key!r} is not in the lookup table of {self.supernet!r}; "
                    "rebuild it with 'elasticnas lut build'"
                )
            total += max(entry.median_ms - self.overhead_ms, 0.0)
        return total

    def estimate_ms(self, keys: Iterable[str]) -> float:
        """``overhead_ms`` plus ``scale`` times the layers' latencies above the per-call overhead."""
        return self.overhead_ms + self.scale * self.layer_sum_ms(keys)

    def latency_ms(self, supernet: Any, config: Mapping[str, Any]) -> float:
        """Estimated latency of sub-network ``config`` of ``supernet``."""
        name = getattr(supernet, "name", "")
        if self.supernet and name and name != self.supernet:
            raise LUTError(f"this lookup table was built for {self.supernet!r}, not {name!r}")
        return self.estimate_ms(spec.key for spec in supernet.layer_specs(config))

    # -- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": LUT_FORMAT,
            "version": LUT_VERSION,
            "supernet": self.supernet,
            "runtime": self.runtime,
            "device": self.device,
            "batch_size": self.batch_size,
            "threads": self.threads,
            "overhead_ms": self.overhead_ms,
            "scale": self.scale,
            "calibration_n": self.calibration_n,
            "machine": dict(self.machine),
            "created": self.created,
            "entries": {
                k: {**asdict(e), "input_shape": list(e.input_shape)} for k, e in sorted(self.entries.items())
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LookupTable:
        if not isinstance(data, Mapping) or data.get("format") != LUT_FORMAT:
            raise LUTError(f"not an elasticnas lookup table (expected \"format\": \"{LUT_FORMAT}\")")
        if data.get("version") not in (1, LUT_VERSION):
            raise LUTError(f"lookup table version {data.get('version')!r} is not supported (expected {LUT_VERSION})")
        try:
            entries = {
                str(k): LUTEntry(
                    float(v["median_ms"]),
                    float(v["p90_ms"]),
                    float(v["iqr_ms"]),
                    int(v["runs"]),
                    tuple(int(s) for s in v["input_shape"]),
                )
                for k, v in data["entries"].items()
            }
            return cls(
                supernet=str(data["supernet"]),
                runtime=str(data["runtime"]),
                device=str(data["device"]),
                batch_size=int(data["batch_size"]),
                threads=int(data["threads"]),
                overhead_ms=float(data["overhead_ms"]),
                entries=entries,
                scale=float(data.get("scale", 1.0)),
                calibration_n=int(data.get("calibration_n", 0)),
                machine={str(k): str(v) for k, v in data.get("machine", {}).items()},
                created=str(data.get("created", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LUTError(f"malformed lookup table: {type(exc).__name__}: {exc}") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the table as JSON (atomically: a temporary file renamed into place)."""
        atomic_write_text(path, json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LookupTable:
        try:
            data = parse_json(read_text(path, what="lookup table"), what=f"lookup table {str(path)!r}")
        except InputError as exc:
            raise LUTError(str(exc)) from None
        return cls.from_json(data)


def collect_layer_specs(
    supernet: Any,
    *,
    configs: Iterable[Mapping[str, Any]] | None = None,
    fixed: Mapping[str, Any] | None = None,
    seed: int = 0,
    patience: int = 300,
    max_configs: int = 20_000,
) -> dict[str, LayerSpecLike]:
    """The distinct layer specs of ``supernet``'s sub-networks, by key.

    With ``configs`` only those sub-networks are covered. Otherwise we visit the
    smallest and largest sub-networks, then every value of every gene on a
    random background, then random sub-networks until ``patience`` in a row
    bring no new key (or ``max_configs`` were visited). ``fixed`` overrides
    choices in every visited configuration (``{"r": 160}``: one resolution only).
    """
    specs: dict[str, LayerSpecLike] = {}
    overrides = dict(fixed or {})

    def add(cfg: Mapping[str, Any]) -> bool:
        new = False
        cfg = supernet.search_space.validate({**cfg, **overrides})
        for spec in supernet.layer_specs(cfg):
            if spec.key not in specs:
                specs[spec.key] = spec
                new = True
        return new

    if configs is not None:
        for cfg in configs:
            add(cfg)
        return specs
    space = supernet.search_space
    rng = np.random.default_rng(seed)
    add(supernet.min_config())
    add(supernet.max_config())
    cards = space.cardinalities
    visited = 2
    for g, card in enumerate(cards):
        for v in range(int(card)):
            genes = np.array([rng.integers(c) for c in cards])
            genes[g] = v
            add(space.from_genes(genes))
            visited += 1
    quiet = 0
    while quiet < patience and visited < max_configs:
        quiet = 0 if add(space.sample(rng)) else quiet + 1
        visited += 1
    return specs


@functools.cache
def _overhead_class() -> type[nn.Module]:
    """The class ``_Overhead``, defined on first use so that importing this module does not load PyTorch."""
    from torch import nn

    class _Overhead(nn.Module):
        """An almost empty network: one cheap operator on a one-element input."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + 1.0

    return _Overhead


def machine_info(runtime: str, threads: int) -> dict[str, str]:
    """Facts about this machine that a latency table depends on."""
    import torch

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": str(os.cpu_count()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": str(threads),
    }
    if runtime == "onnxruntime":
        import onnxruntime as ort

        info["onnxruntime"] = ort.__version__
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info


def build_lut(
    supernet: Any,
    *,
    runtime: str = DEFAULT_RUNTIME,
    device: str = "cpu",
    batch_size: int = 1,
    threads: int | None = None,
    policy: TimingPolicy = LUT_POLICY,
    specs: Mapping[str, LayerSpecLike] | None = None,
    fixed: Mapping[str, Any] | None = None,
    calibrate: int = LUT_CALIBRATE,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> LookupTable:
    """Time every distinct layer of ``supernet`` once (see :func:`collect_layer_specs`), then fit the
    table's ``scale`` on ``calibrate`` random whole sub-networks (``fixed`` choices overridden, as when
    collecting the layers) measured directly: the median of measured / estimated, above the overhead.

    ``progress(done, total)`` is called after each layer and each calibration sub-network.
    """
    runtime_name = create_runtime(runtime).name
    n_threads = default_threads() if threads is None else int(threads)
    if specs is None:
        specs = collect_layer_specs(supernet, fixed=fixed, seed=seed)
    space = supernet.search_space
    calibration = [
        space.validate({**cfg, **(fixed or {})})
        for cfg in space.sample_many(calibrate, seed=np.random.default_rng([seed, 1]))
    ]
    specs = {**specs, **collect_layer_specs(supernet, configs=calibration)}
    if not specs:
        raise LUTError(f"super-network {getattr(supernet, 'name', '?')!r} describes no layers")
    kw: dict[str, Any] = dict(
        runtime=runtime_name, device=device, batch_size=batch_size, threads=n_threads, policy=policy, seed=seed
    )
    overhead: LatencyResult = measure_latency(_overhead_class()(), (1,), **kw)
    entries: dict[str, LUTEntry] = {}
    total = len(specs) + len(calibration)
    for i, (key, spec) in enumerate(specs.items()):
        module = spec.build().eval()
        shape = tuple(int(s) for s in spec.input_shape)
        res = measure_latency(module, shape, **kw)
        entries[key] = LUTEntry(res.median_ms, res.p90_ms, res.iqr_ms, res.runs, shape)
        if progress is not None:
            progress(i + 1, total)
    lut = LookupTable(
        supernet=str(getattr(supernet, "name", "")),
        runtime=runtime_name,
        device=device,
        batch_size=batch_size,
        threads=n_threads,
        overhead_ms=overhead.median_ms,
        entries=entries,
        machine=machine_info(runtime_name, n_threads),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    ratios = []
    for j, cfg in enumerate(calibration):
        layers = lut.layer_sum_ms(spec.key for spec in supernet.layer_specs(cfg))
        measured = measure_latency(supernet.extract(cfg).eval(), supernet.input_shape(cfg), **kw).median_ms
        if layers > 0:
            ratios.append(max(measured - lut.overhead_ms, 0.0) / layers)
        if progress is not None:
            progress(len(specs) + j + 1, total)
    if not ratios:
        return lut
    return dataclasses.replace(lut, scale=float(np.median(ratios)), calibration_n=len(ratios))


@dataclass(frozen=True)
class LUTErrorReport:
    """How far lookup-table estimates are from direct measurements."""

    n: int
    median_abs_pct_error: float
    mean_abs_pct_error: float
    max_abs_pct_error: float
    kendall_tau: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def lut_error(estimates_ms: Sequence[float], measured_ms: Sequence[float]) -> LUTErrorReport:
    """Absolute percentage errors of ``estimates_ms`` against ``measured_ms``, and their rank agreement."""
    from scipy.stats import kendalltau

    est = np.asarray(estimates_ms, dtype=float)
    ref = np.asarray(measured_ms, dtype=float)
    if est.shape != ref.shape or est.size == 0:
        raise LUTError("need as many estimates as measurements, at least one")
    ape = np.abs(est - ref) / ref * 100.0
    tau = float(kendalltau(est, ref).statistic) if est.size > 1 else float("nan")
    return LUTErrorReport(int(est.size), float(np.median(ape)), float(ape.mean()), float(ape.max()), tau)
