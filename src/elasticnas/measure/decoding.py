"""Autoregressive decoding of causal language models with a KV cache (PyTorch eager).

A transformers decoder (an extracted sub-network's ``hf_model``) first runs the prefill: the
``context_len`` tokens of the context in one call, which fills the key-value cache. A decode
step then feeds one token and attends over the cache. :func:`measure_decode_latency` times
decode steps, each at exactly ``context_len`` cached tokens (the step's entry is cropped off
the cache again after each call, part of the timed call, a few tensor views per layer).
The prefill keeps only the last position's logits, as ``generate`` does;
:func:`~elasticnas.measure.memory.measure_decode_memory` counts a prefill and one step.

Exporting the cache to ONNX (a graph of per-layer key and value inputs and outputs) is not
done here: decode latency is measured on PyTorch only.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from elasticnas.measure.latency import (
    LatencyResult,
    MeasurementError,
    TimingPolicy,
    allocator_state,
    check_device,
    default_threads,
    pinned_threads,
    resolve_clock,
    time_callable,
)


def kv_decoder(model: nn.Module) -> nn.Module:
    """The transformers decoder of ``model``: its ``hf_model`` (an extracted token sub-network), or ``model``
    itself when it is a transformers model that generates (``can_generate()``); else one clear error."""
    hf = getattr(model, "hf_model", model)
    can_generate = getattr(hf, "can_generate", None)
    if not isinstance(hf, nn.Module) or not callable(can_generate) or not can_generate():
        raise MeasurementError(
            f"decoding needs a transformers causal language model (an extracted sub-network's hf_model), "
            f"not {type(hf).__name__}"
        )
    return hf


def check_context(decoder: nn.Module, context_len: int) -> None:
    """One clear error unless a decode step after ``context_len`` tokens fits the model's positions."""
    positions = getattr(getattr(decoder, "config", None), "max_position_embeddings", None)
    if context_len < 1:
        raise MeasurementError(f"context_len must be >= 1, got {context_len}")
    if isinstance(positions, int) and context_len + 1 > positions:
        raise MeasurementError(
            f"a decode step after {context_len} context tokens needs {context_len + 1} positions; "
            f"the model has {positions}: choose context_len <= {positions - 1}"
        )


def _cache_keyword(decoder: nn.Module) -> str:
    """The name of the cache argument and output: ``cache`` (transformers >= 5.2x) or ``past_key_values``."""
    return "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"


def _last_logits_only(decoder: nn.Module) -> dict[str, int]:
    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(decoder.forward).parameters else {}


def prefill(decoder: nn.Module, input_ids: torch.Tensor) -> tuple[Any, Callable[[], None]]:
    """Run the prefill of ``decoder`` (eval mode, on ``input_ids``' device) on ``input_ids`` ``(N, T)``; return
    its cache and a call running one decode step on it (the cache grows by one token per call)."""
    check_context(decoder, int(input_ids.shape[1]))
    key = _cache_keyword(decoder)
    keep = _last_logits_only(decoder)
    decoder.eval()
    with torch.inference_mode():
        cache = decoder(input_ids=input_ids, use_cache=True, **keep)[key]
        token = input_ids[:, -1:].clone()
        mask = torch.ones((input_ids.shape[0], input_ids.shape[1] + 1), dtype=torch.long, device=input_ids.device)

    def step() -> None:
        with torch.inference_mode():
            decoder(input_ids=token, attention_mask=mask, use_cache=True, **{key: cache})

    return cache, step


def cache_bytes(cache: Any) -> int:
    """Bytes of the key and value tensors of a transformers cache (its ``layers``)."""
    total = 0
    for layer in getattr(cache, "layers", ()):
        for t in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
    return total


def measure_decode_latency(
    model: nn.Module,
    input_ids: torch.Tensor,
    *,
    device: str = "cpu",
    threads: int | None = None,
    policy: TimingPolicy = TimingPolicy(),
) -> LatencyResult:
    """Latency of one decode step of ``model`` (see :func:`kv_decoder`) after a prefill of ``input_ids``
    ``(N, context_len)``: robust statistics over single-token steps at ``context_len`` cached tokens,
    timed as :func:`~elasticnas.measure.latency.measure_latency` times a forward pass (threads, clock,
    allocator, ``policy``), on PyTorch eager."""
    device = check_device(device)
    decoder = kv_decoder(model)
    if device != "cpu":
        decoder = copy.deepcopy(decoder).to(device)
    n_threads = default_threads() if threads is None else int(threads)
    if n_threads < 1:
        raise MeasurementError(f"threads must be >= 1, got {n_threads}")
    clock = resolve_clock(policy.clock, device, n_threads)
    allocator = allocator_state(policy.steady_allocator)
    with pinned_threads(n_threads):
        cache, step = prefill(decoder, input_ids.to(device))

        def run() -> None:
            step()
            cache.crop(-1)  # negative: drop the step's entry (every transformers version reads it so)
            if device != "cpu":
                torch.cuda.synchronize(device)

        stats, timed_s, warm = time_callable(run, policy, clock=clock)
    return LatencyResult(
        **asdict(stats),
        runtime="torch",
        device=device,
        batch_size=int(input_ids.shape[0]),
        threads=n_threads,
        clock=clock,
        warmup_runs=warm,
        timed_s=timed_s,
        allocator=allocator,
    )
