import pytest
import torch
from torch import nn

from elasticnas.measure import MeasurementError, measure_peak_memory

MB = 2**20


def _chain(width: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(width, width, 3, padding=1),
        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10),
    )


def test_peak_counts_two_live_activations_weights_and_input():
    model = _chain(64)
    res = measure_peak_memory(model, (3, 32, 32), batch_size=8)
    act = 8 * 64 * 32 * 32 * 4 / MB  # one conv output
    n_params = sum(p.numel() for p in model.parameters())
    assert res.weights_mb == pytest.approx(n_params * 4 / MB)
    assert res.input_mb == pytest.approx(8 * 3 * 32 * 32 * 4 / MB)
    # conv1's output (ReLU in place) is alive while conv2 writes its own: at least two activations
    assert 2 * act <= res.activations_mb <= 3.5 * act
    assert res.peak_mb == pytest.approx(res.weights_mb + res.input_mb + res.activations_mb)
    assert res.method == "tensor-storage-count" and res.device == "cpu"


def test_activation_memory_scales_with_batch_size():
    a = measure_peak_memory(_chain(32), (3, 24, 24), batch_size=4)
    b = measure_peak_memory(_chain(32), (3, 24, 24), batch_size=16)
    assert b.activations_mb == pytest.approx(4 * a.activations_mb, rel=0.05)
    assert b.weights_mb == a.weights_mb


def test_wider_network_needs_more_memory():
    assert measure_peak_memory(_chain(64), (3, 16, 16)).peak_mb > measure_peak_memory(_chain(16), (3, 16, 16)).peak_mb


def test_repeated_measurements_agree():
    model = _chain(16)
    assert measure_peak_memory(model, (3, 16, 16)) == measure_peak_memory(model, (3, 16, 16))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_without_gpu():
    with pytest.raises(MeasurementError, match="CUDA"):
        measure_peak_memory(_chain(4), (3, 8, 8), device="cuda")
