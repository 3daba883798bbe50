"""Plugins: super-networks, searchers and metrics that users register, found by the CLI.

``--plugin MODULE`` imports a user's module before the subcommand's arguments exist, so its
names show in ``--help``; installed packages declare entry points (groups
``elasticnas.supernets``, ``elasticnas.searchers``, ``elasticnas.metrics``), read lazily at a
registry's first look-up or listing and imported at the entry's first use.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fresh_interpreter import run_json

from elasticnas.cli import main, plugin_modules
from elasticnas.measure.metrics import METRICS
from elasticnas.registry import Registry
from elasticnas.searchers import SEARCHERS
from elasticnas.supernets import SUPERNETS

PLUGIN = """
from elasticnas.measure.metrics import Metric
from elasticnas.searchers import SEARCHERS
from elasticnas.supernets.tiny import tiny_mbv3

def {prefix}_net(**kwargs):
    return tiny_mbv3(**kwargs)

{prefix}_searcher = SEARCHERS.get("random")
{prefix}_metric = Metric("{prefix}_metric", "minimize", True, lambda m, cfg: {{"{prefix}_metric": 1.0}})
"""

REGISTER = """
from elasticnas.measure.metrics import register_metric
from elasticnas.searchers import register_searcher
from elasticnas.supernets import register_supernet

register_supernet("my_net", my_net)
register_searcher("my_searcher", my_searcher)
register_metric(my_metric)
"""


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``tmp_path`` on ``sys.path``; the registries and modules a test's plugins touch are restored after it."""
    monkeypatch.syspath_prepend(str(tmp_path))
    for registry in (SUPERNETS, SEARCHERS, METRICS):
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith(("my_plugin", "broken_plugin")):
            del sys.modules[name]


def test_plugin_option_registers_before_the_subcommand_is_filled(plugin_dir: Path, capsys) -> None:
    (plugin_dir / "my_plugin.py").write_text(PLUGIN.format(prefix="my") + REGISTER)
    with pytest.raises(SystemExit) as exc:
        main(["--plugin", "my_plugin", "search", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "my_net" in out and "my_searcher" in out and "my_metric" in out
    from elasticnas.supernets import create_supernet

    net = create_supernet("my_net")
    assert net.name == "my_net" and net.costs(net.min_config())["macs"] > 0


def test_a_plugin_that_fails_to_import_is_one_line_and_exit_2(plugin_dir: Path, capsys) -> None:
    assert main(["--plugin", "no_such_plugin_module", "search", "--help"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "plugin 'no_such_plugin_module' failed to import: ModuleNotFoundError" in err
    (plugin_dir / "broken_plugin.py").write_text("raise RuntimeError('boom\\nsecond line')\n")
    assert main(["--plugin=broken_plugin", "demo"]) == 2
    err = capsys.readouterr().err
    assert err == "elasticnas: error: plugin 'broken_plugin' failed to import: RuntimeError: boom\n"


def test_plugin_options_are_read_before_the_subcommand_only() -> None:
    assert plugin_modules(["--plugin", "a", "--plugin=b", "--plug", "c", "search", "--plugin", "d"]) == ["a", "b", "c"]
    assert plugin_modules(["--version"]) == [] and plugin_modules(["--plugin"]) == []


def test_entry_points_are_read_once_lazily_and_clashes_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    group = "elasticnas.supernets"
    found = [
        importlib.metadata.EntryPoint("taken", "json:loads", group),
        importlib.metadata.EntryPoint("dumps", "json:dumps", group),
        importlib.metadata.EntryPoint("bad", "json.dumps", group),
    ]
    calls = []

    def entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        calls.append(group)
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    registry: Registry[object] = Registry("supernet")
    registry.register("taken", 1)
    assert calls == []  # registering reads no entry points
    with pytest.warns(UserWarning) as caught:
        assert registry.names() == ["dumps", "taken"]
    assert ["'taken'" in str(w.message) for w in caught] == [True, False]
    assert registry.get("dumps") is json.dumps and registry.get("taken") == 1
    assert "dumps" in registry and calls == [group]  # read once
    assert Registry("thing").names() == [] and calls == [group]  # kinds without a group read none


def test_cli_lists_entry_point_plugins_without_importing_them(tmp_path: Path) -> None:
    (tmp_path / "my_plugin_ep.py").write_text(PLUGIN.format(prefix="ep"))
    dist = tmp_path / "my_plugin_ep-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin-ep\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent(
            """
            [elasticnas.supernets]
            ep_net = my_plugin_ep:ep_net
            [elasticnas.searchers]
            ep_searcher = my_plugin_ep:ep_searcher
            [elasticnas.metrics]
            ep_metric = my_plugin_ep:ep_metric
            """
        )
    )
    result = run_json(
        f"""
import contextlib, io, json, sys
sys.path.insert(0, {str(tmp_path)!r})
from elasticnas.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
    main(["search", "--help"])
text = " ".join(out.getvalue().split())
after_help = {{"plugin": "my_plugin_ep" in sys.modules, "torch": "torch" in sys.modules}}
from elasticnas.measure import get_metric
from elasticnas.searchers import SEARCHERS
from elasticnas.supernets import create_supernet
net = create_supernet("ep_net")
print(json.dumps({{
    "listed": [n for n in ("ep_net", "ep_searcher", "ep_metric") if n in text],
    "after_help": after_help,
    "net": [net.name, type(net).__name__],
    "metric": get_metric("ep_metric").name,
    "searcher": SEARCHERS.get("ep_searcher") is SEARCHERS.get("random"),
}}))
"""
    )
    assert result["listed"] == ["ep_net", "ep_searcher", "ep_metric"]
    assert result["after_help"] == {"plugin": False, "torch": False}
    assert result["net"] == ["ep_net", "ElasticMobileNetV3"]
    assert result["metric"] == "ep_metric" and result["searcher"]
