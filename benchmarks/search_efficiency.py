"""Search efficiency side by side: hypervolume against the number of expensive evaluations.

Every method runs on the same problems with the same seeds in one run; the
claims are ratios between them. Each run drives a searcher through its public
ask / tell interface (what ``Study.optimize`` does, without the storage), one
proposal at a time, until ``--budget`` expensive evaluations; cheap metrics
(lookup-table latency) are free, as in ``study.optimize(cheap_metrics=...)``.

Hypervolume uses each problem's fixed reference point and is reported as a
fraction of the reference front's hypervolume (exhaustive for the tabular
HW-GPT-Bench problems; a 5.6x10^5-evaluation oracle search for OFA).

    python benchmarks/search_efficiency.py --smoke                   # CI, < 60 s
    python benchmarks/search_efficiency.py --seeds 10 --workers 2    # full run (see README for wall time)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from elasticnas.pareto import hypervolume, hypervolume_history  # noqa: E402
from elasticnas.problems import Problem, create_problem, list_problems  # noqa: E402
from elasticnas.searchers import Searcher, create_searcher  # noqa: E402
from elasticnas.study import create_study  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # suite_problems
CHECKPOINTS = (100, 250, 500, 1000)
OURS = "predicted_hvi"
METHODS = ("random", "nsga2", "optuna_nsga2", "optuna_tpe", "linas", OURS)
PROBLEMS = ("ofa_mbv3_note10", "hwgpt_s_gpu", "hwgpt_s_cpu")


def problem_by_name(name: str) -> Problem:
    """A built-in problem, or one of the generality suite's (``suite_problems.py``)."""
    if name in list_problems():
        return create_problem(name)
    from suite_problems import SUITE, suite_problem

    if name not in SUITE:
        raise SystemExit(f"unknown problem {name!r}: built-in {list_problems()}, suite {sorted(SUITE)}")
    return suite_problem(name)


def drive(problem: Problem, searcher: Searcher, budget: int, batch: int = 1) -> list[list[float]]:
    """Ask an in-memory study driven by ``searcher`` for ``batch`` trials at a time (``batch`` workers that
    start together), evaluate them and tell it the problem's metrics, until ``budget`` evaluations (or 20
    empty asks); returns every evaluated minimisation objective vector, in order."""
    study = create_study(problem.space, dict(problem.objectives))
    study.set_searcher(searcher, cheap_metrics=problem.cheap_metrics)
    F: list[list[float]] = []
    stalls = 0
    while len(F) < budget and stalls < 20:
        trials = study.ask(min(batch, budget - len(F)))
        stalls = 0 if trials else stalls + 1
        for trial in trials:
            record = study.tell(trial, problem(trial.config))
            assert record is not None  # a problem's metrics always finish the trial
            F.append(searcher.objective_values(record).tolist())
    return F


def method_label(method: str, batch: int, searcher_kwargs: dict[str, Any] | None = None) -> str:
    """How a method run with ``batch`` proposals per ask (and another ``predictor``, ``beta``,
    ``expected_improvement=False``, ``offspring_draws`` or ``length_scale_per_choice=False`` in ``searcher_kwargs``)
    is named in the results."""
    kw = searcher_kwargs or {}
    predictor = f"{kw['predictor']}" if kw.get("predictor") else None  # a name, or a factory (search_ceiling)
    parts = [method, predictor, f"beta{kw['beta']:g}" if "beta" in kw else None,
             "optimistic" if kw.get("expected_improvement") is False else None,
             f"draws{kw['offspring_draws']}" if "offspring_draws" in kw else None,
             "one_length_scale" if kw.get("length_scale_per_choice") is False else None,
             f"ask{batch}" if batch != 1 else None]
    return "/".join(p for p in parts if p)


def run_one(
    problem_name: str,
    method: str,
    seed: int,
    budget: int,
    searcher_kwargs: dict[str, Any],
    keep_objectives: bool = False,
    batch: int = 1,
) -> dict[str, Any]:
    """One search; returns the hypervolume fraction after every evaluation (and, with ``keep_objectives``,
    every evaluated minimisation objective vector)."""
    problem = problem_by_name(problem_name)
    objectives = problem.objective_list
    searcher = create_searcher(
        method, problem.space, objectives, cheap_metrics=dict(problem.cheap_metrics), seed=seed, **searcher_kwargs
    )
    start = time.perf_counter()
    F = drive(problem, searcher, budget, batch)
    seconds = time.perf_counter() - start
    run = {"problem": problem_name, "method": method_label(method, batch, searcher_kwargs),
           "seed": seed, "seconds": seconds,
           "hv": hypervolume_fractions(problem, F).tolist()}
    if keep_objectives:
        run["objectives"] = F
    return run


def hypervolume_fractions(problem: Problem, F: list[list[float]]) -> np.ndarray:
    """Hypervolume after every evaluation of the minimisation vectors ``F``, as a fraction of the problem's
    reference front's (at its reference point)."""
    ref = problem.reference_point_min()
    front = problem.reference_front() * np.array([o.sign for o in problem.objective_list])
    return hypervolume_history(np.array(F), ref) / hypervolume(front, ref)


def _methods(runs: list[dict[str, Any]]) -> list[str]:
    """The methods of ``runs``: the known ones in :data:`METHODS` order, then the others (peers, batches)."""
    present = {r["method"] for r in runs}
    return [m for m in METHODS if m in present] + sorted(present - set(METHODS))


def _evals_to_reach(history: np.ndarray, target: float) -> float:
    hit = np.flatnonzero(history >= target - 1e-12)
    return float(hit[0] + 1) if len(hit) else float("inf")


def _stats(values: list[float]) -> dict[str, float]:
    """Median and quartiles; runs that never reached a target count as +inf (beyond the budget)."""
    v = np.array(values, dtype=float)
    big = 1e12
    # with unreached runs, take order statistics (never interpolate towards +inf)
    q = np.percentile(np.where(np.isinf(v), big, v), [25, 50, 75], method="lower" if np.isinf(v).any() else "linear")
    q = [float("inf") if x >= big else float(x) for x in q]
    return {"median": q[1], "q25": q[0], "q75": q[2]}


def summarise(runs: list[dict[str, Any]], budget: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for problem in sorted({r["problem"] for r in runs}):
        pr = [r for r in runs if r["problem"] == problem]
        methods = _methods(pr)
        hv_at: dict[str, dict[str, Any]] = {}
        for m in methods:
            hists = [np.array(r["hv"]) for r in pr if r["method"] == m]
            n_min = min(len(h) for h in hists)
            hv_at[m] = {str(k): _stats([float(h[k - 1]) for h in hists]) for k in CHECKPOINTS if k <= n_min}
            hv_at[m]["seconds"] = _stats([r["seconds"] for r in pr if r["method"] == m])
        targets = {}
        if "nsga2" in methods:
            k = max(int(c) for c in hv_at["nsga2"] if c.isdigit())
            targets[f"nsga2@{k}"] = (hv_at["nsga2"][str(k)]["median"], k)
        if "linas" in methods and "500" in hv_at["linas"]:
            targets["linas@500"] = (hv_at["linas"]["500"]["median"], 500)
        reach: dict[str, Any] = {}
        for tname, (target, base_evals) in targets.items():
            reach[tname] = {"target_hv_fraction": target, "methods": {}}
            for m in methods:
                evals = [_evals_to_reach(np.array(r["hv"]), target) for r in pr if r["method"] == m]
                st = _stats(evals)
                st["reached"] = int(np.sum(np.isfinite(evals)))
                st["runs"] = len(evals)
                st["speedup"] = base_evals / st["median"] if np.isfinite(st["median"]) else 0.0
                reach[tname]["methods"][m] = st
        out[problem] = {"hv_fraction": hv_at, "evals_to_reach": reach, "goal": _goal(pr, hv_at)}
    return out


def _goal(runs: list[dict[str, Any]], hv_at: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Issue #20's goal on one problem: ours at 100 / 250 / 500 evaluations at least the best other method's
    (medians), and the evaluations ours needs (median over its seeds) to reach the best other's at 500."""
    others = [m for m in hv_at if m != OURS and "/" not in m]
    if OURS not in hv_at or not others:
        return None
    out: dict[str, Any] = {"checkpoints": {}}
    for k in ("100", "250", "500"):
        rivals = {m: hv_at[m][k]["median"] for m in others if k in hv_at[m]}
        if k not in hv_at[OURS] or not rivals:
            continue
        best = max(rivals, key=lambda m: rivals[m])
        ours = hv_at[OURS][k]["median"]
        out["checkpoints"][k] = {"ours": ours, "best_other": best, "best_other_hv": rivals[best],
                                 "met": ours >= rivals[best]}
    if "500" in out["checkpoints"]:
        target = out["checkpoints"]["500"]["best_other_hv"]
        evals = _stats([_evals_to_reach(np.array(r["hv"]), target) for r in runs if r["method"] == OURS])["median"]
        out["evals_to_best_other_at_500"] = evals
        out["reached_within_250"] = bool(evals <= 250)
    return out


class RunLog:
    """Each finished run appended to ``OUT.runs.jsonl`` at once, so a benchmark killed after hours keeps what
    it finished (``--merge`` reads that file); :meth:`close` removes it once the results file holds them."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out).with_suffix(".runs.jsonl")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")

    def add(self, run: dict[str, Any]) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(json_safe(run)) + "\n")

    def close(self) -> None:
        self.path.unlink()


def load_results(path: Path) -> dict[str, Any]:
    """A results file of this script, or the runs a killed one had finished (its ``.runs.jsonl``)."""
    if path.name.endswith(".runs.jsonl"):
        runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return {"command": f"finished runs of a stopped benchmark: {path.name}", "budgets": {},
                "budget": max(len(r["hv"]) for r in runs),
                "wall_seconds": sum(r["seconds"] for r in runs), "seeds": 1 + max(r["seed"] for r in runs),
                "runs": runs}
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def merge(results: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """One results document from several runs of this script: runs keyed by (problem, method, seed), later
    documents winning; summary recomputed; the commands kept."""
    runs: dict[tuple[str, str, int], dict[str, Any]] = {}
    budgets: dict[str, int] = {}
    for doc in results:
        runs.update({(r["problem"], r["method"], r["seed"]): r for r in doc["runs"]})
        budgets.update(doc.get("budgets", {}))
    merged = dict(results[0])
    merged.update(
        command=[doc["command"] for doc in results],
        merged_from=names,
        wall_seconds=sum(doc["wall_seconds"] for doc in results),
        budgets=budgets,
        methods=_methods(list(runs.values())),
        seeds=max(doc["seeds"] for doc in results),
        runs=list(runs.values()),
    )
    merged["summary"] = summarise(merged["runs"], merged["budget"])
    return merged


def dynast_traces(max_evals: tuple[int, ...] = (100, 250, 500)) -> dict[str, Any]:
    """DyNAS-T's own OFA-MobileNetV3 w1.0 runs (measured ImageNet top-1 vs MACs), hypervolume after N evaluations,
    as a fraction of the union of all five traces' front. A different oracle from ours: compare ratios only."""
    folder = HERE / "data" / "dynast_traces"
    traces = {}
    for path in sorted(folder.glob("mbnv3w10_*.csv")):
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        traces[path.stem] = np.array([[-float(r["Top-1 Acc (%)"]), float(r["MACs"]) / 1e6] for r in rows])
    if not traces:
        return {}
    allF = np.vstack(list(traces.values()))
    ref = np.array([allF[:, 0].max(), allF[:, 1].max()])
    hv_ref = hypervolume(allF, ref)
    out = {"note": "DyNAS-T's published runs: measured ImageNet top-1 (w1.0, r=224) vs MACs; reference point = worst "
           "accuracy and MACs seen in any trace; fraction of the union front of all traces. Different oracle and "
           "objectives from the tables above.", "traces": {}}
    for name, F in traces.items():
        h = hypervolume_history(F, ref) / hv_ref
        out["traces"][name] = {"n_evals": len(F), **{str(k): float(h[min(k, len(h)) - 1]) for k in max_evals}}
    return out


def markdown(result: dict[str, Any]) -> str:
    """Tables for the README: hypervolume fractions, and evaluations to reach each target with ratios to ours."""
    lines = []
    fmt = lambda st: "-" if st is None else f"{st['median']:.3f} [{st['q25']:.3f}, {st['q75']:.3f}]"  # noqa: E731
    for problem, summ in result["summary"].items():
        budgets = result.get("budgets", {})
        lines += [f"**{problem}** — hypervolume / reference, median [IQR] over {result['seeds']} seeds", "",
                  "| method | budget | 100 | 250 | 500 | 1000 | s/run |", "|---|---:|---:|---:|---:|---:|---:|"]
        for m, h in summ["hv_fraction"].items():
            cells = [fmt(h.get(k)) for k in ("100", "250", "500", "1000")]
            lines.append(f"| {m} | {budgets.get(m, result['budget'])} | " + " | ".join(cells)
                         + f" | {h['seconds']['median']:.0f} |")
        lines.append("")
        for target, d in summ["evals_to_reach"].items():
            ours = d["methods"].get(OURS, {}).get("median")
            lines += [f"Evaluations to reach {target} = {d['target_hv_fraction']:.4f} (median [IQR]; runs reaching it; "
                      f"ratio = method's evaluations / {OURS}'s):", "",
                      "| method | evaluations | reached | ratio vs ours |", "|---|---:|---:|---:|"]
            for m, st in d["methods"].items():
                med = st["median"]
                budget = budgets.get(m, result["budget"])
                ev = "-" if med is None else (f"{med:.0f} [{st['q25']:.0f}, "
                                              + ("-" if st["q75"] is None else f"{st['q75']:.0f}") + "]")
                if med is None:
                    ev = f"> {budget}"
                if m == OURS or ours is None:
                    ratio = "1" if m == OURS else "-"
                elif med is None:
                    ratio = f"> {budget / ours:.1f}x"
                else:
                    ratio = f"{med / ours:.1f}x"
                lines.append(f"| {m} | {ev} | {st['reached']}/{st['runs']} | {ratio} |")
            lines.append("")
    goals = {p: summ["goal"] for p, summ in result["summary"].items() if summ.get("goal")}
    if goals:
        lines += [f"**Goal of issue #20** ({OURS} against the best other method at each checkpoint, medians):", "",
                  "| problem | 100 | 250 | 500 | evaluations to the best other's @500 |", "|---|---|---|---|---:|"]
        for problem, g in goals.items():
            cells = []
            for k in ("100", "250", "500"):
                c = g["checkpoints"].get(k)
                cells.append("-" if c is None else f"{'**met**' if c['met'] else 'not met'}: {c['ours']:.3f} vs "
                             f"{c['best_other_hv']:.3f} ({c['best_other']})")
            evals = g.get("evals_to_best_other_at_500")
            reach = "-" if evals is None else ("> budget" if not np.isfinite(evals) else f"{evals:.0f}")
            lines.append(f"| {problem} | " + " | ".join(cells) + f" | {reach} |")
        lines.append("")
    return "\n".join(lines)


def suite_table(result: dict[str, Any]) -> str:
    """One table for many problems: every method's median hypervolume fraction at 100 / 250 / 500 evaluations,
    its number of seeds and median seconds per run; the best median at each checkpoint in bold."""
    lines = ["| problem | method | seeds | 100 | 250 | 500 | s/run |", "|---|---|---:|---:|---:|---:|---:|"]
    for problem, summ in result["summary"].items():
        hv_at = summ["hv_fraction"]
        best = {k: max((h[k]["median"] for h in hv_at.values() if k in h), default=None) for k in ("100", "250", "500")}
        for m, h in hv_at.items():
            seeds = sum(1 for r in result["runs"] if r["problem"] == problem and r["method"] == m)
            cells = ["-" if k not in h else (f"**{h[k]['median']:.3f}**" if h[k]["median"] == best[k]
                                             else f"{h[k]['median']:.3f}") for k in ("100", "250", "500")]
            lines.append(f"| {problem} | {m} | {seeds} | " + " | ".join(cells) + f" | {h['seconds']['median']:.0f} |")
    return "\n".join(lines)


def json_safe(obj: Any) -> Any:
    """JSON-safe: non-finite floats (a target never reached) become null."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def results_json(result: dict[str, Any]) -> str:
    """A results file's text: indented, except that every run is one line (a run holds a hypervolume per
    evaluation, one value per line otherwise)."""
    data = json_safe(result)
    runs = data.pop("runs", None)
    text = json.dumps(data, indent=1)
    if runs is None:
        return text
    lines = ",\n".join("  " + json.dumps(r) for r in runs)
    return text[:-1].rstrip() + ("," if data else "") + '\n "runs": [' + (f"\n{lines}\n ]" if runs else "]") + "\n}"


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = sorted({r["problem"] for r in runs})
    fig, axes = plt.subplots(1, len(problems), figsize=(5.5 * len(problems), 4.2), squeeze=False)
    for ax, problem in zip(axes[0], problems, strict=True):
        for m in _methods(runs):
            hists = [r["hv"] for r in runs if r["problem"] == problem and r["method"] == m]
            if not hists:
                continue
            n = min(len(h) for h in hists)
            H = np.array([h[:n] for h in hists])
            x = np.arange(1, n + 1)
            med = np.median(H, axis=0)
            ax.plot(x, med, label=m, lw=2.2 if m == OURS else 1.2)
            ax.fill_between(x, np.percentile(H, 25, axis=0), np.percentile(H, 75, axis=0), alpha=0.15)
        ax.set_title(problem)
        ax.set_xlabel("expensive evaluations")
        ax.set_ylabel("hypervolume / reference")
        ax.set_xscale("log")
        ax.set_ylim(0.5, 1.0)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny run for CI (< 60 s)")
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--linas-inner-evals", type=int, default=20000,
                    help="LINAS predictor calls per loop (DyNAS-T: 20,000)")
    ap.add_argument("--budgets", nargs="*", default=[], metavar="METHOD=N", help="per-method budget overrides")
    ap.add_argument("--predictor", default=None,
                    help=f"{OURS}'s predictor (default: its own); runs are named {OURS}/PREDICTOR")
    ap.add_argument("--beta", type=float, default=None,
                    help=f"{OURS}'s optimism (mean - beta x std; default: its own); runs are named {OURS}/betaB")
    ap.add_argument("--optimistic", action="store_true",
                    help=f"{OURS} with expected_improvement=False: every pick maximises the optimistic hypervolume "
                         f"improvement (its default before 2026-11-29); runs are named {OURS}/optimistic")
    ap.add_argument("--offspring-draws", type=int, default=None,
                    help=f"{OURS}'s most draws per pool generation while fewer than half its offspring are new "
                         f"(default: its own; 1 = its default before 2026-11-29); runs are named {OURS}/drawsN")
    ap.add_argument("--one-length-scale", action="store_true",
                    help=f"{OURS} with length_scale_per_choice=False: its Gaussian process has one length scale for "
                         f"every feature (its default before 2026-11-29); runs are named {OURS}/one_length_scale")
    ap.add_argument("--batch", type=int, default=1,
                    help="proposals per ask (parallel workers starting together); runs are named METHOD/askN")
    ap.add_argument("--markdown", type=Path, nargs="*", default=None, help="print README tables of results JSONs")
    ap.add_argument("--suite-table", action="store_true", help="with --markdown: one table over every problem")
    ap.add_argument("--resummarise", type=Path, default=None, help="recompute summary and plot of a results JSON")
    ap.add_argument("--merge", type=Path, nargs="+", default=None, metavar="JSON",
                    help="merge results files into --out (later files' runs replace earlier ones' of the same "
                         "problem, method and seed; hypervolume traces are deterministic per seed)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.markdown:
        for path in args.markdown:
            result = json.loads(path.read_text())
            print(suite_table(result) if args.suite_table else markdown(result))
        return 0
    if args.resummarise is not None:
        data = json.loads(args.resummarise.read_text())
        data["summary"] = summarise(data["runs"], data["budget"])
        data["dynast_traces"] = dynast_traces()
        args.resummarise.write_text(results_json(data))
        plot(data["runs"], args.plot or args.resummarise.with_suffix(".png"))
        return 0
    if args.merge:
        if args.out is None:
            ap.error("--merge needs --out")
        merged = merge([load_results(p) for p in args.merge], [str(p) for p in args.merge])
        args.out.write_text(results_json(merged))
        plot(merged["runs"], args.plot or args.out.with_suffix(".png"))
        print(f"wrote {args.out}")
        return 0
    if args.smoke:
        args.problems, args.methods = ["ofa_mbv3_note10"], ["random", "nsga2", "linas", OURS]
        args.seeds, args.budget = 1, 100
        args.linas_inner_evals = 1000
    out = args.out or HERE / "results" / ("search_efficiency_smoke.json" if args.smoke else "search_efficiency.json")
    png = args.plot or Path(out).with_suffix(".png")  # the plot lies beside its numbers
    kwargs: dict[str, dict[str, Any]] = {"linas": {"inner_evals": args.linas_inner_evals}}
    kwargs[OURS] = {"predictor": args.predictor} if args.predictor else {}
    if args.beta is not None:
        kwargs[OURS]["beta"] = args.beta
    if args.optimistic:
        kwargs[OURS]["expected_improvement"] = False
    if args.offspring_draws is not None:
        kwargs[OURS]["offspring_draws"] = args.offspring_draws
    if args.one_length_scale:
        kwargs[OURS]["length_scale_per_choice"] = False
    budgets = {m: args.budget for m in args.methods} | {k: int(v) for k, v in (b.split("=") for b in args.budgets)}
    jobs = [(p, m, s, budgets[m], kwargs.get(m, {}), False, args.batch)
            for p in args.problems for s in range(args.seeds) for m in args.methods]
    # longest jobs first keeps the workers busy
    cost = {"linas": 5, "optuna_tpe": 4, OURS: 3, "optuna_nsga2": 2}
    jobs.sort(key=lambda j: -cost.get(j[1], 1))
    start = time.time()
    runs: list[dict[str, Any]] = []
    log = RunLog(out)

    def finished(r: dict[str, Any]) -> None:
        runs.append(r)
        log.add(r)
        print(f"{r['problem']:16s} {r['method']:14s} seed {r['seed']:2d} {r['seconds']:7.1f}s "
              f"hv@end {r['hv'][-1]:.4f}", flush=True)

    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            for future in [pool.submit(run_one, *j) for j in jobs]:
                finished(future.result())
    else:
        for j in jobs:
            finished(run_one(*j))
    wall = time.time() - start
    result = {
        "command": " ".join(["python", "benchmarks/search_efficiency.py",
                             *(argv if argv is not None else sys.argv[1:])]),
        "wall_seconds": wall,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average": os.getloadavg()},
        "budget": args.budget,
        "budgets": budgets,
        "seeds": args.seeds,
        "methods": args.methods,
        "summary": summarise(runs, args.budget),
        "dynast_traces": dynast_traces(),
        "runs": runs,
    }
    out.write_text(results_json(result))
    log.close()
    plot(runs, png)
    print(f"wrote {out} and {png} in {wall:.0f} s")
    print(json.dumps(json_safe(result["summary"]), indent=1)[:4000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
