"""Build the reference of ``tiny_mbv3_digits`` (``benchmarks/suite_problems.py``): a front and a reference point.

The space holds ~3.9e9 networks at ~0.3 s an evaluation, too many to evaluate all, so the reference is the best
of a long search on one CPU thread: the largest and the smallest network and random ones up to ``--random``
evaluations (seed 0), then NSGA-II (seed 0, told every evaluation before) up to ``--random + --nsga2``
(default 1,000 + 2,000). Writes

- ``tiny_mbv3_digits_front.csv``: the non-dominated evaluations (``accuracy_top1`` %, ``macs``, ``config`` as
  JSON), one per objective vector, by increasing MACs;
- ``tiny_mbv3_digits_reference.json``: the reference point (per objective the worst value over all the
  evaluations, pushed out by 1 % of its range) and how it was found (evaluations, seconds, settings).

``--storage sqlite:///PATH`` keeps the study, so that an interrupted run continues where it stopped::

    nice python benchmarks/data/make_tiny_mbv3_digits_front.py --storage sqlite:////tmp/tiny_front.db
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from suite_problems import (  # noqa: E402
    TINY_FRONT_FILE,
    TINY_REFERENCE_FILE,
    objective_signs,
    padded_worst,
    tiny_mbv3_digits_measured,
)

from elasticnas.pareto import non_dominated_mask  # noqa: E402
from elasticnas.study import create_study, extremes  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=1000, help="random evaluations first (with the extremes)")
    parser.add_argument("--nsga2", type=int, default=2000, help="NSGA-II evaluations after them")
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: in memory)")
    parser.add_argument("--front", type=Path, default=TINY_FRONT_FILE)
    parser.add_argument("--reference", type=Path, default=TINY_REFERENCE_FILE)
    args = parser.parse_args()
    torch.set_num_threads(1)
    problem = tiny_mbv3_digits_measured()
    study = create_study(problem.space, dict(problem.objectives), storage=args.storage,
                         study_name="tiny_mbv3_digits_front")  # fmt: skip
    start = time.perf_counter()
    common: dict[str, Any] = {"cheap_metrics": problem.cheap_metrics, "seed": 0, "show_progress": False}
    study.optimize(problem.evaluate, n_evals=args.random, searcher="random", initial_configs=extremes(problem.space),
                   **common)  # fmt: skip
    study.optimize(problem.evaluate, n_evals=args.random + args.nsga2, searcher="nsga2", **common)
    seconds = time.perf_counter() - start
    records = [r for r in study.trials if r.ok]
    names = list(problem.objectives)
    F = np.array([[r.metrics[n] for n in names] for r in records])
    signs = objective_signs(problem.objectives)
    front: dict[tuple[float, ...], str] = {}
    for k in np.flatnonzero(non_dominated_mask(F * signs)):
        front.setdefault(tuple(F[k]), json.dumps(dict(records[k].config), separators=(",", ":")))
    with args.front.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([*names, "config"])
        for values, config in sorted(front.items(), key=lambda item: item[0][names.index("macs")]):
            writer.writerow([*(repr(float(v)) for v in values), config])
    durations = [r.duration_s for r in records if r.duration_s is not None]
    reference = {
        "reference_point": dict(zip(names, padded_worst(F, signs), strict=True)),
        "rule": "per objective the worst value over all the evaluations, pushed out by 1 % of its range",
        "evaluations": len(records),
        "searches": {"random (with the extremes)": args.random, "nsga2": args.nsga2, "seed": 0},
        "front_size": len(front),
        "seconds": round(seconds, 1),
        "seconds_per_evaluation_median": round(float(np.median(durations)), 3) if durations else None,
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": 1},
    }
    args.reference.write_text(json.dumps(reference, indent=2) + "\n")
    print(f"{len(records)} evaluations in {seconds:.0f} s, front of {len(front)} -> {args.front}, {args.reference}")


if __name__ == "__main__":
    main()
