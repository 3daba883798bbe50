"""The precision-aware cheap metrics ``model_size_bytes`` and ``bops``, registered on import.

For a :class:`~elasticnas.quantization.QuantizedSupernet` they read its ``costs`` (each layer at
its precision); for any other super-network they are those of the FP32 network (4 bytes per
parameter, 32 x 32 bit operations per MAC).
"""

from __future__ import annotations

from elasticnas.measure.metrics import Compute, Config, Measurer, Metric


def _precision_metric(key: str, fp32: tuple[str, int]) -> Compute:
    def compute(m: Measurer, cfg: Config) -> dict[str, float]:
        costs = m.costs(cfg)
        if key in costs:
            return {key: float(costs[key])}
        base, factor = fp32
        return {key: float(costs[base]) * factor}

    return compute


# registered lazily by elasticnas.measure.metrics under these names, so that every process lists the same metrics
MODEL_SIZE = Metric(
    "model_size_bytes", "minimize", True, _precision_metric("model_size_bytes", ("params", 4)), "B",
    "parameters at their layer's weight precision (FP32: 4 bytes, INT8: 1, INT4: 1/2; analytic)",
)  # fmt: skip
BOPS = Metric(
    "bops", "minimize", True, _precision_metric("bops", ("macs", 32 * 32)), "bit-ops",
    "bit operations: MACs x weight bits x activation bits of each layer (analytic)",
)  # fmt: skip
