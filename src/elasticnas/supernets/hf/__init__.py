"""Elastic transformer super-networks over Hugging Face ``transformers`` models.

``elasticize(model, calibration_data)`` turns a pretrained GPT-2, Llama (also Mistral / Qwen2),
BERT (sequence classification) or ViT (image classification) model into an :class:`HFSupernet`
with elastic depth, heads, FFN width (per block or shared) and hidden size, its weights sorted
by importance; ``create_supernet("hf:/path/to/folder")`` loads one from a folder
(:func:`load_hf_supernet`). Sub-networks extract to :class:`HFSubnet` modules holding a real
transformers model (``hf_model``), rebuilt from :meth:`HFSupernet.arch` by :func:`build_hf_subnet`.
"""

from __future__ import annotations

from elasticnas.supernets.hf._families import FAMILIES, Family, Task
from elasticnas.supernets.hf._importance import Importance, elasticize, score_importance, sort_by_importance
from elasticnas.supernets.hf._space import TransformerSpace
from elasticnas.supernets.hf._supernet import (
    HFSubnet,
    HFSupernet,
    Plan,
    build_hf_subnet,
    is_uniform_arch,
    load_hf_subnet,
    load_hf_supernet,
)

__all__ = [
    "FAMILIES",
    "Family",
    "HFSubnet",
    "HFSupernet",
    "Importance",
    "Plan",
    "Task",
    "TransformerSpace",
    "build_hf_subnet",
    "elasticize",
    "is_uniform_arch",
    "load_hf_subnet",
    "load_hf_supernet",
    "score_importance",
    "sort_by_importance",
]
