"""How the metrics of adapter super-networks are computed: ``adapter_params`` (cheap), and latency / peak memory
after merging (declared in :mod:`elasticnas.measure.metrics`, which calls these on first use)."""

from __future__ import annotations

import copy

from elasticnas.adapters._layer import merge_lora
from elasticnas.adapters._supernet import LoraSupernet
from elasticnas.errors import ElasticNASError
from elasticnas.measure.metrics import Config, Measurer


def needs_lora(m: Measurer) -> None:
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


def adapter_params(m: Measurer, cfg: Config) -> dict[str, float]:
    needs_lora(m)
    return {"adapter_params": float(m.costs(cfg)["adapter_params"])}


def latency_merged(m: Measurer, cfg: Config) -> dict[str, float]:
    needs_lora(m)
    return _merged_twin(m, cfg).latency(cfg).columns("latency_merged_ms")


def memory_merged(m: Measurer, cfg: Config) -> dict[str, float]:
    needs_lora(m)
    return {"peak_memory_merged_mb": _merged_twin(m, cfg).memory(cfg).peak_mb}
