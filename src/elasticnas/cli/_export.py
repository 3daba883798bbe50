"""``elasticnas export``: write a sub-network as a standalone PyTorch or ONNX file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from elasticnas.cli._args import LazySubParsers
from elasticnas.errors import InvalidConfigError


def read_config(text: str) -> dict[str, Any]:
    """A configuration from JSON text, or from a file named ``@PATH`` (JSON, or the first JSON line)."""
    source = "--config"
    if text.startswith("@"):
        path = Path(text[1:])
        source = str(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise InvalidConfigError(f"cannot read configuration file {str(path)!r}: {exc.strerror}") from None
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) > 1:
            try:
                json.loads(text)
            except json.JSONDecodeError:
                text = lines[0]  # JSON lines: the first configuration
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidConfigError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise InvalidConfigError(f"{source} must be a JSON object such as {{\"ks\": [...], \"e\": [...], \"d\": [...], \"r\": 224}}")
    return data


def register(subparsers: LazySubParsers) -> None:
    subparsers.add_lazy_parser(
        "export",
        _fill,
        help="export a sub-network as a standalone PyTorch (.pt) or ONNX file, checked against PyTorch",
        description=(
            "Extract one sub-network of a super-network and write it as a standalone file: 'pt' "
            "(architecture JSON + weights; reload with elasticnas.load_subnet) or 'onnx' (checked "
            "in ONNX Runtime against PyTorch)."
        ),
    )


def _fill(p: argparse.ArgumentParser) -> None:
    from elasticnas.export import FORMATS

    p.add_argument("--supernet", required=True, help="registered super-network name, e.g. ofa_mbv3_w10, tiny_mbv3")
    p.add_argument("--weights", help="checkpoint of the super-network (default: seeded random weights)")
    p.add_argument("--config", required=True, help="configuration as JSON text, or @FILE holding it")
    p.add_argument("--format", choices=FORMATS, default="pt", help="output format (default: pt)")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--atol", type=float, default=1e-4, help="largest accepted |exported - PyTorch| (default: 1e-4)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from elasticnas.export import export_subnet

    config = read_config(args.config)
    record = export_subnet(args.supernet, config, args.format, args.out, weights=args.weights, atol=args.atol)
    c, h, w = record.input_shape
    print(
        f"wrote {record.path} ({record.format}): {record.supernet} sub-network {record.config_id}, "
        f"input {c}x{h}x{w}, {record.macs / 1e6:.2f} M MACs, {record.params / 1e6:.3f} M params, "
        f"max |{record.format} - pytorch| = {record.max_abs_diff:.2e}"
    )
    return 0
