"""Metrics of adapter super-networks: ``adapter_params`` (cheap), and latency / peak memory after merging."""

from __future__ import annotations

import copy

from elasticnas.adapters._layer import merge_lora
from elasticnas.adapters._supernet import LoraSupernet
from elasticnas.errors import ElasticNASError
from elasticnas.measure.metrics import LATENCY_SPREAD, Config, Measurer, Metric


def _needs_lora(m: Measurer) -> None:
    if not isinstance(m.supernet, LoraSupernet):
        raise ElasticNASError(
            "adapter metrics (adapter_params, latency_merged_ms, peak_memory_merged_mb) are measured on adapter "
            f"super-networks (elasticnas.adapters.LoraSupernet), not {type(m.supernet).__name__}"
        )


def _merged_twin(m: Measurer, cfg: Config) -> Measurer:
    """A copy of ``m`` (same settings, its own caches) whose sub-network of ``cfg`` is the measured one with its
    adapters merged into the base weights: its latency and memory are measured exactly as ``m``'s."""
    merged = merge_lora(copy.deepcopy(m.subnet(cfg))).eval()
    twin = copy.copy(m)
    twin._cache, twin._cache_id, twin._interleaved = {}, None, {}
    twin._cached(cfg, "subnet", lambda: merged)
    return twin


def _adapter_params(m: Measurer, cfg: Config) -> dict[str, float]:
    _needs_lora(m)
    return {"adapter_params": float(m.costs(cfg)["adapter_params"])}


def _latency_merged(m: Measurer, cfg: Config) -> dict[str, float]:
    _needs_lora(m)
    return _merged_twin(m, cfg).latency(cfg).columns("latency_merged_ms")


def _memory_merged(m: Measurer, cfg: Config) -> dict[str, float]:
    _needs_lora(m)
    return {"peak_memory_merged_mb": _merged_twin(m, cfg).memory(cfg).peak_mb}


# registered lazily by elasticnas.measure.metrics under these names, so that every process lists the same metrics
ADAPTER_PARAMS = Metric("adapter_params", "minimize", True, _adapter_params, "",
                        "trainable LoRA parameters of the configuration (analytic)", check=_needs_lora)  # fmt: skip
LATENCY_MERGED = Metric(
    "latency_merged_ms", "minimize", False, _latency_merged, "ms",
    "latency_ms of the sub-network with its adapters merged into the base weights",
    extra_columns=LATENCY_SPREAD, check=_needs_lora,
)  # fmt: skip
PEAK_MEMORY_MERGED = Metric(
    "peak_memory_merged_mb", "minimize", False, _memory_merged, "MiB",
    "peak_memory_mb of the sub-network with its adapters merged into the base weights", check=_needs_lora,
)  # fmt: skip
