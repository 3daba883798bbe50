"""Adapter search: elastic LoRA ranks (and widths) on a pretrained model, built on peft (LoNAS / Shears / SQFT).

``LoraSupernet(base)`` injects peft LoRA adapters of the largest rank into the linear modules of a
super-network (an elastic transformer, :class:`~elasticnas.supernets.hf.HFSupernet`, or any other
by module names, whose ``nn.Conv2d`` modules it adapts too) and makes their rank elastic per module
group: a :class:`~elasticnas.supernets.Supernet` whose space is the base's architecture space times
the rank space (LoNAS), or the rank space alone over a fixed base (Shears). It trains with the
usual trainers (only the adapters, unless ``train_base``), searches on the ``adapter_params`` metric with
``latency_merged_ms`` / ``peak_memory_merged_mb`` for the merged model, and exports as a PEFT
adapter folder (``export_subnet(..., "peft", path)``) or a merged model (``onnx``, ``hf``).
"""

from __future__ import annotations

from elasticnas.adapters._layer import ADAPTER, ElasticLora, ElasticLoraConv2d, ElasticLoraLinear, merge_lora
from elasticnas.adapters._supernet import (
    BASE_DIR,
    DEFAULT_GROUPS,
    PUBLISHED_RANKS,
    LoraSupernet,
    RankSpace,
    Site,
    SubSite,
    build_lora_subnet,
    default_ranks,
    load_peft_subnet,
    lora_config,
)

__all__ = [
    "ADAPTER",
    "BASE_DIR",
    "DEFAULT_GROUPS",
    "PUBLISHED_RANKS",
    "ElasticLora",
    "ElasticLoraConv2d",
    "ElasticLoraLinear",
    "LoraSupernet",
    "RankSpace",
    "Site",
    "SubSite",
    "build_lora_subnet",
    "default_ranks",
    "load_peft_subnet",
    "lora_config",
    "merge_lora",
]
