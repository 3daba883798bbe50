"""Elastic Transformers: importance-sorted against first-k slicing, our search against whittle's, the latency model.

One byte-level Llama (``MODEL`` of ``benchmarks/builtin_tiny_gpt.py``: RMSNorm, RoPE, grouped-query
attention, gated MLP) is pretrained on ``pystdlib:train`` (seeded; the weights are cached under
``benchmarks/results/.cache/`` so that reruns skip it), then:

1. **Sorted against first-k.** Two super-networks from the same weights: ``elasticize(...,
   method="activation")`` (heads, FFN neurons, hidden channels and blocks sorted by activation
   importance, Minitron-style) and ``method="first-k"`` (the natural order: whittle's slicing). The
   same random sub-networks (equal spaces, so equal parameter counts) are scored on the same
   validation windows before and after the same sandwich fine-tune (InstaTune; same steps, batches
   and sampled sub-networks) of each super-network.
2. **Search side by side** on the fine-tuned sorted super-network: objectives validation loss (one
   fixed batch of ``pystdlib:val`` windows, measured per evaluation) and parameters; elasticnas'
   ``predicted_hvi`` (default), pymoo ``nsga2`` and ``random`` through ``Study.ask`` / ``tell``
   (parameters known as a cheap metric), and Syne Tune's multi-objective regularized evolution with
   whittle's settings (``whittle.search.baselines``: population 10, sample size 5, the upper, lower
   and mid point first) through ``SingleFidelityScheduler`` and ``AskTellScheduler``. Syne Tune
   runs in this process when importable, else in a worker process of ``--syne-tune-python`` (a
   Python that has it), which proposes configurations while this process evaluates them. Same
   budget and seeds for all; one reference point (the union of all evaluations, pushed out by 10 %
   of its range) and hypervolume as a fraction of the union front's.
3. **The latency model**: Kendall tau of predicted against measured prefill ``latency_ms`` (torch,
   1 thread, batch 1) on held-out sub-networks at two sequence lengths, predictors analytic MACs,
   parameters and elasticnas predictors fitted on a separate measured set (and their 5-fold
   cross-validated tau on it); decode latency (``decode_latency_ms``, KV cache) against the MACs of
   one decode step. The HF super-network has no per-layer specs, so no lookup table.

(Not named transformers.py: a script in benchmarks/ of that name would shadow the transformers package for its
neighbours.) Writes ``benchmarks/results/transformers.json`` (``--smoke``: ``transformers_smoke.json``, every part
tiny) and this benchmark's section of ``benchmarks/README.md`` (full runs only).

    python benchmarks/elastic_transformers.py --smoke
    python benchmarks/elastic_transformers.py --syne-tune-python /path/to/venv-with-syne-tune/bin/python
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = HERE.parent
CACHE = HERE / "results" / ".cache"
README = HERE / "README.md"
START, END = "<!-- transformers benchmark: start -->", "<!-- transformers benchmark: end -->"
OURS = "predicted_hvi"
METHODS = (OURS, "nsga2", "random", "syne_tune_morea")
MARK = "@@"  # prefix of the Syne Tune worker's replies on its stdout


# -- Syne Tune (whittle's strategies) ---------------------------------------------------------------
def _whittle_initial_design(space: Mapping[str, Any]) -> list[dict[str, Any]]:
    """whittle's ``initial_design``: the upper bound, the lower bound and a mid point (first categories for
    the first half of the names, last for the rest) of a space of Syne Tune categoricals."""
    names = list(space)
    upper = {k: space[k].categories[-1] for k in names}
    lower = {k: space[k].categories[0] for k in names}
    mid = {k: space[k].categories[0] if i < len(names) // 2 else space[k].categories[-1] for i, k in enumerate(names)}
    return [upper, lower, mid]


class SyneTuneMOREA:
    """Syne Tune's MultiObjectiveRegularizedEvolution as whittle runs it, driven one trial at a time."""

    def __init__(self, choices: Mapping[str, Sequence[int]], metrics: Sequence[str], seed: int) -> None:
        from syne_tune.config_space import choice
        from syne_tune.optimizer.schedulers.ask_tell_scheduler import AskTellScheduler
        from syne_tune.optimizer.schedulers.multiobjective.multi_objective_regularized_evolution import (
            MultiObjectiveRegularizedEvolution,
        )
        from syne_tune.optimizer.schedulers.single_fidelity_scheduler import SingleFidelityScheduler

        # Syne Tune 0.16 samples the random members of the population (sample_random_config) and breaks ties of
        # the non-dominated sort with NumPy's global generator, not the searcher's seeded one: seed it too
        np.random.seed(seed)
        space = {k: choice(list(v)) for k, v in choices.items()}
        searcher = MultiObjectiveRegularizedEvolution(
            space, points_to_evaluate=_whittle_initial_design(space), population_size=10, sample_size=5,
            random_seed=seed,
        )  # fmt: skip
        base = SingleFidelityScheduler(space, metrics=list(metrics), do_minimize=True, searcher=searcher,
                                       random_seed=seed)  # fmt: skip
        self.scheduler = AskTellScheduler(base_scheduler=base)
        self.trial: Any = None

    def ask(self) -> dict[str, int]:
        self.trial = self.scheduler.ask()
        return {k: int(v) for k, v in self.trial.config.items()}

    def tell(self, metrics: Mapping[str, float]) -> None:
        self.scheduler.tell(self.trial, dict(metrics))


class RemoteProposer:
    """:class:`SyneTuneMOREA` in a worker process of another Python (``--syne-tune-worker``), over pipes."""

    def __init__(self, python: str, init: Mapping[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [python, str(Path(__file__).resolve()), "--syne-tune-worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, bufsize=1,
        )  # fmt: skip
        self.version = self._send(init)["syne_tune"]

    def _send(self, message: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK) :])
        raise RuntimeError(f"the Syne Tune worker exited ({self.proc.wait()})")

    def ask(self) -> dict[str, int]:
        config: dict[str, int] = self._send("ask")
        return config

    def tell(self, metrics: Mapping[str, float]) -> None:
        self._send({"tell": dict(metrics)})

    def close(self) -> None:
        self._send("quit")
        self.proc.wait(timeout=30)


def syne_tune_worker() -> None:
    """The worker's loop: the first line of stdin sets up the searcher, then "ask" / {"tell": ...} / "quit"."""
    init = json.loads(sys.stdin.readline())
    proposer = SyneTuneMOREA(init["choices"], init["metrics"], init["seed"])
    print(MARK + json.dumps({"syne_tune": _syne_tune_version()}), flush=True)
    for line in sys.stdin:
        message = json.loads(line)
        if message == "quit":
            print(MARK + "null", flush=True)
            return
        if message == "ask":
            print(MARK + json.dumps(proposer.ask()), flush=True)
        else:
            proposer.tell(message["tell"])
            print(MARK + "null", flush=True)


def _syne_tune_version() -> str:
    import syne_tune

    return str(syne_tune.__version__)


# -- helpers ------------------------------------------------------------------------------------
def _load_builtin_tiny_gpt() -> Any:
    spec = importlib.util.spec_from_file_location("builtin_tiny_gpt", HERE / "builtin_tiny_gpt.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _key(config: Mapping[str, Any]) -> str:
    return json.dumps(config, sort_keys=True)


def _flat_choices(space: Any) -> dict[str, list[int]]:
    """One Syne Tune choice per gene: ``depth``, ``heads_0`` ... ``ffn_3``, ``hidden``."""
    out: dict[str, list[int]] = {}
    for name, choice in space.choices.items():
        values = [int(v) for v in choice.values]
        if choice.size is None:
            out[name] = values
        else:
            out.update({f"{name}_{i}": values for i in range(choice.size)})
    return out


def _unflatten(space: Any, flat: Mapping[str, int]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name, choice in space.choices.items():
        config[name] = (
            int(flat[name]) if choice.size is None else [int(flat[f"{name}_{i}"]) for i in range(choice.size)]
        )
    return dict(space.validate(config))


def _kendall(a: Sequence[float], b: Sequence[float]) -> float:
    from elasticnas.predictors import kendall_tau

    return round(kendall_tau(np.asarray(a), np.asarray(b)), 4)


def pretrained(args: argparse.Namespace, tiny: Any, train: Any) -> tuple[Path, dict[str, Any]]:
    """The folder of the pretrained model: cached by its settings (not with ``--smoke``)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    settings = {"model": tiny.MODEL, "steps": args.pretrain_steps, "batch_size": 16, "lr": 3e-3, "seed": args.seed}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    folder = (Path(tempfile.mkdtemp()) if args.smoke else CACHE) / f"transformers_pretrain_{digest}"
    info = folder / "pretrain.json"
    if info.exists():
        return folder, {**json.loads(info.read_text()), "cached": True}
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM(LlamaConfig(**tiny.MODEL))
    t0 = time.perf_counter()
    curve = tiny.pretrain(model, train, steps=args.pretrain_steps, batch_size=16, lr=3e-3, seed=args.seed)
    seconds = time.perf_counter() - t0
    model.save_pretrained(folder)
    record = {"settings": settings, "seconds": round(seconds, 1), "loss_curve": curve}
    info.write_text(json.dumps(record, indent=1))
    return folder, {**record, "cached": False}


# -- 1. importance-sorted against first-k --------------------------------------------------------
def sorted_vs_first_k(args: argparse.Namespace, folder: Path, train: Any, val: Any) -> tuple[dict[str, Any], Any]:
    import torch
    from transformers import LlamaForCausalLM

    from elasticnas.data import as_loader
    from elasticnas.measure import measure_accuracy
    from elasticnas.supernets.hf import elasticize
    from elasticnas.training import SandwichTrainer, TrainConfig

    gen = torch.Generator().manual_seed(args.seed + 1)
    val_windows = torch.utils.data.Subset(val, torch.randperm(len(val), generator=gen)[: args.val_windows].tolist())
    calib = [tuple(b) for b in as_loader(train, batch_size=16, shuffle=True, seed=args.seed + 99)][:8]
    nets = {}
    t0 = time.perf_counter()
    for method in ("activation", "first-k"):
        nets[method] = elasticize(LlamaForCausalLM.from_pretrained(folder), calib, task="causal-lm", method=method)
    elasticize_s = time.perf_counter() - t0
    space = nets["activation"].search_space
    assert space.to_json()["choices"] == nets["first-k"].search_space.to_json()["choices"]
    configs: list[dict[str, Any]] = []
    for cfg in space.sample_many(4 * args.configs, seed=args.seed):
        if _key(cfg) not in {_key(c) for c in configs} and len(configs) < args.configs:
            configs.append(cfg)
    named = {"largest": space.validate(nets["activation"].max_config()),
             "smallest": space.validate(nets["activation"].min_config())}  # fmt: skip

    def losses(net: Any) -> list[float]:
        net.eval()
        return [measure_accuracy(net.extract(c), val_windows, batch_size=32).loss for c in [*configs, *named.values()]]

    subset = torch.utils.data.Subset(
        train, torch.randperm(len(train), generator=torch.Generator().manual_seed(args.seed))[: args.finetune_windows]
        .tolist(),
    )  # fmt: skip
    before: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    for method, net in nets.items():
        t = time.perf_counter()
        before[method] = losses(net)
        seconds[f"eval_before_{method}"] = round(time.perf_counter() - t, 1)
    stages = {"before": before}
    kept = nets["activation"]
    for k in range(args.finetune_seeds):
        if k:  # fresh super-networks from the same pretrained weights for each further fine-tuning seed
            nets = {m: elasticize(LlamaForCausalLM.from_pretrained(folder), calib, task="causal-lm", method=m)
                    for m in nets}  # fmt: skip
        stage = "after" if k == 0 else f"after_seed{args.seed + k}"
        stages[stage] = {}
        for method, net in nets.items():
            t = time.perf_counter()
            trainer = SandwichTrainer(
                net, TrainConfig.finetuning(epochs=1, batch_size=args.batch_size, lr=1e-3, seed=args.seed + k)
            )
            trainer.fit(subset, progress=False)
            seconds[f"finetune_{method}_{stage}"] = round(time.perf_counter() - t, 1)
            t = time.perf_counter()
            stages[stage][method] = losses(net)
            seconds[f"eval_{method}_{stage}"] = round(time.perf_counter() - t, 1)
            spent = {key: v for key, v in seconds.items() if key.endswith(f"{method}_{stage}")}
            print(f"[1] {method}, fine-tuning seed {args.seed + k}: fine-tuned and evaluated ({spent})", flush=True)
    params = [int(nets["activation"].costs(c)["params"]) for c in [*configs, *named.values()]]
    assert params == [int(nets["first-k"].costs(c)["params"]) for c in [*configs, *named.values()]]
    n = len(configs)
    result: dict[str, Any] = {
        "val_windows": args.val_windows,
        "finetune": {"windows": args.finetune_windows, "batch_size": args.batch_size, "epochs": 1, "lr": 1e-3,
                     "steps": -(-args.finetune_windows // args.batch_size), "trainer": "sandwich (max, min, 2 random; "
                     "in-place distillation)"},
        "layer_order_sorted": list(nets["activation"].layer_order),
        "seconds": {"elasticize_both": round(elasticize_s, 1), **seconds},
        "configs": configs,
        "params": params[:n],
        "finetune_seeds": [args.seed + k for k in range(args.finetune_seeds)],
        "named": {name: {"params": params[n + i],
                         **{f"{stage}_{m}": round(d[m][n + i], 4) for stage, d in stages.items() for m in nets}}
                  for i, name in enumerate(named)},
        "loss": {f"{stage}_{m}": [round(x, 4) for x in d[m][:n]] for stage, d in stages.items() for m in nets},
    }  # fmt: skip
    result["summary"] = {
        stage: _paired(params[:n], d["activation"][:n], d["first-k"][:n], args.buckets) for stage, d in stages.items()
    }
    return result, kept


def _paired(params: Sequence[int], ours: Sequence[float], first_k: Sequence[float], buckets: int) -> dict[str, Any]:
    """Sorted against first-k, paired by configuration: overall and per parameter bucket (equal counts)."""
    p, a, b = np.asarray(params), np.asarray(ours), np.asarray(first_k)

    def stats(idx: np.ndarray) -> dict[str, Any]:
        d = a[idx] - b[idx]
        return {"n": int(len(idx)), "params": [int(p[idx].min()), int(p[idx].max())],
                "median_loss_sorted": round(float(np.median(a[idx])), 4),
                "median_loss_first_k": round(float(np.median(b[idx])), 4),
                "share_sorted_better": round(float(np.mean(d < 0)), 3),
                "median_difference": round(float(np.median(d)), 4)}  # fmt: skip

    order = np.argsort(p, kind="stable")
    groups = [g for g in np.array_split(order, buckets) if len(g)]
    per = [stats(g) for g in groups]
    return {"all": stats(order), "buckets": per,
            "sorted_better_in_every_bucket": all(s["share_sorted_better"] > 0.5 and s["median_difference"] < 0
                                                 for s in per)}  # fmt: skip


# -- 2. search side by side ----------------------------------------------------------------------
class Evaluations:
    """Validation loss of sub-networks on fixed windows, each configuration measured once (all methods share
    the results; every request still counts as an evaluation of the method that made it)."""

    def __init__(self, net: Any, val: Any, windows: int, seed: int) -> None:
        import torch

        from elasticnas.measure import Measurer

        gen = torch.Generator().manual_seed(seed + 2)
        data = torch.utils.data.Subset(val, torch.randperm(len(val), generator=gen)[:windows].tolist())
        self.measurer = Measurer(net, val_data=data, eval_batch_size=windows)
        self.params = self.measurer.cheap_metrics(["params"])["params"]
        self.cache: dict[str, float] = {}
        self.seconds = 0.0

    def loss(self, config: Mapping[str, Any]) -> float:
        key = _key(self.measurer.validate(config))
        if key not in self.cache:
            t = time.perf_counter()
            self.cache[key] = float(self.measurer.measure(config, ["loss"])["loss"])
            self.seconds += time.perf_counter() - t
        return self.cache[key]


def run_elasticnas(method: str, net: Any, ev: Evaluations, budget: int, seed: int) -> list[list[float]]:
    from search_efficiency import drive

    from elasticnas.problems import Problem
    from elasticnas.searchers import create_searcher

    problem = Problem(
        name="elastic_transformer", space=net.search_space, objectives={"loss": "minimize", "params": "minimize"},
        evaluate=lambda config: {"loss": ev.loss(config)}, cheap_metrics={"params": ev.params},
    )  # fmt: skip
    searcher = create_searcher(method, net.search_space, problem.objective_list, cheap_metrics=problem.cheap_metrics,
                               seed=seed)
    return drive(problem, searcher, budget)


def run_syne_tune(proposer: Any, net: Any, ev: Evaluations, budget: int) -> list[list[float]]:
    F: list[list[float]] = []
    for _ in range(budget):
        config = _unflatten(net.search_space, proposer.ask())
        values = {"loss": ev.loss(config), "params": ev.params(config)}
        proposer.tell(values)
        F.append([values["loss"], values["params"]])
    return F


def search(args: argparse.Namespace, net: Any, val: Any) -> dict[str, Any]:
    from elasticnas.pareto import default_reference_point, hypervolume, hypervolume_history

    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per in-memory study otherwise
    except ImportError:
        pass
    ev = Evaluations(net, val, args.search_windows, args.seed)
    st_python = args.syne_tune_python
    in_process = importlib.util.find_spec("syne_tune") is not None
    syne_tune_note, st_version = None, None
    if not in_process and not st_python:
        syne_tune_note = "Syne Tune is not installed here and no --syne-tune-python was given: MO-REA skipped"
    runs: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        for method in METHODS:
            t0, e0 = time.perf_counter(), ev.seconds
            if method == "syne_tune_morea":
                if syne_tune_note:
                    continue
                init = {"choices": _flat_choices(net.search_space), "metrics": ["loss", "params"], "seed": seed}
                proposer: Any = SyneTuneMOREA(init["choices"], init["metrics"], seed) if in_process else \
                    RemoteProposer(st_python, init)  # fmt: skip
                F = run_syne_tune(proposer, net, ev, args.budget)
                st_version = proposer.version if isinstance(proposer, RemoteProposer) else _syne_tune_version()
                if isinstance(proposer, RemoteProposer):
                    proposer.close()
            else:
                F = run_elasticnas(method, net, ev, args.budget, seed)
            total = time.perf_counter() - t0
            evals = ev.seconds - e0
            runs.append({"method": method, "seed": seed, "F": F, "seconds": round(total, 2),
                         "searcher_seconds": round(total - evals, 2),
                         "distinct_configs": len({(round(f[0], 9), f[1]) for f in F})})  # fmt: skip
            print(
                f"[2] {method:16s} seed {seed}: {len(F)} evaluations, {total:.1f} s (searcher {total - evals:.1f} s)",
                flush=True,
            )
    allF = np.array([f for r in runs for f in r["F"]])
    ref = default_reference_point(allF, margin=0.1)
    from elasticnas.pareto import non_dominated_mask

    hv_union = hypervolume(allF[non_dominated_mask(allF)], ref)
    for r in runs:
        r["hv"] = [round(float(h), 5) for h in hypervolume_history(np.array(r["F"]), ref) / hv_union]
    methods = [m for m in METHODS if any(r["method"] == m for r in runs)]
    checkpoints = sorted({k for k in (10, 20, 30, 40, 60, 100, args.budget) if k <= args.budget})
    hv_at = {m: {str(k): round(float(np.median([r["hv"][k - 1] for r in runs if r["method"] == m])), 4)
                 for k in checkpoints} for m in methods}  # fmt: skip
    best_final = max(hv_at[m][str(args.budget)] for m in methods)
    reach: dict[str, Any] = {}
    for frac in (0.95, 0.99):
        target = frac * best_final
        reach[f"{frac:.2f}"] = {"target_hv_fraction": round(target, 4), "methods": {}}
        for m in methods:
            hits = []
            for r in runs:
                if r["method"] == m:
                    idx = np.flatnonzero(np.array(r["hv"]) >= target - 1e-12)
                    hits.append(int(idx[0]) + 1 if len(idx) else None)
            done = sorted(h for h in hits if h is not None)
            median = float(np.median([h if h is not None else np.inf for h in hits]))
            reach[f"{frac:.2f}"]["methods"][m] = {
                "evaluations": hits, "median": median if np.isfinite(median) else None,
                "reached": f"{len(done)}/{len(hits)}",
            }  # fmt: skip
    return {
        "objectives": {"loss": f"next-byte loss (nats) on {args.search_windows} fixed pystdlib:val windows",
                       "params": "parameters (analytic, a cheap metric for elasticnas' searchers)"},
        "budget": args.budget, "seeds": args.seeds, "methods": methods,
        "syne_tune": syne_tune_note or f"{st_version} ({'in this process' if in_process else 'worker process'})",
        "syne_tune_settings": "MultiObjectiveRegularizedEvolution(population_size=10, sample_size=5, "
                              "points_to_evaluate=whittle's initial_design) in "
                              "SingleFidelityScheduler + AskTellScheduler",
        "reference_point": [float(x) for x in ref], "hv_union_front": hv_union,
        "distinct_evaluated_configs": len(ev.cache), "evaluation_seconds": round(ev.seconds, 1),
        "hv_fraction_median": hv_at, "evals_to_reach": reach, "runs": runs,
    }  # fmt: skip


# -- 3. the latency model ------------------------------------------------------------------------
def latency_model(args: argparse.Namespace, net: Any) -> dict[str, Any]:
    from elasticnas.measure import Measurer, TimingPolicy
    from elasticnas.predictors import create_predictor, cross_validate

    space = net.search_space
    configs: list[dict[str, Any]] = []
    for cfg in space.sample_many(8 * args.latency_configs, seed=args.seed + 7):
        if _key(cfg) not in {_key(c) for c in configs} and len(configs) < 2 * args.latency_configs:
            configs.append(cfg)
    fit_set, test_set = configs[: args.latency_configs], configs[args.latency_configs :]
    policy = TimingPolicy(warmup_runs=3, warmup_s=0.02, max_warmup_s=0.3, min_runs=10,
                          min_time_s=min(0.05, args.latency_budget_s), budget_s=args.latency_budget_s,
                          rel_tol=0.01)  # fmt: skip
    X_fit, X_test = space.encode(fit_set), space.encode(test_set)
    out: dict[str, Any] = {"runtime": "torch", "threads": 1, "batch_size": 1, "policy": policy.__dict__,
                           "n_fit": len(fit_set), "n_test": len(test_set), "prefill": {}}  # fmt: skip
    for L in args.seq_lens:
        m = Measurer(net, runtime="torch", threads=1, policy=policy, seq_len=L)
        t = time.perf_counter()
        fit_ms = [r.median_ms for r in m.measure_latencies(fit_set, rounds=3)]
        test_ms = [r.median_ms for r in m.measure_latencies(test_set, rounds=3)]
        seconds = time.perf_counter() - t
        macs = [net.costs(c, seq_len=L)["macs"] for c in test_set]
        params = [net.costs(c)["params"] for c in test_set]
        row: dict[str, Any] = {"measure_seconds": round(seconds, 1),
                               "test_ms": [round(x, 4) for x in test_ms], "fit_ms": [round(x, 4) for x in fit_ms],
                               "tau": {"macs": _kendall(test_ms, macs), "params": _kendall(test_ms, params),
                                       "depth": _kendall(test_ms, [c["depth"] for c in test_set])},
                               "cv_tau_on_fit_set": {}}  # fmt: skip
        for name in args.predictors:
            pred = create_predictor(name, seed=args.seed).fit(X_fit, np.asarray(fit_ms))
            row["tau"][f"predictor_{name}"] = _kendall(test_ms, pred.predict(X_test)[0])
            cv = cross_validate(lambda name=name: create_predictor(name, seed=args.seed), X_fit, np.asarray(fit_ms))
            row["cv_tau_on_fit_set"][name] = round(cv.kendall_tau, 4)
        repeat = [r.median_ms for r in m.measure_latencies(test_set, rounds=3)]
        row["tau"]["measured_again"] = _kendall(test_ms, repeat)  # the noise ceiling of any predictor
        out["prefill"][str(L)] = row
        print(f"[3] prefill at {L} tokens: tau {row['tau']} ({seconds:.0f} s)", flush=True)
    L = args.context_len
    m = Measurer(net, runtime="torch", threads=1, policy=policy, context_len=L)
    t = time.perf_counter()
    decode_ms = [m.measure(c, ["decode_latency_ms"])["decode_latency_ms"] for c in test_set]
    head_dim = net.dims.head_dim
    decode_macs = [net.costs(c, seq_len=1)["macs"] + 2 * L * head_dim * sum(net.plan(c).heads) for c in test_set]
    out["decode"] = {"context_len": L, "measure_seconds": round(time.perf_counter() - t, 1),
                     "ms": [round(x, 4) for x in decode_ms],
                     "tau": {"decode_macs": _kendall(decode_ms, decode_macs),
                             "prefill_macs": _kendall(decode_ms, [net.costs(c, seq_len=L)["macs"] for c in test_set]),
                             "params": _kendall(decode_ms, [net.costs(c)["params"] for c in test_set]),
                             "depth": _kendall(decode_ms, [c["depth"] for c in test_set])}}  # fmt: skip
    out["fit_configs"], out["test_configs"] = fit_set, test_set
    print(f"[3] decode after {L} tokens: tau {out['decode']['tau']}", flush=True)
    return out


# -- README -----------------------------------------------------------------------------------------
def markdown(result: dict[str, Any]) -> str:
    one, two, three = result["sorted_vs_first_k"], result["search"], result["latency_model"]
    ft = one["finetune"]
    lines = [
        START,
        "## Elastic Transformers (`benchmarks/elastic_transformers.py`)",
        "",
        f"`{result['command']}` ({result['date']}; {result['machine']['cpus']} vCPUs shared with other jobs, load "
        f"average {result['machine']['load_average_start'][0]:.1f} at the start and "
        f"{result['machine']['load_average_end'][0]:.1f} at the end; torch on 1 thread; wall time "
        f"{result['wall_seconds'] / 60:.1f} min, pretraining {'cached' if result['pretrain']['cached'] else 'included'}"
        f"). Model: the `tiny_gpt` Llama shape (`MODEL` of `builtin_tiny_gpt.py`, "
        f"{result['model_params'] / 1e6:.2f} M parameters, byte-level), pretrained "
        f"{result['pretrain']['settings']['steps']} steps on `pystdlib:train` (batch 16, seed "
        f"{result['pretrain']['settings']['seed']}). No CUDA GPU was available, so no ~1 B-parameter Llama was timed.",
        "",
        f'**1. Importance-sorted (`elasticize(method="activation")`) against first-k slicing (whittle\'s)**, '
        f"{len(one['configs'])} random sub-networks (the same configurations for both, so the same parameter "
        f"counts), next-byte loss (nats) on {one['val_windows']} `pystdlib:val` windows of 128 bytes, before and after "
        f"the same sandwich fine-tune of each super-network ({ft['steps']} steps of {ft['batch_size']} windows, AdamW "
        f"lr {ft['lr']}, same seed: same batches and sampled sub-networks). Buckets: the sub-networks by parameter "
        f"count, equal numbers; difference = sorted - first-k (negative: sorted better). Sorted block ranking "
        f"{one['layer_order_sorted']}.",
        "",
        "| stage | parameters | n | median loss sorted | median loss first-k | sorted better | median difference |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for stage in one["summary"]:
        s = one["summary"][stage]
        for b in [*s["buckets"], s["all"]]:
            name = {"before": "before fine-tune", "after": f"after fine-tune (seed {one['finetune_seeds'][0]})"}.get(
                stage, f"after fine-tune (seed {stage.removeprefix('after_seed')})"
            )
            label = "all" if b is s["all"] else f"{b['params'][0] / 1e3:.0f}k-{b['params'][1] / 1e3:.0f}k"
            lines.append(
                f"| {name} | {label} | {b['n']} | {b['median_loss_sorted']:.3f} | "
                f"{b['median_loss_first_k']:.3f} | {100 * b['share_sorted_better']:.0f} % | "
                f"{b['median_difference']:+.3f} |"
            )
    named = one["named"]
    lines += [
        "",
        "Largest sub-network (the whole model; sorting permutes, so equal before fine-tuning): before "
        f"{named['largest']['before_activation']:.3f} / {named['largest']['before_first-k']:.3f}, after "
        f"{named['largest']['after_activation']:.3f} / {named['largest']['after_first-k']:.3f} (sorted / first-k); "
        f"smallest ({named['smallest']['params']:,} parameters): before "
        f"{named['smallest']['before_activation']:.3f} / {named['smallest']['before_first-k']:.3f}, after "
        f"{named['smallest']['after_activation']:.3f} / {named['smallest']['after_first-k']:.3f}. Sorted better in "
        "every bucket: before fine-tuning **"
        + str(one["summary"]["before"]["sorted_better_in_every_bucket"])
        + "**, after it (per fine-tuning seed) **"
        + ", ".join(str(v["sorted_better_in_every_bucket"]) for k, v in one["summary"].items() if k != "before")
        + "**.",
        "",
        f"**2. Search side by side** on {result['search_supernet']}: minimise loss ({two['objectives']['loss']}"
        f") and parameters; budget {two['budget']} evaluations, {two['seeds']} seeds; Syne Tune {two['syne_tune']} "
        f"({two['syne_tune_settings']}). Hypervolume as a fraction of the union front of all runs, reference point "
        f"= the union's worst values pushed out by 10 % of their range ({two['reference_point'][0]:.3f} nats, "
        f"{two['reference_point'][1]:,.0f} parameters). Median over seeds:",
        "",
    ]
    ks = list(next(iter(two["hv_fraction_median"].values())))
    lines += [
        "| method | " + " | ".join(f"HV@{k}" for k in ks) + " | evals to 95 % | evals to 99 % | s/run (searcher) |",
        "|---|" + "---:|" * (len(ks) + 3),
    ]
    for m in two["methods"]:
        reach = [two["evals_to_reach"][f]["methods"][m] for f in ("0.95", "0.99")]
        cells = [("-" if r["median"] is None else f"{r['median']:.0f}") + f" ({r['reached']})" for r in reach]
        secs = [r for r in two["runs"] if r["method"] == m]
        lines.append(
            f"| {m} | "
            + " | ".join(f"{two['hv_fraction_median'][m][k]:.4f}" for k in ks)
            + " | "
            + " | ".join(cells)
            + f" | {np.median([r['seconds'] for r in secs]):.1f} "
            f"({np.median([r['searcher_seconds'] for r in secs]):.1f}) |"
        )
    t95, t99 = (two["evals_to_reach"][f]["target_hv_fraction"] for f in ("0.95", "0.99"))
    lines += [
        "",
        f"Targets: 95 % / 99 % of the best method's median final hypervolume ({t95:.4f} / {t99:.4f}); evaluations = "
        "median over seeds (runs that reached it); '-': the median run did not reach it within the budget. "
        "Every proposal counts as an evaluation (Syne Tune may repeat a configuration or propose one that differs only "
        "in the sizes of dropped blocks; elasticnas' searchers never propose an evaluated one); each distinct "
        f"configuration's loss was measured once and shared ({two['distinct_evaluated_configs']} distinct, "
        f"{two['evaluation_seconds']:.0f} s of measuring in all).",
        "",
        f"**3. The latency model**: Kendall tau against measured prefill latency (torch, 1 thread, batch 1, "
        f"interleaved `measure_latencies`, 3 rounds) of {three['n_test']} held-out sub-networks; the predictors "
        f"fitted on {three['n_fit']} other measured sub-networks (one-hot configuration), in brackets their 5-fold "
        "cross-validated tau on those. 'measured again': a second measurement of the same sub-networks (the "
        "noise ceiling).",
        "",
    ]
    Ls = list(three["prefill"])
    names = list(three["prefill"][Ls[0]]["tau"])
    lines += ["| predictor | " + " | ".join(f"tau at {L} tokens" for L in Ls) + " |", "|---|" + "---:|" * len(Ls)]
    for name in names:
        cells = []
        for L in Ls:
            row = three["prefill"][L]
            cv = row["cv_tau_on_fit_set"].get(name.removeprefix("predictor_"))
            cells.append(f"{row['tau'][name]:.3f}" + (f" ({cv:.3f})" if name.startswith("predictor_") else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    med = {L: float(np.median(three["prefill"][L]["test_ms"])) for L in Ls}
    d = three["decode"]
    lines += [
        "",
        "Median measured prefill latency: " + ", ".join(f"{med[L]:.2f} ms at {L} tokens" for L in Ls) + ". Decode "
        f"(`decode_latency_ms`, one token after {d['context_len']} tokens of KV cache, torch, median "
        f"{np.median(d['ms']):.2f} ms): tau against the MACs of one decode step {d['tau']['decode_macs']:.3f}, "
        f"against prefill MACs {d['tau']['prefill_macs']:.3f}, against parameters {d['tau']['params']:.3f}, against "
        f"depth (blocks) {d['tau']['depth']:.3f}. "
        "`HFSupernet` lists no per-layer specs, so there is no lookup table to compare.",
        "",
        "Results: `benchmarks/results/transformers.json`.",
        END,
    ]
    return "\n".join(lines)


def write_readme(result: dict[str, Any]) -> None:
    text = markdown(result)
    readme = README.read_text()
    if START in readme:
        readme = readme[: readme.index(START)] + text + readme[readme.index(END) + len(END) :]
    else:
        readme = readme.rstrip("\n") + "\n\n" + text + "\n"
    README.write_text(readme)


# -- main ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="every part tiny (< 60 s); no cache, no README")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pretrain-steps", type=int, default=300)
    ap.add_argument("--configs", type=int, default=50, help="random sub-networks compared in part 1")
    ap.add_argument("--val-windows", type=int, default=128, help="validation windows of part 1")
    ap.add_argument("--finetune-windows", type=int, default=1280)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--finetune-seeds", type=int, default=2, help="fine-tuning runs (seeds) of each super-network")
    ap.add_argument("--buckets", type=int, default=4)
    ap.add_argument("--budget", type=int, default=60)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--search-windows", type=int, default=32, help="validation windows of a search evaluation")
    ap.add_argument("--syne-tune-python", default=os.environ.get("ELASTICNAS_SYNE_TUNE_PYTHON"),
                    help="a Python with Syne Tune, when this one lacks it")  # fmt: skip
    ap.add_argument("--latency-configs", type=int, default=30, help="sub-networks to fit on and as many to test")
    ap.add_argument("--seq-lens", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--context-len", type=int, default=120, help="decode after this many tokens (< 128 positions)")
    ap.add_argument("--latency-budget-s", type=float, default=0.3, help="timing budget per sub-network")
    ap.add_argument("--predictors", nargs="+", default=["auto", "gp"])
    ap.add_argument(
        "--search-supernet",
        default="",
        help="super-network of parts 2 and 3 (a create_supernet name, e.g. tiny_gpt); default part 1's",
    )
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: search, latency")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.smoke:
        args.pretrain_steps, args.configs, args.val_windows, args.finetune_windows, args.batch_size = 4, 6, 16, 32, 8
        args.buckets, args.budget, args.seeds, args.search_windows = 2, 8, 1, 8
        args.finetune_seeds = 2
        args.latency_configs, args.seq_lens, args.context_len, args.latency_budget_s = 5, [16, 32], 32, 0.02
        args.predictors = ["ridge"]
    out = args.out or HERE / "results" / ("transformers_smoke.json" if args.smoke else "transformers.json")
    start, load_start = time.time(), os.getloadavg()

    import torch

    from elasticnas.data._spec import resolve_data

    torch.set_num_threads(1)  # the machine is shared: more threads wait on each other
    tiny = _load_builtin_tiny_gpt()
    train, val = resolve_data("pystdlib:train"), resolve_data("pystdlib:val")
    folder, pre = pretrained(args, tiny, train)
    how = "cached" if pre["cached"] else f"{pre['seconds']} s"
    print(f"[0] pretrained model: {folder} ({how})", flush=True)
    result: dict[str, Any] = {
        "command": " ".join(
            ["python", "benchmarks/elastic_transformers.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "model": tiny.MODEL,
        "pretrain": pre,
    }
    out.parent.mkdir(parents=True, exist_ok=True)

    def save(**parts: Any) -> None:
        """Write what is done so far (a failing later part keeps the earlier numbers)."""
        result.update(parts)
        result.update({
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "wall_seconds": round(time.time() - start, 1),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                        "torch": torch.__version__, "torch_threads": 1, "load_average_start": load_start,
                        "load_average_end": os.getloadavg(), "cuda": torch.cuda.is_available()},
        })  # fmt: skip
        out.write_text(json.dumps(result, indent=1) + "\n")

    one, net = sorted_vs_first_k(args, folder, train, val)
    save(sorted_vs_first_k=one, model_params=int(net.costs(net.max_config())["params"]))
    if args.search_supernet:
        from elasticnas.supernets import create_supernet

        net = create_supernet(args.search_supernet)
    net.eval()
    skip = set(filter(None, args.skip.split(",")))
    two = search(args, net, val) if "search" not in skip else None
    save(search_supernet=args.search_supernet or "part 1's fine-tuned sorted super-network", search=two)
    three = latency_model(args, net) if "latency" not in skip else None
    save(latency_model=three)
    print(json.dumps({"part1": one["summary"], "part2": two and {k: two[k] for k in ("hv_fraction_median",
                      "evals_to_reach")}}, indent=1, default=str)[:6000])  # fmt: skip
    if not args.smoke and two is not None and three is not None:
        write_readme(result)
    print(f"wrote {out} in {result['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    if "--syne-tune-worker" in sys.argv:
        syne_tune_worker()
        raise SystemExit(0)
    raise SystemExit(main())
