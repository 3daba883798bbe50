"""Latency of a standalone module on PyTorch eager or ONNX Runtime, with robust statistics.

Protocol (see :class:`TimingPolicy`): pin the thread count, build the runtime
session once, warm up for a number of runs *and* a minimum time, then time
single synchronised calls until the median has settled (its estimated standard
error is below ``rel_tol`` of the median) or the time budget is spent. We
report the median, p90, inter-quartile range and run count, never a mean of a
few runs.

On a shared machine, elapsed time includes the time other processes hold the
CPU. With one thread on the CPU every bit of a call's work runs in the calling
thread, so by default we time that thread's CPU time instead (``clock="auto"``),
which is what the call takes on an idle machine; elsewhere we time wall-clock.

glibc's malloc hands large freed buffers (activations) back to the operating
system after every call by default, so each eager PyTorch call page-faults its
buffers in again, by an amount that drifts with the heap's history: the same
OFA-MobileNetV3 sub-network measured 18-22 ms in one process (CV 6.6 %). Before
timing we therefore make the allocator keep its memory (``mallopt``, as
jemalloc and tcmalloc, PyTorch's recommended CPU allocators, do by default),
once per process; the result records ``allocator`` (``TimingPolicy.steady_allocator``).
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import ctypes.util
import dataclasses
import functools
import gc
import math
import os
import tempfile
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from elasticnas.errors import ElasticNASError
from elasticnas.registry import Registry

if TYPE_CHECKING:  # PyTorch is imported where it is used, so that the registry and policies load without it
    import torch
    from torch import nn

RunOnce = Callable[[], None]
Clock = Literal["auto", "wall", "thread"]
Inputs = tuple["torch.Tensor", ...]
"""The batched inputs of one forward pass, ``model(*inputs)`` (a super-network's ``example_inputs``)."""
InputSpec = Sequence[int] | Inputs
"""The shape of one input without the batch axis (a seeded random batch is drawn), or the inputs themselves."""


class MeasurementError(ElasticNASError):
    """A measurement cannot be made as asked (unknown device, runtime not available, ...)."""


@dataclass(frozen=True)
class TimingPolicy:
    """When to stop warming up and when to stop timing.

    Warm-up lasts at least ``warmup_runs`` calls and ``warmup_s`` seconds, then
    goes on in windows of ``check_every`` calls while a window's median is more
    than ``steady_tol`` below the previous one's (the process is still getting
    faster: caches, allocator, lazily built kernels), for at most ``max_warmup_s``.
    Timing runs at least ``min_runs`` calls and ``min_time_s`` seconds (so that
    the median spans slow drifts of the machine), then stops as soon as the
    estimated standard error of the median is at most ``rel_tol`` of the median
    (checked every ``check_every`` calls), or after ``max_runs`` calls or
    ``budget_s`` seconds of timed calls, whichever comes first.

    ``clock``: ``"wall"`` times elapsed time; ``"thread"`` the CPU time of the
    calling thread, which leaves out the time other processes hold the CPU and
    is the call's latency whenever all its work runs in the calling thread (CPU,
    one thread); ``"auto"`` picks ``"thread"`` then and ``"wall"`` otherwise.

    ``steady_allocator``: stop glibc's malloc from returning freed memory to the
    system (see the module docstring); a no-op where glibc is not the allocator.
    """

    warmup_runs: int = 10
    warmup_s: float = 0.2
    steady_tol: float = 0.02
    max_warmup_s: float = 3.0
    clock: Clock = "auto"
    min_runs: int = 30
    min_time_s: float = 0.5
    max_runs: int = 100_000
    budget_s: float = 5.0
    rel_tol: float = 0.005
    check_every: int = 10
    steady_allocator: bool = True

    def __post_init__(self) -> None:
        if self.min_runs < 3 or self.max_runs < self.min_runs:
            raise MeasurementError("timing policy: need 3 <= min_runs <= max_runs")
        if self.clock not in ("auto", "wall", "thread"):
            raise MeasurementError(f"timing policy: clock must be 'auto', 'wall' or 'thread', got {self.clock!r}")
        if self.min_time_s > self.budget_s:
            raise MeasurementError("timing policy: min_time_s must not exceed budget_s")
        if self.budget_s <= 0 or self.rel_tol <= 0 or self.check_every < 1 or self.warmup_runs < 0:
            raise MeasurementError("timing policy: budget_s and rel_tol must be > 0, check_every >= 1")
        if not 0 <= self.steady_tol < 1 or self.max_warmup_s < 0:
            raise MeasurementError("timing policy: need 0 <= steady_tol < 1 and max_warmup_s >= 0")

    def with_budget(self, budget_s: float) -> TimingPolicy:
        """This policy with ``budget_s`` seconds of timed runs, its minimum times shortened to fit."""
        return dataclasses.replace(
            self,
            budget_s=budget_s,
            min_time_s=min(self.min_time_s, budget_s),
            warmup_s=min(self.warmup_s, budget_s),
            max_warmup_s=min(self.max_warmup_s, budget_s),
        )


FAST_POLICY = TimingPolicy(
    warmup_runs=3, warmup_s=0.02, max_warmup_s=0.1, min_runs=10, min_time_s=0.0, budget_s=0.5, rel_tol=0.01
)


@dataclass(frozen=True)
class LatencyStats:
    """Robust statistics of per-call latencies, in milliseconds."""

    median_ms: float
    p90_ms: float
    iqr_ms: float
    mean_ms: float
    min_ms: float
    runs: int
    settled: bool

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float] | np.ndarray, settled: bool) -> LatencyStats:
        a = np.asarray(samples_ms, dtype=float)
        if a.size == 0:
            raise MeasurementError("no timed runs")
        q25, q50, q75, q90 = np.percentile(a, [25, 50, 75, 90])
        return cls(float(q50), float(q90), float(q75 - q25), float(a.mean()), float(a.min()), int(a.size), settled)


@dataclass(frozen=True)
class LatencyResult:
    """One latency measurement and the conditions it was taken under."""

    median_ms: float
    p90_ms: float
    iqr_ms: float
    mean_ms: float
    min_ms: float
    runs: int
    settled: bool
    runtime: str
    device: str
    batch_size: int
    threads: int
    clock: str
    warmup_runs: int
    timed_s: float
    allocator: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def columns(self, name: str = "latency_ms") -> dict[str, float]:
        """``{name: median, name_p90: ..., name_iqr: ..., name_runs: ...}`` for tables."""
        return {
            name: self.median_ms,
            f"{name}_p90": self.p90_ms,
            f"{name}_iqr": self.iqr_ms,
            f"{name}_runs": float(self.runs),
        }


def median_rel_stderr(samples: np.ndarray) -> float:
    """Estimated standard error of the median relative to the median.

    Uses SE(median) ~ 1.2533 * sigma / sqrt(n) with a robust sigma = IQR / 1.349.
    """
    if samples.size < 3:
        return math.inf
    q25, q50, q75 = np.percentile(samples, [25, 50, 75])
    if q50 <= 0:
        return math.inf
    sigma = (q75 - q25) / 1.349
    return float(1.2533 * sigma / math.sqrt(samples.size) / q50)


def _warm_up(run: RunOnce, policy: TimingPolicy, sample_clock: Callable[[], int]) -> int:
    """Call ``run`` until warm (see :class:`TimingPolicy`); returns the number of calls."""
    clock_ns = time.perf_counter_ns
    start = clock_ns()
    warm = 0
    while warm < policy.warmup_runs or (clock_ns() - start) < policy.warmup_s * 1e9:
        run()
        warm += 1
    window = np.empty(policy.check_every)
    previous = math.inf
    while (clock_ns() - start) < policy.max_warmup_s * 1e9:
        for i in range(policy.check_every):
            c0 = sample_clock()
            run()
            window[i] = sample_clock() - c0
        warm += policy.check_every
        current = float(np.median(window))
        if current >= (1.0 - policy.steady_tol) * previous:
            break
        previous = current
    return warm


def time_callable(
    run: RunOnce, policy: TimingPolicy = TimingPolicy(), *, clock: Clock | None = None
) -> tuple[LatencyStats, float, int]:
    """Warm up and time ``run`` (which must return only when its work is done).

    ``clock`` overrides ``policy.clock`` (``"auto"`` means ``"wall"`` here).
    Returns the statistics, the seconds spent timing (wall) and the number of warm-up calls.
    """
    samples, settled, timed_s, warm = _time_samples(run, policy, clock or policy.clock)
    return LatencyStats.from_samples(samples, settled), timed_s, warm


def _time_samples(run: RunOnce, policy: TimingPolicy, clock: Clock) -> tuple[np.ndarray, bool, float, int]:
    """Warm-up then timed calls of ``run``: (samples in ms, settled, seconds timing, warm-up calls)."""
    sample_clock = time.thread_time_ns if clock == "thread" else time.perf_counter_ns
    clock_ns = time.perf_counter_ns
    warm = _warm_up(run, policy, sample_clock)
    samples = np.empty(policy.max_runs, dtype=float)
    n = 0
    settled = False
    gc_was_enabled = gc.isenabled()
    gc.disable()  # no collector pauses inside timed calls (a full collect here costs ~0.5 s with torch loaded)
    try:
        t_start = clock_ns()
        deadline = t_start + int(policy.budget_s * 1e9)
        earliest = t_start + int(policy.min_time_s * 1e9)
        while n < policy.max_runs:
            c0 = sample_clock()
            run()
            c1 = sample_clock()
            t1 = clock_ns()
            samples[n] = (c1 - c0) / 1e6
            n += 1
            if n >= policy.min_runs and n % policy.check_every == 0 and t1 >= earliest:
                if median_rel_stderr(samples[:n]) <= policy.rel_tol:
                    settled = True
                    break
            if t1 >= deadline and n >= 3:
                break
        timed_s = (clock_ns() - t_start) / 1e9
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples[:n], settled, timed_s, warm


def _round_policy(policy: TimingPolicy, rounds: int, first: bool) -> TimingPolicy:
    """The share of ``policy`` one model gets in one of ``rounds`` interleaved rounds.

    The first round warms up as ``policy`` says; later ones only re-fill the
    caches the other models evicted (a ``1/rounds`` share of the warm-up calls).
    Each round may stop early once its own median is within ``rel_tol * sqrt(rounds)``,
    so that all rounds together reach about ``rel_tol``.
    """
    return dataclasses.replace(
        policy,
        warmup_runs=policy.warmup_runs if first else max(1, policy.warmup_runs // rounds),
        warmup_s=policy.warmup_s if first else policy.warmup_s / rounds,
        max_warmup_s=policy.max_warmup_s if first else 0.0,
        min_runs=max(3, math.ceil(policy.min_runs / rounds)),
        min_time_s=policy.min_time_s / rounds,
        max_runs=max(3, math.ceil(policy.max_runs / rounds)),
        budget_s=policy.budget_s / rounds,
        rel_tol=policy.rel_tol * math.sqrt(rounds),
    )


# mallopt parameters (glibc malloc.h) and the values we set: never trim the heap, keep buffers
# below the largest allowed mmap threshold (32 MiB on 64-bit) in the heap instead of mmap-ing each.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_TRIM_THRESHOLD, _MMAP_THRESHOLD = 1 << 30, 32 << 20


@functools.cache
def _glibc_keep_memory() -> bool:
    """Set glibc's trim and mmap thresholds with ``mallopt``; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None or "libc.so" not in name:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1 and mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) == 1)


def allocator_state(make_steady: bool) -> str:
    """``"glibc-steady"`` once glibc's malloc keeps its memory (set here when ``make_steady``), else ``"default"``."""
    if make_steady:
        _glibc_keep_memory()
    steady = _glibc_keep_memory.cache_info().currsize > 0 and _glibc_keep_memory()
    return "glibc-steady" if steady else "default"


@contextlib.contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """Run PyTorch's intra-op pool with exactly ``threads`` threads, then restore it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_device(device: str) -> str:
    """``cpu`` or ``cuda`` (``cuda:N`` too); a clear error when CUDA is asked for but absent."""
    if device == "cpu":
        return device
    import torch

    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise MeasurementError(f"device {device!r} asked for, but PyTorch sees no CUDA device here")
        return device
    raise MeasurementError(f"unknown device {device!r}; use 'cpu' or 'cuda'")


DEFAULT_RUNTIME = "onnxruntime"  # what an exported ONNX file runs on; every command and function defaults to it


def default_threads() -> int:
    """The thread count used when none is given: 1 (the most reproducible)."""
    return 1


# -- runtimes ------------------------------------------------------------------------------------


class Runtime(ABC):
    """Turns a module and its example inputs into a synchronised ``run()`` callable.

    Subclasses implement :meth:`_prepare`; :meth:`prepare` checks the device
    first. ``run()`` calls ``model(*inputs)`` and must return only once the device
    has finished the call.
    """

    name: str = ""

    def prepare(self, model: nn.Module, example: torch.Tensor | Inputs, device: str, threads: int) -> RunOnce:
        """The timed call of ``model`` on ``example`` (one input tensor, or a tuple of them)."""
        device = check_device(device)
        if threads < 1:
            raise MeasurementError(f"threads must be >= 1, got {threads}")
        return self._prepare(model, example if isinstance(example, tuple) else (example,), device, threads)

    @abstractmethod
    def _prepare(self, model: nn.Module, inputs: Inputs, device: str, threads: int) -> RunOnce:
        """Build the session; return the timed call."""


class TorchRuntime(Runtime):
    """PyTorch eager mode under ``torch.inference_mode``."""

    name = "torch"

    def _prepare(self, model: nn.Module, inputs: Inputs, device: str, threads: int) -> RunOnce:
        import torch

        if device != "cpu":
            model = copy.deepcopy(model).to(device)
        model.eval()
        xs = tuple(x.to(device) for x in inputs)
        cuda = device != "cpu"

        def run() -> None:
            with torch.inference_mode():
                model(*xs)
            if cuda:
                torch.cuda.synchronize(device)

        return run


def require_onnxscript(legacy_error: Exception, error: type[ElasticNASError]) -> None:
    """Raise ``error`` in one line when the TorchScript ONNX exporter failed and its fallback lacks onnxscript."""
    try:
        import onnxscript  # noqa: F401  (the torch.export-based exporter translates with it)
    except ImportError:
        reason = ": ".join([type(legacy_error).__name__, *str(legacy_error).strip().splitlines()[:1]])
        raise error(
            f"the TorchScript ONNX exporter failed ({reason}) and the fallback "
            "torch.export-based exporter needs onnxscript: pip install 'elasticnas[onnxscript]'"
        ) from None


def onnx_input_names(n: int) -> list[str]:
    """Names of the ONNX inputs of a model taking ``n`` inputs: ``input``, or ``input_0``, ``input_1``, ..."""
    return ["input"] if n == 1 else [f"input_{i}" for i in range(n)]


def export_onnx(model: nn.Module, example: torch.Tensor | Inputs, path: str | os.PathLike[str]) -> None:
    """Export ``model`` (eval mode, on CPU) to an ONNX file with one input per tensor of ``example``
    (named by :func:`onnx_input_names`).

    Uses the TorchScript-based exporter, which takes a fraction of a second
    per network, and falls back to the ``torch.export``-based one (onnxscript).
    A module that holds an ONNX model already (a quantized sub-network: a ``save_onnx(path)``
    method) writes that model instead.
    """
    import torch

    save_onnx = getattr(model, "save_onnx", None)
    if callable(save_onnx):
        save_onnx(path)
        return
    model = model.eval()
    args = tuple(x.cpu() for x in (example if isinstance(example, tuple) else (example,)))
    names = onnx_input_names(len(args))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, args, str(path), dynamo=False, input_names=names, output_names=["output"])
        return
    except Exception as legacy_error:  # the legacy exporter may be gone or refuse an op
        first_error = legacy_error
    require_onnxscript(first_error, MeasurementError)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(open(os.devnull, "w")):
            warnings.simplefilter("ignore")
            torch.onnx.export(model, args, str(path), dynamo=True, input_names=names, output_names=["output"])
    except Exception as exc:
        raise MeasurementError(f"cannot export the module to ONNX: {exc or first_error}") from exc


class OnnxRuntime(Runtime):
    """ONNX Runtime: CPU execution provider, or CUDA's (with I/O binding) on ``cuda``."""

    name = "onnxruntime"

    def _prepare(self, model: nn.Module, inputs: Inputs, device: str, threads: int) -> RunOnce:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if device == "cpu":
            providers: list[Any] = ["CPUExecutionProvider"]
        else:
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise MeasurementError(
                    "device 'cuda' with runtime 'onnxruntime' needs the CUDA execution provider "
                    "(pip install onnxruntime-gpu)"
                )
            index = int(device.split(":")[1]) if ":" in device else 0
            providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        with tempfile.TemporaryDirectory(prefix="elasticnas-onnx-") as tmp:
            path = os.path.join(tmp, "model.onnx")
            export_onnx(model, inputs, path)
            session = ort.InferenceSession(path, sess_options=opts, providers=providers)
        if device != "cpu" and session.get_providers()[0] != "CUDAExecutionProvider":
            raise MeasurementError(  # ORT falls back to the CPU quietly when the CUDA libraries do not load
                f"ONNX Runtime could not start its CUDA provider (session runs on {session.get_providers()[0]}); "
                "check that the CUDA and cuDNN libraries match your onnxruntime-gpu"
            )
        feed = onnx_feed(session, inputs)
        if device == "cpu":

            def run() -> None:
                session.run(None, feed)

            return run
        index = int(device.split(":")[1]) if ":" in device else 0
        binding = session.io_binding()
        for input_name, x in feed.items():
            binding.bind_ortvalue_input(input_name, ort.OrtValue.ortvalue_from_numpy(x, "cuda", index))
        for out in session.get_outputs():
            binding.bind_output(out.name, "cuda", index)

        def run_cuda() -> None:
            binding.synchronize_inputs()
            session.run_with_iobinding(binding)
            binding.synchronize_outputs()

        return run_cuda


def onnx_feed(session: Any, inputs: Inputs) -> dict[str, np.ndarray]:
    """The ONNX Runtime feed of ``inputs`` for a session exported by :func:`export_onnx` (or with the
    same input names); inputs the exporter dropped as unused are left out."""
    names = onnx_input_names(len(inputs))
    wanted = {i.name for i in session.get_inputs()}
    return {n: x.detach().cpu().numpy() for n, x in zip(names, inputs, strict=True) if n in wanted}


RUNTIMES: Registry[Callable[[], Runtime]] = Registry("runtime")


def register_runtime(name: str, factory: Callable[[], Runtime], *, aliases: tuple[str, ...] = ()) -> None:
    """Register a :class:`Runtime` class (or zero-argument factory) under ``name``."""
    RUNTIMES.register(name, factory, aliases=aliases)


def list_runtimes(pattern: str | None = None) -> list[str]:
    """Names of the registered runtimes."""
    return RUNTIMES.names(pattern)


def create_runtime(name: str) -> Runtime:
    """A new instance of the runtime registered as ``name``."""
    return RUNTIMES.get(name)()


register_runtime("torch", TorchRuntime, aliases=("pytorch",))
register_runtime("onnxruntime", OnnxRuntime, aliases=("ort",))


def example_input(input_shape: Sequence[int], batch_size: int = 1, seed: int = 0) -> torch.Tensor:
    """A seeded random input batch of shape ``(batch_size, *input_shape)``."""
    import torch

    if batch_size < 1:
        raise MeasurementError(f"batch size must be >= 1, got {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((batch_size, *input_shape), generator=gen)


def model_inputs(spec: InputSpec, batch_size: int = 1, seed: int = 0) -> Inputs:
    """The inputs of one forward pass: ``spec`` itself when it is a tuple of tensors (whose batch must be
    ``batch_size``), else a seeded random batch of the input shape ``spec`` (:func:`example_input`)."""
    import torch

    if batch_size < 1:
        raise MeasurementError(f"batch size must be >= 1, got {batch_size}")
    if not (isinstance(spec, tuple) and spec and all(isinstance(x, torch.Tensor) for x in spec)):
        return (example_input(spec, batch_size, seed),)  # type: ignore[arg-type]  # not tensors: a shape
    batches = {int(x.shape[0]) if x.dim() else -1 for x in spec}
    if batches != {batch_size}:
        raise MeasurementError(f"example inputs of batch sizes {sorted(batches)} given for batch size {batch_size}")
    return spec


def resolve_clock(clock: Clock, device: str, threads: int) -> Clock:
    """The clock ``"auto"`` stands for: thread CPU time on CPU with one thread, else wall time."""
    if clock == "auto":
        return "thread" if device == "cpu" and threads == 1 else "wall"
    if clock == "thread" and (device != "cpu" or threads != 1):
        raise MeasurementError(
            "clock 'thread' is only valid on device 'cpu' with one thread (work elsewhere is unseen)"
        )
    return clock


def measure_latency(
    model: nn.Module,
    input_shape: InputSpec,
    *,
    runtime: str = DEFAULT_RUNTIME,
    device: str = "cpu",
    batch_size: int = 1,
    threads: int | None = None,
    policy: TimingPolicy = TimingPolicy(),
    seed: int = 0,
) -> LatencyResult:
    """Latency of one forward pass of ``model`` on an input of ``(batch_size, *input_shape)``.

    ``input_shape`` may also be the inputs themselves (a tuple of tensors of batch ``batch_size``,
    e.g. a super-network's ``example_inputs``), for models of several or non-image inputs.

    ``threads`` (default :func:`default_threads`) is pinned for PyTorch and
    ONNX Runtime alike and recorded in the result, as is the clock used (see
    :class:`TimingPolicy`).
    """
    return measure_latencies(
        [model], [input_shape], runtime=runtime, device=device, batch_size=batch_size, threads=threads,
        policy=policy, rounds=1, seed=seed,
    )[0]


def measure_latencies(
    models: Sequence[nn.Module],
    input_shapes: Sequence[InputSpec],
    *,
    runtime: str = DEFAULT_RUNTIME,
    device: str = "cpu",
    batch_size: int = 1,
    threads: int | None = None,
    policy: TimingPolicy = TimingPolicy(),
    rounds: int = 5,
    seed: int = 0,
) -> list[LatencyResult]:
    """Latencies of several models measured interleaved, for comparing them with each other.

    In each of ``rounds`` rounds every model (in a seeded random order) is
    timed for a ``1/rounds`` share of ``policy``; each result pools its model's
    calls from all rounds. A machine whose speed drifts during the measurement
    (a VM, thermal throttling, a neighbour's load) then shifts all models alike,
    so their ranking holds, where one model after another would carry the drift
    into the ranking. ``rounds=1`` measures one model after another, each with
    the whole ``policy`` (as :func:`measure_latency`). All models stay prepared
    in memory until the end. Each entry of ``input_shapes`` is an input shape or the
    inputs themselves (see :func:`model_inputs`).
    """
    if len(models) != len(input_shapes):
        raise MeasurementError(f"{len(models)} models but {len(input_shapes)} input shapes")
    if rounds < 1:
        raise MeasurementError(f"rounds must be >= 1, got {rounds}")
    n_threads = default_threads() if threads is None else int(threads)
    rt = create_runtime(runtime)
    clock = resolve_clock(policy.clock, device, n_threads)
    allocator = allocator_state(policy.steady_allocator)
    n = len(models)
    samples: list[list[np.ndarray]] = [[] for _ in range(n)]
    settled = [True] * n
    timed = [0.0] * n
    warm = [0] * n
    order_rng = np.random.default_rng(seed)
    with pinned_threads(max(1, n_threads)):
        runs = [
            rt.prepare(m, model_inputs(spec, batch_size, seed), device, n_threads)
            for m, spec in zip(models, input_shapes, strict=True)
        ]
        for k in range(rounds):
            share = _round_policy(policy, rounds, first=k == 0)
            for i in order_rng.permutation(n) if n > 1 else range(n):
                s, ok, t, w = _time_samples(runs[i], share, clock)
                samples[i].append(s)
                settled[i] &= ok
                timed[i] += t
                warm[i] += w
    return [
        LatencyResult(
            **asdict(LatencyStats.from_samples(np.concatenate(samples[i]), settled[i])),
            runtime=rt.name,
            device=device,
            batch_size=batch_size,
            threads=n_threads,
            clock=clock,
            warmup_runs=warm[i],
            timed_s=timed[i],
            allocator=allocator,
        )
        for i in range(n)
    ]
