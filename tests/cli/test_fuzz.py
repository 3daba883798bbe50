"""A generated fuzz suite over the command line: every option of every subcommand, read from the argparse
definitions themselves, gets every value of a boundary catalogue (negative, zero, NaN, infinities, huge
numbers, empty and wrong-typed text, a directory, a missing file, a special file, a FIFO, a symbolic link).

Each run must end with exit status 0 or 2, with one error line on stderr (after argparse's usage, for
argument errors), never a traceback, and leave no half-written file: no temporary file remains, a
symbolic link's target is untouched, and the command's pre-existing output file is either unchanged or
wholly replaced. Hypothesis adds generated numbers for the numeric options (derandomized, bounded).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import shutil
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elasticnas.cli import _args, build_parser, main
from elasticnas.cli._args import LazySubParsers

PROBLEM = "ofa_mbv3_note10"
OLD = b"an earlier result, kept unless wholly replaced\n"

# Small budgets: a value that is accepted does real, bounded work. {out} is the command's own output,
# created beforehand with OLD; {tmp}, {db} and {config} are filled in per run.
BASE: dict[str, tuple[str, ...]] = {
    "search": ("search", "--problem", PROBLEM, "--quiet", "--n-evals", "2", "--searcher", "random",
               "--storage", "{db}", "--study", "s"),
    "pareto": ("pareto", "--storage", "{db}", "--study", "s"),
    "studies": ("studies", "--storage", "{db}"),
    "report": ("report", "--storage", "{db}", "--study", "s", "--out", "{out}"),
    "demo": ("demo", "--out", "{tmp}/demo", "--n-evals", "2"),
    "export": ("export", "--supernet", "tiny_mbv3", "--config", "{config}", "--out", "{out}"),
    "measure": ("measure", "--supernet", "tiny_mbv3", "--configs", "{tmp}/c.jsonl", "--metrics", "macs,params",
                "--out", "{out}", "--quiet"),
    "lut build": ("lut", "build", "--supernet", "tiny_mbv3", "--runtime", "torch", "--budget-s", "0.001",
                  "--calibrate", "0", "--out", "{out}", "--quiet"),
    "train": ("train", "--supernet", "tiny_mbv3", "--epochs", "1", "--train-samples", "16", "--batch-size", "16",
              "--num-random", "0", "--no-val", "--no-progress", "--threads", "1", "--overwrite", "--out", "{out}"),
    "elasticize": ("elasticize", "{model}", "--out", "{tmp}/elastic", "--method", "first-k"),
}
OUTPUT_SUFFIX = {"report": ".html", "export": ".pt", "measure": ".csv", "lut build": ".json", "train": ".pt"}

CATALOGUE: dict[str, str] = {
    "negative": "-1",
    "zero": "0",
    "nan": "nan",
    "inf": "inf",
    "minus-inf": "-inf",
    "huge-float": "1e400",
    "huge-int": str(10**30),
    "empty": "",
    "wrong-type": "x1",
    "directory": "{tmp}/folder",
    "missing-file": "{tmp}/nowhere/file",
    "special-file": "{tmp}/device",
    "fifo": "{tmp}/fifo",
    "symlink": "{tmp}/link",
}

# Accepted values that start a whole demo (a search, a report and an ONNX export: tests/cli/test_demo.py runs it).
WHOLE_DEMO = {("demo", "--out", v) for v in ("negative", "wrong-type", "empty", "directory", "missing-file")} | {
    ("demo", "--seed", "zero")}


def subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    """Every subcommand (``lut build`` for nested ones) and its parser with all arguments filled in."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, LazySubParsers)]
        if not subs:
            found[prefix.strip()] = parser
            return
        for name in list(subs[0].choices):
            walk(subs[0].filled(name), f"{prefix} {name}")

    walk(build_parser(), "")
    return found


PARSERS = subcommand_parsers()


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options taking a value (flags and help have none)."""
    return [a for a in parser._actions if a.option_strings and a.nargs != 0]


def _name(action: argparse.Action) -> str:
    return max(action.option_strings, key=len)


TEXT_CLASSES = ("negative", "wrong-type", "empty", "directory", "missing-file", "special-file", "fifo", "symlink")


def values_for(action: argparse.Action) -> list[str]:
    """The catalogue; for free text (no type, no choices) the numbers are all plain text, tried as one."""
    if action.type is None and action.choices is None:
        return list(TEXT_CLASSES)
    return list(CATALOGUE)


CASES = [
    pytest.param(
        command, _name(action), value,
        id=f"{command.replace(' ', '-')}{_name(action)}={value}",
    )
    for command, parser in PARSERS.items()
    for action in options(parser)
    for value in values_for(action)
    if (command, _name(action), value) not in WHOLE_DEMO
]


def test_every_subcommand_has_a_small_budget_argv():
    assert set(PARSERS) == set(BASE)


# -- running one case ---------------------------------------------------------------------------------
class Hung(Exception):
    """A run took longer than its deadline (for example, it opened a FIFO and waits for a writer)."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    def expire(signum, frame):
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def config() -> dict:
    from elasticnas.supernets import create_supernet

    return create_supernet("tiny_mbv3", weights=None).search_space.sample(0)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny random GPT-2 folder for ``elasticize``."""
    import torch
    import transformers

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("gpt2")
    config = transformers.GPT2Config(vocab_size=256, n_positions=128, n_embd=16, n_layer=2, n_head=2)
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


@pytest.fixture
def place(tmp_path, study_db, config, model_dir, monkeypatch) -> Path:
    """A folder holding the study copy, the configurations file and the catalogue's files."""
    shutil.copy(study_db, tmp_path / "s.db")
    (tmp_path / "c.jsonl").write_text(json.dumps(config) + "\n")
    (tmp_path / "model").symlink_to(model_dir)
    (tmp_path / "folder").mkdir()
    (tmp_path / "target.txt").write_bytes(OLD)
    (tmp_path / "link").symlink_to(tmp_path / "target.txt")
    os.mkfifo(tmp_path / "fifo")
    try:  # a private null device (never the real /dev/null, which a defect could replace)
        os.mknod(tmp_path / "device", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        os.mkfifo(tmp_path / "device")
    from elasticnas import measure

    real = measure.collect_layer_specs  # lut build: time 3 layers, not all of them

    def few_layers(*args, **kwargs):
        return dict(list(real(*args, **kwargs).items())[:3])

    monkeypatch.setattr(measure, "collect_layer_specs", few_layers)
    # a timing budget as large as the catalogue's ("huge") times until the medians settle, which on a loaded
    # machine outlasts the deadline: the command is run with at most 1 s of timing, its input handled as given
    real_with_budget = measure.TimingPolicy.with_budget
    monkeypatch.setattr(measure.TimingPolicy, "with_budget", lambda policy, s: real_with_budget(policy, min(s, 1.0)))
    monkeypatch.chdir(tmp_path)  # relative names ('-1', 'x1') land here
    return tmp_path


def argv_for(command: str, option: str | None, value: str, tmp: Path, config: dict) -> tuple[list[str], Path | None]:
    """The command's small-budget argv with ``option`` set to ``value`` (replaced or added), and its output file."""
    out = tmp / f"out{OUTPUT_SUFFIX[command]}" if command in OUTPUT_SUFFIX else None
    fill = {"{tmp}": str(tmp), "{db}": f"sqlite:///{tmp / 's.db'}", "{config}": json.dumps(config),
            "{out}": str(out), "{model}": str(tmp / "model")}

    def filled(text: str) -> str:
        for key, new in fill.items():
            text = text.replace(key, new)
        return text

    argv = [filled(a) for a in BASE[command]]
    if option is not None:
        new = f"{option}={filled(value)}"  # '=' so that '-inf' is a value, not an option
        if option in argv:
            i = argv.index(option)
            argv[i : i + 2] = [new]
        else:
            argv.append(new)
    return argv, out


def run(argv: list[str], capsys) -> tuple[int, list[str]]:
    with deadline(20):
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse
            status = exc.code
    return status, capsys.readouterr().err.strip().splitlines()


def check_outcome(status: int, err: list[str]) -> None:
    """Exit 0, or exit 2 with one error line (argparse may print its usage lines before it); never a traceback."""
    text = "\n".join(err)
    assert "Traceback" not in text, text
    assert status in (0, 2), (status, text)
    if status == 2:
        assert err and err[-1].startswith("elasticnas") and ": error: " in err[-1], text
        before = err[:-1]
        assert not before or (before[0].startswith("usage:") and all(line.startswith(" ") for line in before[1:])), text


def check_files(tmp: Path, status: int, out: Path | None) -> None:
    """No temporary file left; the link's target intact; the output unchanged or whole."""
    leftovers = [p for p in tmp.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, leftovers
    assert (tmp / "target.txt").read_bytes() == OLD
    assert (tmp / "link").is_symlink() and stat.S_ISFIFO((tmp / "fifo").lstat().st_mode)
    assert not (tmp / "device").lstat().st_mode & stat.S_IFREG
    if out is None or not out.exists():
        return
    data = out.read_bytes()
    if data == OLD:
        return
    assert status == 0, "the output was changed by a failing run"
    if out.suffix == ".json":
        json.loads(data)
    elif out.suffix == ".csv":
        assert len(list(csv.reader(data.decode().splitlines()))) >= 2
    elif out.suffix == ".html":
        assert data.rstrip().endswith(b"</html>")
    else:
        assert len(data) > 100


@pytest.mark.parametrize(("command", "option", "value"), CASES)
def test_boundary_value_is_exit_0_or_one_line_exit_2_and_no_half_written_file(command, option, value, place, config,
                                                                                 capsys):
    argv, out = argv_for(command, option, CATALOGUE[value], place, config)
    if out is not None:
        out.write_bytes(OLD)
    status, err = run(argv, capsys)
    check_outcome(status, err)
    check_files(place, status, out)


# -- generated numbers ---------------------------------------------------------------------------------
NUMBER_TYPES = {_args.positive_int, _args.non_negative_int, _args.seed, _args.thread_count, _args.batch_size,
                _args.finite_float, _args.positive_float, _args.non_negative_float}
numbers_as_text = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e400", "-0", "0x10", "1_000", " 3 ", "٣", "1e-400", "NaN", "+inf", "2**63"]),
    st.text(max_size=6),
)


@settings(max_examples=400, derandomize=True, deadline=None)
@given(text=numbers_as_text)
def test_number_types_return_a_finite_value_in_range_or_refuse_with_one_line(text):
    for parse in NUMBER_TYPES:
        try:
            value = parse(text)
        except argparse.ArgumentTypeError as exc:
            assert "\n" not in str(exc) and repr(text) in str(exc)
            continue
        if isinstance(value, int):
            assert 0 <= value < 2**63  # fits int64
        else:
            assert math.isfinite(value)


def test_every_numeric_option_uses_a_checked_type():
    """No option of any subcommand parses a number with a bare int or float."""
    loose = [f"{command} {_name(a)}" for command, parser in PARSERS.items() for a in options(parser)
             if a.type in (int, float)]
    assert not loose, loose


NUMERIC = [
    (command, _name(a))
    for command, parser in PARSERS.items()
    for a in options(parser)
    if a.type is not None and getattr(a.type, "__module__", "") == _args.__name__ and a.type is not _args.input_file
]


@pytest.mark.parametrize(("command", "option"), NUMERIC, ids=lambda x: x.replace(" ", "-") if isinstance(x, str) else x)
def test_generated_numbers_on_numeric_options(command, option, place, config, capsys):
    @settings(max_examples=6, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
    @given(text=st.one_of(st.integers(-(2**70), 2**70).map(str), st.floats().map(repr)))
    def check(text):
        if not _refused(command, option, text):  # an accepted number would do real work of that size
            return
        argv, out = argv_for(command, option, text, place, config)
        status, err = run(argv, capsys)
        check_outcome(status, err)
        assert status == 2
        check_files(place, status, out)

    check()


def _refused(command: str, option: str, text: str) -> bool:
    action = next(a for a in options(PARSERS[command]) if _name(a) == option)
    try:
        action.type(text)
    except argparse.ArgumentTypeError:
        return True
    return False
