"""Quantization policy search (SimQ-NAS): architecture and per-layer precision searched together.

``quantize_supernet(supernet, calibration=...)`` wraps any super-network with a quantization
layout (``tiny_mbv3``, the OFA-MobileNetV3 widths, OFA-ResNet50, the elastic transformers) in a
:class:`QuantizedSupernet` over ``architecture * precision``; its sub-networks are ONNX Runtime
models, statically quantized (QDQ) in their INT8 layers, so the accuracy and latency metrics
measure the quantized model; the cheap metrics ``model_size_bytes`` and ``bops`` are in the metric
registry. The heavier names are imported on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from elasticnas.quantization._space import PRECISIONS, WEIGHT_SCHEMES, PrecisionSpace, QuantLayer
from elasticnas.registry import lazy_exports

if TYPE_CHECKING:
    from elasticnas.quantization._layouts import LayerPlan, Layout, layout_of, register_layout
    from elasticnas.quantization._quantize import (
        CacheInfo,
        OnnxSubnet,
        QuantizationError,
        QuantizationSettings,
    )
    from elasticnas.quantization._supernet import (
        QuantizedImageSupernet,
        QuantizedSupernet,
        precision_costs,
        quantize_supernet,
    )

_LAZY = {
    "LayerPlan": "elasticnas.quantization._layouts",
    "Layout": "elasticnas.quantization._layouts",
    "layout_of": "elasticnas.quantization._layouts",
    "register_layout": "elasticnas.quantization._layouts",
    "CacheInfo": "elasticnas.quantization._quantize",
    "OnnxSubnet": "elasticnas.quantization._quantize",
    "QuantizationError": "elasticnas.quantization._quantize",
    "QuantizationSettings": "elasticnas.quantization._quantize",
    "QuantizedImageSupernet": "elasticnas.quantization._supernet",
    "QuantizedSupernet": "elasticnas.quantization._supernet",
    "precision_costs": "elasticnas.quantization._supernet",
    "quantize_supernet": "elasticnas.quantization._supernet",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "PRECISIONS",
    "WEIGHT_SCHEMES",
    "CacheInfo",
    "LayerPlan",
    "Layout",
    "OnnxSubnet",
    "PrecisionSpace",
    "QuantLayer",
    "QuantizationError",
    "QuantizationSettings",
    "QuantizedImageSupernet",
    "QuantizedSupernet",
    "layout_of",
    "precision_costs",
    "quantize_supernet",
    "register_layout",
]
