"""Metrics of adapter super-networks: ``adapter_params`` (cheap), and latency / peak memory after merging."""

from __future__ import annotations

import copy

from torch import nn

from elasticnas.adapters._layer import merge_lora
from elasticnas.adapters._supernet import LoraSupernet
from elasticnas.errors import ElasticNASError
from elasticnas.measure.latency import measure_latencies
from elasticnas.measure.memory import measure_peak_memory
from elasticnas.measure.metrics import LATENCY_SPREAD, Config, Measurer, Metric, register_metric


def _needs_lora(m: Measurer) -> None:
    if not isinstance(m.supernet, LoraSupernet):
        raise ElasticNASError(
            "adapter metrics (adapter_params, latency_merged_ms, peak_memory_merged_mb) are measured on adapter "
            f"super-networks (elasticnas.adapters.LoraSupernet), not {type(m.supernet).__name__}"
        )


def _merged(m: Measurer, cfg: Config) -> nn.Module:
    """The measured sub-network with its adapters merged into the base weights (a copy)."""
    return merge_lora(copy.deepcopy(m.subnet(cfg))).eval()


def _adapter_params(m: Measurer, cfg: Config) -> dict[str, float]:
    _needs_lora(m)
    return {"adapter_params": float(m.costs(cfg)["adapter_params"])}


def _latency_merged(m: Measurer, cfg: Config) -> dict[str, float]:
    _needs_lora(m)
    (result,) = measure_latencies(
        [_merged(m, cfg)], [m.supernet.example_inputs(cfg, m.batch_size, seed=m.seed)], runtime=m.runtime,
        device=m.device, batch_size=m.batch_size, threads=m.threads, policy=m.policy, rounds=1, seed=m.seed,
    )  # fmt: skip
    return result.columns("latency_merged_ms")


def _memory_merged(m: Measurer, cfg: Config) -> dict[str, float]:
    _needs_lora(m)
    xs = m.supernet.example_inputs(cfg, m.batch_size, seed=m.seed)
    result = measure_peak_memory(_merged(m, cfg), xs, batch_size=m.batch_size, device=m.device, seed=m.seed)
    return {"peak_memory_merged_mb": result.peak_mb}


register_metric(
    Metric("adapter_params", "minimize", True, _adapter_params, "",
           "trainable LoRA parameters of the configuration (analytic)", check=_needs_lora)
)  # fmt: skip
register_metric(
    Metric(
        "latency_merged_ms",
        "minimize",
        False,
        _latency_merged,
        "ms",
        "median measured latency of the sub-network with its adapters merged into the base weights",
        extra_columns=LATENCY_SPREAD,
        check=_needs_lora,
    )
)
register_metric(
    Metric("peak_memory_merged_mb", "minimize", False, _memory_merged, "MiB",
           "peak inference memory of the sub-network with its adapters merged", check=_needs_lora)
)  # fmt: skip
