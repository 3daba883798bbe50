"""Searcher overhead: wall time of one round of 50 proposals, predictor fitting included.

In the OFA-MobileNetV3 space (``ofa_mbv3_note10``), a searcher is told ``n``
finished trials (random sub-networks evaluated by the oracle), then
``ask(50)`` is timed: for ``predicted_hvi`` that is one predictor fit, the
candidate pool and the batch selection; for ``linas`` one LINAS loop (predictor
fits and an inner NSGA-II of ``--linas-inner-evals`` predictor calls, DyNAS-T's
20,000 for this space). Target: <= 2 s per round for ``predicted_hvi``.

Each round records wall time and the process's CPU time (one BLAS thread, so
the CPU time is what the round takes on an idle core; on this shared machine
the wall time also counts the time other processes hold the CPU).

    python benchmarks/overhead.py --smoke     # CI, < 60 s
    python benchmarks/overhead.py             # full
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--trials", type=int, nargs="+", default=[100, 250, 500, 1000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--linas-inner-evals", type=int, default=20000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.smoke:
        args.trials, args.repeats, args.linas_inner_evals = [100], 1, 2000
    out = args.out or HERE / "results" / ("overhead_smoke.json" if args.smoke else "overhead.json")
    methods = {"predicted_hvi": {"round_size": 50}, "linas": {"inner_evals": args.linas_inner_evals}}
    # one-time costs of a process (imports, thread-pool introspection, JIT compilation) are paid once per
    # study, not per round: measure them apart on a first, unrecorded round
    cold = {m: time_round(m, 60, 99, kw | ({"inner_evals": 500} if m == "linas" else {}))[0] for m, kw in methods.items()}
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
    quality = predictor_table([60] if args.smoke else [100, 400])
    result = {
        "command": "python benchmarks/overhead.py" + (" --smoke" if args.smoke else ""),
        "predictor_quality_ofa": quality,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "linas_inner_evals": args.linas_inner_evals,
        "target_seconds": 2.0,
        "first_round_cold_seconds": cold,
        "rows": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
