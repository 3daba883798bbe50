"""Trustworthy measurement: accuracy with BatchNorm recalibration, latency, lookup tables, memory, metrics;
for causal language models also perplexity and KV-cache decoding (latency, memory).

The names below are imported on first use (PEP 562), so ``list_metrics()`` and
``list_runtimes()`` do not load PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from elasticnas.registry import lazy_exports

if TYPE_CHECKING:
    from elasticnas.measure.accuracy import (
        AccuracyResult,
        Calibration,
        evaluate_accuracy,
        measure_accuracy,
        recalibrate_batchnorm,
        split_batch,
    )
    from elasticnas.measure.decoding import measure_decode_latency
    from elasticnas.measure.latency import (
        DEFAULT_RUNTIME,
        FAST_POLICY,
        LatencyResult,
        LatencyStats,
        MeasurementError,
        Runtime,
        TimingPolicy,
        create_runtime,
        export_onnx,
        list_runtimes,
        measure_latencies,
        measure_latency,
        register_runtime,
        time_callable,
    )
    from elasticnas.measure.lut import (
        LookupTable,
        LUTEntry,
        LUTError,
        LUTErrorReport,
        build_lut,
        collect_layer_specs,
        lut_error,
    )
    from elasticnas.measure.memory import MemoryResult, measure_decode_memory, measure_peak_memory
    from elasticnas.measure.metrics import (
        Measurer,
        Metric,
        get_metric,
        list_metrics,
        objectives,
        parse_metrics,
        register_metric,
    )

_LAZY = {
    "AccuracyResult": "elasticnas.measure.accuracy",
    "Calibration": "elasticnas.measure.accuracy",
    "evaluate_accuracy": "elasticnas.measure.accuracy",
    "measure_accuracy": "elasticnas.measure.accuracy",
    "recalibrate_batchnorm": "elasticnas.measure.accuracy",
    "split_batch": "elasticnas.measure.accuracy",
    "measure_decode_latency": "elasticnas.measure.decoding",
    "FAST_POLICY": "elasticnas.measure.latency",
    "LatencyResult": "elasticnas.measure.latency",
    "LatencyStats": "elasticnas.measure.latency",
    "MeasurementError": "elasticnas.measure.latency",
    "Runtime": "elasticnas.measure.latency",
    "TimingPolicy": "elasticnas.measure.latency",
    "create_runtime": "elasticnas.measure.latency",
    "export_onnx": "elasticnas.measure.latency",
    "list_runtimes": "elasticnas.measure.latency",
    "DEFAULT_RUNTIME": "elasticnas.measure.latency",
    "measure_latencies": "elasticnas.measure.latency",
    "measure_latency": "elasticnas.measure.latency",
    "register_runtime": "elasticnas.measure.latency",
    "time_callable": "elasticnas.measure.latency",
    "LookupTable": "elasticnas.measure.lut",
    "LUTEntry": "elasticnas.measure.lut",
    "LUTError": "elasticnas.measure.lut",
    "LUTErrorReport": "elasticnas.measure.lut",
    "build_lut": "elasticnas.measure.lut",
    "collect_layer_specs": "elasticnas.measure.lut",
    "lut_error": "elasticnas.measure.lut",
    "MemoryResult": "elasticnas.measure.memory",
    "measure_peak_memory": "elasticnas.measure.memory",
    "measure_decode_memory": "elasticnas.measure.memory",
    "Measurer": "elasticnas.measure.metrics",
    "Metric": "elasticnas.measure.metrics",
    "get_metric": "elasticnas.measure.metrics",
    "list_metrics": "elasticnas.measure.metrics",
    "objectives": "elasticnas.measure.metrics",
    "parse_metrics": "elasticnas.measure.metrics",
    "register_metric": "elasticnas.measure.metrics",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "FAST_POLICY",
    "AccuracyResult",
    "Calibration",
    "LUTEntry",
    "LUTError",
    "LUTErrorReport",
    "LatencyResult",
    "LatencyStats",
    "LookupTable",
    "MeasurementError",
    "Measurer",
    "MemoryResult",
    "Metric",
    "Runtime",
    "TimingPolicy",
    "build_lut",
    "collect_layer_specs",
    "create_runtime",
    "evaluate_accuracy",
    "export_onnx",
    "get_metric",
    "list_metrics",
    "list_runtimes",
    "DEFAULT_RUNTIME",
    "lut_error",
    "measure_accuracy",
    "measure_decode_latency",
    "measure_decode_memory",
    "measure_latencies",
    "measure_latency",
    "measure_peak_memory",
    "objectives",
    "parse_metrics",
    "recalibrate_batchnorm",
    "register_metric",
    "register_runtime",
    "split_batch",
    "time_callable",
]
