"""Both training methods lower the loss; interrupted runs resume to the same result."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from elasticnas.errors import CheckpointError, ElasticNASError
from elasticnas.training import (
    ProgressiveShrinking,
    TrainConfig,
    create_trainer,
    list_trainers,
)

METHODS = ["progressive", "sandwich"]


def _config(**kw: object) -> TrainConfig:
    base = dict(epochs=4, batch_size=32, lr=0.1, warmup_epochs=0, num_random=1, augment_shift=1, seed=3)
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _loss(net, x: torch.Tensor, y: torch.Tensor, cfg: dict) -> float:  # type: ignore[no-untyped-def]
    net.train()  # batch statistics: no recalibration needed for a loss comparison
    net.activate(cfg)
    with torch.no_grad():
        return float(F.cross_entropy(net(x), y))


def test_registry(small_supernet) -> None:  # type: ignore[no-untyped-def]
    assert set(METHODS) <= set(list_trainers())
    with pytest.raises(ElasticNASError):
        create_trainer("nope", small_supernet())


@pytest.mark.parametrize("method", METHODS)
def test_training_lowers_the_loss(small_supernet, method: str, digits16: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = digits16
    net = small_supernet()
    probes = [net.max_config(), *net.search_space.sample_many(3, seed=1)]
    if method == "sandwich":  # progressive shrinking rarely samples the very smallest before its last phase
        probes.append(net.min_config())
    before = [_loss(net, x, y, c) for c in probes]
    # 24 steps: the narrow tiny_mbv3 (widths 8-24) needs more than 12 steps of batch 32 to move
    trainer = create_trainer(method, net, _config(batch_size=16, lr=0.2))
    result = trainer.fit((x, y), progress=False)
    assert len(result.history) == 4
    after = [_loss(net, x, y, c) for c in probes]
    assert after[0] < before[0] - 0.3  # the largest
    assert sum(after) / len(after) < sum(before) / len(before) - 0.2
    if method == "sandwich":  # progressive adds a distillation term after its first phase
        assert result.history[-1].loss < result.history[0].loss


def test_progressive_phases_make_choices_elastic_in_order(small_supernet) -> None:  # type: ignore[no-untyped-def]
    trainer = ProgressiveShrinking(small_supernet(), _config(epochs=8))
    assert [trainer._phase(e) for e in range(8)] == ["full"] * 2 + ["kernel"] * 2 + ["depth"] * 2 + ["expand"] * 2
    assert trainer.elastic_choices(0) == ["r"]
    assert trainer.elastic_choices(5) == ["r", "ks", "d"]
    import numpy as np

    rng = np.random.default_rng(0)
    cfgs = [trainer.sample_config(rng, trainer.elastic_choices(2)) for _ in range(20)]
    assert all(c["e"] == [6] * 9 and c["d"] == [3] * 3 for c in cfgs)
    assert len({tuple(c["ks"]) for c in cfgs}) > 1


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("method", METHODS)
def test_interrupted_run_resumes_to_the_same_result(
    small_supernet, method: str, digits16: tuple[torch.Tensor, torch.Tensor], tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    x, y = digits16
    data = (x[:64], y[:64])
    config = _config()

    full = create_trainer(method, small_supernet(), config)
    full.fit(data, out=tmp_path / "full.pt", progress=False)

    # interrupted after epoch 2 (for progressive: the teacher exists by then) ...
    out = tmp_path / "run.pt"

    def stop(result):  # type: ignore[no-untyped-def]
        if result.epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        create_trainer(method, small_supernet(), config).fit(data, out=out, progress=False, callback=stop)
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["epoch"] == 2

    # ... and in the middle of epoch 3 (the checkpoint of epoch 2 stays)
    interrupted = create_trainer(method, small_supernet(), config)
    original, calls = interrupted._train_step, []

    def failing_step(*args):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise Interrupt
        return original(*args)

    interrupted._train_step = failing_step  # type: ignore[method-assign]
    with pytest.raises(Interrupt):
        interrupted.fit(data, out=out, progress=False)
    assert torch.load(out, weights_only=True)["epoch"] == 2

    resumed = create_trainer(method, small_supernet(seed=99), config)  # initial weights do not matter
    result = resumed.fit(data, out=out, progress=False)
    assert result.resumed_from == 2
    assert [h.loss for h in result.history] == [h.loss for h in full.history]
    a, b = full.supernet.state_dict(), resumed.supernet.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_of_another_run_is_refused(
    small_supernet, digits16: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    x, y = digits16
    out = tmp_path / "c.pt"
    create_trainer("sandwich", small_supernet(), _config(epochs=1)).fit((x[:32], y[:32]), out=out, progress=False)
    with pytest.raises(CheckpointError, match="another run"):
        create_trainer("sandwich", small_supernet(), _config(epochs=1, lr=0.2)).fit((x[:32], y[:32]), out=out)
    with pytest.raises(CheckpointError, match="method"):
        create_trainer("progressive", small_supernet(), _config(epochs=1)).fit((x[:32], y[:32]), out=out)
    # a finished run: fitting again changes nothing
    trainer = create_trainer("sandwich", small_supernet(), _config(epochs=1))
    result = trainer.fit((x[:32], y[:32]), out=out, progress=False)
    assert result.resumed_from == 1 and len(result.history) == 1


def test_checkpoints_hold_plain_data_and_load_as_weights(
    small_supernet, digits16: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    x, y = digits16
    out, slim = tmp_path / "c.pt", tmp_path / "w.pt"
    trainer = create_trainer("progressive", small_supernet(), _config(epochs=2))
    trainer.fit((x[:32], y[:32]), out=out, progress=False)
    trainer.export_weights(slim)
    ckpt = torch.load(out, weights_only=True)  # raises on pickled objects
    assert {"state_dict", "optimizer", "scheduler", "rng", "extra", "history"} <= set(ckpt)
    assert "teacher" in ckpt["extra"]
    assert "optimizer" not in torch.load(slim, weights_only=True)
    for path in (out, slim):
        net = small_supernet(seed=5)
        net.load_weights(path)
        sd = trainer.supernet.state_dict()
        assert all(torch.equal(v, sd[k]) for k, v in net.state_dict().items())


def test_a_checkpoint_written_before_the_optimizer_settings_resumes(
    small_supernet, digits16: tuple[torch.Tensor, torch.Tensor], tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    x, y = digits16
    out = tmp_path / "c.pt"
    create_trainer("sandwich", small_supernet(), _config(epochs=1)).fit((x[:32], y[:32]), out=out, progress=False)
    ckpt = torch.load(out, weights_only=True)
    for key in ("optimizer", "grad_clip"):  # settings added later: such a checkpoint had their defaults
        del ckpt["config"][key]
    torch.save(ckpt, out)
    result = create_trainer("sandwich", small_supernet(), _config(epochs=1)).fit((x[:32], y[:32]), out=out)
    assert result.resumed_from == 1
    with pytest.raises(CheckpointError, match="grad_clip=0.0 vs 1.0"):
        create_trainer("sandwich", small_supernet(), _config(epochs=1, grad_clip=1.0)).fit((x[:32], y[:32]), out=out)


def test_an_interrupt_swallowed_on_its_way_stops_training_at_the_next_step(  # type: ignore[no-untyped-def]
    small_supernet, digits16: tuple[torch.Tensor, torch.Tensor]
) -> None:
    """Ctrl-C raised where Python only prints exceptions (a finalizer) is raised again before the next step."""
    from elasticnas._interrupts import interrupt

    x, y = digits16
    trainer = create_trainer("sandwich", small_supernet(), _config(epochs=2))
    original, calls = trainer._train_step, []

    def step_during_which_ctrl_c_is_swallowed(*args):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            with contextlib.suppress(KeyboardInterrupt):
                interrupt(KeyboardInterrupt())
        return original(*args)

    trainer._train_step = step_during_which_ctrl_c_is_swallowed  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        trainer.fit((x[:128], y[:128]), progress=False)
    assert len(calls) == 2
