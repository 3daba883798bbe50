"""``tiny_gpt``: a small elastic byte-level language model of Python source, shipped trained.

A Llama-shaped decoder (``transformers.LlamaForCausalLM``: RMSNorm, rotary position
embeddings, grouped-query attention with 4 query and 2 key-value heads, a gated MLP) of 4
blocks, hidden size 128 and FFN width 384 over the 256 byte values, about 0.85 M parameters.
It was pretrained on the built-in corpus ``pystdlib:train``, made elastic with
:func:`~elasticnas.supernets.hf.elasticize` (heads, FFN neurons, hidden channels and blocks
sorted by importance) and fine-tuned once with the sandwich rule (InstaTune), by the command
recorded in ``benchmarks/builtin_tiny_gpt.py``. Its folder ``elasticnas/data/tiny_gpt/`` is a
normal Hugging Face folder.
"""

from __future__ import annotations

from typing import Any

from elasticnas.supernets.hf import HFSupernet, load_hf_supernet

TINY_GPT_FOLDER = "tiny_gpt"  # under elasticnas/data/


def tiny_gpt(*, seed: int | None = 0, **options: Any) -> HFSupernet:
    """The ``tiny_gpt`` architecture and its importance ranking with random weights drawn with ``seed``
    (``create_supernet("tiny_gpt")`` then loads the trained ones); ``options`` as for :class:`HFSupernet`."""
    import torch

    from elasticnas.data._builtin import _DATA_DIR

    if seed is not None:
        torch.manual_seed(seed)
    return load_hf_supernet(_DATA_DIR / TINY_GPT_FOLDER, task="causal-lm", pretrained=False, **options)
