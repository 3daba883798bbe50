"""Rebuild ``src/elasticnas/data/hwgpt_s/hwgpt_s_table.csv.gz`` from HW-GPT-Bench's GPT-S table.

The source is HW-GPT-Bench's table of 10,000 GPT-S sub-networks
(https://github.com/automl/HW-GPT-Bench, Apache-2.0), one row per sub-network,
architecture as JSON in column ``arch``. The reduced table keeps the rows in
the source's order and only the columns the built-in problems read:
``ppl_index``, the architecture (``embed_dim``, ``n_layer``, per-layer
``mlp_ratio_i`` / ``n_head_i``, ``bias``), ``perplexity`` and the latency of
every measured device: GPUs ``lat_ms_<gpu>`` (milliseconds), CPUs
``lat_s_<cpu>`` (seconds), in the source's column order, ``lat_ms_a100`` and
``lat_s_cpu_a6000`` first (the columns of ``hwgpt_s_gpu`` / ``hwgpt_s_cpu``).
Numbers are written in their shortest exact form (``repr`` of the float, no
trailing ``.0``), which is how the source prints them; the script checks that
every written value parses back to the source's value, and that every latency
is finite and positive. Nothing is downloaded:

    python benchmarks/data/make_hwgpt_devices_table.py /work/shared/benchmarks/hwgpt_s/hwgpt_s_table.csv
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import math
import re
import statistics
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "src" / "elasticnas" / "data" / "hwgpt_s" / "hwgpt_s_table.csv.gz"
MAX_LAYERS = 12
# the columns of the table before the device columns were added, in that order (kept unchanged)
BASE_LATENCY = ("lat_ms_a100", "lat_s_cpu_a6000")
LATENCY = re.compile(r"lat_(ms|s)_(.+)")


def _compact(text: str) -> str:
    """Shortest exact decimal form of a number printed as ``text`` (``3.880`` -> ``3.88``, ``9.0`` -> ``9``)."""
    value = float(text)
    out = repr(value).removesuffix(".0")
    if "e" in out or "inf" in out or "nan" in out or float(out) != value:
        raise ValueError(f"cannot write {text!r} compactly")
    return out


def latency_columns(header: list[str]) -> list[str]:
    """The latency columns of the source, those of the original two problems first."""
    found = [c for c in header if LATENCY.fullmatch(c)]
    missing = [c for c in BASE_LATENCY if c not in found]
    if missing:
        raise ValueError(f"source lacks {missing}")
    return [*BASE_LATENCY, *(c for c in found if c not in BASE_LATENCY)]


def build(source: Path) -> tuple[list[str], list[list[str]]]:
    with source.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    lat_cols = latency_columns(header)
    columns = [
        "ppl_index",
        "embed_dim",
        "n_layer",
        *(f"mlp_ratio_{i}" for i in range(MAX_LAYERS)),
        *(f"n_head_{i}" for i in range(MAX_LAYERS)),
        "bias",
        "perplexity",
        *lat_cols,
    ]
    indices = [int(r["ppl_index"]) for r in rows]
    if len(set(indices)) != len(indices):
        raise ValueError("duplicate ppl_index in the source")
    out = []
    for r in rows:
        arch = json.loads(r["arch"])
        if arch["sample_embed_dim"] != int(r["embed_dim"]) or arch["sample_n_layer"] != int(r["n_layer"]):
            raise ValueError(f"row {r['ppl_index']}: arch disagrees with embed_dim / n_layer")
        if len(arch["sample_mlp_ratio"]) != MAX_LAYERS or len(arch["sample_n_head"]) != MAX_LAYERS:
            raise ValueError(f"row {r['ppl_index']}: expected {MAX_LAYERS} per-layer choices")
        line = [r["ppl_index"], r["embed_dim"], r["n_layer"]]
        line += [str(int(v)) for v in arch["sample_mlp_ratio"]]
        line += [str(int(v)) for v in arch["sample_n_head"]]
        line.append(str(int(bool(arch["sample_bias"]))))
        for col in ("perplexity", *lat_cols):
            value = float(r[col])
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"row {r['ppl_index']}: {col} = {r[col]!r} is not a finite positive number")
            line.append(_compact(r[col]))
        out.append(line)
    return columns, out


def describe(columns: list[str], rows: list[list[str]]) -> None:
    for col in columns:
        if not LATENCY.fullmatch(col):
            continue
        k = columns.index(col)
        values = [float(r[k]) for r in rows]
        med = statistics.median(values)
        far = sum(v > 10 * med for v in values)
        note = f"   {far} rows above 10x the median" if far else ""
        print(f"{col:18s} min {min(values):10.4g} median {med:10.4g} max {max(values):10.4g}{note}")


def write_csv_gz(path: Path, columns: list[str], rows: list[list[str]]) -> None:
    """``rows`` under the header ``columns`` as gzipped CSV; mtime 0 and no file name, so the same rows give the
    same bytes."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        gz.write(text.getvalue().encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="HW-GPT-Bench GPT-S table (hwgpt_s_table.csv)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    columns, rows = build(args.source)
    write_csv_gz(args.out, columns, rows)
    describe(columns, rows)
    print(f"{len(rows)} rows, {len(columns)} columns -> {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
