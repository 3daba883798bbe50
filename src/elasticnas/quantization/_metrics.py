"""How the precision-aware cheap metrics ``model_size_bytes`` and ``bops`` are computed (declared in
:mod:`elasticnas.measure.metrics`, which calls these on first use).

For a :class:`~elasticnas.quantization.QuantizedSupernet` they read its ``costs`` (each layer at
its precision); for any other super-network they are those of the FP32 network (4 bytes per
parameter, 32 x 32 bit operations per MAC).
"""

from __future__ import annotations

from elasticnas.measure.metrics import Compute, Config, Measurer


def _precision_metric(key: str, fp32: tuple[str, int]) -> Compute:
    def compute(m: Measurer, cfg: Config) -> dict[str, float]:
        costs = m.costs(cfg)
        if key in costs:
            return {key: float(costs[key])}
        base, factor = fp32
        return {key: float(costs[base]) * factor}

    return compute


model_size_bytes = _precision_metric("model_size_bytes", ("params", 4))
bops = _precision_metric("bops", ("macs", 32 * 32))
