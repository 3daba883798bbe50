import csv
import subprocess
import sys

import pytest

import elasticnas as en
from elasticnas.cli import main

PROBLEM = "ofa_mbv3_note10"


def run(*argv: str) -> int:
    return main(list(argv))


@pytest.fixture
def storage(tmp_path):
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        run("--help")
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "search", "pareto", "report"):
        assert command in out


def test_search_pareto_report_round_trip(storage, tmp_path, capsys):
    assert run("search", "--problem", PROBLEM, "--n-evals", "12", "--searcher", "random", "--storage", storage,
               "--study", "s", "--quiet") == 0
    study = en.load_study(storage, "s")
    assert study.n_evals == 12
    # the same command continues to a larger total, never re-evaluating
    assert run("search", "--problem", PROBLEM, "--n-evals", "20", "--searcher", "random", "--storage", storage,
               "--study", "s", "--quiet") == 0
    ids = [r.config_id for r in en.load_study(storage, "s").trials]
    assert len(ids) == len(set(ids)) == 20

    front_csv = tmp_path / "front.csv"
    assert run("pareto", "--storage", storage, "--study", "s", "--csv", str(front_csv)) == 0
    rows = list(csv.DictReader(front_csv.open()))
    assert len(rows) == len(en.load_study(storage, "s").pareto_front())
    assert set(study.objectives[0].name for _ in [0]) <= set(rows[0])

    html = tmp_path / "report.html"
    assert run("report", "--storage", storage, "--study", "s", "--out", str(html)) == 0
    text = html.read_text()
    assert text.count("<svg") >= 2 and "Pareto configurations" in text
    capsys.readouterr()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["search", "--problem", PROBLEM, "--searcher", "nsga4", "--n-evals", "2"], "unknown searcher 'nsga4'"),
        (["search", "--problem", PROBLEM, "--constraint", "latency<<3", "--n-evals", "2"], "cannot parse constraint"),
        (["search", "--problem", PROBLEM, "--objectives", "speed", "--n-evals", "2"], "has no objective"),
        (["pareto", "--study", "missing"], "no database file"),
        (["report", "--study", "missing"], "no database file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, storage, capsys):
    assert run(*argv, "--storage", storage) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not storage.endswith("cli.db") or argv[0] == "search" or not _db_path(storage).exists()


def _db_path(storage):
    from pathlib import Path

    return Path(storage.removeprefix("sqlite:///"))


@pytest.mark.parametrize("command", ["pareto", "report"])
def test_a_missing_study_in_an_existing_database_is_named(command, storage, capsys):
    en.create_study(en.SearchSpace({"a": en.Choice([1, 2])}), {"a": "maximize"}, storage=storage, study_name="x")
    assert run(command, "--study", "missing", "--storage", storage) == 2
    err = capsys.readouterr().err.strip()
    assert "no study named 'missing'" in err and "studies there: x" in err and "\n" not in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["search", "--problem", "nosuch"], "unknown problem 'nosuch'"),
        (["search", "--supernet", "nosuch"], "unknown supernet 'nosuch'"),
        (["search"], "give exactly one of --problem NAME or --supernet NAME, or --study NAME to continue"),
        (["search", "--problem", PROBLEM, "--n-evals", "0"], "expected a positive integer"),
        (["search", "--problem", PROBLEM, "--storage", "sqlite:////nonexistent-dir/x.db", "--n-evals", "1"],
         "cannot open storage"),
        (["report", "--storage", "ftp://host/db", "--study", "s"], "cannot open storage"),
    ],
)
def test_console_script_errors_have_no_traceback(argv, message, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "elasticnas.cli", *argv], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr


def test_unwritable_report_path_leaves_nothing_behind(storage, tmp_path, capsys):
    run("search", "--problem", PROBLEM, "--n-evals", "3", "--searcher", "random", "--storage", storage, "--study",
        "s", "--quiet")
    target = tmp_path / "no-such-dir" / "report.html"
    assert run("report", "--storage", storage, "--study", "s", "--out", str(target)) == 2
    assert "cannot write" in capsys.readouterr().err
    assert not target.parent.exists()
    assert en.load_study(storage, "s").n_evals == 3


def test_a_supernet_search_resumes_from_storage_and_study_alone_and_exports_a_trial(storage, tmp_path, capsys):
    assert run("search", "--supernet", "tiny_mbv3", "--objectives", "accuracy_top1,params", "--runtime", "torch",
               "--n-evals", "5", "--searcher", "random", "--storage", storage, "--study", "t", "--quiet") == 0
    assert run("search", "--storage", storage, "--study", "t", "--n-evals", "7", "--quiet") == 0
    study = en.load_study(storage, "t")
    assert study.n_evals == 7 and [o.name for o in study.objectives] == ["accuracy_top1", "params"]
    assert study.measurement["runtime"] == "torch" and study.measurement["val_data"] == "digits:val"
    capsys.readouterr()
    assert run("search", "--storage", storage, "--study", "t", "--n-evals", "8", "--runtime", "onnxruntime") == 2
    err = capsys.readouterr().err.strip()
    assert "--runtime 'onnxruntime' differs from study 't'" in err and "\n" not in err
    assert run("search", "--storage", storage, "--study", "t", "--n-evals", "8", "--objectives", "params") == 2
    assert "--objectives 'params' differs" in capsys.readouterr().err
    assert en.load_study(storage, "t").n_evals == 7

    best = study.select(max_drop={"accuracy_top1": 100.0}, optimize="accuracy_top1")
    out = tmp_path / "best.onnx"
    assert run("export", "--storage", storage, "--study", "t", "--trial", str(best.number), "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert f"(trial {best.number})" in printed
    assert f"(the study recorded {best.metrics['accuracy_top1']:.2f} %)" in printed
    assert out.stat().st_size > 0
    assert run("export", "--storage", storage, "--study", "t", "--trial", "999", "--out", str(tmp_path / "n.onnx")) == 2
    assert "no finished trial number 999" in capsys.readouterr().err
    assert not (tmp_path / "n.onnx").exists()


def test_a_precision_search_resumes_and_exports_its_quantized_trials(storage, tmp_path, capsys):
    """--precisions searches architecture x per-layer precision; the study alone resumes it and exports a
    QDQ file that scores what the study recorded."""
    base = ["search", "--storage", storage, "--study", "q", "--quiet", "--no-progress"]
    first = ["--supernet", "tiny_mbv3", "--precisions", "fp32,int8", "--objectives", "accuracy_top1,model_size_bytes",
             "--max-val-batches", "2", "--n-evals", "3", "--searcher", "random"]
    assert run(*base, *first) == 0
    assert run(*base, "--n-evals", "4") == 0
    study = en.load_study(storage, "q")
    assert study.n_evals == 4 and study.measurement["recipe"]["wrapper"] == "qdq"
    assert all(set(r.config["precision"]) <= {"fp32", "int8"} for r in study.trials)
    capsys.readouterr()
    assert run(*base, "--n-evals", "5", "--precisions", "fp32,int8,int4") == 2
    assert "--precisions 'fp32,int8,int4' differs from study 'q'" in capsys.readouterr().err
    best = study.select(max_drop={"accuracy_top1": 100.0}, optimize="accuracy_top1")
    out = tmp_path / "best.onnx"
    assert run("export", "--storage", storage, "--study", "q", "--trial", str(best.number), "--format", "qdq",
               "--out", str(out)) == 0
    assert f"(the study recorded {best.metrics['accuracy_top1']:.2f} %)" in capsys.readouterr().out
    assert run("search", "--storage", storage, "--study", "bad", "--supernet", "tiny_mbv3", "--precisions", "int8",
               "--n-evals", "2") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--precisions 'int8': give fp32,int8" in err
    assert run("search", "--storage", storage, "--study", "bad", "--supernet", "tiny_mbv3", "--precisions",
               "fp32,int8,int8", "--n-evals", "2") == 2
    assert capsys.readouterr().err.strip() == "elasticnas search: error: --precisions names 'int8' twice; give each " \
        "precision once"


def test_one_search_gives_every_targets_front_in_pareto_and_the_report(storage, tmp_path, capsys):
    base = ["search", "--storage", storage, "--study", "d", "--quiet", "--no-progress"]
    assert run(*base, "--problem", "hwgpt_s_devices", "--targets", "a100,cpu_a6000", "--n-evals", "12",
               "--searcher", "random") == 0  # fmt: skip
    study = en.load_study(storage, "d")
    assert study.targets == {"a100": ("latency_ms_a100",), "cpu_a6000": ("latency_ms_cpu_a6000",)}
    assert [o.name for o in study.objectives] == ["perplexity", "latency_ms_a100", "latency_ms_cpu_a6000"]
    assert run(*base, "--n-evals", "14") == 0 and en.load_study(storage, "d").n_evals == 14
    capsys.readouterr()
    assert run("pareto", "--storage", storage, "--study", "d") == 0
    out = capsys.readouterr().out
    assert "target a100:" in out and "target cpu_a6000:" in out
    csv_path = tmp_path / "front.csv"
    assert run("pareto", "--storage", storage, "--study", "d", "--csv", str(csv_path)) == 0
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for target in study.targets:
        assert {int(r["trial"]) for r in rows if r["target"] == target} == {
            r.number for r in en.load_study(storage, "d").pareto_front(target=target)
        }
    report = tmp_path / "r.html"
    assert run("report", "--storage", storage, "--study", "d", "--out", str(report)) == 0
    html = report.read_text()
    assert "Target <code>a100</code>" in html and "Target <code>cpu_a6000</code>" in html
    capsys.readouterr()
    for argv, message in [
        ([*base, "--n-evals", "15", "--targets", "a100"], "--targets 'a100' differs from study 'd'"),
        (["pareto", "--storage", storage, "--study", "d", "--target", "tpu"], "no target 'tpu'"),
        ([*base[:4], "e", "--problem", "hwgpt_s_devices", "--targets", "tpu"], "has no target 'tpu'; choose from"),
        ([*base[:4], "f", "--problem", PROBLEM, "--targets", "a100"], "--targets is for problems with hardware"),
    ]:
        assert run(*argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err
