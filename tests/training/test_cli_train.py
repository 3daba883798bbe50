"""``elasticnas train``: trains, checkpoints, resumes, and reports user errors with exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest
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


# -- a Hugging Face model fine-tuned once on token data -----------------------------------------------


@pytest.fixture
def byte_specs(monkeypatch: pytest.MonkeyPatch, byte_lm_data: tuple[torch.Tensor, torch.Tensor]) -> None:
    """The data specs ``bytes:train`` and ``bytes:val``: windows of a byte sequence and their next bytes."""
    from elasticnas.data import _spec

    original = _spec.resolve_data
    specs = {"bytes:train": byte_lm_data, "bytes:val": (byte_lm_data[0][:16], byte_lm_data[1][:16])}
    monkeypatch.setattr(_spec, "resolve_data", lambda spec: specs.get(spec) or original(spec))


def _hf_argv(folder: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train", "--supernet", f"hf:{folder}", "--task", "causal-lm", "--data", "bytes", "--method", "sandwich",
        "--epochs", "2",
        "--out", str(out), "--batch-size", "16", "--num-random", "1", "--lr", "3e-3", "--no-progress",
        "--threads", "1", *extra,
    ]  # fmt: skip


def test_train_fine_tunes_an_hf_language_model_and_resumes(
    gpt2_folder: Path, byte_specs: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lm.pt"
    assert main(_hf_argv(gpt2_folder, out)) == 0
    printed = capsys.readouterr().out
    assert printed.count("val perplexity largest") == 3 and "%, smallest" not in printed  # 2 epochs + summary
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["supernet"] == f"hf:{gpt2_folder}" and ckpt["epoch"] == 2
    config = ckpt["config"]  # the fine-tuning defaults, with the flags given
    assert (config["optimizer"], config["lr"], config["grad_clip"], config["weight_decay"]) == (
        "adamw",
        3e-3,
        1.0,
        0.01,
    )
    assert config["label_smoothing"] == 0.0 and [h["metric"] for h in ckpt["history"]] == ["perplexity"] * 2
    first, last = ckpt["history"][0]["val_max"], ckpt["history"][1]["val_max"]
    assert last < first  # the largest sub-network predicts the bytes better
    assert main(_hf_argv(gpt2_folder, out, "--epochs", "3")) == 2  # another run's settings
    assert "epochs=2 vs 3" in capsys.readouterr().err
    assert main(_hf_argv(gpt2_folder, out)) == 0  # already complete: resumes and stops
    assert "resumed after epoch 2" in capsys.readouterr().out


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--supernet": "hf:{tmp}/none"}, "is not a Hugging Face model folder (no config.json)"),
        ({"--data": "nosuchdata"}, "'nosuchdata:train' is neither an existing image folder nor a built-in"),
        ({"--data": "digits:train"}, "data 'digits:train' holds images; a token super-network trains on token ids"),
        ({"--method": "progressive"}, "phases name none of the choices"),
        ({"--supernet": "tiny_mbv3"}, "--task is for --supernet hf:PATH"),
        ({"--label-smoothing": "2"}, "label_smoothing must be a number from 0 to 1"),
    ],
)
def test_train_bad_token_input_is_one_line_and_exit_2(
    gpt2_folder: Path, byte_specs: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    change: dict[str, str], message: str,
) -> None:  # fmt: skip
    argv = _hf_argv(gpt2_folder, tmp_path / "c.pt", "--label-smoothing", "0")
    for flag, value in change.items():
        argv[argv.index(flag) + 1] = value.format(tmp=tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("elasticnas train: error: ") and message in err, err
    assert not (tmp_path / "c.pt").exists()


def test_a_token_super_network_needs_data(
    gpt2_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _hf_argv(gpt2_folder, tmp_path / "c.pt")
    del argv[argv.index("--data") : argv.index("--data") + 2]
    assert main(argv) == 2
    assert "a token super-network needs --data" in capsys.readouterr().err
