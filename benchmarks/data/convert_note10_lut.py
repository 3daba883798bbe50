"""Convert the OFA authors' ``<r>_lookup_table.yaml`` latency tables to the JSON the package ships.

Run once to make ``src/elasticnas/data/ofa_mbv3/note10_lut/<r>_lookup_table.json`` from the YAML files of the
once-for-all repository (the package shipped them as YAML until then), so that reading them needs no YAML
parser. Every entry (``count``, ``mean``, ``std``) is kept; floats are written as their shortest round-trip
repr, so the numbers read back identical, which the script checks::

    python benchmarks/data/convert_note10_lut.py YAML_DIR src/elasticnas/data/ofa_mbv3/note10_lut
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="directory of <r>_lookup_table.yaml files")
    parser.add_argument("dest", type=Path, help="directory to write <r>_lookup_table.json files to")
    args = parser.parse_args()
    files = sorted(args.source.glob("*_lookup_table.yaml"))
    if not files:
        parser.error(f"no <r>_lookup_table.yaml files in {args.source}")
    args.dest.mkdir(parents=True, exist_ok=True)
    for src in files:
        table = yaml.safe_load(src.read_text())
        out = args.dest / src.with_suffix(".json").name
        out.write_text(json.dumps(table, indent=1) + "\n")
        if json.loads(out.read_text()) != table:
            raise SystemExit(f"{out} does not read back as {src}")
        print(f"{src} -> {out}: {len(table)} layers")


if __name__ == "__main__":
    main()
