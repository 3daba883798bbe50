import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from torch import nn

from elasticnas.errors import UnknownNameError
from elasticnas.measure import (
    FAST_POLICY,
    LatencyStats,
    MeasurementError,
    TimingPolicy,
    create_runtime,
    export_onnx,
    list_runtimes,
    measure_latencies,
    measure_latency,
    time_callable,
)


def _net(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.Hardswish(),
        nn.Conv2d(width, width, 3, padding=1, groups=width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10),
    ).eval()


@pytest.mark.parametrize("runtime", list_runtimes())
def test_result_is_consistent_and_records_its_conditions(runtime):
    before = torch.get_num_threads()
    res = measure_latency(_net(8), (3, 16, 16), runtime=runtime, batch_size=2, threads=1, policy=FAST_POLICY)
    assert res.runtime == runtime and res.device == "cpu" and res.batch_size == 2 and res.threads == 1
    assert 0 < res.min_ms <= res.median_ms <= res.p90_ms
    assert res.iqr_ms >= 0 and res.runs >= FAST_POLICY.min_runs and res.warmup_runs >= FAST_POLICY.warmup_runs
    assert torch.get_num_threads() == before  # the pinned thread count is restored
    cols = res.columns()
    assert list(cols) == ["latency_ms", "latency_ms_p90", "latency_ms_iqr", "latency_ms_runs"]


@pytest.mark.parametrize("runtime", list_runtimes())
def test_much_more_work_takes_longer(runtime):
    small = measure_latency(_net(4), (3, 8, 8), runtime=runtime, policy=FAST_POLICY)
    big = measure_latency(_net(64), (3, 96, 96), runtime=runtime, policy=FAST_POLICY)
    assert big.median_ms > 3 * small.median_ms


@pytest.mark.parametrize("runtime", list_runtimes())
def test_interleaved_results_pool_every_round(runtime):
    policy = TimingPolicy(warmup_runs=2, warmup_s=0.0, max_warmup_s=0.0, min_runs=12, max_runs=12, min_time_s=0.0)
    small, big = measure_latencies(
        [_net(4), _net(64)], [(3, 8, 8), (3, 96, 96)], runtime=runtime, threads=1, policy=policy, rounds=4
    )
    assert big.median_ms > 3 * small.median_ms
    assert small.runs == big.runs == 12  # 4 rounds of 3 calls each
    assert small.runtime == runtime and small.threads == 1
    with pytest.raises(MeasurementError, match="rounds"):
        measure_latencies([_net(4)], [(3, 8, 8)], rounds=0)
    with pytest.raises(MeasurementError, match="input shapes"):
        measure_latencies([_net(4), _net(4)], [(3, 8, 8)])


class _Drifting(nn.Module):
    """Spins ``base_ms`` of CPU time, stretched by a machine that slows down with every call of any model."""

    calls = 0

    def __init__(self, base_ms: float, drift_per_call: float) -> None:
        super().__init__()
        self.base_ms, self.drift_per_call = base_ms, drift_per_call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _Drifting.calls += 1
        end = time.thread_time_ns() + self.base_ms * (1 + self.drift_per_call * _Drifting.calls) * 1e6
        while time.thread_time_ns() < end:
            pass
        return x


def test_interleaving_keeps_the_ranking_on_a_drifting_machine():
    # 4 models 10 % apart, slowest first; the machine slows down by 80 % over the whole measurement
    policy = TimingPolicy(warmup_runs=0, warmup_s=0.0, max_warmup_s=0.0, min_runs=40, max_runs=40, min_time_s=0.0)
    bases = [0.6, 0.54, 0.48, 0.42]
    ranks = {}
    for rounds in (1, 20):
        _Drifting.calls = 0
        models = [_Drifting(b, 0.8 / 200) for b in bases]
        res = measure_latencies(models, [(1,)] * 4, runtime="torch", threads=1, policy=policy, rounds=rounds, seed=0)
        ranks[rounds] = np.argsort([-r.median_ms for r in res]).tolist()
    assert ranks[20] == [0, 1, 2, 3]  # interleaved: the true order
    assert ranks[1] != [0, 1, 2, 3]  # one after another: the drift reorders them


def test_onnx_export_matches_torch(tmp_path):
    import onnxruntime as ort

    model, x = _net(8), torch.randn(2, 3, 16, 16)
    export_onnx(model, x, tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(out, model(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_stats_are_percentiles_of_the_samples():
    samples = np.random.default_rng(0).gamma(2.0, 1.0, 501)
    s = LatencyStats.from_samples(samples, settled=True)
    q25, q50, q75, q90 = np.percentile(samples, [25, 50, 75, 90])
    assert (s.median_ms, s.p90_ms, s.iqr_ms, s.runs) == pytest.approx((q50, q90, q75 - q25, 501))


def test_steady_work_settles_before_the_budget():
    x = torch.randn(64, 64)
    policy = TimingPolicy(
        warmup_runs=2, warmup_s=0.0, max_warmup_s=0.0, min_runs=20, min_time_s=0.0, budget_s=5.0, rel_tol=0.05
    )
    stats, timed_s, warm = time_callable(lambda: x @ x, policy)
    assert stats.settled and timed_s < 5.0 and warm == 2


def test_warm_up_goes_on_while_the_calls_get_faster():
    import time

    calls = iter(range(100_000))

    def warming() -> None:  # 4 ms, 0.1 ms faster at each call until 1 ms at the 30th
        time.sleep(max(0.004 - 0.0001 * next(calls), 0.001))

    policy = TimingPolicy(warmup_runs=2, warmup_s=0.0, check_every=10, min_runs=20, min_time_s=0.0, rel_tol=0.05)
    stats, _, warm = time_callable(warming, policy)
    assert warm >= 30 and stats.median_ms < 1.5
    cold = TimingPolicy(warmup_runs=2, warmup_s=0.0, max_warmup_s=0.0, min_runs=20, min_time_s=0.0, rel_tol=0.05)
    calls = iter(range(100_000))
    assert time_callable(warming, cold)[2] == 2


def test_erratic_work_stops_at_the_budget_unsettled():
    import time

    flip = iter(np.random.default_rng(0).random(100_000))

    def erratic() -> None:  # half the calls ~0, half ~2 ms: the median never settles to 0.1 %
        if next(flip) < 0.5:
            time.sleep(0.002)

    policy = TimingPolicy(warmup_runs=1, warmup_s=0.0, min_runs=10, min_time_s=0.0, budget_s=0.2, rel_tol=1e-4)
    stats, timed_s, _ = time_callable(erratic, policy)
    assert not stats.settled and 0.2 <= timed_s < 0.5


def test_max_runs_caps_the_run_count():
    policy = TimingPolicy(warmup_runs=0, warmup_s=0.0, min_runs=5, min_time_s=0.0, max_runs=7, budget_s=5, rel_tol=1e-9)
    stats, _, _ = time_callable(lambda: None, policy)
    assert stats.runs == 7


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(min_runs=2),
        dict(max_runs=5, min_runs=10),
        dict(budget_s=0),
        dict(rel_tol=0),
        dict(min_time_s=9.0),
        dict(steady_tol=1.0),
        dict(max_warmup_s=-1.0),
    ],
)
def test_bad_policies_are_rejected(kwargs):
    with pytest.raises(MeasurementError):
        TimingPolicy(**kwargs)


@pytest.mark.parametrize("runtime", list_runtimes())
def test_bad_requests_are_clear_errors(runtime):
    with pytest.raises(MeasurementError, match="device"):
        measure_latency(_net(4), (3, 8, 8), runtime=runtime, device="tpu", policy=FAST_POLICY)
    with pytest.raises(MeasurementError, match="batch size"):
        measure_latency(_net(4), (3, 8, 8), runtime=runtime, batch_size=0, policy=FAST_POLICY)
    with pytest.raises(MeasurementError, match="threads"):
        measure_latency(_net(4), (3, 8, 8), runtime=runtime, threads=0, policy=FAST_POLICY)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
@pytest.mark.parametrize("runtime", list_runtimes())
def test_cuda_without_a_gpu_is_a_clear_error(runtime):
    with pytest.raises(MeasurementError, match="CUDA"):
        measure_latency(_net(4), (3, 8, 8), runtime=runtime, device="cuda", policy=FAST_POLICY)


def test_unknown_runtime():
    with pytest.raises(UnknownNameError, match="onnxruntime"):
        create_runtime("tensorrt")


_FAULTS_SCRIPT = """
import resource, sys, torch
from elasticnas.measure import FAST_POLICY, measure_latency
from elasticnas.measure.latency import allocator_state
torch.set_num_threads(1)
x = torch.randn(1, 64, 128, 128)  # 4 MiB activations, above glibc's initial mmap threshold
net = torch.nn.Sequential(torch.nn.Conv2d(64, 64, 1), torch.nn.ReLU(), torch.nn.Conv2d(64, 64, 1)).eval()
def faults_per_call():
    with torch.inference_mode():
        for _ in range(3):
            net(x)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):
            net(x)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20
print(allocator_state(False), faults_per_call())
res = measure_latency(net, (64, 128, 128), policy=FAST_POLICY)
print(res.allocator, faults_per_call())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")
def test_steady_allocator_stops_page_faults_in_every_call():
    # a fixed 128 KiB mmap threshold (glibc's initial one, without its adaptation): every call maps its buffers anew
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    run = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT], capture_output=True, text=True, check=True, env=env)
    (before_state, before), (after_state, after) = [line.split() for line in run.stdout.split("\n")[:2]]
    assert before_state == "default" and after_state == "glibc-steady"
    assert float(before) > 100 and float(after) < 1
