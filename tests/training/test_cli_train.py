"""``elasticnas train``: trains, checkpoints, resumes, and reports user errors with exit status 2."""

from __future__ import annotations

from pathlib import Path

import torch

from elasticnas.cli import main


def _argv(out: Path, *extra: str) -> list[str]:
    return [
        "train", "--supernet", "tiny_mbv3", "--data", "digits", "--method", "sandwich", "--epochs", "1",
        "--out", str(out), "--train-samples", "48", "--batch-size", "24", "--num-random", "0",
        "--no-val", "--no-progress", "--threads", "1", *extra,
    ]  # fmt: skip


def test_train_writes_a_checkpoint_and_resumes(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out, weights = tmp_path / "ckpt.pt", tmp_path / "w.pt"
    assert main(_argv(out, "--weights-out", str(weights))) == 0
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["method"] == "sandwich" and ckpt["supernet"] == "tiny_mbv3"
    assert torch.load(weights, weights_only=True)["epoch"] == 1
    first = capsys.readouterr().out
    assert "epoch 1" in first and "checkpoint:" in first
    assert main(_argv(out)) == 0  # already complete: resumes and stops
    assert "resum" in capsys.readouterr().out
    assert main(_argv(out, "--lr", "0.3")) == 2  # another run's checkpoint
    assert "another run" in capsys.readouterr().err


def test_train_unknown_data_exits_2(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    argv = _argv(tmp_path / "c.pt")
    argv[argv.index("digits")] = str(tmp_path / "missing")
    assert main(argv) == 2
    assert "neither a built-in data set" in capsys.readouterr().err
