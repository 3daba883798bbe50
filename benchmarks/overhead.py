"""Searcher overhead: one round of 50 proposals; ``ask(1)`` with 500 finished trials; the searcher's share of a
demo run.

In the OFA-MobileNetV3 space (``ofa_mbv3_note10``), a searcher is told ``n``
finished trials (random sub-networks evaluated by the oracle), then
``ask(50)`` is timed: for ``predicted_hvi`` that is one predictor fit, the
candidate pool and the batch selection; for ``linas`` one LINAS loop (predictor
fits and an inner NSGA-II of ``--linas-inner-evals`` predictor calls, DyNAS-T's
20,000 for this space). Target: <= 2 s per round for ``predicted_hvi``.

Each round records wall time and the process's CPU time (one BLAS thread, so
the CPU time is what the round takes on an idle core; on this shared machine
the wall time also counts the time other processes hold the CPU).

``ask(1)`` latency (target: median <= 50 ms): the default searcher is told 500
random evaluated sub-networks of ``ofa_mbv3_note10``, then asked for one
proposal at a time and told its result, ``--latency-steps`` times; every ask's
wall and CPU time is recorded (between two hyperparameter fits most asks only
condition the model on the new result). Beside the default, the same loop
refitting after every result (``refit_fraction=0``, the previous schedule) and,
with ``--before-src DIR``, the code of another checkout (run in a subprocess
with ``PYTHONPATH=DIR``) in the same run, so the ratios compare like with like.

Demo share (target: searcher <= 10 % of the wall time): ``elasticnas demo``'s
search as the demo runs it (the built-in ``tiny_mbv3`` super-network, accuracy
and ONNX Runtime latency both measured, the extremes first, seed 0,
``--demo-evals`` evaluations), with the searcher's ``ask`` / ``tell`` /
``diagnostics`` and the evaluations timed apart in one run. The same search with
a stand-in evaluation (cheap synthetic metrics, so only the searcher costs) is
timed for each variant, which gives the share the other variants would have had
with the measured evaluations.

Cheap metric (``--only cheap``): the same stand-in search with the super-network's
exact MACs as the second objective, a cheap metric the searcher computes for
every candidate it considers (thousands per round), as ``elasticnas search
--metrics accuracy_top1,macs`` runs it; the searcher's seconds, beside
``--before-src``.

    python benchmarks/overhead.py --smoke     # CI, < 60 s (no demo; cheap with 25 evaluations)
    python benchmarks/overhead.py             # full
    python benchmarks/overhead.py --only latency demo --before-src /tmp/before/src
    python benchmarks/overhead.py --only cheap --before-src /tmp/before/src --out benchmarks/results/overhead_cheap.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from elasticnas.problems import create_problem  # noqa: E402
from elasticnas.records import TrialRecord  # noqa: E402
from elasticnas.searchers import create_searcher  # noqa: E402

HERE = Path(__file__).resolve().parent


def time_round(
    method: str, n_trials: int, seed: int, kwargs: dict[str, Any], batch: int = 50
) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, proposals) of one ``ask(batch)`` after ``n_trials`` random trials."""
    problem = create_problem("ofa_mbv3_note10")
    space = problem.space
    configs = space.sample_many(n_trials, seed=1000 + seed)
    records = [TrialRecord(i, c, space.config_id(c), problem(c)) for i, c in enumerate(configs)]
    searcher = create_searcher(
        method, space, problem.objective_list, cheap_metrics=dict(problem.cheap_metrics), seed=seed, **kwargs
    )
    searcher.tell(records)
    start, cpu_start = time.perf_counter(), time.process_time()
    proposals = searcher.ask(batch)
    # LINAS may propose fewer: its final population can hold evaluated ones
    return time.perf_counter() - start, time.process_time() - cpu_start, len(proposals)


def predictor_table(sizes: list[int], seed: int = 0) -> list[dict[str, Any]]:
    """5-fold cross-validated Kendall tau / MAE and fit time of every registered predictor on random OFA
    sub-networks (accuracy_top1, the searcher's features)."""
    from elasticnas.predictors import create_predictor, cross_validate, list_predictors

    problem = create_problem("ofa_mbv3_note10")
    space = problem.space
    rows = []
    for n in sizes:
        configs = space.sample_many(n, seed=seed + n)
        G = np.array([space.to_genes(c) for c in configs])
        X = np.hstack([space.encode_genes(G, "onehot"), space.encode_genes(G, "ordinal")])
        y = np.array([problem.evaluate(c)["accuracy_top1"] for c in configs])
        for name in list_predictors():
            start = time.perf_counter()
            q = cross_validate(lambda name=name: create_predictor(name, seed=0), X, y, n_folds=5, seed=0)
            rows.append({"predictor": name, "n": n, "kendall_tau": q.kendall_tau, "mae": q.mae,
                         "fit_seconds": (time.perf_counter() - start) / 5})
            print(f"{name:12s} n={n:4d} tau {q.kendall_tau:.3f} MAE {q.mae:.3f} fit {rows[-1]['fit_seconds']:.2f} s",
                  flush=True)
    return rows


def ask_latency(kwargs: dict[str, Any], n_trials: int, steps: int, seeds: list[int]) -> dict[str, Any]:
    """Wall and CPU seconds of every ``ask(1)`` (each result told before the next ask) after ``n_trials``
    random trials."""
    problem = create_problem("ofa_mbv3_note10")
    space = problem.space
    wall: list[float] = []
    cpu: list[float] = []
    for seed in seeds:
        configs = space.sample_many(n_trials, seed=1000 + seed)
        records = [TrialRecord(i, c, space.config_id(c), problem(c)) for i, c in enumerate(configs)]
        searcher = create_searcher(
            "predicted_hvi", space, problem.objective_list, cheap_metrics=dict(problem.cheap_metrics), seed=seed,
            **kwargs,
        )
        searcher.tell(records)
        for k in range(steps):
            start, cpu_start = time.perf_counter(), time.process_time()
            (config,) = searcher.ask(1)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
            searcher.tell([TrialRecord(n_trials + k, config, space.config_id(config), problem(config))])
    return {"kwargs": kwargs, "n_trials": n_trials, "steps": steps, "seeds": seeds, **_spread("wall", wall),
            **_spread("cpu", cpu), "wall_seconds": wall, "cpu_seconds": cpu}


def _spread(name: str, values: list[float]) -> dict[str, float]:
    v = np.array(values)
    return {f"{name}_median": float(np.median(v)), f"{name}_mean": float(v.mean()),
            f"{name}_p90": float(np.percentile(v, 90)), f"{name}_max": float(v.max()), f"{name}_total": float(v.sum())}


class _Timed:
    """Seconds spent in a searcher's ask / tell / diagnostics (wrapped on the instance)."""

    def __init__(self, searcher: Any) -> None:
        self.seconds = 0.0
        self.calls = 0
        for name in ("ask", "tell", "diagnostics"):
            setattr(searcher, name, self._wrap(getattr(searcher, name)))

    def _wrap(self, fn: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        return timed


def demo_search(kwargs: dict[str, Any], n_evals: int, real: bool, cheap_macs: bool = False) -> dict[str, Any]:
    """The demo's search (``real``: its super-network problem; else a stand-in evaluation of synthetic
    metrics on the same space and objectives), searcher and evaluation seconds apart. ``cheap_macs``: the
    stand-in's second objective is the super-network's exact MACs, a cheap metric (the searcher computes it
    for every candidate it considers), instead of a synthetic latency."""
    from elasticnas.study import create_study, extremes

    cheap: dict[str, Any] = {}
    if real:
        from elasticnas.problems._supernet import builtin_data, supernet_problem
        from elasticnas.supernets import create_supernet

        problem = supernet_problem(create_supernet("tiny_mbv3"), ("accuracy_top1", "latency_ms"),
                                   runtime="onnxruntime", **builtin_data("tiny_mbv3"))
        space, objectives, evaluate = problem.space, dict(problem.objectives), problem.evaluate
    else:
        from elasticnas.supernets import MobileNetV3Space, create_supernet

        supernet = create_supernet("tiny_mbv3")
        space = supernet.search_space
        assert isinstance(space, MobileNetV3Space)
        objectives = {"accuracy_top1": "maximize", "latency_ms": "minimize"}
        if cheap_macs:
            from elasticnas.measure import Measurer

            objectives = {"accuracy_top1": "maximize", "macs": "minimize"}
            cheap = dict(Measurer(supernet).cheap_metrics(["macs"]))

        def evaluate(config: dict[str, Any]) -> dict[str, float]:
            # a function of the network, as a real evaluation is: skipped blocks' genes count as their first value
            g = space.to_genes(config).astype(float)
            active = np.array(space.active_blocks(config))
            g[: 2 * len(active)][~np.tile(active, 2)] = 0.0
            return {"accuracy_top1": 80 + 3 * float(np.sqrt(g.sum() + 1)) + float(np.sin(g[:5].sum())),
                    "latency_ms": 0.05 + 0.01 * float(g.sum()) + 0.005 * float(np.cos(g[5:10].sum()))}

    eval_seconds: list[float] = []

    def timed_evaluate(config: dict[str, Any]) -> dict[str, float]:
        start = time.perf_counter()
        try:
            return evaluate(config)
        finally:
            eval_seconds.append(time.perf_counter() - start)

    study = create_study(space, objectives)
    searcher = create_searcher("predicted_hvi", space, study.objectives, constraints=study.constraints, seed=0,
                               cheap_metrics=cheap, **kwargs)
    timer = _Timed(searcher)
    start = time.perf_counter()
    study.optimize(timed_evaluate, n_evals=n_evals, searcher=searcher, cheap_metrics=cheap,
                   initial_configs=extremes(space), show_progress=False)
    wall = time.perf_counter() - start
    return {"kwargs": kwargs, "real_evaluation": real, "n_evals": n_evals, "wall_seconds": wall,
            "searcher_seconds": timer.seconds, "evaluation_seconds": float(np.sum(eval_seconds)),
            "evaluation_seconds_median": float(np.median(eval_seconds)),
            "searcher_share": timer.seconds / wall, "rounds": searcher.diagnostics().get("rounds")}


def _before(src: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The latency and stand-in demo measurements of the code under ``src`` (a subprocess)."""
    cmd = [sys.executable, __file__, "--child", "--only", *args.only, "--latency-steps", str(args.latency_steps),
           "--latency-seeds", str(args.latency_seeds), "--demo-evals", str(args.demo_evals)]
    env = dict(os.environ, PYTHONPATH=str(src))
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                    help="run these sections; the others are kept from the results file")
    ap.add_argument("--trials", type=int, nargs="+", default=[100, 250, 500, 1000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--linas-inner-evals", type=int, default=20000)
    ap.add_argument("--latency-steps", type=int, default=50, help="asks timed per seed after 500 trials")
    ap.add_argument("--latency-seeds", type=int, default=3)
    ap.add_argument("--demo-evals", type=int, default=80, help="evaluations of the demo's search")
    ap.add_argument("--before-src", type=Path, default=None,
                    help="a checkout's src folder whose searcher is measured beside this one")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--markdown", type=Path, default=None, help="print the README tables of a results file")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.markdown is not None:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    if args.child:  # the measurements of --before-src, as one JSON line
        child: dict[str, Any] = {}
        if "latency" in args.only:
            child["latency"] = ask_latency({}, 500, args.latency_steps, list(range(args.latency_seeds)))
        if "demo" in args.only:
            child["demo_standin"] = demo_search({}, args.demo_evals, real=False)
        if "cheap" in args.only:
            child["demo_standin_macs"] = demo_search({}, args.demo_evals, real=False, cheap_macs=True)
        print(json.dumps(child))
        return 0
    if args.smoke:
        args.trials, args.repeats, args.linas_inner_evals = [100], 1, 2000
        args.latency_steps, args.latency_seeds, args.demo_evals = 10, 1, 25
        args.only = [s for s in args.only if s != "demo"]
    out = args.out or HERE / "results" / ("overhead_smoke.json" if args.smoke else "overhead.json")
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    result.update(command="python benchmarks/overhead.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                  machine={"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg()})
    if "rounds" in args.only:
        result.update(rounds_section(args))
    if "predictors" in args.only:
        result["predictor_quality_ofa"] = predictor_table([60] if args.smoke else [100, 400])
    variants = {"default": {}, "refit every result": {"refit_fraction": 0.0}}
    before = _before(args.before_src, args) if args.before_src is not None and not args.smoke else None
    if "latency" in args.only:
        seeds = list(range(args.latency_seeds))
        lat = {name: ask_latency(kw, 500, args.latency_steps, seeds) for name, kw in variants.items()}
        if before is not None:
            lat[f"before ({args.before_src})"] = before["latency"]
        for name, r in lat.items():
            print(f"ask(1) after 500 trials, {name:40s} wall median {1000 * r['wall_median']:6.1f} ms, mean "
                  f"{1000 * r['wall_mean']:6.1f} ms, max {1000 * r['wall_max']:6.0f} ms; CPU median "
                  f"{1000 * r['cpu_median']:6.1f} ms, mean {1000 * r['cpu_mean']:6.1f} ms", flush=True)
        result["ask_latency_500"] = {"target_median_seconds": 0.05, "variants": lat}
    if "demo" in args.only:
        real = demo_search({}, args.demo_evals, real=True)
        standin = {name: demo_search(kw, args.demo_evals, real=False) for name, kw in variants.items()}
        if before is not None:
            standin[f"before ({args.before_src})"] = before["demo_standin"]
        for r in standin.values():  # the share with the measured evaluations
            r["share_with_measured_evaluations"] = r["searcher_seconds"] / (
                r["searcher_seconds"] + real["evaluation_seconds"])
        print(f"demo search ({args.demo_evals} evaluations): wall {real['wall_seconds']:.0f} s, searcher "
              f"{real['searcher_seconds']:.1f} s ({100 * real['searcher_share']:.1f} %), evaluations "
              f"{real['evaluation_seconds']:.0f} s", flush=True)
        for name, r in standin.items():
            print(f"  stand-in evaluation, {name:40s} searcher {r['searcher_seconds']:.1f} s -> "
                  f"{100 * r['share_with_measured_evaluations']:.2f} % of a demo", flush=True)
        result["demo_share"] = {"target_share": 0.10, "demo": real, "standin": standin}
    if "cheap" in args.only:
        macs = {"default": demo_search({}, args.demo_evals, real=False, cheap_macs=True)}
        if before is not None:
            macs[f"before ({args.before_src})"] = before["demo_standin_macs"]
        for name, r in macs.items():
            print(f"  stand-in accuracy, exact MACs cheap, {name:40s} searcher {r['searcher_seconds']:.1f} s",
                  flush=True)
        result["demo_cheap_macs"] = macs
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return 0


SECTIONS = ("rounds", "predictors", "latency", "demo", "cheap")


def markdown(result: dict[str, Any]) -> str:
    """README tables of a results file: ask(1) latency at 500 trials, the demo's searcher share, rounds of 50."""
    lines: list[str] = []
    lat = result.get("ask_latency_500", {}).get("variants", {})
    if lat:
        base = lat.get("default")
        lines += ["| searcher code | wall median (ms) | wall mean | wall max | CPU median (ms) | CPU mean | CPU max "
                  "| CPU mean vs default |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, r in lat.items():
            ratio = f"{r['cpu_mean'] / base['cpu_mean']:.1f}x" if base else "-"
            lines.append(f"| {name} | {1000 * r['wall_median']:.0f} | {1000 * r['wall_mean']:.0f} | "
                         f"{1000 * r['wall_max']:.0f} | {1000 * r['cpu_median']:.0f} | {1000 * r['cpu_mean']:.0f} | "
                         f"{1000 * r['cpu_max']:.0f} | {ratio} |")
        lines.append("")
    demo = result.get("demo_share")
    if demo:
        d = demo["demo"]
        lines += [f"Demo search, {d['n_evals']} evaluations: wall {d['wall_seconds']:.0f} s, evaluations "
                  f"{d['evaluation_seconds']:.0f} s (median {d['evaluation_seconds_median']:.2f} s each), searcher "
                  f"{d['searcher_seconds']:.1f} s = **{100 * d['searcher_share']:.1f} %** of the wall time.", "",
                  "| searcher code (stand-in evaluation) | searcher seconds | share of a demo with the measured "
                  "evaluations | vs default |", "|---|---:|---:|---:|"]
        base_s = demo["standin"].get("default", {}).get("searcher_seconds")
        for name, r in demo["standin"].items():
            ratio = f"{r['searcher_seconds'] / base_s:.1f}x" if base_s else "-"
            lines.append(f"| {name} | {r['searcher_seconds']:.1f} | {100 * r['share_with_measured_evaluations']:.1f} % "
                         f"| {ratio} |")
        lines.append("")
    macs = result.get("demo_cheap_macs")
    if macs:
        base_m = macs.get("default", {}).get("searcher_seconds")
        lines += ["| searcher code (stand-in accuracy, exact MACs cheap) | searcher seconds | rounds | vs default |",
                  "|---|---:|---:|---:|"]
        for name, r in macs.items():
            ratio = f"{r['searcher_seconds'] / base_m:.1f}x" if base_m else "-"
            lines.append(f"| {name} | {r['searcher_seconds']:.1f} | {r['rounds']} | {ratio} |")
        lines.append("")
    rows = result.get("rows", [])
    if rows:
        lines += ["| trials told | method | CPU (s, median / max) | wall (s, median / max) |", "|---:|---|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['n_trials']} | {r['method']} "
                         f"| {r['cpu_seconds_median']:.2f} / {r['cpu_seconds_max']:.2f} "
                         f"| {r['seconds_median']:.2f} / {r['seconds_max']:.2f} |")
    quality = result.get("predictor_quality_ofa", [])
    if quality:
        lines += ["", "| predictor | n | Kendall tau | MAE (points) | fit (s) |", "|---|---:|---:|---:|---:|"]
        for q in quality:
            lines.append(f"| {q['predictor']} | {q['n']} | {q['kendall_tau']:.3f} | {q['mae']:.3f} | "
                         f"{q['fit_seconds']:.2f} |")
    return "\n".join(lines)


def rounds_section(args: argparse.Namespace) -> dict[str, Any]:
    """One ``ask(50)`` after n random trials, ``predicted_hvi`` and ``linas``."""
    methods = {"predicted_hvi": {"round_size": 50}, "linas": {"inner_evals": args.linas_inner_evals}}
    # one-time costs of a process (imports, thread-pool introspection, JIT compilation) are paid once per
    # study, not per round: measure them apart on a first, unrecorded round
    cold = {m: time_round(m, 60, 99, kw | ({"inner_evals": 500} if m == "linas" else {}))[0]
            for m, kw in methods.items()}
    print("first round in a fresh process (one-time costs included):", {m: round(t, 2) for m, t in cold.items()})
    rows = []
    for n in args.trials:
        for method, kw in methods.items():
            res = [time_round(method, n, seed, kw) for seed in range(args.repeats)]
            times, cpu = [t for t, _, _ in res], [c for _, c, _ in res]
            rows.append({"method": method, "n_trials": n, "seconds_median": float(np.median(times)),
                         "seconds_max": float(np.max(times)), "seconds": times,
                         "cpu_seconds_median": float(np.median(cpu)), "cpu_seconds_max": float(np.max(cpu)),
                         "cpu_seconds": cpu, "proposed": [k for _, _, k in res]})
            print(f"{method:14s} n={n:5d}  {np.median(times):7.2f} s per round of 50 (max {np.max(times):.2f}); "
                  f"CPU {np.median(cpu):.2f} s (max {np.max(cpu):.2f})", flush=True)
    return {"linas_inner_evals": args.linas_inner_evals, "target_seconds": 2.0, "first_round_cold_seconds": cold,
            "rows": rows}


if __name__ == "__main__":
    raise SystemExit(main())
