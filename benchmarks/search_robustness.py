"""Search on shapes that can fool a predictor-guided searcher: plateaus of a cheap cost, interacting categorical
genes, two expensive objectives.

Synthetic problems built here (seeded tables, exhaustively enumerable, so the hypervolume is a fraction of the
exact front's), each driven through the public ask / tell interface (``search_efficiency.drive``), every method
with the same seeds:

- ``plateau_2obj``: 7 genes with 5 operations each (78,125 cells), three of them free: the cost (cheap, exact) is a
  sum of small integers with 22 values, and 2,187 cells share the lowest cost; accuracy (expensive) grows with
  the operations and has pairwise and three-way interactions, and collapses with several "none" operations.
- ``plateau_3obj``: the same cells, plus a second expensive objective (energy: a per-position weighting of the
  operations with its own interactions).
- ``nk_rugged``: 10 genes with 3 choices (59,049 cells); accuracy (expensive) is an NK landscape (every gene's
  contribution a random table of itself and two other genes) over a smooth trend; latency (cheap, exact) additive.
- ``two_expensive``: 8 genes with 4 choices (65,536 cells); accuracy and latency both expensive, both with
  interactions, no cheap metric.

    python benchmarks/search_robustness.py --smoke      # CI, < 60 s
    python benchmarks/search_robustness.py              # 5 seeds, 300 evaluations
    python benchmarks/search_robustness.py --markdown benchmarks/results/search_robustness.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import elasticnas as en  # noqa: E402
from elasticnas.pareto import hypervolume, hypervolume_history, non_dominated_mask  # noqa: E402
from elasticnas.problems import Problem  # noqa: E402
from elasticnas.searchers import create_searcher  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from search_efficiency import drive  # noqa: E402

CHECKPOINTS = (50, 100, 150, 300)
METHODS = ("random", "nsga2", "predicted_hvi")


class Synthetic:
    """A problem over ``n_genes`` genes with ``n_choices`` each: vectorised metric functions of gene matrices,
    the exact front by enumeration."""

    def __init__(
        self,
        name: str,
        n_genes: int,
        n_choices: int,
        metrics: Callable[[np.ndarray], dict[str, np.ndarray]],
        objectives: dict[str, str],
        cheap: tuple[str, ...],
    ) -> None:
        self.name, self.metrics, self.objectives, self.cheap = name, metrics, objectives, cheap
        self.space = en.SearchSpace({"op": en.Choice(list(range(n_choices)), size=n_genes)})
        all_genes = np.array(list(itertools.product(range(n_choices), repeat=n_genes)), dtype=np.int64)
        values = metrics(all_genes)
        F = np.column_stack([values[o] * (-1.0 if d == "maximize" else 1.0) for o, d in objectives.items()])
        worst, best = F.max(axis=0), F.min(axis=0)
        self.reference = worst + 0.05 * (worst - best)
        self.front = F[non_dominated_mask(F)]
        self.hv_front = hypervolume(self.front, self.reference)

    def genes(self, config: dict[str, Any]) -> np.ndarray:
        return np.asarray(config["op"], dtype=np.int64)[None, :]

    def problem(self) -> Problem:
        expensive = [o for o in self.objectives if o not in self.cheap]

        def evaluate(config: dict[str, Any]) -> dict[str, float]:
            m = self.metrics(self.genes(config))
            return {k: float(m[k][0]) for k in expensive}

        def cheap_metric(name: str) -> Callable[[dict[str, Any]], float]:
            return lambda config: float(self.metrics(self.genes(config))[name][0])

        return Problem(
            name=self.name,
            space=self.space,
            objectives=self.objectives,
            evaluate=evaluate,
            cheap_metrics={k: cheap_metric(k) for k in self.cheap},
        )


def _plateau(three: bool) -> Synthetic:
    rng = np.random.default_rng(11)
    n, k = 7, 5
    # operations: none, identity, pool, conv1x1, conv3x3; the first three cost nothing, so 3^7 = 2,187 cells
    # share the lowest cost, and the cost (cheap, exact) takes 22 values
    op_cost = np.array([0, 0, 0, 1, 3])
    op_gain = np.array([-6.0, 0.0, 1.0, 2.5, 4.0])
    pair = rng.normal(0, 2.0, size=(n, k, k))  # gene i with gene i+1 (cyclic)
    triple = rng.normal(0, 2.0, size=(k, k, k))  # genes 0, 3, 6
    energy_w = rng.uniform(0.5, 1.5, size=(n, k)) * np.array([0.1, 0.3, 0.6, 1.0, 2.0])
    energy_pair = rng.normal(0, 0.2, size=(n, k, k))
    lottery = rng.random(k**n)

    def metrics(G: np.ndarray) -> dict[str, np.ndarray]:
        cost = op_cost[G].sum(axis=1).astype(float)
        nones = (G == 0).sum(axis=1)
        inter = sum(pair[i, G[:, i], G[:, (i + 1) % n]] for i in range(n)) + triple[G[:, 0], G[:, 3], G[:, 6]]
        # "none" operations disconnect paths: accuracy collapses with several of them, whatever the cost
        acc = 55 + op_gain[G].sum(axis=1) + 12 * (1 - np.exp(-cost / 6)) + inter - 4.0 * np.maximum(nones - 2, 0) ** 2
        acc = np.maximum(acc, 35.0)  # chance level
        # cells without any convolution: accuracy set by details no smooth model sees (a per-cell draw)
        cell = G @ (k ** np.arange(n))
        acc = np.where(cost == 0, 50 + 28 * lottery[cell] ** 4, acc)
        out = {"accuracy": acc, "cost": cost}
        if three:
            out["energy"] = energy_w[np.arange(n), G].sum(axis=1) + sum(
                energy_pair[i, G[:, i], G[:, (i + 2) % n]] for i in range(n)
            )
        return out

    objectives = {"accuracy": "maximize", "cost": "minimize"}
    if three:
        objectives = {"accuracy": "maximize", "energy": "minimize", "cost": "minimize"}
    return Synthetic("plateau_3obj" if three else "plateau_2obj", n, k, metrics, objectives, ("cost",))


def _nk() -> Synthetic:
    rng = np.random.default_rng(23)
    n, k = 10, 3
    links = np.array([rng.choice([j for j in range(n) if j != i], size=2, replace=False) for i in range(n)])
    tables = rng.random((n, k, k, k))
    lat = rng.uniform(0.5, 2.0, size=(n, k)) * np.array([1.0, 1.6, 2.3])
    trend = np.array([0.0, 0.6, 1.0])

    def metrics(G: np.ndarray) -> dict[str, np.ndarray]:
        nk = sum(tables[i, G[:, i], G[:, links[i, 0]], G[:, links[i, 1]]] for i in range(n)) / n
        acc = 70 + 6 * trend[G].mean(axis=1) + 12 * nk
        return {"accuracy": acc, "latency": lat[np.arange(n), G].sum(axis=1)}

    return Synthetic("nk_rugged", n, k, metrics, {"accuracy": "maximize", "latency": "minimize"}, ("latency",))


def _two_expensive() -> Synthetic:
    rng = np.random.default_rng(37)
    n, k = 8, 4
    w_acc = rng.normal(0, 1, size=(n, k)) + np.linspace(0, 2, k)
    w_lat = rng.uniform(0.5, 1.5, size=(n, k)) * np.linspace(1, 3, k)
    pair_acc = rng.normal(0, 0.8, size=(n, k, k))
    pair_lat = rng.normal(0, 0.3, size=(n, k, k))

    def metrics(G: np.ndarray) -> dict[str, np.ndarray]:
        idx = np.arange(n)
        acc = 70 + w_acc[idx, G].sum(axis=1) + sum(pair_acc[i, G[:, i], G[:, (i + 3) % n]] for i in range(n))
        lat = w_lat[idx, G].sum(axis=1) + sum(pair_lat[i, G[:, i], G[:, (i + 1) % n]] for i in range(n))
        return {"accuracy": acc, "latency": lat}

    return Synthetic("two_expensive", n, k, metrics, {"accuracy": "maximize", "latency": "minimize"}, ())


BUILDERS: dict[str, Callable[[], Synthetic]] = {
    "plateau_2obj": lambda: _plateau(False),
    "plateau_3obj": lambda: _plateau(True),
    "nk_rugged": _nk,
    "two_expensive": _two_expensive,
}
_CACHE: dict[str, Synthetic] = {}


def synthetic(name: str) -> Synthetic:
    if name not in _CACHE:
        _CACHE[name] = BUILDERS[name]()
    return _CACHE[name]


def run_one(problem_name: str, method: str, seed: int, budget: int, kwargs: dict[str, Any]) -> dict[str, Any]:
    syn = synthetic(problem_name)
    problem = syn.problem()
    searcher = create_searcher(
        method, problem.space, problem.objective_list, cheap_metrics=dict(problem.cheap_metrics), seed=seed, **kwargs
    )
    start = time.perf_counter()
    F = np.array(drive(problem, searcher, budget))
    seconds = time.perf_counter() - start
    hv = hypervolume_history(F, syn.reference) / syn.hv_front
    run: dict[str, Any] = {"problem": problem_name, "method": method, "seed": seed, "seconds": seconds,
                           "hv": hv.tolist()}
    if "cost" in syn.cheap:  # share of the evaluations on the lowest-cost plateau
        j = list(syn.objectives).index("cost")
        run["lowest_cost_share"] = float(np.mean(F[:, j] == F[:, j].min()))
    diag = searcher.diagnostics()
    if "evolution_share" in diag:
        run["evolution_share"] = diag["evolution_share"]
    return run


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in sorted({r["problem"] for r in runs}):
        out[p] = {}
        for m in METHODS:
            rs = [r for r in runs if r["problem"] == p and r["method"] == m]
            if not rs:
                continue
            n_min = min(len(r["hv"]) for r in rs)
            row: dict[str, Any] = {str(k): float(np.median([r["hv"][k - 1] for r in rs])) for k in CHECKPOINTS
                                   if k <= n_min}
            row["seconds"] = float(np.median([r["seconds"] for r in rs]))
            if "lowest_cost_share" in rs[0]:
                row["lowest_cost_share"] = float(np.median([r["lowest_cost_share"] for r in rs]))
            out[p][m] = row
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [f"Median hypervolume fraction over {result['seeds']} seeds at "
             + " / ".join(str(k) for k in CHECKPOINTS if k <= result["budget"]) + " evaluations:", "",
             "| problem | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS)]
    for p, rows in result["summary"].items():
        cells = []
        for m in METHODS:
            r = rows.get(m)
            if r is None:
                cells.append("-")
                continue
            text = " / ".join(f"{r[str(k)]:.3f}" for k in CHECKPOINTS if str(k) in r)
            if "lowest_cost_share" in r:
                text += f" (lowest cost: {100 * r['lowest_cost_share']:.0f} %)"
            cells.append(text)
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny run for CI (< 60 s)")
    ap.add_argument("--problems", nargs="+", default=list(BUILDERS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--searcher-kwargs", type=json.loads, default={}, help="JSON options for predicted_hvi")
    ap.add_argument("--markdown", type=Path, default=None, help="print the README table of a results JSON")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    if args.smoke:
        args.problems, args.seeds, args.budget = ["plateau_2obj"], 1, 50
    out = args.out or HERE / "results" / ("search_robustness_smoke.json" if args.smoke else "search_robustness.json")
    jobs = [(p, m, s, args.budget, args.searcher_kwargs if m == "predicted_hvi" else {})
            for p in args.problems for s in range(args.seeds) for m in args.methods]
    jobs.sort(key=lambda j: j[1] != "predicted_hvi")  # longest first
    for p in args.problems:
        synthetic(p)  # build the tables once, before the workers fork
    start = time.time()
    runs: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max(1, args.workers)) as pool:
        for r in pool.map(run_one, *zip(*jobs, strict=True)):
            runs.append(r)
            print(f"{r['problem']:14s} {r['method']:14s} seed {r['seed']} {r['seconds']:6.1f}s hv@end {r['hv'][-1]:.4f}"
                  + (f" lowest-cost share {r['lowest_cost_share']:.2f}" if "lowest_cost_share" in r else ""),
                  flush=True)
    result = {
        "command": " ".join(["python", "benchmarks/search_robustness.py",
                             *(argv if argv is not None else sys.argv[1:])]),
        "wall_seconds": time.time() - start,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "budget": args.budget,
        "seeds": args.seeds,
        "searcher_kwargs": args.searcher_kwargs,
        "problems": {p: {"cells": int(np.prod(synthetic(p).space.cardinalities)), "front": len(synthetic(p).front),
                         "objectives": synthetic(p).objectives, "cheap": list(synthetic(p).cheap)}
                     for p in args.problems},
        "summary": summarise(runs),
        "runs": runs,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(markdown(result))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
