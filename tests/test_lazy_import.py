"""``import elasticnas`` and ``elasticnas --help`` stay cheap: the heavy libraries load on first use.

The public names of ``elasticnas`` resolve lazily (PEP 562) and the CLI adds a subcommand's
arguments only when that subcommand is parsed; each check runs in a fresh interpreter, since
this test process has long imported PyTorch.
"""

from __future__ import annotations

import re

import pytest
from fresh_interpreter import run_json

from elasticnas.cli import main

HEAVY = ("torch", "sklearn", "scipy", "optuna", "pymoo", "numba")


def test_import_loads_no_heavy_library_and_every_public_name_resolves():
    result = run_json(
        f"""
import json, sys
import elasticnas
heavy = [m for m in {HEAVY!r} if m in sys.modules]
missing = [n for n in elasticnas.__all__ if getattr(elasticnas, n, None) is None]
import elasticnas.study
print(json.dumps({{
    "heavy": heavy,
    "missing": missing,
    "same_study": elasticnas.Study is elasticnas.study.Study,
    "dir": sorted(set(elasticnas.__all__) - set(dir(elasticnas))),
    "from_import": __import__("elasticnas", fromlist=["create_supernet"]).create_supernet.__module__,
}}))
"""
    )
    assert result["heavy"] == []
    assert result["missing"] == []
    assert result["same_study"]
    assert result["dir"] == []
    assert result["from_import"] == "elasticnas.supernets"


def test_submodules_resolve_as_attributes_and_unknown_names_raise():
    import elasticnas

    assert elasticnas.registry.Registry.__name__ == "Registry"
    assert elasticnas.__version__
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        elasticnas.no_such_name  # noqa: B018


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["pareto", "--help"], ["lut", "--help"]])
def test_help_loads_no_heavy_library(argv):
    result = run_json(
        f"""
import contextlib, io, json, sys
from elasticnas.cli import main
out = io.StringIO()
try:
    with contextlib.redirect_stdout(out):
        main({argv!r})
    status = 0
except SystemExit as exc:
    status = exc.code
print(json.dumps({{"status": status, "heavy": [m for m in {HEAVY!r} if m in sys.modules], "help": out.getvalue()}}))
"""
    )
    assert result["status"] == 0
    assert result["heavy"] == []
    assert result["help"].startswith("usage: elasticnas")


COMMANDS = ["demo", "search", "pareto", "report", "studies", "export", "measure", "lut", "train", "elasticize"]


def test_top_level_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert re.findall(r"^    (\w+) ", out, re.MULTILINE) == COMMANDS


@pytest.mark.parametrize("argv", [[c] for c in COMMANDS] + [["lut", "build"]], ids=" ".join)
def test_every_subcommand_builds_its_full_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: elasticnas {' '.join(argv)}")
    if argv != ["lut"]:
        assert "--" in out.split("options:", 1)[1].replace("-h, --help", "")  # its own arguments were added
