"""Build ``src/elasticnas/data/ofa_mbv3/help_w12_latency.csv.gz`` from HELP's OFA-MobileNetV3 w1.2 latencies.

The source is a CSV of the 5,000 OFA-MobileNetV3 w1.2 sub-networks of HELP
(https://github.com/HayeonLee/HELP, MIT: ``data/ofa/ofa_archs.pt`` and
``data/ofa/latency/<gpu>_<batch>.pt``), one row per sub-network in HELP's
order, architecture as JSON in column ``subnet`` (``ks``, ``e``, ``d``, ``r``)
and the measured latency in milliseconds on RTX 2080 Ti, Titan RTX, Titan Xp
and V100 at batch 1, 32 and 64 in columns ``lat_<gpu>_<batch>``.

The shipped table keeps the rows in the source's order and, per row, the
architecture in a compact form, ``ks`` and ``e`` as strings of 20 digits,
``d`` as a string of 5 digits (every value is one digit; the values of blocks
beyond a stage's depth are kept as the source has them), ``r`` as an integer,
then the 12 latency columns with the source's names and the source's text
unchanged. The script checks that the architecture columns agree with the JSON,
that the written table reads back to the source's values, and that every
latency is finite and positive. The gzip stream carries no time stamp or file
name, so the output is byte-for-byte reproducible. Nothing is downloaded::

    python benchmarks/data/make_help_latency_table.py /work/shared/benchmarks/ofa_mbv3/help_ofa_w12_5000.csv
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import math
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "src" / "elasticnas" / "data" / "ofa_mbv3" / "help_w12_latency.csv.gz"
GPUS = ("2080ti", "titan_rtx", "titan_xp", "v100")
BATCHES = (1, 32, 64)
LATENCY = tuple(f"lat_{gpu}_{batch}" for gpu in GPUS for batch in BATCHES)
COLUMNS = ("ks", "e", "d", "r", *LATENCY)
KERNELS, EXPANDS, DEPTHS = {3, 5, 7}, {3, 4, 6}, {2, 3, 4}


def _digits(values: list[int], allowed: set[int], size: int, what: str) -> str:
    if len(values) != size or not set(values) <= allowed:
        raise ValueError(f"{what}: expected {size} values in {sorted(allowed)}, got {values}")
    return "".join(str(v) for v in values)


def build(source: Path) -> list[list[str]]:
    with source.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("subnet", "r", *LATENCY) if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{source} lacks the columns {missing}")
        rows = list(reader)
    out = []
    for k, r in enumerate(rows):
        arch = json.loads(r["subnet"])
        res = int(arch["r"][0] if isinstance(arch["r"], list) else arch["r"])
        if res != int(r["r"]) or not 128 <= res <= 224 or res % 4:
            raise ValueError(f"row {k}: resolution {arch['r']} / {r['r']}")
        for name, n in (("ks", 20), ("e", 20), ("d", 5)):
            spread = [int(r[f"{name}{i}"]) for i in range(n)] if f"{name}0" in r else arch[name]
            if spread != arch[name]:
                raise ValueError(f"row {k}: columns {name}0.. disagree with the subnet JSON")
        lat = [r[c] for c in LATENCY]
        if not all(math.isfinite(float(x)) and float(x) > 0 for x in lat):
            raise ValueError(f"row {k}: a latency is not finite and positive: {lat}")
        out.append(
            [
                _digits(arch["ks"], KERNELS, 20, f"row {k} ks"),
                _digits(arch["e"], EXPANDS, 20, f"row {k} e"),
                _digits(arch["d"], DEPTHS, 5, f"row {k} d"),
                str(res),
                *lat,
            ]
        )
    keys = {tuple(row[:4]) for row in out}
    if len(keys) != len(out):
        raise ValueError("the source repeats an architecture")
    return out


def write(rows: list[list[str]], dest: Path) -> None:
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(text.getvalue().encode("ascii"))


def check(source_rows: list[list[str]], dest: Path) -> None:
    with gzip.open(dest, "rt", newline="") as fh:
        back = list(csv.reader(fh))
    if back[0] != list(COLUMNS) or back[1:] != source_rows:
        raise SystemExit(f"{dest} does not read back as written")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("source", type=Path, help="help_ofa_w12_5000.csv (the 5,000 HELP sub-networks)")
    parser.add_argument("dest", type=Path, nargs="?", default=OUT, help=f"output (default {OUT})")
    args = parser.parse_args()
    rows = build(args.source)
    write(rows, args.dest)
    check(rows, args.dest)
    print(f"{args.source} -> {args.dest}: {len(rows)} sub-networks, {len(LATENCY)} latency columns")


if __name__ == "__main__":
    main()
