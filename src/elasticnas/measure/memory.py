"""Peak memory of one inference forward pass at a batch size, or of a decoder's prefill and decode step.

* On CUDA we read the caching allocator: ``torch.cuda.max_memory_allocated``
  during the call, which includes the weights and the input.
* On CPU, process RSS and ``tracemalloc`` cannot see PyTorch's tensors
  reliably (allocator caching, C++ allocations), so we *count* tensor
  storages: a ``TorchDispatchMode`` sees every tensor each operator returns,
  adds its storage size when it is first seen and subtracts it when the last
  tensor on that storage dies. The peak of that count, plus the weights and
  the input, is the tensor memory of inference. Library-internal scratch
  buffers (oneDNN workspaces) are not tensors and are not counted.

A causal language model generates with a KV cache, which grows with the context:
:func:`measure_decode_memory` measures the prefill of the context and one decode step,
so the cache (``kv_cache_mb``) is counted among the activations.
"""

from __future__ import annotations

import copy
import dataclasses
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from elasticnas.measure.decoding import cache_bytes, check_context, kv_decoder, prefill
from elasticnas.measure.latency import Inputs, InputSpec, check_device, model_inputs

MB = float(2**20)


@dataclass(frozen=True)
class MemoryResult:
    """Peak memory of inference, in MiB: ``peak_mb = weights_mb + input_mb + activations_mb``; for a
    decoder ``kv_cache_mb``, the cache after the decode step, is part of the activations."""

    peak_mb: float
    weights_mb: float
    input_mb: float
    activations_mb: float
    batch_size: int
    device: str
    method: str
    kv_cache_mb: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _StorageCounter(TorchDispatchMode):
    """Counts the bytes of tensor storages created by operators while active."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # torch's TorchDispatchMode.__init__ is unannotated
        self._sizes: dict[int, int] = {}
        self._refs: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _release(self, ptr: int) -> None:
        self._refs[ptr] -= 1
        if self._refs[ptr] == 0:
            del self._refs[ptr]
            self.current -= self._sizes.pop(ptr)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            ptr = storage.data_ptr()
            if ptr == 0:
                continue
            if ptr not in self._sizes:
                self._sizes[ptr] = storage.nbytes()
                self._refs[ptr] = 0
                self.current += self._sizes[ptr]
                self.peak = max(self.peak, self.current)
            self._refs[ptr] += 1
            weakref.finalize(t, self._release, ptr)
        return out


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the distinct storages of the parameters and buffers of ``model``."""
    seen: dict[int, int] = {}
    for t in list(model.parameters()) + list(model.buffers()):
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def measure_peak_memory(
    model: nn.Module,
    input_shape: InputSpec,
    *,
    batch_size: int = 1,
    device: str = "cpu",
    seed: int = 0,
) -> MemoryResult:
    """Peak memory of ``model(x)`` in eval mode without autograd, ``x`` of shape ``(batch_size, *input_shape)``.

    ``input_shape`` may also be the inputs themselves (a tuple of tensors of batch ``batch_size``,
    e.g. a super-network's ``example_inputs``): then ``model(*inputs)`` is measured.
    """

    def forward(m: nn.Module, xs: Inputs) -> None:
        m(*xs)

    return _measure(model.eval(), model_inputs(input_shape, batch_size, seed), forward, batch_size, device)


def measure_decode_memory(model: nn.Module, input_ids: torch.Tensor, *, device: str = "cpu") -> MemoryResult:
    """Peak memory of a causal language model's prefill of ``input_ids`` ``(N, context_len)`` and one decode
    step (see :mod:`~elasticnas.measure.decoding`; ``model`` or its ``hf_model`` a transformers decoder),
    without autograd: weights, the context, activations and the KV cache of ``context_len + 1`` tokens."""
    decoder = kv_decoder(model).eval()
    check_context(decoder, int(input_ids.shape[1]))
    kv = 0

    def generate(m: nn.Module, xs: Inputs) -> None:
        nonlocal kv
        cache, step = prefill(m, xs[0])
        step()
        kv = cache_bytes(cache)

    result = _measure(decoder, (input_ids,), generate, int(input_ids.shape[0]), device)
    return dataclasses.replace(result, kv_cache_mb=kv / MB)


def _measure(
    model: nn.Module, xs: Inputs, call: Callable[[nn.Module, Inputs], None], batch_size: int, device: str
) -> MemoryResult:
    """Peak memory of ``call(model, xs)`` under ``torch.inference_mode`` (``model`` in eval mode)."""
    device = check_device(device)
    w_mb = weight_bytes(model) / MB
    in_mb = sum(x.numel() * x.element_size() for x in xs) / MB
    if device == "cpu":
        counter = _StorageCounter()
        with torch.inference_mode():
            with counter:
                call(model, xs)
        act_mb = counter.peak / MB
        method = "tensor-storage-count"
    else:
        model = copy.deepcopy(model).to(device)
        xs = tuple(x.to(device) for x in xs)
        with torch.inference_mode():
            call(model, xs)  # lazy initialisation (cuDNN handles, ...) outside the measured call
            torch.cuda.synchronize(device)
            base = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            call(model, xs)
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device)
        act_mb = max(0, peak - base) / MB
        method = "cuda-max-memory-allocated"
    return MemoryResult(
        peak_mb=w_mb + in_mb + act_mb,
        weights_mb=w_mb,
        input_mb=in_mb,
        activations_mb=act_mb,
        batch_size=batch_size,
        device=device,
        method=method,
    )
