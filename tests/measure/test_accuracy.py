import numpy as np
import pytest
import torch
from torch import nn
from toy_supernet import ToySupernet

from elasticnas.data import DataError
from elasticnas.measure import evaluate_accuracy, measure_accuracy, recalibrate_batchnorm


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small convolutions: one thread is fastest, and steadiest on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _batches(x, y, bs):
    return [(x[i : i + bs], y[i : i + bs]) for i in range(0, len(x), bs)]


def test_topk_and_loss_match_a_direct_computation():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(103, 7, generator=gen)
    labels = torch.randint(0, 7, (103,), generator=gen)
    model = nn.Identity()
    res = evaluate_accuracy(model, _batches(logits, labels, 10))
    top1 = (logits.argmax(1) == labels).float().mean().item() * 100
    top5 = (logits.topk(5, 1).indices == labels[:, None]).any(1).float().mean().item() * 100
    loss = nn.functional.cross_entropy(logits, labels).item()
    assert res.n_samples == 103
    assert res.top1 == pytest.approx(top1)
    assert res.top5 == pytest.approx(top5)
    assert res.loss == pytest.approx(loss, rel=1e-5)
    assert res.top1 <= res.top5


def test_top5_with_fewer_than_five_classes_counts_all():
    logits = torch.tensor([[0.0, 1.0, 2.0], [3.0, 2.0, 1.0]])
    res = evaluate_accuracy(nn.Identity(), [(logits, torch.tensor([0, 0]))])
    assert res.top1 == 50.0 and res.top5 == 100.0


def test_recalibration_sets_exact_running_statistics_and_restores_momentum():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), nn.BatchNorm2d(4, momentum=0.3), nn.Dropout(0.5))
    model[1].running_mean.fill_(123.0)
    x = torch.randn(40, 3, 5, 5) * 3 + 1
    batches = _batches(x, torch.zeros(40, dtype=torch.long), 10)
    used = recalibrate_batchnorm(model, iter(batches), num_batches=3)
    assert used == 3
    with torch.no_grad():
        h = model[0](x[:30])
    per_batch_means = torch.stack([h[i : i + 10].mean((0, 2, 3)) for i in range(0, 30, 10)])
    per_batch_vars = torch.stack([h[i : i + 10].var((0, 2, 3), unbiased=True) for i in range(0, 30, 10)])
    torch.testing.assert_close(model[1].running_mean, per_batch_means.mean(0), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model[1].running_var, per_batch_vars.mean(0), rtol=1e-4, atol=1e-5)
    assert model[1].momentum == 0.3
    assert not model.training and not model[1].training


def test_recalibration_without_batches_is_an_error():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    with pytest.raises(DataError):
        recalibrate_batchnorm(model, iter([]), num_batches=5)


def test_empty_validation_data_is_an_error():
    with pytest.raises(DataError):
        evaluate_accuracy(nn.Identity(), [])


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0
    x = (x - x.mean()) / x.std()
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


@pytest.fixture(scope="module")
def trained_toy():
    """A toy super-network trained a few seconds on real digits, a random sub-network per step."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    train, val = _digits()
    net = ToySupernet(in_channels=1, classes=10, resolutions=(8,))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    for step in range(300):
        idx = torch.from_numpy(rng.integers(0, len(train[0]), 64))
        # sandwich rule: the largest sub-network every other step, otherwise a random one
        cfg = net.max_config() if step % 2 == 0 else net.search_space.sample(rng)
        net.activate(cfg)
        loss = nn.functional.cross_entropy(net(train[0][idx]), train[1][idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    return net, train, val


def test_recalibration_raises_accuracy_of_smaller_subnetworks(trained_toy):
    net, train, val = trained_toy
    small = {"w": [8, 8, 8], "d": 3, "r": 8}
    plain = measure_accuracy(net.extract(small), val, calib_data=None)
    recal = measure_accuracy(net.extract(small), val, calib_data=train, calib_batches=20, batch_size=64)
    assert plain.calibration_batches == 0 and recal.calibration_batches == 20
    assert recal.n_samples == plain.n_samples == len(val[0])
    assert recal.top1 > plain.top1 + 5.0
    assert recal.loss < plain.loss
    # the largest sub-network, whose statistics the super-network tracked half the time, stays good
    big = measure_accuracy(net.extract(net.max_config()), val, calib_data=train, calib_batches=20)
    assert big.top1 > 80.0


def test_extracted_subnetwork_matches_the_activated_supernetwork(trained_toy):
    net, _, val = trained_toy
    cfg = {"w": [16, 8, 32], "d": 2, "r": 8}
    net.activate(cfg)
    a = evaluate_accuracy(net, _batches(*val, 100))
    b = evaluate_accuracy(net.extract(cfg), _batches(*val, 100))
    net.activate(net.max_config())
    assert a.top1 == pytest.approx(b.top1) and a.loss == pytest.approx(b.loss, rel=1e-4)


def test_resolution_resizes_tensor_batches():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(tuple(x.shape))
            return torch.zeros(len(x), 3)

    x, y = torch.randn(10, 1, 8, 8), torch.zeros(10, dtype=torch.long)
    measure_accuracy(Probe(), (x, y), resolution=12, batch_size=4)
    assert seen == [(4, 1, 12, 12), (4, 1, 12, 12), (2, 1, 12, 12)]
