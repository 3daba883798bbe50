"""Fronts for many hardware targets from one search (issue #20, item 4).

Accuracy (or perplexity) does not depend on the device; latency does and is cheap. One study with
``targets=`` (every target's latency an objective of its own, the accuracy shared) is searched by the
default searcher for ``--joint-budget`` evaluations; each target's front is compared with a dedicated
search of that target alone (two objectives, the same searcher, ``--dedicated-budget`` evaluations).
Goal: every target's front >= 0.98 of the dedicated search's hypervolume, with at most 1.5x the
evaluations of one dedicated search for all targets together. Every hypervolume uses the problem's fixed
reference point; each is also given as a share of the exhaustive front of the table (the best possible).

Problems: ``hwgpt_s_devices`` (HW-GPT-Bench GPT-S, perplexity and the latency of 13 devices) and
``ofa_mbv3_devices`` (OFA-MobileNetV3 w1.2, predicted ImageNet accuracy, the Note10 lookup table and the
HELP latencies of 4 GPUs at batch 1, 32 and 64).

    python benchmarks/many_targets.py --smoke        # tests/test_benchmarks_smoke.py, seconds
    python benchmarks/many_targets.py                # benchmarks/results/many_targets.json
    python benchmarks/many_targets.py --markdown benchmarks/results/many_targets.json
"""

from __future__ import annotations

import argparse
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
import optuna  # noqa: E402

from elasticnas import create_study  # noqa: E402
from elasticnas.pareto import hypervolume  # noqa: E402
from elasticnas.problems import Problem, create_problem  # noqa: E402
from elasticnas.records import target_columns  # noqa: E402

HERE = Path(__file__).resolve().parent
optuna.logging.set_verbosity(optuna.logging.WARNING)
PROBLEMS = ("hwgpt_s_devices", "ofa_mbv3_devices")
GOAL_FRACTION = 0.98
GOAL_BUDGET_RATIO = 1.5


def exhaustive_front(problem_name: str, target: str) -> np.ndarray:
    """The exhaustive 2-D front of ``target`` over the table the problem reaches (objective units)."""
    if problem_name.startswith("hwgpt_s_devices"):
        from elasticnas.problems._hwgpt import target_reference_front

        return target_reference_front(target)
    from elasticnas.problems._ofa_devices import target_reference_front as ofa_front

    return ofa_front(target)


def target_view(problem: Problem, target: str) -> tuple[dict[str, str], list[float]]:
    """The objectives (shared, then the target's own) and reference point of one target."""
    assert problem.targets is not None and problem.reference_point is not None
    columns = target_columns(problem.objective_list, problem.targets)[target]
    names = [list(problem.objectives)[j] for j in columns]
    return {n: problem.objectives[n] for n in names}, [problem.reference_point[j] for j in columns]


def hv_min(F: np.ndarray, objectives: dict[str, str], ref: list[float]) -> float:
    """Hypervolume of objective-unit rows ``F`` at ``ref`` (maximised objectives negated)."""
    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in objectives.values()])
    return float(hypervolume(np.asarray(F, dtype=float) * sign, np.asarray(ref) * sign))


def joint_run(problem_name: str, seed: int, budget: int, checkpoints: list[int]) -> dict[str, Any]:
    """One study over every target; each target's hypervolume after ``checkpoints`` evaluations."""
    problem = create_problem(problem_name)
    assert problem.targets is not None
    study = create_study(problem.space, dict(problem.objectives), reference_point=problem.reference_point,
                         targets=problem.targets)  # fmt: skip
    start = time.perf_counter()
    study.optimize(problem.evaluate, n_evals=budget, seed=seed, cheap_metrics=problem.cheap_metrics,
                   show_progress=False)  # fmt: skip
    seconds = time.perf_counter() - start
    hv = {}
    for target in problem.targets:
        history = study.hypervolume_history(target=target)
        hv[target] = {str(k): float(history[min(k, len(history)) - 1]) for k in checkpoints}
    return {"problem": problem_name, "seed": seed, "kind": "joint", "seconds": seconds, "hv": hv}


def dedicated_run(problem_name: str, seed: int, budget: int, target: str) -> dict[str, Any]:
    """A search of one target alone: its shared and own objectives, the problem's reference point."""
    problem = create_problem(problem_name)
    objectives, ref = target_view(problem, target)
    study = create_study(problem.space, objectives, reference_point=ref)
    cheap = {n: fn for n, fn in problem.cheap_metrics.items() if n in objectives}
    start = time.perf_counter()
    study.optimize(problem.evaluate, n_evals=budget, seed=seed, cheap_metrics=cheap, show_progress=False)
    return {"problem": problem_name, "seed": seed, "kind": "dedicated", "target": target,
            "seconds": time.perf_counter() - start, "hv": study.hypervolume()}  # fmt: skip


def summarize(runs: list[dict[str, Any]], problems: list[str], checkpoints: list[int],
              dedicated_budget: int) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {}
    for name in problems:
        problem = create_problem(name)
        assert problem.targets is not None
        joint = [r for r in runs if r["problem"] == name and r["kind"] == "joint"]
        rows = {}
        ran = {r.get("target") for r in runs if r["problem"] == name}
        for target in [t for t in problem.targets if t in ran]:  # the smoke run keeps a few targets
            objectives, ref = target_view(problem, target)
            best = hv_min(exhaustive_front(name, target), objectives, ref)
            dedicated = [r["hv"] for r in runs if r["problem"] == name and r.get("target") == target]
            ded = float(np.median(dedicated))
            rows[target] = {
                "exhaustive_hv": best,
                "dedicated_median_hv": ded,
                "dedicated_share_of_exhaustive": ded / best,
                "joint": {
                    str(k): {
                        "median_hv": float(np.median([r["hv"][target][str(k)] for r in joint])),
                        "ratio_to_dedicated": float(np.median([r["hv"][target][str(k)] for r in joint])) / ded,
                        "share_of_exhaustive": float(np.median([r["hv"][target][str(k)] for r in joint])) / best,
                    }
                    for k in checkpoints
                },
            }
        ratios = {str(k): [rows[t]["joint"][str(k)]["ratio_to_dedicated"] for t in rows] for k in checkpoints}
        out[name] = {
            "targets": rows,
            "min_ratio_to_dedicated": {k: float(min(v)) for k, v in ratios.items()},
            "joint_seconds_median": float(np.median([r["seconds"] for r in joint])),
            "dedicated_seconds_median": float(np.median([r["seconds"] for r in runs
                                                         if r["problem"] == name and r["kind"] == "dedicated"])),
            "evaluations_joint_vs_one_dedicated": {k: int(k) / dedicated_budget for k in ratios},
        }  # fmt: skip
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = []
    for name, s in result["summary"].items():
        ks = list(s["min_ratio_to_dedicated"])
        lines += [f"**{name}** ({len(s['targets'])} targets; joint search: median {s['joint_seconds_median']:.0f} s, "
                  f"one dedicated search: median {s['dedicated_seconds_median']:.0f} s)", "",
                  "| target | dedicated@" + str(result["dedicated_budget"]) + " / exhaustive | "
                  + " | ".join(f"joint@{k} / dedicated" for k in ks) + " |",
                  "|---|---:|" + "---:|" * len(ks)]  # fmt: skip
        for target, row in s["targets"].items():
            cells = [f"{row['joint'][k]['ratio_to_dedicated']:.3f}" for k in ks]
            lines.append(f"| {target} | {row['dedicated_share_of_exhaustive']:.3f} | " + " | ".join(cells) + " |")
        lines.append("| **worst target** | | " + " | ".join(f"**{s['min_ratio_to_dedicated'][k]:.3f}**" for k in ks)
                     + " |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny budgets, one seed, two targets' problem")
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--dedicated-budget", type=int, default=500)
    ap.add_argument("--joint-budget", type=int, default=750)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--markdown", type=Path, default=None, help="print the README table of a results file")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return
    if args.smoke:
        args.seeds, args.dedicated_budget, args.joint_budget, args.workers = 1, 24, 30, 1
        args.problems = ["hwgpt_s_devices"]
    checkpoints = sorted({args.dedicated_budget, args.joint_budget, 2 * args.dedicated_budget // 3,
                          args.joint_budget // 2})  # fmt: skip
    start = time.perf_counter()
    jobs: list[tuple[Any, ...]] = []
    for name in args.problems:
        targets = list(create_problem(name).targets or ())
        if args.smoke:
            targets = targets[:2]
        for seed in range(args.seeds):
            jobs.append((joint_run, name, seed, args.joint_budget, checkpoints))
            jobs += [(dedicated_run, name, seed, args.dedicated_budget, t) for t in targets]
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            runs = list(pool.map(_call, jobs))
    else:
        runs = [_call(job) for job in jobs]
    result = {
        "command": " ".join(["python", "benchmarks/many_targets.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "seeds": args.seeds, "dedicated_budget": args.dedicated_budget, "joint_budget": args.joint_budget,
        "goal": {"fraction": GOAL_FRACTION, "budget_ratio": GOAL_BUDGET_RATIO},
        "summary": summarize(runs, args.problems, checkpoints, args.dedicated_budget),
        "wall_seconds": time.perf_counter() - start,
        "runs": runs,
    }  # fmt: skip
    out = args.out or HERE / "results" / ("many_targets_smoke.json" if args.smoke else "many_targets.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(markdown(result))
    print(f"wrote {out}")


def _call(job: tuple[Any, ...]) -> dict[str, Any]:
    fn, *rest = job
    result: dict[str, Any] = fn(*rest)
    return result


if __name__ == "__main__":
    main()
