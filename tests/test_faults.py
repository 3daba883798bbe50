"""Faults of the environment: a full disk, a read-only or damaged database, two processes creating one
database, SIGTERM and a closed pipe. Each ends with one line on stderr and the documented exit status,
and leaves earlier results intact: the previous checkpoint, report or database, and no temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import torch

import elasticnas as en
from elasticnas.cli import main

PROBLEM = "ofa_mbv3_note10"
ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
TRAIN = ["train", "--supernet", "tiny_mbv3", "--epochs", "1", "--train-samples", "16", "--batch-size", "16",
         "--num-random", "0", "--no-val", "--no-progress", "--threads", "1"]


def run(argv: list[str], capsys) -> tuple[int, list[str]]:
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    return status, capsys.readouterr().err.strip().splitlines()


def no_temporary_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture
def db(tmp_path, study_db) -> Path:
    shutil.copy(study_db, tmp_path / "s.db")
    return tmp_path / "s.db"


def trials(path: Path) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(path)) as con:
        return con.execute("SELECT number, state FROM trials ORDER BY number").fetchall()


# -- a full disk -----------------------------------------------------------------------------------------
@pytest.fixture
def full_disk(monkeypatch):
    """The disk fills while a file is written: writes through atomic_write fail at their fsync."""
    def fail(fd: int) -> None:
        raise ENOSPC

    monkeypatch.setattr(os, "fsync", fail)


def test_full_disk_while_writing_the_checkpoint_keeps_the_previous_one(tmp_path, capsys, monkeypatch):
    out = tmp_path / "ck.pt"
    assert main([*TRAIN, "--out", str(out)]) == 0
    before = out.read_bytes()
    real = torch.save

    def half_then_full(obj, f, *args, **kwargs):  # half of the checkpoint is on disk, then no more space
        real(obj, f, *args, **kwargs)
        f.truncate(f.tell() // 2)
        raise ENOSPC

    monkeypatch.setattr(torch, "save", half_then_full)
    capsys.readouterr()
    status, err = run([*TRAIN, "--out", str(out), "--overwrite", "--seed", "1"], capsys)
    assert status == 2 and err == [
        f"elasticnas train: error: cannot write checkpoint {str(out)!r}: No space left on device"
    ]
    assert out.read_bytes() == before and no_temporary_files(tmp_path)


def test_full_disk_while_writing_the_weights_leaves_no_file(tmp_path, capsys, monkeypatch):
    real = torch.save

    def full_for_weights(obj, f, *args, **kwargs):
        if "w.pt" in getattr(f, "name", ""):
            f.write(b"\0" * 4096)
            raise ENOSPC
        real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_for_weights)
    status, err = run([*TRAIN, "--out", str(tmp_path / "ck.pt"), "--weights-out", str(tmp_path / "w.pt")], capsys)
    assert status == 2 and err[-1] == (
        f"elasticnas train: error: cannot write weights file {str(tmp_path / 'w.pt')!r}: No space left on device"
    )
    assert not (tmp_path / "w.pt").exists() and no_temporary_files(tmp_path)
    assert torch.load(tmp_path / "ck.pt", weights_only=True)["epoch"] == 1  # the finished epoch is kept


def _tiny_config() -> str:
    from elasticnas.supernets import create_supernet

    return json.dumps(create_supernet("tiny_mbv3", weights=None).search_space.sample(0))


@pytest.mark.parametrize("what", ["report", "pareto-csv", "measure-csv", "export"])
def test_full_disk_while_writing_an_output_keeps_the_earlier_file(what, db, tmp_path, capsys, full_disk):
    tmp = tmp_path
    (tmp / "c.jsonl").write_text(_tiny_config() + "\n")
    argv, out = {
        "report": (["report", "--storage", f"sqlite:///{db}", "--study", "s", "--out", str(tmp / "out.html")],
                   tmp / "out.html"),
        "pareto-csv": (["pareto", "--storage", f"sqlite:///{db}", "--study", "s", "--csv", str(tmp / "out.csv")],
                       tmp / "out.csv"),
        "measure-csv": (["measure", "--supernet", "tiny_mbv3", "--configs", str(tmp / "c.jsonl"), "--metrics", "macs",
                         "--out", str(tmp / "out.csv"), "--quiet"], tmp / "out.csv"),
        "export": (["export", "--supernet", "tiny_mbv3", "--config", _tiny_config(), "--out", str(tmp / "out.pt")],
                   tmp / "out.pt"),
    }[what]
    out.write_text("an earlier result\n")
    before = trials(db)
    status, err = run(argv, capsys)
    assert status == 2 and len(err) == 1 and err[0].endswith("No space left on device"), err
    assert out.read_text() == "an earlier result\n" and no_temporary_files(tmp)
    assert trials(db) == before


@pytest.fixture
def small_tmpfs(tmp_path) -> Iterator[Path]:
    """A real 256 KiB file system (needs root; skipped elsewhere)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, check=False
    ).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_really_full_disk_while_training(small_tmpfs, tmp_path, capsys):
    out = tmp_path / "ck.pt"  # the checkpoint fits elsewhere; the weights go to the small disk
    status, err = run([*TRAIN, "--out", str(out), "--weights-out", str(small_tmpfs / "w.pt")], capsys)
    assert status == 2 and err[-1].endswith("No space left on device"), err
    assert os.listdir(small_tmpfs) == []
    status, err = run([*TRAIN, "--out", str(small_tmpfs / "ck.pt"), "--overwrite"], capsys)
    assert status == 2 and err == [
        f"elasticnas train: error: cannot write checkpoint {str(small_tmpfs / 'ck.pt')!r}: No space left on device"
    ]
    assert os.listdir(small_tmpfs) == []


# -- the database ------------------------------------------------------------------------------------------
def test_read_only_database_is_one_line_and_unchanged(db, capsys):
    before = db.read_bytes()
    url = f"sqlite:///file:{db}?mode=ro&uri=true"  # read-only for root too, unlike chmod 0444
    status, err = run(["search", "--problem", PROBLEM, "--quiet", "--n-evals", "9", "--storage", url, "--study", "s"],
                      capsys)
    assert status == 2 and len(err) == 1, err
    assert err[0].startswith(f"elasticnas search: error: storage {url!r} failed: ")
    assert "read-only" in err[0] and "make the file and its folder writable" in err[0]
    assert db.read_bytes() == before
    status, err = run(["pareto", "--storage", url, "--study", "s"], capsys)  # reading still works
    assert status == 0


def corrupt(path: Path) -> None:
    """Overwrite the pages after the first with garbage (the header stays, so SQLite opens the file)."""
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for offset in range(page, len(data), page):
        data[offset : offset + 64] = b"\xa5" * 64
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("command", ["pareto", "report", "search", "studies"])
def test_corrupted_pages_are_one_line_and_the_file_is_not_touched(command, db, tmp_path, capsys):
    corrupt(db)
    before = db.read_bytes()
    url = f"sqlite:///{db}"
    argv = {
        "pareto": ["pareto", "--storage", url, "--study", "s"],
        "report": ["report", "--storage", url, "--study", "s", "--out", str(tmp_path / "r.html")],
        "search": ["search", "--problem", PROBLEM, "--quiet", "--n-evals", "9", "--storage", url, "--study", "s"],
        "studies": ["studies", "--storage", url],
    }[command]
    status, err = run(argv, capsys)
    assert status == 2 and len(err) == 1, err
    assert err[0].startswith(f"elasticnas {command}: error: ") and repr(url) in err[0]
    assert "damaged" in err[0] or "malformed" in err[0] or "not a database" in err[0], err[0]
    assert db.read_bytes() == before and not (tmp_path / "r.html").exists()


def test_a_mistyped_database_path_is_refused_and_not_created(tmp_path, capsys):
    for argv in (["pareto", "--study", "s"], ["report", "--study", "s", "--out", str(tmp_path / "r.html")]):
        status, err = run([*argv, "--storage", f"sqlite:///{tmp_path / 'typo.db'}"], capsys)
        typo = tmp_path / "typo.db"
        assert status == 2 and err == [
            f"elasticnas {argv[0]}: error: cannot open storage 'sqlite:///{typo}': "
            f"no database file '{typo}'; check the path"
        ]
    assert os.listdir(tmp_path) == []


def _search_in_child(argv: list[str], barrier, err_path: str) -> None:
    fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 2)
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - the child's stderr for its lifetime
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    barrier.wait()
    os._exit(main(argv))


@pytest.mark.parametrize("attempt", range(4))
def test_two_processes_creating_one_new_database_both_succeed(attempt, tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    argv = ["search", "--problem", PROBLEM, "--quiet", "--n-evals", "2", "--searcher", "random", "--storage", url,
            "--study", "s", "--seed", str(attempt)]
    ctx = multiprocessing.get_context("fork")  # both start at once, past their imports
    barrier = ctx.Barrier(2)
    children = [ctx.Process(target=_search_in_child, args=(argv, barrier, str(tmp_path / f"err{i}"))) for i in (0, 1)]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
    errors = [(tmp_path / f"err{i}").read_text() for i in (0, 1)]
    assert [c.exitcode for c in children] == [0, 0], errors
    assert en.load_study(url, "s").n_evals >= 2


def _create_in_child(url: str, barrier, results) -> None:
    from elasticnas.testing.searchers import toy_space

    barrier.wait()
    try:
        en.create_study(toy_space(), {"a": "minimize", "b": "minimize"}, storage=url, study_name="s")
        results.put("opened")
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        results.put(repr(exc))


@pytest.mark.parametrize("attempt", range(6))
def test_three_processes_creating_one_study_at_once_all_open_it(attempt, tmp_path):
    # the losers of the race neither fail on the duplicate name nor refuse the winner's study before
    # its definition is written
    url = f"sqlite:///{tmp_path / 'new.db'}"
    optuna.storages.RDBStorage(url)  # the tables exist, so the three reach the study at once
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(3), ctx.Queue()
    children = [ctx.Process(target=_create_in_child, args=(url, barrier, results)) for _ in range(3)]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join(10)
    assert outcomes == ["opened"] * 3
    assert len(optuna.get_all_study_names(url)) == 1 and en.load_study(url, "s").n_evals == 0


def test_an_empty_foreign_study_is_refused_after_the_grace_for_its_creator(tmp_path, monkeypatch):
    monkeypatch.setattr("elasticnas.study._CREATION_GRACE_S", 0.3)
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    optuna.create_study(storage=url, study_name="s")
    start = time.monotonic()
    with pytest.raises(en.StorageError, match="not created by elasticnas"):
        en.load_study(url, "s")
    assert 0.3 <= time.monotonic() - start < 5


# -- signals and pipes ----------------------------------------------------------------------------------------
def _cli(*argv: str, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONFAULTHANDLER="1")  # SIGABRT prints every thread's stack (see _stderr)
    return subprocess.Popen([sys.executable, "-m", "elasticnas.cli", *argv], stderr=subprocess.PIPE, text=True,
                            env=env, **kwargs)


def _stderr(proc: subprocess.Popen, timeout: float = 60) -> str:
    """What the process wrote to stderr once it ended; one still running after ``timeout`` seconds fails the
    test with the stacks of its threads."""
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        pytest.fail(f"still running {timeout} s later; its threads:\n{proc.communicate(timeout=30)[1][-8000:]}")


def test_sigterm_during_a_search_releases_the_running_trial(db):
    before = trials(db)
    proc = _cli("search", "--problem", PROBLEM, "--quiet", "--n-evals", "100000", "--searcher", "random",
                "--storage", f"sqlite:///{db}", "--study", "s", stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(trials(db)) < len(before) + 3 and time.monotonic() < deadline and proc.poll() is None:  # searching
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    err = _stderr(proc)
    assert proc.returncode == 143 and err.strip().splitlines() == [
        "elasticnas search: terminated; finished evaluations are saved"], err
    after = trials(db)
    assert after[: len(before)] == before and "RUNNING" not in {state for _, state in after}


def test_an_interrupt_swallowed_on_its_way_stops_the_search_at_the_next_round(tmp_path):
    """An interrupt raised where Python only prints exceptions (a finalizer run by the garbage collector)
    is lost there; the search loop raises it again before its next evaluation."""
    from elasticnas._interrupts import interrupt
    from elasticnas.problems import create_problem

    problem = create_problem(PROBLEM)
    study = en.create_study(**problem.study_kwargs(), storage=f"sqlite:///{tmp_path / 's.db'}")
    calls = []

    def evaluate(config):
        calls.append(config)
        if len(calls) == 3:
            with contextlib.suppress(KeyboardInterrupt):  # what a finalizer does with it
                interrupt(KeyboardInterrupt())
        return problem.evaluate(config)

    with pytest.raises(KeyboardInterrupt):
        study.optimize(evaluate, n_evals=50, searcher="random", seed=0, cheap_metrics=problem.cheap_metrics)
    assert len(calls) == 3 and study.n_evals == 3


def test_an_interrupt_during_a_storage_call_waits_for_it_to_finish(tmp_path):
    """An interrupt (what the CLI's Ctrl-C / SIGTERM handlers raise) that arrives while SQL runs is raised
    when the storage call returns: the write is committed and no connection is left checked out."""
    from sqlalchemy import event

    from elasticnas._interrupts import interrupt
    from elasticnas.storages import open_storage

    storage = open_storage(f"sqlite:///{tmp_path / 'db.sqlite'}")

    def signal_arrives(*args):
        interrupt(KeyboardInterrupt())  # held: raising here would roll the study back

    event.listen(storage.engine, "before_cursor_execute", signal_arrives, once=True)  # one signal
    with pytest.raises(KeyboardInterrupt):
        storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "s")
    assert [s.study_name for s in storage.get_all_studies()] == ["s"]
    assert storage.engine.pool.checkedout() == 0


def test_a_second_interrupt_during_a_storage_call_is_raised_at_once(tmp_path):
    from sqlalchemy import event

    from elasticnas._interrupts import interrupt
    from elasticnas.storages import open_storage

    storage = open_storage(f"sqlite:///{tmp_path / 'db.sqlite'}")
    raised = []

    def signal_arrives_twice(*args):
        interrupt(KeyboardInterrupt("first"))
        try:
            interrupt(KeyboardInterrupt("second"))
        except KeyboardInterrupt as exc:
            raised.append(str(exc))
            raise

    event.listen(storage.engine, "before_cursor_execute", signal_arrives_twice, once=True)
    with pytest.raises(KeyboardInterrupt, match="second"):
        storage.get_all_studies()
    assert raised == ["second"]
    storage.get_all_studies()  # the first, dropped, is not raised later


def test_a_closed_pipe_ends_quietly(db):
    proc = _cli("pareto", "--storage", f"sqlite:///{db}", "--study", "s", stdout=subprocess.PIPE)
    proc.stdout.close()  # like `| head` that has read enough
    err = _stderr(proc)
    assert proc.returncode in (0, 141) and "Traceback" not in err and err.strip() == "", err
