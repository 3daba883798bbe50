"""The bundled Note10 tables are the OFA authors' YAML tables converted to JSON, numbers unchanged."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from elasticnas.errors import ElasticNASError
from elasticnas.measure.ofa_lut import OFALookupTable, bundled_note10_dir

yaml = pytest.importorskip("yaml")

DATA = Path(__file__).resolve().parent.parent / "data" / "ofa_mbv3"

# Entries copied verbatim from the OFA authors' <r>_lookup_table.yaml files that the package shipped before.
OFA_YAML = {
    160: """\
AvgPool2D-input:5x5x1152-output:1x1x1152:
  count: 491
  mean: 0.008482688391038698
  std: 0.0006733248071883371
""",
    176: """\
expanded_conv-input:22x22x48-output:22x22x48-expand:144-kernel:3-stride:1-idskip:1-se:1-hs:0:
  count: 98
  mean: 0.652030612244898
  std: 0.011991029029077395
""",
    192: """\
expanded_conv-input:12x12x136-output:12x12x136-expand:408-kernel:3-stride:1-idskip:1-se:1-hs:1:
  count: 100
  mean: 1.1952299999999998
  std: 0.01788510833067554
""",
    208: """\
expanded_conv-input:7x7x192-output:7x7x192-expand:768-kernel:7-stride:1-idskip:1-se:1-hs:1:
  count: 107
  mean: 1.5291401869158876
  std: 0.048395073627043206
""",
    224: """\
expanded_conv-input:14x14x136-output:7x7x192-expand:816-kernel:7-stride:2-idskip:0-se:1-hs:1:
  count: 64
  mean: 2.5210625
  std: 0.06115755140413983
""",
}


def _bundled(r: int) -> dict[str, dict[str, float]]:
    return json.loads((bundled_note10_dir() / f"{r}_lookup_table.json").read_text())


def _configs(n: int) -> list[dict[str, object]]:
    rng = random.Random(0)
    return [
        {"ks": [rng.choice([3, 5, 7]) for _ in range(20)], "e": [rng.choice([3, 4, 6]) for _ in range(20)],
         "d": [rng.choice([2, 3, 4]) for _ in range(5)], "r": rng.choice([160, 176, 192, 208, 224])}
        for _ in range(n)
    ]


def test_bundled_json_holds_the_ofa_yaml_numbers() -> None:
    for r, text in OFA_YAML.items():
        for key, entry in yaml.safe_load(text).items():
            assert _bundled(r)[key] == entry  # count, mean and std, floats compared exactly
    assert set(_bundled(224)) == set((DATA / "note10_lut_224_keys.txt").read_text().split())
    assert OFALookupTable.load().resolutions == (160, 176, 192, 208, 224)


def test_users_ofa_yaml_tables_read_as_the_bundled_json(tmp_path: Path) -> None:
    for r in (160, 224):
        (tmp_path / f"{r}_lookup_table.yaml").write_text(yaml.safe_dump(_bundled(r)))
    from_yaml, bundled = OFALookupTable.load(tmp_path), OFALookupTable.load()
    assert from_yaml.resolutions == (160, 224)
    for cfg in _configs(40):
        if cfg["r"] in from_yaml.resolutions:
            assert from_yaml.latency_ms(cfg) == bundled.latency_ms(cfg)


def test_yaml_tables_without_pyyaml_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "224_lookup_table.yaml").write_text(OFA_YAML[224])
    monkeypatch.setitem(sys.modules, "yaml", None)
    cfg = _configs(1)[0]
    assert OFALookupTable.load().latency_ms(cfg) > 0  # the bundled tables need no YAML parser
    with pytest.raises(ElasticNASError) as info:
        OFALookupTable.load(tmp_path)
    assert str(info.value) == "reading OFA's YAML lookup tables needs pyyaml: pip install pyyaml"


def test_a_directory_without_tables_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no <r>_lookup_table.json or <r>_lookup_table.yaml files in"):
        OFALookupTable.load(tmp_path)
