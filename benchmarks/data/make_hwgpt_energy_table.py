"""Build ``benchmarks/data/hwgpt_s_energy.csv.gz``: the A100 energy of HW-GPT-Bench's 10,000 GPT-S sub-networks.

The source is HW-GPT-Bench's GPT-S table (https://github.com/automl/HW-GPT-Bench, Apache-2.0), one row per
sub-network. The package's table ``src/elasticnas/data/hwgpt_s/hwgpt_s_table.csv.gz`` (which the
``hwgpt_s_*`` problems read) leaves the energy columns out; this one adds ``energy_Wh_a100`` (energy of one
measured run on an NVIDIA A100, watt-hours) for the ``hwgpt_s_energy`` problem of
``benchmarks/suite_problems.py``. Columns ``ppl_index`` (the row key of both tables) and ``energy_Wh_a100``,
rows in the package table's order; the script checks that every key is found once, that the values are finite
and positive, and that the written text reads back to the source's values. Numbers are written as the source
prints them; the gzip stream has no time stamp or file name, so the output is reproducible. Nothing is
downloaded::

    python benchmarks/data/make_hwgpt_energy_table.py /work/shared/benchmarks/hwgpt_s/hwgpt_s_table.csv
"""

from __future__ import annotations

import argparse
import csv
import gzip
import math
from pathlib import Path

from make_hwgpt_devices_table import OUT as PACKAGE_TABLE
from make_hwgpt_devices_table import _compact, write_csv_gz

OUT = Path(__file__).resolve().parent / "hwgpt_s_energy.csv.gz"
COLUMNS = ("ppl_index", "energy_Wh_a100")


def package_keys(path: Path = PACKAGE_TABLE) -> list[str]:
    """The ``ppl_index`` of every row of the package's HW-GPT-S table, in its order."""
    with gzip.open(path, "rt", newline="") as fh:
        return [r["ppl_index"] for r in csv.DictReader(fh)]


def build(source: Path) -> list[list[str]]:
    with source.open(newline="") as fh:
        by_key = {r["ppl_index"]: r for r in csv.DictReader(fh)}
    keys = package_keys()
    missing = [k for k in keys if k not in by_key]
    if missing or len(set(keys)) != len(keys):
        raise ValueError(f"the package table's keys do not match the source (missing: {missing[:5]})")
    out = []
    for key in keys:
        text = by_key[key]["energy_Wh_a100"]
        value = float(text)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"ppl_index {key}: energy_Wh_a100 = {text!r} is not a finite positive number")
        out.append([key, _compact(text)])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="HW-GPT-Bench GPT-S table (hwgpt_s_table.csv)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = build(args.source)
    write_csv_gz(args.out, list(COLUMNS), rows)
    with gzip.open(args.out, "rt", newline="") as fh:
        back = [[r["ppl_index"], r["energy_Wh_a100"]] for r in csv.DictReader(fh)]
    if back != rows:
        raise RuntimeError("the written table does not read back")
    values = [float(r[1]) for r in rows]
    print(
        f"{len(rows)} rows, energy_Wh_a100 {min(values):.4g}..{max(values):.4g} -> {args.out} "
        f"({args.out.stat().st_size:,} bytes)"
    )


if __name__ == "__main__":
    main()
