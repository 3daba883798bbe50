"""``elasticnas elasticize`` and ``--supernet hf:PATH`` on the command line, on a tiny random GPT-2 folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from elasticnas.cli import main
from elasticnas.cli._args import TASKS
from elasticnas.supernets import create_supernet

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=256, n_positions=128, n_embd=32, n_layer=4, n_head=4)
    folder = tmp_path_factory.mktemp("gpt2")
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    (folder / "tokenizer.json").write_text("{}")  # a tokenizer file, which travels with the model
    return folder


def test_cli_tasks_are_the_families_tasks() -> None:
    from elasticnas.supernets.hf._families import TASKS as FAMILY_TASKS

    assert TASKS == FAMILY_TASKS


def test_elasticize_writes_a_folder_that_search_and_create_supernet_read(
    gpt2_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "elastic"
    assert main(["elasticize", str(gpt2_dir), "--out", str(out), "--method", "first-k", "--shared"]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith(f"wrote {out}: causal-lm super-network (first-k)") and printed.err == ""
    assert (out / "tokenizer.json").read_text() == "{}"
    info = json.loads((out / "elasticnas.json").read_text())
    assert info["task"] == "causal-lm" and info["space"]["per_layer"] is False
    supernet = create_supernet(f"hf:{out}")
    original = transformers.GPT2LMHeadModel.from_pretrained(gpt2_dir).eval()
    (ids,) = supernet.example_inputs(supernet.max_config(), 2, seed=1)
    with torch.no_grad():
        assert torch.allclose(supernet(ids), original(ids).logits, atol=1e-5)
    db = f"sqlite:///{tmp_path / 's.db'}"
    argv = ["search", "--supernet", f"hf:{out}", "--objectives", "params,macs", "--n-evals", "4", "--storage", db,
            "--study", "s", "--no-progress", "--quiet"]
    assert main(argv) == 0
    assert main(["elasticize", str(gpt2_dir), "--out", str(out), "--method", "first-k"]) == 0  # its own folder


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["{missing}", "--out", "{tmp}/o", "--method", "first-k"],
            "is not a Hugging Face model folder (no config.json)",
        ),
        (["{model}", "--out", "{tmp}/o"], "--method activation scores units on data: give --calib-data"),
        (["{model}", "--out", "{foreign}", "--method", "first-k"], "with files elasticnas did not write"),
        (["{model}", "--out", "{tmp}/o", "--method", "first-k", "--task", "image-classification"], "cannot make"),
    ],
)
def test_elasticize_bad_input_is_one_line_and_exit_2(
    gpt2_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    names = {"missing": tmp_path / "none", "tmp": tmp_path, "model": gpt2_dir, "foreign": foreign}
    assert main(["elasticize", *(a.format(**names) for a in argv)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("elasticnas elasticize: error: ") and message in err
    assert not (tmp_path / "o").exists() and (foreign / "notes.txt").read_text() == "mine"


def test_task_is_refused_for_a_registered_supernet(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["search", "--supernet", "tiny_mbv3", "--task", "causal-lm", "--storage", f"sqlite:///{tmp_path}/s.db"]
    assert main(argv) == 2
    assert "--task is for --supernet hf:PATH" in capsys.readouterr().err


def test_the_user_path_elasticize_search_export_scores_what_the_study_recorded(
    gpt2_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pretrained folder made elastic, searched on perplexity and parameters on the built-in text, and every
    trial of the front exported: each file's own loss on the recorded validation data is the recorded one."""
    import math

    from elasticnas.study import load_study

    out = tmp_path / "elastic"
    argv = ["elasticize", str(gpt2_dir), "--out", str(out), "--calib-data", "pystdlib:train", "--calib-batches", "2"]
    assert main(argv) == 0
    db = f"sqlite:///{tmp_path / 's.db'}"
    argv = [
        "search",
        "--supernet",
        f"hf:{out}",
        "--objectives",
        "perplexity,params",
        "--n-evals",
        "6",
        "--val-data",
        "pystdlib:val",
        "--max-val-batches",
        "2",
        "--storage",
        db,
        "--study",
        "s",
        "--no-progress",
        "--quiet",
    ]
    assert main(argv) == 0
    capsys.readouterr()
    study = load_study(db, "s")
    assert study.measurement["val_data"] == "pystdlib:val"
    front = study.pareto_front()
    assert len(front) >= 2
    for record in front:
        target = tmp_path / f"t{record.number}.onnx"
        exported = study.export(record.number, "onnx", target)
        assert exported.recorded_loss == pytest.approx(math.log(record.metrics["perplexity"]))
        assert exported.loss == pytest.approx(exported.recorded_loss, abs=1e-4)
    number = front[0].number
    assert main(["export", "--storage", db, "--study", "s", "--trial", str(number), "--format", "safetensors",
                 "--out", str(tmp_path / "st")]) == 0
    assert "loss of the exported file on the validation data" in capsys.readouterr().out
