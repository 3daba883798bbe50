"""Once-for-All MobileNetV3 per-layer latency lookup tables (the OFA authors' Note10 tables).

A sub-network's latency is the sum over its layers of the measured mean latency
of that layer, keyed by the layer's type and shapes exactly as the OFA
authors' ``<r>_lookup_table.yaml`` files spell them. The bundled Note10 tables
are those files converted to JSON (``<r>_lookup_table.json``, same entries)::

    lut = OFALookupTable.load("path/to/note10_lut")   # or OFALookupTable.load() for the bundled Note10 tables
    lut.latency_ms({"ks": [...20], "e": [...20], "d": [...5], "r": 224})

The layer list follows the OFA repository's ``ofa/tutorial/latency_table.py``
(MIT): first conv, first expanded conv (expand 1), each active block of the
five stages, ``Conv_1``, ``AvgPool2D``, ``Conv_2``, ``Logits``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from elasticnas.errors import ElasticNASError

__all__ = ["OFALookupTable", "OFA_MBV3_STAGES", "bundled_note10_dir"]


@dataclass(frozen=True)
class _Stage:
    width: int
    stride: int
    se: int
    hs: int


# OFA-MobileNetV3 w1.2: per stage output width, stride of its first block, squeeze-excite, hard-swish.
OFA_MBV3_STAGES: tuple[_Stage, ...] = (
    _Stage(32, 2, 0, 0),
    _Stage(48, 2, 1, 0),
    _Stage(96, 2, 0, 1),
    _Stage(136, 1, 1, 1),
    _Stage(192, 2, 1, 1),
)
_BLOCKS_PER_STAGE = 4
_FIRST_WIDTH = 24
_FINAL_EXPAND = 1152
_FEATURE_MIX = 1536
_N_CLASSES = 1000


def bundled_note10_dir() -> Path:
    """Directory of the Note10 tables shipped inside the package."""
    return Path(__file__).resolve().parent.parent / "data" / "ofa_mbv3" / "note10_lut"


def _parse_yaml(text: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise ElasticNASError("reading OFA's YAML lookup tables needs pyyaml: pip install pyyaml") from None
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _down(size: int, stride: int) -> int:
    return (size + 1) // 2 if stride == 2 else size


def _scalar(value: Any) -> int:
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise ValueError(f"expected one resolution, got {value!r}")
        value = value[0]
    return int(value)


class OFALookupTable:
    """Per-layer latency tables for several input resolutions; immutable once loaded."""

    def __init__(self, tables: Mapping[int, Mapping[str, float]], *, name: str = "") -> None:
        if not tables:
            raise ValueError("an OFALookupTable needs at least one resolution")
        self._tables = MappingProxyType({int(r): MappingProxyType(dict(t)) for r, t in tables.items()})
        self.name = name
        self._fast: dict[int, tuple[float, dict[tuple[int, int, float], float]] | None] = {}

    @classmethod
    def load(cls, directory: str | Path | None = None) -> OFALookupTable:
        """Read every ``<r>_lookup_table.json`` in ``directory`` (default: the bundled Note10 tables).

        A directory without JSON tables is read as the OFA authors' ``<r>_lookup_table.yaml`` files (with pyyaml).
        """
        path = Path(directory) if directory is not None else bundled_note10_dir()
        files = sorted(path.glob("*_lookup_table.json")) or sorted(path.glob("*_lookup_table.yaml"))
        if not files:
            raise FileNotFoundError(f"no <r>_lookup_table.json or <r>_lookup_table.yaml files in {path}")
        parse = json.loads if files[0].suffix == ".json" else _parse_yaml
        tables: dict[int, dict[str, float]] = {}
        for f in files:
            r = int(f.name.split("_", 1)[0])
            raw = parse(f.read_text(encoding="utf-8"))
            tables[r] = {str(k): float(v["mean"]) for k, v in raw.items()}
        return cls(tables, name=path.name)

    @property
    def resolutions(self) -> tuple[int, ...]:
        return tuple(sorted(self._tables))

    def layer_keys(self, config: Mapping[str, Any]) -> list[str]:
        """The lookup keys of every layer of the sub-network ``config`` (``ks``, ``e``, ``d``, ``r``)."""
        r = _scalar(config["r"])
        ks: Sequence[int] = config["ks"]
        e: Sequence[float] = config["e"]
        d: Sequence[int] = config["d"]
        if len(ks) != 20 or len(e) != 20 or len(d) != 5:
            raise ValueError("an OFA-MobileNetV3 config needs 20 'ks', 20 'e' and 5 'd' values")
        size = _down(r, 2)
        keys = [
            f"Conv-input:{r}x{r}x3-output:{size}x{size}x{_FIRST_WIDTH}",
            f"expanded_conv-input:{size}x{size}x{_FIRST_WIDTH}-output:{size}x{size}x{_FIRST_WIDTH}"
            f"-expand:{_FIRST_WIDTH}-kernel:3-stride:1-idskip:1-se:0-hs:0",
        ]
        cin = _FIRST_WIDTH
        for s, stage in enumerate(OFA_MBV3_STAGES):
            depth = int(d[s])
            for j in range(depth):
                i = s * _BLOCKS_PER_STAGE + j
                stride = stage.stride if j == 0 else 1
                out = _down(size, stride)
                idskip = int(stride == 1 and cin == stage.width)
                mid = round(cin * float(e[i]))
                keys.append(
                    f"expanded_conv-input:{size}x{size}x{cin}-output:{out}x{out}x{stage.width}"
                    f"-expand:{mid}-kernel:{int(ks[i])}-stride:{stride}-idskip:{idskip}-se:{stage.se}-hs:{stage.hs}"
                )
                size, cin = out, stage.width
        keys += [
            f"Conv_1-input:{size}x{size}x{cin}-output:{size}x{size}x{_FINAL_EXPAND}",
            f"AvgPool2D-input:{size}x{size}x{_FINAL_EXPAND}-output:1x1x{_FINAL_EXPAND}",
            f"Conv_2-input:1x1x{_FINAL_EXPAND}-output:1x1x{_FEATURE_MIX}",
            f"Logits-input:1x1x{_FEATURE_MIX}-output:{_N_CLASSES}",
        ]
        return keys

    def _block_table(self, r: int) -> tuple[float, dict[tuple[int, int, float], float]] | None:
        """(latency of the fixed layers, {(block, ks, e): latency}) for resolution ``r``, or None if incomplete."""
        if r not in self._fast:
            table = self._tables[r]
            full = self.layer_keys({"ks": [3] * 20, "e": [3] * 20, "d": [4] * 5, "r": r})
            blocks: dict[tuple[int, int, float], float] = {}
            try:
                base = sum(table[k] for k in full[:2] + full[-4:])  # layers every sub-network has
                for ks in (3, 5, 7):
                    for e in (3, 4, 6):
                        keys = self.layer_keys({"ks": [ks] * 20, "e": [e] * 20, "d": [4] * 5, "r": r})[2:-4]
                        for i, key in enumerate(keys):
                            blocks[(i, ks, float(e))] = table[key]
                self._fast[r] = (base, blocks)
            except KeyError:
                self._fast[r] = None
        return self._fast[r]

    def latency_ms(self, config: Mapping[str, Any]) -> float:
        """Predicted latency (ms): the sum of the layers' measured means."""
        r = _scalar(config["r"])
        table = self._tables.get(r)
        if table is None:
            raise KeyError(f"no lookup table for resolution {r}; tables exist for {list(self.resolutions)}")
        fast = self._block_table(r)
        if fast is not None:
            base, blocks = fast
            try:
                ks, e, d = config["ks"], config["e"], config["d"]
                return base + sum(
                    blocks[
                        (
                            s * _BLOCKS_PER_STAGE + j,
                            int(ks[s * _BLOCKS_PER_STAGE + j]),
                            float(e[s * _BLOCKS_PER_STAGE + j]),
                        )
                    ]
                    for s in range(len(OFA_MBV3_STAGES))
                    for j in range(int(d[s]))
                )
            except (KeyError, IndexError, TypeError):
                pass  # unusual values: spell every layer below (and name the missing one)
        total = 0.0
        for key in self.layer_keys(config):
            try:
                total += table[key]
            except KeyError:
                raise KeyError(f"layer {key!r} is not in the r={r} lookup table") from None
        return total

    def __repr__(self) -> str:
        return f"OFALookupTable({self.name!r}, resolutions={list(self.resolutions)})"
