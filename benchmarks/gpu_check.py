"""GPU check: what CPU tests cannot verify about ``elasticnas.measure`` on a CUDA device.

    python benchmarks/gpu_check.py --out benchmarks/results/gpu_check.json   # CUDA machine, <= 8 min
    python benchmarks/gpu_check.py --smoke                                   # CPU stand-in, < 60 s, CI

For the largest and the smallest sub-network of ``tiny_mbv3`` (its own resolutions, 32 and 8) and of
``ofa_mbv3_w10`` at r=224 (seeded random weights, nothing downloaded):

(a) latency repeatability: CV of 5 medians of ``measure_latency`` (default ``TimingPolicy``, batch 1),
    per runtime: ``torch`` on ``cuda`` (synchronised after each call) and ``onnxruntime`` with the
    CUDA execution provider (I/O binding); goal <= 2 %;
(b) output parity on a seeded batch of 8: max abs diff of the logits, torch cuda vs torch cpu and
    ORT CUDA vs ORT CPU, in full fp32 (TF32 off); goal <= 1e-3 of the largest |logit| (relative,
    since OFA's random weights give logits of ~1e-9); the diff at the runtimes' default precision
    (TF32 allowed in cuDNN convolutions) is recorded beside it;
(c) peak GPU memory of one forward pass, batch 1 (``measure_peak_memory``:
    ``torch.cuda.max_memory_allocated``); passes when the call's activations were seen (> 0 MiB).

Parity and memory run first for every sub-network, then the latencies; before each latency
measurement the script stops if the longest one so far would overrun ``--budget-s`` (default 450 s),
and records what ran. The results file is rewritten after every step.

``--smoke`` runs the same code on the CPU (``cpu`` device and provider in place of CUDA's), 3
repetitions with a short policy, ``tiny_mbv3`` only, at r=16. Exit status: 2 without ``--smoke`` when no CUDA
device is available; 1 when a check fails or raises (with ``--smoke`` only when one raises: CPU
timings of a loaded CI machine are not held to the CV goal); else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from elasticnas.measure import TimingPolicy, measure_latency, measure_peak_memory
from elasticnas.measure.latency import example_input, export_onnx
from elasticnas.supernets import create_supernet

RESULTS = Path(__file__).resolve().parent / "results"
CV_MAX_PCT = 2.0
PARITY_MAX_REL = 1e-3
PARITY_BATCH = 8
RUNTIMES = ("torch", "onnxruntime")
CUDA_EP = "CUDAExecutionProvider"
# (supernet, resolution or None for the config's own) for the full run and for --smoke
FULL_MODELS = (("tiny_mbv3", None), ("ofa_mbv3_w10", 224))
SMOKE_MODELS = (("tiny_mbv3", 16),)
SMOKE_POLICY = TimingPolicy(warmup_runs=3, warmup_s=0.02, max_warmup_s=0.2, min_runs=10, min_time_s=0.05,
                            budget_s=0.25, rel_tol=0.01)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def subnetworks(models: tuple[tuple[str, int | None], ...]) -> list[dict[str, Any]]:
    """The largest and smallest sub-network of each super-network, extracted, with their configs."""
    out = []
    for name, resolution in models:
        net = create_supernet(name)
        space = net.search_space
        for size, genes in (("largest", space.cardinalities - 1), ("smallest", space.cardinalities * 0)):
            cfg = space.from_genes(genes)
            if resolution is not None:
                cfg = space.validate({**cfg, "r": resolution})
            out.append({"label": f"{name}/{size}@r{cfg['r']}", "supernet": name, "config": cfg,
                        "input_shape": list(net.input_shape(cfg)), "model": net.extract(cfg).eval()})
    return out


@contextlib.contextmanager
def strict_fp32() -> Iterator[None]:
    """Turn TF32 off in cuDNN convolutions and CUDA matmuls, then restore both flags."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def _torch_logits(model: torch.nn.Module, x: torch.Tensor, device: str) -> np.ndarray:
    m = model if device == "cpu" else copy.deepcopy(model).to(device)
    with torch.inference_mode():
        return m(x.to(device)).float().cpu().numpy()


def _ort_logits(path: str, x: np.ndarray, providers: list[Any]) -> tuple[np.ndarray, list[str]]:
    """Logits of an ONNX Runtime session and the providers the session actually uses."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(path, sess_options=opts, providers=providers)
    return session.run(None, {session.get_inputs()[0].name: x})[0], session.get_providers()


def _diff(ref: np.ndarray, other: np.ndarray) -> dict[str, float]:
    scale = float(np.abs(ref).max())
    diff = float(np.abs(ref - other).max())
    return {"max_abs_diff": diff, "max_abs_logit": scale, "rel_diff": diff / scale if scale > 0 else float("inf")}


def ort_cuda_missing(runtime: str, device: str) -> dict[str, Any] | None:
    """A ``skipped`` result when ``runtime`` is ONNX Runtime on CUDA and its CUDA provider is not installed."""
    if runtime != "onnxruntime" or device == "cpu" or CUDA_EP in ort.get_available_providers():
        return None
    return {"status": "skipped", "reason": f"onnxruntime {ort.__version__} has no {CUDA_EP} "
            f"(providers: {ort.get_available_providers()}; pip install onnxruntime-gpu)"}


def parity(model: torch.nn.Module, input_shape: list[int], runtime: str, device: str) -> dict[str, Any]:
    """Max abs logit diff of ``device`` against the CPU for one runtime: full fp32, and default precision."""
    x = example_input(input_shape, PARITY_BATCH, seed=0)
    cuda = device != "cpu"
    if runtime == "torch":
        ref = _torch_logits(model, x, "cpu")
        with strict_fp32():
            res = _diff(ref, _torch_logits(model, x, device))
        if cuda:
            res["default_precision"] = _diff(ref, _torch_logits(model, x, device))
        return res
    if (missing := ort_cuda_missing(runtime, device)) is not None:
        return missing
    index = int(device.split(":")[1]) if ":" in device else 0
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        path = str(Path(tmp) / "model.onnx")
        export_onnx(model, x, path)
        xn = x.numpy()
        ref, _ = _ort_logits(path, xn, ["CPUExecutionProvider"])
        if not cuda:
            return _diff(ref, _ort_logits(path, xn, ["CPUExecutionProvider"])[0])
        out, used = _ort_logits(path, xn, [(CUDA_EP, {"device_id": index, "use_tf32": 0}), "CPUExecutionProvider"])
        res = {**_diff(ref, out), "providers": used}
        if used[0] != CUDA_EP:
            return {**res, "status": "fail", "reason": f"the session fell back to {used[0]}"}
        out, _ = _ort_logits(path, xn, [(CUDA_EP, {"device_id": index}), "CPUExecutionProvider"])
        return {**res, "default_precision": _diff(ref, out)}


def peak_memory(model: torch.nn.Module, input_shape: list[int], device: str) -> dict[str, Any]:
    """``measure_peak_memory`` on ``device`` (and, on CUDA, the raw ``max_memory_allocated``)."""
    gc.collect()
    res = measure_peak_memory(model, input_shape, device=device).to_json()
    if device != "cpu":
        res["max_memory_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        torch.cuda.empty_cache()
    return res


class Budget:
    """Wall-clock budget: another step fits while elapsed time plus the longest step so far stays within it."""

    def __init__(self, limit_s: float, first_guess_s: float) -> None:
        self.start = time.perf_counter()
        self.limit_s = limit_s
        self.longest_s = first_guess_s
        self.stopped = False

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def fits(self) -> bool:
        self.stopped = self.stopped or self.elapsed() + self.longest_s > self.limit_s
        return not self.stopped

    def record(self, seconds: float) -> None:
        self.longest_s = max(self.longest_s, seconds)


def repeatability(model: torch.nn.Module, input_shape: list[int], runtime: str, device: str, reps: int,
                  policy: TimingPolicy, budget: Budget) -> dict[str, Any]:
    """Up to ``reps`` medians of ``measure_latency`` and their CV (%), each started only if it fits ``budget``."""
    if (missing := ort_cuda_missing(runtime, device)) is not None:
        return missing
    runs = []
    while len(runs) < reps and budget.fits():
        t0 = time.perf_counter()
        res = measure_latency(model, input_shape, runtime=runtime, device=device, policy=policy)
        runs.append({**res.to_json(), "seconds": time.perf_counter() - t0})
        budget.record(runs[-1]["seconds"])
    med = np.array([r["median_ms"] for r in runs])
    out: dict[str, Any] = {"medians_ms": med.round(5).tolist(), "runs": [r["runs"] for r in runs],
                           "settled": [r["settled"] for r in runs], "clock": runs[0]["clock"] if runs else None,
                           "seconds": [round(r["seconds"], 2) for r in runs]}
    if len(runs) < reps:
        out["status"], out["reason"] = "not_run", f"time budget: {len(runs)} of {reps} repetitions ran"
    if len(runs) >= 2:
        out["cv_pct"] = float(med.std(ddof=1) / med.mean() * 100)
    return out


def _check(kind: str, label: str, runtime: str | None, res: dict[str, Any]) -> dict[str, Any]:
    """One row of the pass/fail table from a part's result."""
    value, threshold = {
        "latency_cv": (res.get("cv_pct"), CV_MAX_PCT),
        "parity": (res.get("rel_diff"), PARITY_MAX_REL),
        "memory": (res.get("activations_mb"), 0.0),
    }[kind]
    status = res.get("status")
    if status is None:
        ok = value is not None and (value > threshold if kind == "memory" else value <= threshold)
        status = "pass" if ok else "fail"
    return {"check": kind, "model": label, "runtime": runtime, "value": value, "threshold": threshold,
            "status": status, **({"reason": res["reason"]} if "reason" in res else {})}


def _attempt(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``fn()``, or its exception as a result with status ``error`` (one broken path must not stop the rest)."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - recorded in the results, and the exit status is 1
        _log(f"  error: {exc!r}")
        return {"status": "error", "reason": repr(exc)}


def machine(device: str) -> dict[str, Any]:
    """Platform, versions and the name of ``device``."""
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "torch": torch.__version__, "onnxruntime": ort.__version__,
                            "onnxruntime_providers": ort.get_available_providers()}
    if device == "cpu":
        info["device_name"] = platform.processor() or platform.machine()
    else:
        info.update(device_name=torch.cuda.get_device_name(device), torch_cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version())
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="CPU stand-in for CUDA, tiny_mbv3 at r=16 only (< 60 s, CI)")
    p.add_argument("--device", default="cuda", help="CUDA device to check (default: cuda)")
    p.add_argument("--reps", type=int, help="latency repetitions per sub-network and runtime (default: 5, smoke 3)")
    p.add_argument("--budget-s", type=float, default=450.0,
                   help="seconds: start no latency measurement that might end past this (default 450)")
    p.add_argument("--out", help="JSON file (default: benchmarks/results/gpu_check[_smoke].json)")
    args = p.parse_args(argv)

    if not args.smoke and not torch.cuda.is_available():
        print("gpu_check: no CUDA device is available (torch.cuda.is_available() is False); "
              "use --smoke for the CPU stand-in")
        return 2
    device = "cpu" if args.smoke else args.device
    policy = SMOKE_POLICY if args.smoke else TimingPolicy()
    # until a measurement has run, guess its worst case: the longest warm-up and timing the policy allows
    budget = Budget(args.budget_s, first_guess_s=policy.max_warmup_s + policy.budget_s)
    reps = args.reps or (3 if args.smoke else 5)
    out = Path(args.out) if args.out else RESULTS / f"gpu_check{'_smoke' if args.smoke else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    nets = subnetworks(SMOKE_MODELS if args.smoke else FULL_MODELS)
    doc: dict[str, Any] = {
        "benchmark": "gpu_check",
        "command": "python benchmarks/gpu_check.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "smoke": args.smoke,
        "device": device,
        "machine": machine(device),
        "thresholds": {"latency_cv_pct_max": CV_MAX_PCT, "parity_rel_diff_max": PARITY_MAX_REL,
                       "memory_activations_mb_min_exclusive": 0.0},
        "parity_batch": PARITY_BATCH,
        "repetitions": reps,
        "policy": asdict(policy),
        "budget_s": args.budget_s,
        "stopped_early": False,
        "subnetworks": {n["label"]: {k: n[k] for k in ("supernet", "config", "input_shape")} for n in nets},
        "checks": [],
    }

    def write() -> None:
        doc["wall_s"] = round(budget.elapsed(), 2)
        out.write_text(json.dumps(doc, indent=1) + "\n")

    for n in nets:
        entry = doc["subnetworks"][n["label"]]
        for rt in RUNTIMES:
            res = _attempt(lambda rt=rt, n=n: parity(n["model"], n["input_shape"], rt, device))
            entry.setdefault("parity", {})[rt] = res
            doc["checks"].append(_check("parity", n["label"], rt, res))
            _log(f"{n['label']} parity {rt}: rel diff {res.get('rel_diff', res.get('status'))}")
        entry["memory"] = _attempt(lambda n=n: peak_memory(n["model"], n["input_shape"], device))
        doc["checks"].append(_check("memory", n["label"], None, entry["memory"]))
        _log(f"{n['label']} peak memory: {entry['memory'].get('peak_mb', entry['memory'].get('status'))} MiB")
        write()

    for n in nets:
        for rt in RUNTIMES:
            res = _attempt(
                lambda rt=rt, n=n: repeatability(n["model"], n["input_shape"], rt, device, reps, policy, budget)
            )
            doc["stopped_early"] = budget.stopped
            doc["subnetworks"][n["label"]].setdefault("latency", {})[rt] = res
            doc["checks"].append(_check("latency_cv", n["label"], rt, res))
            _log(f"{n['label']} latency {rt}: medians {res.get('medians_ms')} ms, CV {res.get('cv_pct')} %")
            write()

    statuses = [c["status"] for c in doc["checks"]]
    doc["summary"] = {s: statuses.count(s) for s in sorted(set(statuses))}
    write()
    _log(f"wrote {out} in {doc['wall_s']:.0f} s: {doc['summary']}")
    if "error" in statuses:
        return 1
    return 0 if args.smoke or "fail" not in statuses else 1


if __name__ == "__main__":
    sys.exit(main())
