"""Quantization policy search (SimQ-NAS) measured on ONNX Runtime's INT8 CPU kernels.

Part 1 (``tiny_mbv3`` on the built-in digits, real accuracy): three searches of equal budget,
random sampling seeded alike, every trial measured (accuracy and latency of the model as ONNX
Runtime runs it, size analytic):

* ``joint``: architecture x per-layer precision (``quantize_supernet``);
* ``fp32_then_int8``: an FP32 search whose Pareto front is then quantized all-INT8 and re-measured;
* ``fp32``: the FP32 search's front as it is.

Reported: hypervolume of (accuracy, latency) and (accuracy, size) with one reference point for
all three, and the lowest latency and size each front reaches at given accuracies.

Part 2 (OFA-MobileNetV3 w1.0 at r=224, random weights: latency only): INT8/FP32 latency ratio of
every distinct layer of a few sub-networks, grouped by layer type; a lookup table keyed by precision
(``build_lut`` on the quantized super-network) against directly measured mixed-precision
sub-networks (Kendall tau, errors); whole sub-networks all-INT8 vs FP32.

    python benchmarks/quantization.py            # under 10 minutes on 2 cores
    python benchmarks/quantization.py --smoke    # seconds (tiny_mbv3 for both parts)
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from elasticnas.data._spec import resolve_data
from elasticnas.measure import FAST_POLICY, Calibration, Measurer, TimingPolicy, build_lut, lut_error
from elasticnas.measure.lut import collect_layer_specs
from elasticnas.pareto import hypervolume, non_dominated_mask
from elasticnas.quantization import QuantizationSettings, quantize_supernet
from elasticnas.supernets import create_supernet

RESULTS = Path(__file__).resolve().parent / "results"
POLICY = TimingPolicy(warmup_runs=5, warmup_s=0.05, max_warmup_s=0.3, min_runs=15, min_time_s=0.1, budget_s=0.6,
                      rel_tol=0.01)  # fmt: skip
SIMQ_NAS = {"latency_reduction_vs_int8": 4.80, "size_reduction_vs_int8": 3.44}


def _front(points: np.ndarray) -> np.ndarray:
    """Rows of ``points`` (to minimise) on the Pareto front."""
    return points[non_dominated_mask(points)]


def _at_accuracy(rows: list[dict[str, float]], key: str, levels: list[float]) -> dict[str, float | None]:
    """The lowest ``key`` among ``rows`` reaching each accuracy level (None: none reaches it)."""
    out: dict[str, float | None] = {}
    for level in levels:
        ok = [r[key] for r in rows if r["accuracy_top1"] >= level]
        out[f"{level:.2f}"] = min(ok) if ok else None
    return out


def part1(smoke: bool, seed: int) -> dict[str, object]:
    """Joint vs FP32-then-INT8 vs FP32 search on tiny_mbv3 / digits."""
    net = create_supernet("tiny_mbv3")
    calibration = Calibration(resolve_data("digits:calib"), batches=10, batch_size=64, seed=0)
    q = quantize_supernet(net, calibration=calibration, settings=QuantizationSettings(calib_batches=4))
    budget = 2 if smoke else 30
    metrics = ["accuracy_top1", "latency_ms", "model_size_bytes"]
    policy = FAST_POLICY.with_budget(0.05) if smoke else POLICY
    kw = dict(val_data="digits:val", calib_data="digits:calib", calib_batches=10, policy=policy)
    mq, mf = Measurer(q, **kw), Measurer(net, **kw)
    t0 = time.perf_counter()
    joint = [{**mq.measure(c, metrics), "config": c} for c in q.search_space.sample_many(budget, seed=seed)]
    fp32 = [{**mf.measure(c, metrics), "config": c} for c in net.search_space.sample_many(budget, seed=seed)]
    on_front = non_dominated_mask(np.array([[-r["accuracy_top1"], r["latency_ms"]] for r in fp32]))
    fp32_front = [r for r, keep in zip(fp32, on_front, strict=True) if keep]
    int8 = [{**mq.measure(q.all_int8(r["config"]), metrics), "config": r["config"]} for r in fp32_front]
    seconds = time.perf_counter() - t0
    runs = {"joint": joint, "fp32_then_int8": int8, "fp32": fp32_front}
    summary: dict[str, object] = {}
    best_fp32 = max(r["accuracy_top1"] for r in fp32)
    levels = [best_fp32 - d for d in (2.0, 1.0, 0.5, 0.0)]
    for objective in ("latency_ms", "model_size_bytes"):
        pts = {k: np.array([[-r["accuracy_top1"], r[objective]] for r in rows]) for k, rows in runs.items()}
        all_pts = np.vstack(list(pts.values()))
        ref = all_pts.max(axis=0) + 0.1 * (all_pts.max(axis=0) - all_pts.min(axis=0) + 1e-12)
        summary[f"hypervolume_accuracy_{objective}"] = {k: hypervolume(_front(p), ref) for k, p in pts.items()}
        summary[f"{objective}_at_accuracy"] = {k: _at_accuracy(rows, objective, levels) for k, rows in runs.items()}
    n_int8 = [sum(p == "int8" for p in q.split(q.search_space.validate(r["config"]))[1].values()) for r in joint]
    on_front = non_dominated_mask(np.array([[-r["accuracy_top1"], r["latency_ms"]] for r in joint]))
    summary["joint_front_int8_layers"] = [
        {"accuracy_top1": r["accuracy_top1"], "latency_ms": r["latency_ms"], "int8_layers": n,
         "layers": len(q.split(r["config"])[1])}
        for r, n, keep in zip(joint, n_int8, on_front, strict=True)
        if keep
    ]  # fmt: skip
    return {
        "supernet": "tiny_mbv3",
        "budget_per_search": budget,
        "searcher": "random (seeded), every trial measured",
        "seconds": seconds,
        "calibration_cache": q.cache_info().__dict__,
        "summary": summary,
        "runs": {k: [{m: r[m] for m in metrics} for r in rows] for k, rows in runs.items()},
    }


def _layer_type(key: str) -> str:
    """A layer type of an OFA lookup-table key: its kind, and kernel / squeeze-excite / hard-swish of blocks."""
    kind = key.split("-")[0]
    if kind != "expanded_conv":
        return kind
    fields = dict(part.split(":") for part in key.split("@")[0].split("-")[1:] if ":" in part)
    return (
        f"expanded_conv k{fields['kernel']}{' se' if fields['se'] == '1' else ''}{' hs' if fields['hs'] == '1' else ''}"
    )


def part2(smoke: bool, seed: int) -> dict[str, object]:
    """INT8/FP32 latency per layer type, a precision-keyed lookup table vs measurement, whole networks."""
    name, r = ("tiny_mbv3", 16) if smoke else ("ofa_mbv3_w10", 224)
    policy = FAST_POLICY.with_budget(0.05) if smoke else POLICY
    net = create_supernet(name, weights="random")
    q = quantize_supernet(net, settings=QuantizationSettings(calib_batches=1, calib_batch_size=2))
    n = 1 if smoke else 4
    archs = [{**a, "r": r} for a in net.search_space.sample_many(n, seed=seed)]
    rng = np.random.default_rng(seed)
    mixed = [
        q.search_space.validate(
            {**a, "precision": [str(p) for p in rng.choice(["fp32", "int8"], len(q.layout.layers))]}
        )
        for a in archs
    ]  # fmt: skip
    full = [q.all_int8(a) for a in archs] + [q.all_fp32(a) for a in archs]
    t0 = time.perf_counter()
    specs = collect_layer_specs(q, configs=mixed + full)
    lut = build_lut(q, specs=specs, fixed={"r": r}, calibrate=1 if smoke else 2, policy=policy, seed=seed)
    lut_seconds = time.perf_counter() - t0
    ratios: dict[str, list[float]] = {}
    for key, entry in lut.entries.items():
        if "@int8" in key and key.split("@")[0] in lut.entries:
            fp32 = lut.entries[key.split("@")[0]].median_ms
            ratios.setdefault(_layer_type(key), []).append(entry.median_ms / fp32)
    m = Measurer(q, policy=policy)
    measured = [x.median_ms for x in m.measure_latencies(mixed + full, rounds=3)]
    estimates = [lut.latency_ms(q, c) for c in mixed + full]
    n_mixed = len(mixed)
    int8_ms, fp32_ms = measured[n_mixed : n_mixed + n], measured[n_mixed + n :]
    return {
        "supernet": name,
        "resolution": r,
        "weights": "random",
        "lut_entries": len(lut),
        "lut_scale": lut.scale,
        "lut_seconds": lut_seconds,
        "int8_over_fp32_latency_by_layer_type": {
            k: {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}
            for k, v in sorted(ratios.items())
        },
        "lut_vs_measured": lut_error(estimates, measured).to_json(),
        "measured_ms": measured,
        "lut_ms": estimates,
        "whole_network_int8_over_fp32": [a / b for a, b in zip(int8_ms, fp32_ms, strict=True)],
        "whole_network_int8_size_over_fp32": [
            q.costs(q.all_int8(a))["model_size_bytes"] / q.costs(q.all_fp32(a))["model_size_bytes"] for a in archs
        ],
    }  # fmt: skip


def _machine() -> dict[str, str]:
    import onnxruntime
    import torch

    flags = ""
    try:
        flags = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "processor": next(
            (line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("Model name")), ""
        ),
        "avx512_vnni": str("avx512_vnni" in flags),
        "amx_int8": str("amx_int8" in flags),
        "onnxruntime": onnxruntime.__version__,
        "torch": torch.__version__,
        "threads": "1 (ONNX Runtime intra-op), batch 1",
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run (tiny budgets, tiny_mbv3 only)")
    parser.add_argument(
        "--out", type=Path, default=None, help="result JSON (default benchmarks/results/quantization[_smoke].json)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    out = args.out or RESULTS / ("quantization_smoke.json" if args.smoke else "quantization.json")
    t0 = time.perf_counter()
    result = {
        "command": " ".join(["python", "benchmarks/quantization.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": _machine(),
        "simq_nas_reported": SIMQ_NAS,
        "part1_tiny_digits": part1(args.smoke, args.seed),
        "part2_latency": part2(args.smoke, args.seed),
    }
    result["wall_seconds"] = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["part2_latency"], indent=1)[:4000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
