"""Token models train like image ones: a tiny GPT-2 super-network (``hf:`` folder) learns a byte sequence with
the sandwich rule, distils per token, validates by perplexity and resumes exactly; BERT batches carry a mask."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from elasticnas.errors import CheckpointError, ElasticNASError
from elasticnas.supernets.base import Supernet
from elasticnas.training import (
    IGNORE_INDEX,
    ProgressiveShrinking,
    TrainConfig,
    create_trainer,
    distillation_loss,
    task_of,
)

pytest.importorskip("transformers")

LMData = tuple[torch.Tensor, torch.Tensor]
PHASES = (("full", ()), ("depth", ("depth",)), ("width", ("heads", "ffn", "hidden")))


def _config(**kw: object) -> TrainConfig:
    base: dict[str, object] = dict(epochs=3, batch_size=16, lr=3e-3, num_random=1, seed=3)
    base.update(kw)
    return TrainConfig.finetuning(**base)


def _next_token_loss(net: Supernet, data: LMData, config: dict[str, object]) -> float:
    net.eval()
    net.activate(config)
    with torch.no_grad():
        logits = net(data[0])
    return float(F.cross_entropy(logits.flatten(0, 1), data[1].flatten()))


def test_sandwich_lowers_the_next_token_loss_of_the_largest_and_smallest(gpt2_supernet, byte_lm_data: LMData) -> None:
    net = gpt2_supernet()
    assert task_of(net) == "causal-lm"
    probes = [net.max_config(), net.min_config(), *net.search_space.sample_many(2, seed=1)]
    before = [_next_token_loss(net, byte_lm_data, c) for c in probes]
    trainer = create_trainer("sandwich", net, _config(epochs=5, lr=5e-3))  # 25 steps
    result = trainer.fit(byte_lm_data, progress=False)
    after = [_next_token_loss(net, byte_lm_data, c) for c in probes]
    assert all(a < b - 1.0 for a, b in zip(after, before, strict=True)), (before, after)
    assert result.history[-1].loss < result.history[0].loss
    assert result.history[-1].train_acc > result.history[0].train_acc  # token accuracy
    assert result.history[0].metric == "perplexity"


def test_distillation_is_zero_for_the_teacher_itself_and_per_token() -> None:
    gen = torch.Generator().manual_seed(0)
    teacher = torch.randn(3, 5, 11, generator=gen)
    for t in (1.0, 2.0):
        assert float(distillation_loss(teacher.clone(), teacher, t)) == 0.0
    student = torch.randn(3, 5, 11, generator=gen, requires_grad=True)
    loss = distillation_loss(student, teacher, 2.0)
    loss.backward()
    # the gradient of cross-entropy on soft labels: T * (softmax(s / T) - softmax(t / T)) / tokens
    expected = 2.0 * ((student / 2.0).softmax(-1) - (teacher / 2.0).softmax(-1)) / 15
    assert student.grad is not None and torch.allclose(student.grad, expected.detach(), atol=1e-6)
    student = student.detach()
    per_token = [float(distillation_loss(student[i, j], teacher[i, j])) for i in range(3) for j in range(5)]
    assert float(distillation_loss(student, teacher)) == pytest.approx(np.mean(per_token), rel=1e-5)
    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[1, 2] = True  # one token counts
    assert float(distillation_loss(student, teacher, mask=mask)) == pytest.approx(per_token[7], rel=1e-5)


def test_language_model_losses_and_accuracy_are_per_token(gpt2_supernet, byte_lm_data: LMData) -> None:
    trainer = create_trainer("sandwich", gpt2_supernet(), _config(label_smoothing=0.0))
    ids, targets = byte_lm_data[0][:4], byte_lm_data[1][:4].clone()
    inputs, target = trainer.split_batch([ids, targets])
    assert len(inputs) == 1 and inputs[0].dtype == torch.long and torch.equal(target, targets)
    with torch.no_grad():
        logits = trainer.forward(trainer.supernet.max_config(), *inputs)
    assert logits.shape == (4, ids.shape[1], 256)
    loss = trainer.loss(logits, target)
    assert float(loss) == pytest.approx(float(F.cross_entropy(logits.reshape(-1, 256), target.reshape(-1))))
    target[:, ::2] = IGNORE_INDEX  # padding: these tokens do not count
    correct, n = trainer.count_correct(logits, target)
    assert n == target.numel() // 2 and correct == int((logits.argmax(-1) == target).sum())
    kept = target != IGNORE_INDEX
    assert float(trainer.loss(logits, target)) == pytest.approx(float(F.cross_entropy(logits[kept], target[kept])))
    assert float(trainer.distill(logits, logits.detach(), target)) == 0.0
    with pytest.raises(ElasticNASError, match="tuple of tensors"):
        trainer.split_batch(ids)


def test_validation_reports_perplexity_and_gradients_are_clipped(
    gpt2_supernet, byte_lm_data: LMData, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = create_trainer("sandwich", gpt2_supernet(), _config(epochs=1, grad_clip=0.05, lr=1e-3))
    assert isinstance(trainer.optimizer, torch.optim.AdamW)
    before: list[float] = []  # the total gradient norm of each step, before and after clipping
    after: list[float] = []
    clip, step = torch.nn.utils.clip_grad_norm_, trainer.optimizer.step

    def recording_clip(*args, **kwargs):  # type: ignore[no-untyped-def]
        before.append(float(clip(*args, **kwargs)))
        return before[-1]

    def recording_step(*args, **kwargs):  # type: ignore[no-untyped-def]
        grads = [p.grad for p in trainer.supernet.parameters() if p.grad is not None]
        after.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
        return step(*args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording_clip)
    trainer.optimizer.step = recording_step  # type: ignore[method-assign]
    result = trainer.fit(byte_lm_data, val_data=byte_lm_data, progress=False)
    assert len(after) == len(before) == trainer.steps_per_epoch
    assert min(before) > 0.05 and max(after) <= 0.05 + 1e-5
    largest, smallest = trainer.evaluate(byte_lm_data, None)
    assert (largest, smallest) == (result.history[-1].val_max, result.history[-1].val_min)
    assert 1.0 < largest < 256 * 1.5 and 1.0 < smallest < 256 * 1.5
    net = trainer.supernet
    assert largest == pytest.approx(np.exp(_next_token_loss(net, byte_lm_data, net.max_config())), rel=1e-4)
    assert "val perplexity largest" in result.history[-1].val_text()


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("method", ["sandwich", "progressive"])
def test_an_interrupted_token_run_resumes_to_the_same_result(
    gpt2_supernet, byte_lm_data: LMData, tmp_path: Path, method: str
) -> None:
    config = _config(phases=PHASES, phase_fractions=(1, 1, 1))  # progressive: one epoch per phase
    data = (byte_lm_data[0][:48], byte_lm_data[1][:48])
    full = create_trainer(method, gpt2_supernet(), config)
    full.fit(data, progress=False)

    out = tmp_path / "run.pt"

    def stop(result):  # type: ignore[no-untyped-def]
        if result.epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        create_trainer(method, gpt2_supernet(), config).fit(data, out=out, progress=False, callback=stop)
    resumed = create_trainer(method, gpt2_supernet(), config)
    with torch.no_grad():  # other initial weights: the checkpoint replaces them
        for p in resumed.supernet.parameters():
            p.add_(1.0)
    result = resumed.fit(data, out=out, progress=False)
    assert result.resumed_from == 2
    assert [h.loss for h in result.history] == [h.loss for h in full.history]
    a, b = full.supernet.state_dict(), resumed.supernet.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(CheckpointError, match="optimizer='adamw' vs 'sgd'"):
        create_trainer(method, gpt2_supernet(), TrainConfig(**{**config.__dict__, "optimizer": "sgd"})).load(out)


def test_progressive_needs_phases_naming_the_family_choices(gpt2_supernet) -> None:
    with pytest.raises(ElasticNASError, match="phases name none of the choices"):
        create_trainer("progressive", gpt2_supernet(), _config())
    trainer = create_trainer("progressive", gpt2_supernet(), _config(phases=PHASES, phase_fractions=(1, 1, 1)))
    assert isinstance(trainer, ProgressiveShrinking)
    assert trainer.elastic_choices(0) == [] and trainer.elastic_choices(2) == ["depth", "heads", "ffn", "hidden"]
    rng = np.random.default_rng(0)
    assert trainer.sample_config(rng, []) == trainer.supernet.max_config()


def test_sequence_classification_batches_carry_the_attention_mask(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    from elasticnas.supernets import create_supernet

    torch.manual_seed(0)
    config = transformers.BertConfig(
        hidden_size=32, intermediate_size=48, vocab_size=61, max_position_embeddings=16, num_labels=3,
        num_hidden_layers=2, num_attention_heads=4,
    )  # fmt: skip
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path)
    net = create_supernet(f"hf:{tmp_path}", task="sequence-classification")
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 61, (24, 12), generator=gen)
    mask = (torch.arange(12)[None, :] < torch.randint(4, 13, (24, 1), generator=gen)).long()
    labels = ids[:, 0] % 3  # learnable from the first token
    trainer = create_trainer("sandwich", net, _config(epochs=1, batch_size=8))
    inputs, target = trainer.split_batch((ids[:8], mask[:8], labels[:8]))
    assert [t.shape for t in inputs] == [ids[:8].shape, mask[:8].shape] and torch.equal(target, labels[:8])
    result = trainer.fit((ids, mask, labels), val_data=(ids, mask, labels), progress=False)
    h = result.history[-1]
    assert h.metric == "top1" and 0.0 <= h.val_max <= 100.0 and h.val_text(2).startswith(", val largest ")


def test_a_super_network_without_a_task_is_refused(small_supernet: Callable[..., Supernet]) -> None:
    net = small_supernet()
    assert task_of(net) == "image-classification"
    net.task = "translation"  # type: ignore[attr-defined]  # a task no trainer knows
    with pytest.raises(ElasticNASError, match="needs a task attribute"):
        create_trainer("sandwich", net)
