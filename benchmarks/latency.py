"""Latency measurement benchmark: repeatability, rank stability and lookup-table error.

    python benchmarks/latency.py                 # tiny_mbv3, both runtimes (~10-20 min on 2 cores)
    python benchmarks/latency.py --smoke         # < 60 s, for CI
    python benchmarks/latency.py --supernet ofa_mbv3_w12 --resolution 160

(a) the same sub-network measured 5 times in one run: coefficient of variation
    (CV) of the 5 medians, per runtime (goal <= 2 %);
(b) 20 sub-networks measured in two passes: Kendall tau of the two latency
    rankings, per runtime (goal >= 0.9); each pass once one sub-network after
    another and once interleaved (``measure_latencies``), side by side;
(c) a lookup table built with ``build_lut`` (its scale fitted on 10 whole
    sub-networks, drawn apart from the test ones) against direct measurement of
    50 sub-networks: median absolute percentage error (goal <= 10 %), also
    without the scale and as the naive sum of layer times.

Writes ``benchmarks/results/latency.json`` (``latency_smoke.json`` with --smoke).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau

from elasticnas.measure import (
    TimingPolicy,
    build_lut,
    collect_layer_specs,
    lut_error,
    measure_latencies,
    measure_latency,
)
from elasticnas.measure.lut import LUT_CALIBRATE, LUT_POLICY
from elasticnas.supernets import create_supernet

RESULTS = Path(__file__).resolve().parent / "results"


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _configs(supernet: Any, n: int, seed: int, resolution: int | None) -> list[dict[str, Any]]:
    space = supernet.search_space
    out = []
    for cfg in space.sample_many(n, seed):
        if resolution is not None:
            cfg = space.validate({**cfg, "r": resolution})
        out.append(cfg)
    return out


def _measure(supernet: Any, cfg: dict[str, Any], runtime: str, threads: int, policy: TimingPolicy) -> dict[str, Any]:
    res = measure_latency(
        supernet.extract(cfg).eval(), supernet.input_shape(cfg), runtime=runtime, threads=threads, policy=policy
    )
    return {k: v for k, v in res.to_json().items() if k in ("median_ms", "p90_ms", "iqr_ms", "runs", "settled")}


def repeatability(supernet: Any, runtimes: list[str], reps: int, threads: int, policy: TimingPolicy,
                  resolution: int | None) -> dict[str, Any]:
    cfg = _configs(supernet, 1, 1, resolution)[0]
    out: dict[str, Any] = {"config": cfg, "repetitions": reps}
    for rt in runtimes:
        runs = [_measure(supernet, cfg, rt, threads, policy) for _ in range(reps)]
        med = np.array([r["median_ms"] for r in runs])
        out[rt] = {
            "medians_ms": med.round(5).tolist(),
            "cv_pct": float(med.std(ddof=1) / med.mean() * 100),
            "runs": [r["runs"] for r in runs],
            "settled": [r["settled"] for r in runs],
        }
        _log(f"(a) {rt}: medians {np.round(med, 4).tolist()} ms, CV {out[rt]['cv_pct']:.2f} %")
    return out


def rank_stability(supernet: Any, runtimes: list[str], n: int, threads: int, policy: TimingPolicy,
                   resolution: int | None, rounds: int) -> dict[str, Any]:
    """Two passes over the same sub-networks, each measured one after another and interleaved
    (``measure_latencies`` with ``rounds`` rounds), side by side."""
    cfgs = _configs(supernet, n, 2, resolution)
    models = [supernet.extract(c).eval() for c in cfgs]
    shapes = [supernet.input_shape(c) for c in cfgs]
    out: dict[str, Any] = {"n_subnets": n, "rounds": rounds}
    for rt in runtimes:
        out[rt] = {}
        for mode, k in (("one_after_another", 1), ("interleaved", rounds)):
            passes = [
                [r.median_ms for r in measure_latencies(models, shapes, runtime=rt, threads=threads, policy=policy,
                                                        rounds=k, seed=p)]
                for p in range(2)
            ]
            tau = float(kendalltau(passes[0], passes[1]).statistic)
            rel = np.abs(np.array(passes[0]) - np.array(passes[1])) / np.array(passes[0]) * 100
            out[rt][mode] = {
                "kendall_tau": tau,
                "median_abs_pass_diff_pct": float(np.median(rel)),
                "pass1_ms": np.round(passes[0], 5).tolist(),
                "pass2_ms": np.round(passes[1], 5).tolist(),
                "latency_range_ms": [float(min(passes[0])), float(max(passes[0]))],
            }
            _log(f"(b) {rt}, {mode}: Kendall tau {tau:.3f} over {n} sub-networks")
    return out


def lut_accuracy(supernet: Any, runtime: str, n: int, threads: int, policy: TimingPolicy, lut_policy: TimingPolicy,
                 resolution: int | None, smoke: bool) -> dict[str, Any]:
    cfgs = _configs(supernet, n, 3, resolution)
    fixed = {"r": resolution} if resolution is not None else None
    calibrate = 2 if smoke else LUT_CALIBRATE
    t0 = time.perf_counter()
    if smoke:
        specs = collect_layer_specs(supernet, configs=cfgs)
    else:
        specs = collect_layer_specs(supernet, fixed=fixed, seed=0)
    lut = build_lut(supernet, runtime=runtime, threads=threads, policy=lut_policy, specs=specs, fixed=fixed,
                    calibrate=calibrate)
    build_s = time.perf_counter() - t0
    _log(f"(c) {runtime}: timed {len(lut)} layers and {lut.calibration_n} whole nets in {build_s:.0f} s; "
         f"overhead {lut.overhead_ms:.4f} ms, scale {lut.scale:.3f}")
    measured = [_measure(supernet, c, runtime, threads, policy)["median_ms"] for c in cfgs]
    estimated = [lut.latency_ms(supernet, c) for c in cfgs]
    uncalibrated = [lut.overhead_ms + lut.layer_sum_ms(s.key for s in supernet.layer_specs(c)) for c in cfgs]
    naive = [sum(lut.entries[s.key].median_ms for s in supernet.layer_specs(c)) for c in cfgs]
    reports = {name: lut_error(est, measured) for name, est in
               (("calibrated", estimated), ("uncalibrated", uncalibrated), ("naive_sum", naive))}
    _log(f"(c) {runtime}: median |error| " + ", ".join(
        f"{name} {rep.median_abs_pct_error:.2f} %" for name, rep in reports.items()
    ) + f"; tau {reports['calibrated'].kendall_tau:.3f}")
    return {
        "runtime": runtime,
        "n_subnets": n,
        "n_layers": len(lut),
        "calibration_subnets": lut.calibration_n,
        "scale": lut.scale,
        "build_s": build_s,
        "overhead_ms": lut.overhead_ms,
        **{name: rep.to_json() for name, rep in reports.items()},
        "measured_ms": np.round(measured, 5).tolist(),
        "estimated_ms": np.round(estimated, 5).tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--supernet", default="tiny_mbv3")
    p.add_argument("--resolution", type=int, help="fix the input resolution of every sub-network (e.g. 160)")
    p.add_argument("--runtimes", default="torch,onnxruntime")
    p.add_argument("--lut-runtimes", default="onnxruntime")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5, help="rounds of the interleaved passes of (b) (default: 5)")
    p.add_argument("--smoke", action="store_true", help="small and fast (< 60 s)")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: a,b,c")
    p.add_argument("--label", help="entry name in the results file (default: SUPERNET[@rRESOLUTION])")
    p.add_argument("--out", help="JSON file (default: benchmarks/results/latency[_smoke].json)")
    args = p.parse_args(argv)

    runtimes = [r for r in args.runtimes.split(",") if r]
    skip = set(args.skip.split(","))
    supernet = create_supernet(args.supernet)
    if args.smoke:
        policy = lut_policy = TimingPolicy(warmup_runs=3, warmup_s=0.02, min_runs=10, min_time_s=0.05,
                                           budget_s=0.25, rel_tol=0.01)
        reps, n_rank, n_lut = 3, 5, 4
    else:
        policy, lut_policy = TimingPolicy(), LUT_POLICY
        reps, n_rank, n_lut = 5, 20, 50
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "latency",
        "supernet": args.supernet,
        "resolution": args.resolution,
        "smoke": args.smoke,
        "threads": args.threads,
        "policy": policy.__dict__,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES", ""),
        },
        "load_avg_start": _load(),
    }
    try:
        import onnxruntime

        result["machine"]["onnxruntime"] = onnxruntime.__version__
    except ImportError:  # pragma: no cover
        pass
    if "a" not in skip:
        result["repeatability"] = repeatability(supernet, runtimes, reps, args.threads, policy, args.resolution)
    if "b" not in skip:
        result["rank_stability"] = rank_stability(supernet, runtimes, n_rank, args.threads, policy, args.resolution,
                                                  args.rounds)
    if "c" not in skip:
        result["lut"] = [
            lut_accuracy(supernet, rt, n_lut, args.threads, policy, lut_policy, args.resolution, args.smoke)
            for rt in args.lut_runtimes.split(",") if rt
        ]
    result["load_avg_end"] = _load()
    result["wall_s"] = time.perf_counter() - t0
    default = f"latency{'_smoke' if args.smoke else ''}.json"
    out = Path(args.out) if args.out else RESULTS / default
    out.parent.mkdir(parents=True, exist_ok=True)
    # one file, one entry per super-network (and resolution): other runs' entries are kept
    label = args.label or args.supernet + (f"@r{args.resolution}" if args.resolution else "")
    try:
        doc = json.loads(out.read_text())
        if not isinstance(doc.get("runs"), dict):
            raise ValueError
    except (OSError, ValueError, AttributeError):
        doc = {"benchmark": "latency", "runs": {}}
    doc["runs"][label] = result
    out.write_text(json.dumps(doc, indent=1) + "\n")
    _log(f"wrote {out} [{label}] in {result['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
