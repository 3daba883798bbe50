"""Build ``benchmarks/data/ofa_mbv3_measured_w10.csv.gz``: OFA-MobileNetV3 w1.0 sub-networks with measured top-1.

The source is DyNAS-T's table of 2,223 OFA-MobileNetV3 w1.0 sub-networks at r=224 with their ImageNet top-1
*measured* by DyNAS-T (https://github.com/IntelLabs/DyNAS-T, Apache-2.0) on the Once-for-All super-network
(https://github.com/mit-han-lab/once-for-all, MIT), and their MACs. Its rows are distinct as written, but 57
groups of them (118 rows) differ only in the kernel size or expand ratio of blocks that their stage's depth
skips, so they are one network: the shipped table holds each network once (2,162 rows, in the order of their
first source row), its top-1 the mean of the group's measurements (each source row's ``top1_imagenet_measured``
weighted by its ``n_evals``, rounded to 1e-6; a single row's text is kept as the source prints it); the MACs of
a group agree (checked).

Columns: ``ks``, ``e`` (the 20 blocks' kernel sizes 3/5/7 and expand ratios 3/4/6 as strings of 20 digits,
skipped blocks set to 3, the first value), ``d`` (the 5 stages' depths 2/3/4 as 5 digits), ``top1`` (%),
``macs``, ``n_evals`` (measurements behind ``top1``). The gzip stream has no time stamp or file name, so the
output is reproducible. Nothing is downloaded::

    python benchmarks/data/make_ofa_measured_w10_table.py /work/shared/benchmarks/ofa_mbv3/dynast_measured_w10.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

from make_hwgpt_devices_table import write_csv_gz

from elasticnas.problems._ofa_mbv3 import ofa_mbv3_space

OUT = Path(__file__).resolve().parent / "ofa_mbv3_measured_w10.csv.gz"
COLUMNS = ("ks", "e", "d", "top1", "macs", "n_evals")
RESOLUTION = 224


def build(source: Path) -> list[list[str]]:
    with source.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    space = ofa_mbv3_space((RESOLUTION,))
    groups: dict[str, list[dict[str, str]]] = {}
    for k, r in enumerate(rows):
        arch = json.loads(r["subnet"])
        if arch["r"] not in ([RESOLUTION], RESOLUTION) or int(r["r"]) != RESOLUTION:
            raise ValueError(f"row {k}: resolution {arch['r']} is not {RESOLUTION}")
        config = space.from_genes(space.to_genes({"ks": arch["ks"], "e": arch["e"], "d": arch["d"], "r": RESOLUTION}))
        key = "|".join("".join(str(v) for v in config[name]) for name in ("ks", "e", "d"))
        groups.setdefault(key, []).append(r)
    out = []
    for key, group in groups.items():
        if len({r["macs"] for r in group}) != 1:
            raise ValueError(f"one network, several MACs: {[r['macs'] for r in group]}")
        n = [int(r["n_evals"]) for r in group]
        top1 = [float(r["top1_imagenet_measured"]) for r in group]
        if not all(math.isfinite(t) and 0 < t < 100 for t in top1) or min(n) < 1:
            raise ValueError(f"bad top-1 or n_evals in {group}")
        text = (
            group[0]["top1_imagenet_measured"]
            if len(group) == 1
            else repr(round(sum(t * w for t, w in zip(top1, n, strict=True)) / sum(n), 6))
        )
        out.append([*key.split("|"), text, group[0]["macs"], str(sum(n))])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="DyNAS-T's measured table (dynast_measured_w10.csv)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = build(args.source)
    write_csv_gz(args.out, list(COLUMNS), rows)
    print(f"{len(rows)} networks -> {args.out} ({args.out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
