"""The metrics registry: what can be measured about a sub-network, its direction and its cost.

A :class:`Metric` computes one or more columns for a configuration given a
:class:`Measurer` (which holds the super-network, the data, the runtime
settings and caches the extracted sub-network). Cheap metrics (analytic costs,
lookup tables) can be computed for every candidate a searcher considers;
expensive ones (accuracy, measured latency, memory) only for evaluated trials.

    measurer = Measurer(supernet, runtime="onnxruntime")
    measurer.measure(config, ["macs", "latency_ms"])
    Measurer(lm_supernet, runtime="torch", val_data="pystdlib:val", context_len=512).measure(
        config, "perplexity,decode_latency_ms,peak_memory_mb")
    study.optimize(measurer.evaluator(["accuracy_top1", "latency_ms"]), n_evals=50,
                   cheap_metrics=measurer.cheap_metrics(["macs"]))
"""

from __future__ import annotations

import functools
import importlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from elasticnas.data._spec import data_spec, resolve_data
from elasticnas.errors import ElasticNASError
from elasticnas.measure.latency import DEFAULT_RUNTIME, LatencyResult, TimingPolicy, measure_latencies
from elasticnas.records import Direction, Objective
from elasticnas.registry import Registry

if TYPE_CHECKING:  # these import PyTorch: the methods needing them import them, so the registry loads without it
    import torch
    from torch import nn

    from elasticnas.measure.accuracy import AccuracyResult, Calibration
    from elasticnas.measure.lut import LookupTable
    from elasticnas.measure.memory import MemoryResult

Config = dict[str, Any]
Compute = Callable[["Measurer", Config], Mapping[str, float]]

_T = TypeVar("_T")

LATENCY_SPREAD = ("_p90", "_iqr", "_runs")


@dataclass(frozen=True)
class Metric:
    """A named measurement: its direction, whether it is cheap, and how to compute it.

    ``compute(measurer, config)`` returns ``{name: value}`` plus any
    ``name + suffix`` columns listed in ``extra_columns`` (for example the
    spread of a latency). ``check(measurer)``, when given, raises an
    :class:`~elasticnas.errors.ElasticNASError` if the measurer lacks what the
    metric needs (data, a lookup table), so that a run fails before it starts.
    """

    name: str
    direction: Direction
    cheap: bool
    compute: Compute
    unit: str = ""
    description: str = ""
    extra_columns: tuple[str, ...] = ()
    check: Callable[[Measurer], None] | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column this metric writes: its name, then its extra columns."""
        return (self.name, *(self.name + s for s in self.extra_columns))

    @property
    def objective(self) -> Objective:
        return Objective(self.name, self.direction)


METRICS: Registry[Metric] = Registry("metric")


def register_metric(metric: Metric, *, aliases: tuple[str, ...] = ()) -> Metric:
    """Register ``metric`` under its name; return it."""
    return METRICS.register(metric.name, metric, aliases=aliases)


def list_metrics(pattern: str | None = None, *, cheap: bool | None = None) -> list[str]:
    """Names of the registered metrics (only the cheap or expensive ones when ``cheap`` is given)."""
    names = METRICS.names(pattern)
    if cheap is None:
        return names
    return [n for n in names if METRICS.get(n).cheap == cheap]


def get_metric(name: str) -> Metric:
    """The metric registered as ``name`` (an :class:`~elasticnas.errors.UnknownNameError` otherwise)."""
    return METRICS.get(name)


def parse_metrics(text: str | Sequence[str]) -> list[Metric]:
    """``"latency_ms,macs"`` (or a list of names) as metrics, in order, without duplicates."""
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else [str(n).strip() for n in text]
    names = [n for n in names if n]
    if not names:
        raise ElasticNASError("no metrics given; choose from: " + ", ".join(list_metrics()))
    out: list[Metric] = []
    for n in names:
        m = get_metric(n)
        if m not in out:
            out.append(m)
    return out


def objectives(names: str | Sequence[str]) -> dict[str, str]:
    """``{name: direction}`` for ``create_study(objectives=...)``, directions from the registry."""
    return {m.name: m.direction for m in parse_metrics(names)}


class Measurer:
    """Measures registered metrics of a super-network's sub-networks under fixed settings.

    Settings (runtime, device, batch size, threads, timing policy, data, lookup
    table) are fixed at construction. The extracted sub-network and the last
    accuracy / latency / memory result are cached per configuration id.

    Token super-networks (those with a ``seq_len``): ``latency_ms`` and a
    classifier's ``peak_memory_mb`` run ``seq_len`` tokens; ``decode_latency_ms`` and a
    causal language model's ``peak_memory_mb`` decode after ``context_len`` tokens of
    context (both default to the super-network's ``seq_len``). Accuracy, loss and
    perplexity use the windows of the validation data; ``macs`` are the
    super-network's own (at its ``seq_len``).
    """

    def __init__(
        self,
        supernet: Any,
        *,
        runtime: str = DEFAULT_RUNTIME,
        device: str = "cpu",
        batch_size: int = 1,
        threads: int | None = None,
        policy: TimingPolicy = TimingPolicy(),
        val_data: Any = None,
        calib_data: Any = None,
        calib_batches: int = 50,
        eval_batch_size: int = 64,
        max_val_batches: int | None = None,
        lut: LookupTable | str | None = None,
        seed: int = 0,
        seq_len: int | None = None,
        context_len: int | None = None,
    ) -> None:
        self.supernet = supernet
        default_len = getattr(supernet, "seq_len", None)
        for name, value in (("seq_len", seq_len), ("context_len", context_len)):
            if value is not None and (default_len is None or int(value) < 1):
                raise ElasticNASError(
                    f"{name} must be a positive number of tokens, for a token super-network (with a seq_len); "
                    f"got {value!r} for {getattr(supernet, 'name', '') or type(supernet).__name__!r}"
                )
        self.seq_len: int | None = int(seq_len) if seq_len is not None else default_len
        self.context_len: int | None = int(context_len) if context_len is not None else default_len
        self.runtime = runtime
        self.device = device
        self.batch_size = batch_size
        self.threads = threads
        self.policy = policy
        self.val_data = resolve_data(val_data)
        self.calib_data = resolve_data(calib_data)
        self._data_specs = {"val_data": data_spec(val_data), "calib_data": data_spec(calib_data)}
        self.calib_batches = calib_batches
        self.eval_batch_size = eval_batch_size
        self.max_val_batches = max_val_batches
        self._lut_path = lut if isinstance(lut, str) else None
        if isinstance(lut, str):
            from elasticnas.measure.lut import LookupTable

            lut = LookupTable.load(lut)
        self.lut = lut
        self.seed = seed
        self._cache: dict[tuple[str, str], Any] = {}
        self._cache_id: str | None = None
        self._interleaved: dict[str, LatencyResult] = {}

    @property
    def calibration(self) -> Calibration | None:
        """How :meth:`accuracy` recalibrates BatchNorm (None without calibration data)."""
        from elasticnas.measure.accuracy import Calibration

        if self.calib_data is None:
            return None
        return Calibration(self.calib_data, self.calib_batches, self.eval_batch_size, self.seed)

    def settings(self) -> dict[str, Any]:
        """How this measurer measures, as JSON: what a study records so that a trial can be exported
        and re-measured later (data named by spec; None where it was an in-memory object)."""
        return {
            "supernet": self.supernet.name,
            "weights": self.supernet.weights_source,
            "recipe": self.supernet.recipe(),
            **self._data_specs,
            "calib_batches": self.calib_batches,
            "eval_batch_size": self.eval_batch_size,
            "max_val_batches": self.max_val_batches,
            "seed": self.seed,
            "runtime": self.runtime,
            "device": self.device,
            "batch_size": self.batch_size,
            "threads": self.threads,
            "lut": self._lut_path,
            "seq_len": self.seq_len,
            "context_len": self.context_len,
        }

    # -- helpers shared by metric implementations ------------------------------------------
    def validate(self, config: Mapping[str, Any]) -> Config:
        validated: Config = self.supernet.search_space.validate(config)
        return validated

    def _cached(self, config: Config, what: str, make: Callable[[], _T]) -> _T:
        cid = json.dumps(config, sort_keys=True)  # configs reaching here are validated (canonical)
        if cid != self._cache_id:
            self._cache.clear()
            self._cache_id = cid
        key = (cid, what)
        if key not in self._cache:
            self._cache[key] = make()
        value: _T = self._cache[key]
        return value

    def subnet(self, config: Config) -> nn.Module:
        """The extracted sub-network (eval mode), cached for the current configuration."""
        subnet: nn.Module = self._cached(config, "subnet", lambda: self.supernet.extract(config).eval())
        return subnet

    def costs(self, config: Config) -> Mapping[str, float]:
        if self.seq_len is None or self.seq_len == getattr(self.supernet, "seq_len", None):
            return self._cached(config, "costs", lambda: self.supernet.costs(config))
        return self._cached(config, "costs", lambda: self.supernet.costs(config, seq_len=self.seq_len))

    def example_inputs(self, config: Config, seq_len: int | None = None) -> tuple[torch.Tensor, ...]:
        """The super-network's seeded inputs of a batch, of ``seq_len`` tokens for a token super-network
        (default: this measurer's ``seq_len``)."""
        length = seq_len if seq_len is not None else self.seq_len
        extra = {} if length is None else {"seq_len": length}
        inputs: tuple[torch.Tensor, ...] = self.supernet.example_inputs(
            config, self.batch_size, seed=self.seed, **extra
        )
        return inputs

    @property
    def task(self) -> str | None:
        """The super-network's ``task`` (``"causal-lm"``, ...), None for one without."""
        task = getattr(self.supernet, "task", None)
        return None if task is None else str(task)

    def measure_latencies(self, configs: Sequence[Mapping[str, Any]], rounds: int = 5) -> list[LatencyResult]:
        """Latencies of ``configs`` measured together, interleaved (see
        :func:`~elasticnas.measure.latency.measure_latencies`); :meth:`latency` returns them for these
        configurations until the next call."""
        cfgs = [self.validate(c) for c in configs]
        results = self._time([self.supernet.extract(c).eval() for c in cfgs], cfgs, rounds)
        self._interleaved = {json.dumps(c, sort_keys=True): r for c, r in zip(cfgs, results, strict=True)}
        return results

    def latency(self, config: Config) -> LatencyResult:
        measured = self._interleaved.get(json.dumps(config, sort_keys=True))
        if measured is not None:
            return measured
        return self._cached(config, "latency", lambda: self._time([self.subnet(config)], [config], rounds=1)[0])

    def _time(self, models: Sequence[nn.Module], configs: Sequence[Config], rounds: int) -> list[LatencyResult]:
        """:func:`~elasticnas.measure.latency.measure_latencies` under this measurer's settings."""
        return measure_latencies(
            models,
            [self.example_inputs(c) for c in configs],
            runtime=self.runtime,
            device=self.device,
            batch_size=self.batch_size,
            threads=self.threads,
            policy=self.policy,
            rounds=rounds,
            seed=self.seed,
        )

    def decode_latency(self, config: Config) -> LatencyResult:
        """Latency of one decode step after ``context_len`` tokens (causal language models, PyTorch)."""
        _needs_decoder(self)

        def make() -> LatencyResult:
            from elasticnas.measure.decoding import measure_decode_latency

            return measure_decode_latency(
                self.subnet(config),
                self.example_inputs(config, self.context_len)[0],
                device=self.device,
                threads=self.threads,
                policy=self.policy,
            )

        return self._cached(config, "decode_latency", make)

    def memory(self, config: Config) -> MemoryResult:
        """Peak memory of a forward pass, or for a causal language model of the prefill of ``context_len``
        tokens and one decode step (its KV cache counted)."""
        from elasticnas.measure.memory import measure_decode_memory, measure_peak_memory

        def make() -> MemoryResult:
            if self.task == "causal-lm":
                ids = self.example_inputs(config, self.context_len)[0]
                return measure_decode_memory(self.subnet(config), ids, device=self.device)
            return measure_peak_memory(
                self.subnet(config), self.example_inputs(config), batch_size=self.batch_size, device=self.device,
                seed=self.seed,
            )  # fmt: skip

        return self._cached(config, "memory", make)

    def accuracy(self, config: Config) -> AccuracyResult:
        _needs_val_data(self)

        def make() -> AccuracyResult:
            import copy

            from elasticnas.measure.accuracy import measure_accuracy

            model = copy.deepcopy(self.subnet(config))  # recalibration changes the statistics
            channels, resolution = None, None  # images are resized to the sub-network's resolution, tokens are not
            if hasattr(self.supernet, "input_shape"):
                channels, resolution, _ = self.supernet.input_shape(config)
            return measure_accuracy(
                model,
                self.val_data,
                calibration=self.calibration,
                resolution=resolution,
                channels=channels,
                batch_size=self.eval_batch_size,
                device=self.device,
                max_batches=self.max_val_batches,
            )

        return self._cached(config, "accuracy", make)

    # -- public API ----------------------------------------------------------------------------
    def check(self, metrics: str | Sequence[str]) -> list[Metric]:
        """The metrics named, after checking that this measurer can compute each of them."""
        chosen = parse_metrics(metrics)
        for m in chosen:
            if m.check is not None:
                m.check(self)
        return chosen

    def measure(self, config: Mapping[str, Any], metrics: str | Sequence[str]) -> dict[str, float]:
        """All columns of ``metrics`` for ``config``, in metric order."""
        cfg = self.validate(config)
        out: dict[str, float] = {}
        for m in parse_metrics(metrics):
            out.update({k: float(v) for k, v in m.compute(self, cfg).items()})
        return out

    def evaluator(self, metrics: str | Sequence[str]) -> Callable[[Config], dict[str, float]]:
        """An ``evaluate(config) -> {column: value}`` function for :meth:`Study.optimize`."""
        names = [m.name for m in parse_metrics(metrics)]
        return functools.partial(self.measure, metrics=names)

    def cheap_metrics(self, metrics: str | Sequence[str] | None = None) -> dict[str, Callable[[Config], float]]:
        """``{name: f(config) -> value}`` for the cheap ones among ``metrics`` (default: all cheap metrics
        this measurer can compute without extra settings)."""
        if metrics is None:
            chosen = [get_metric(n) for n in ("macs", "params")]
            if self.lut is not None:
                chosen.append(get_metric("latency_lut_ms"))
        else:
            chosen = [m for m in parse_metrics(metrics) if m.cheap]
        return {m.name: functools.partial(_main_value, self, m) for m in chosen}


def _main_value(measurer: Measurer, metric: Metric, config: Config) -> float:
    return float(metric.compute(measurer, measurer.validate(config))[metric.name])


# -- built-in metrics -------------------------------------------------------------------------


def _costs(key: str) -> Compute:
    def compute(m: Measurer, cfg: Config) -> dict[str, float]:
        costs = m.costs(cfg)
        if key not in costs:
            raise _no_cost(m, key)
        return {key: float(costs[key])}

    return compute


def _cost_keys(m: Measurer) -> list[str]:
    """The costs the super-network counts (those of its smallest sub-network; the measurer's cache untouched)."""
    space = m.supernet.search_space
    return list(m.supernet.costs(space.from_genes(space.cardinalities * 0)))


def _no_cost(m: Measurer, key: str) -> ElasticNASError:
    name = getattr(m.supernet, "name", "") or type(m.supernet).__name__
    return ElasticNASError(f"{key} is not counted by super-network {name!r} (its costs: {', '.join(_cost_keys(m))})")


def _needs_cost(key: str) -> Callable[[Measurer], None]:
    def check(m: Measurer) -> None:
        if key not in _cost_keys(m):
            raise _no_cost(m, key)

    return check


def _needs_val_data(m: Measurer) -> None:
    if m.val_data is None:
        raise ElasticNASError("accuracy metrics need validation data (val_data / --val-data)")


def _needs_causal_lm(metric: str) -> Callable[[Measurer], None]:
    def check(m: Measurer) -> None:
        if m.task != "causal-lm":
            name = getattr(m.supernet, "name", "") or type(m.supernet).__name__
            raise ElasticNASError(f"{metric} is defined for causal language models, not {name!r} (task {m.task!r})")

    return check


def _needs_perplexity(m: Measurer) -> None:
    _needs_causal_lm("perplexity")(m)
    _needs_val_data(m)


def _needs_decoder(m: Measurer) -> None:
    _needs_causal_lm("decode_latency_ms")(m)
    if m.runtime not in ("torch", "pytorch"):
        raise ElasticNASError(
            f"decode_latency_ms is measured on runtime 'torch' only (exporting the KV cache to ONNX is not "
            f"supported), not {m.runtime!r}: measure with runtime='torch' (--runtime torch)"
        )


def _needs_lut(m: Measurer) -> None:
    if m.lut is None:
        raise ElasticNASError("latency_lut_ms needs a lookup table: build one with 'elasticnas lut build' (--lut FILE)")


def _needs_ofa_w12(m: Measurer) -> None:
    name = getattr(m.supernet, "name", "")
    if name and name != "ofa_mbv3_w12":
        raise ElasticNASError(f"latency_note10_ms is defined for ofa_mbv3_w12 sub-networks only, not {name!r}")


def _accuracy(column: str, field: str) -> Compute:
    def compute(m: Measurer, cfg: Config) -> dict[str, float]:
        return {column: float(getattr(m.accuracy(cfg), field))}

    return compute


def _perplexity(m: Measurer, cfg: Config) -> dict[str, float]:
    _needs_causal_lm("perplexity")(m)
    return {"perplexity": math.exp(m.accuracy(cfg).loss)}


def _latency(m: Measurer, cfg: Config) -> dict[str, float]:
    return m.latency(cfg).columns("latency_ms")


def _decode_latency(m: Measurer, cfg: Config) -> dict[str, float]:
    return m.decode_latency(cfg).columns("decode_latency_ms")


def _latency_lut(m: Measurer, cfg: Config) -> dict[str, float]:
    _needs_lut(m)
    assert m.lut is not None
    return {"latency_lut_ms": m.lut.latency_ms(m.supernet, cfg)}


@functools.cache
def _note10_table() -> Any:
    from elasticnas.measure.ofa_lut import OFALookupTable

    return OFALookupTable.load()


def _latency_note10(m: Measurer, cfg: Config) -> dict[str, float]:
    _needs_ofa_w12(m)
    try:
        return {"latency_note10_ms": float(_note10_table().latency_ms(cfg))}
    except (KeyError, ValueError) as exc:
        raise ElasticNASError(f"latency_note10_ms: {str(exc).strip(chr(39))}") from None


def _memory(m: Measurer, cfg: Config) -> dict[str, float]:
    return {"peak_memory_mb": m.memory(cfg).peak_mb}


register_metric(
    Metric("macs", "minimize", True, _costs("macs"), "MACs",
           "multiply-accumulates of one input: an image, or a sequence of the super-network's seq_len (analytic)",
           check=_needs_cost("macs"))
)
register_metric(
    Metric("params", "minimize", True, _costs("params"), "", "parameters of the sub-network (analytic)",
           check=_needs_cost("params"))
)
register_metric(
    Metric("params_non_embedding", "minimize", True, _costs("params_non_embedding"), "",
           "parameters without the token / position embeddings and a language model's output head (analytic)",
           check=_needs_cost("params_non_embedding"))
)
register_metric(
    Metric(
        "accuracy_top1", "maximize", False, _accuracy("accuracy_top1", "top1"), "%",
        "top-1 validation accuracy (per token for causal LMs), after BatchNorm recalibration where there is any",
        check=_needs_val_data,
    ),
    aliases=("top1",),
)
register_metric(
    Metric(
        "accuracy_top5", "maximize", False, _accuracy("accuracy_top5", "top5"), "%",
        "top-5 validation accuracy (per token for causal LMs), after BatchNorm recalibration where there is any",
        check=_needs_val_data,
    ),
    aliases=("top5",),
)
register_metric(
    Metric("loss", "minimize", False, _accuracy("loss", "loss"), "nats",
           "mean validation cross-entropy (per next token for causal LMs)", check=_needs_val_data)
)
register_metric(
    Metric("perplexity", "minimize", False, _perplexity, "",
           "validation perplexity: exp of the mean next-token cross-entropy (causal LMs)", check=_needs_perplexity),
    aliases=("ppl",),
)
register_metric(
    Metric(
        "latency_ms", "minimize", False, _latency, "ms",
        "median measured latency of the extracted sub-network (runtime, device, batch, threads as set; "
        "token models: the prefill of seq_len tokens)",
        extra_columns=LATENCY_SPREAD,
    )
)
register_metric(
    Metric(
        "decode_latency_ms", "minimize", False, _decode_latency, "ms",
        "median latency of one decode step with a KV cache after context_len tokens (causal LMs, runtime torch)",
        extra_columns=LATENCY_SPREAD, check=_needs_decoder,
    )
)
register_metric(
    Metric("latency_lut_ms", "minimize", True, _latency_lut, "ms", "latency estimated from a lookup table",
           check=_needs_lut)
)
register_metric(
    Metric(
        "latency_note10_ms", "minimize", True, _latency_note10, "ms",
        "Samsung Note10 latency from Once-for-All's published lookup tables (ofa_mbv3_w12)",
        check=_needs_ofa_w12,
    )
)
register_metric(
    Metric(
        "peak_memory_mb", "minimize", False, _memory, "MiB",
        "peak memory of one inference forward pass at the batch size (weights + input + activations; "
        "causal LMs: prefill of context_len tokens and one decode step, KV cache included)",
    )
)


def _deferred(target: str) -> Callable[..., Any]:
    """The function ``"package.module:name"``, imported when first called: the metrics of super-networks that
    wrap others live beside them (their packages import peft and ONNX Runtime's quantization), while every
    process lists the same metrics."""

    def call(*args: Any) -> Any:
        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module), name)(*args)

    return call


_NEEDS_LORA = _deferred("elasticnas.adapters._metrics:needs_lora")
register_metric(
    Metric("adapter_params", "minimize", True, _deferred("elasticnas.adapters._metrics:adapter_params"), "",
           "trainable LoRA parameters of the configuration (analytic; adapter super-networks)", check=_NEEDS_LORA)
)
register_metric(
    Metric("latency_merged_ms", "minimize", False, _deferred("elasticnas.adapters._metrics:latency_merged"), "ms",
           "latency_ms of the sub-network with its adapters merged into the base weights",
           extra_columns=LATENCY_SPREAD, check=_NEEDS_LORA)
)
register_metric(
    Metric("peak_memory_merged_mb", "minimize", False, _deferred("elasticnas.adapters._metrics:memory_merged"),
           "MiB", "peak_memory_mb of the sub-network with its adapters merged into the base weights",
           check=_NEEDS_LORA)
)
register_metric(
    Metric("model_size_bytes", "minimize", True, _deferred("elasticnas.quantization._metrics:model_size_bytes"), "B",
           "parameters at their layer's weight precision (FP32: 4 bytes, INT8: 1, INT4: 1/2; analytic)")
)
register_metric(
    Metric("bops", "minimize", True, _deferred("elasticnas.quantization._metrics:bops"), "bit-ops",
           "bit operations: MACs x weight bits x activation bits of each layer (analytic)")
)
