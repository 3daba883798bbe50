"""Registries resolve lazy ``"module:attr"`` entries on first use, so listing names imports nothing heavy.

The import checks run in a fresh interpreter, since this test process has long imported PyTorch.
"""

from __future__ import annotations

import importlib

import pytest
from fresh_interpreter import run_json

from elasticnas.errors import UnknownNameError
from elasticnas.registry import Registry

HEAVY = ("torch", "sklearn", "scipy", "pymoo")


def test_listing_names_loads_no_heavy_library():
    result = run_json(
        f"""
import json, sys
import elasticnas.measure, elasticnas.predictors, elasticnas.problems, elasticnas.searchers, elasticnas.supernets
names = {{
    "searchers": elasticnas.searchers.list_searchers(),
    "problems": elasticnas.problems.list_problems(),
    "supernets": elasticnas.supernets.list_supernets(),
    "predictors": elasticnas.predictors.list_predictors(),
    "metrics": elasticnas.measure.list_metrics(),
    "cheap_metrics": elasticnas.measure.list_metrics(cheap=True),
    "runtimes": elasticnas.measure.list_runtimes(),
}}
print(json.dumps({{"heavy": [m for m in {HEAVY!r} if m in sys.modules], "names": names}}))
"""
    )
    assert result["heavy"] == []
    names = result["names"]
    assert {"nsga2", "random", "linas", "optuna_tpe"} <= set(names["searchers"])
    assert "ofa_mbv3_note10" in names["problems"]
    assert {"tiny_mbv3", "ofa_mbv3_w10"} <= set(names["supernets"])
    assert {"ridge", "mlp", "auto"} <= set(names["predictors"])
    assert {"macs", "latency_ms", "accuracy_top1"} <= set(names["metrics"])
    assert "macs" in names["cheap_metrics"] and "latency_ms" not in names["cheap_metrics"]
    assert names["runtimes"] == ["onnxruntime", "torch"]


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "--help"],
        ["measure", "--help"],
        ["lut", "build", "--help"],
        ["export", "--help"],
        ["train", "--help"],
    ],
    ids=" ".join,
)
def test_help_listing_names_loads_no_heavy_library(argv):
    # pymoo may load: search --help reads its default from elasticnas.study, which imports pymoo's hypervolume
    result = run_json(
        f"""
import contextlib, io, json, sys
from elasticnas.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main({argv!r})
print(json.dumps([m for m in ("torch", "sklearn", "scipy") if m in sys.modules]))
"""
    )
    assert result == []


@pytest.mark.parametrize(
    ("package", "name", "module"),
    [
        ("elasticnas.searchers", "NSGA2Searcher", "elasticnas.searchers._pymoo"),
        ("elasticnas.supernets", "Supernet", "elasticnas.supernets.base"),
        ("elasticnas.predictors", "GPPredictor", "elasticnas.predictors._gp"),
        ("elasticnas.measure", "Measurer", "elasticnas.measure.metrics"),
        ("elasticnas.data", "ImageFolder", "elasticnas.data._imagefolder"),
        ("elasticnas.data", "list_builtin_datasets", "elasticnas.data._builtin"),
    ],
)
def test_public_names_resolve_on_first_use(package, name, module):
    pkg = importlib.import_module(package)
    assert getattr(pkg, name) is getattr(importlib.import_module(module), name)
    assert set(pkg.__all__) <= set(dir(pkg))
    assert all(getattr(pkg, n, None) is not None for n in pkg.__all__)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        pkg.no_such_name  # noqa: B018


def test_builtin_entries_resolve_to_their_objects():
    from elasticnas.searchers import SEARCHERS, NSGA2Searcher
    from elasticnas.supernets import SUPERNETS, tiny_mbv3

    assert SEARCHERS.get("nsga2") is NSGA2Searcher
    assert SUPERNETS.get("ofa_mbv3_d234_e346_k357_w1.0") is SUPERNETS.get("ofa_mbv3_w10")
    assert SUPERNETS.get("tiny_mbv3") is tiny_mbv3


def test_lazy_entry_is_imported_on_get_and_kept():
    registry: Registry[object] = Registry("thing")
    registry.register_lazy("ordered", "collections:OrderedDict", aliases=("od",))
    assert "ordered" in registry and "od" in registry
    assert registry.names() == ["ordered"]
    assert registry.canonical("od") == "ordered"
    from collections import OrderedDict

    assert registry.get("od") is OrderedDict
    assert registry._entries["ordered"] is OrderedDict  # resolved once, then cached


def test_lazy_entry_errors():
    registry: Registry[object] = Registry("thing")
    registry.register_lazy("a", "collections:OrderedDict")
    registry.register_lazy("broken", "elasticnas.no_such_module:thing")
    with pytest.raises(ValueError, match="already registered"):
        registry.register_lazy("a", "collections:Counter")
    with pytest.raises(ValueError, match="already registered"):
        registry.register("b", object(), aliases=("a",))
    with pytest.raises(ValueError, match="package.module:attr"):
        registry.register_lazy("c", "collections.OrderedDict")
    with pytest.raises(UnknownNameError, match=r"unknown thing 'nope'; choose one of: a, broken"):
        registry.get("nope")
    with pytest.raises(ModuleNotFoundError):
        registry.get("broken")


def test_search_help_lists_every_registered_name(capsys):
    from elasticnas.cli import main
    from elasticnas.measure import list_metrics
    from elasticnas.problems import list_problems
    from elasticnas.searchers import list_searchers
    from elasticnas.supernets import list_supernets

    with pytest.raises(SystemExit) as exc:
        main(["search", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps long lists
    for names in (list_searchers(), list_problems(), list_supernets(), list_metrics()):
        assert ", ".join(names) in out
