"""``elasticnas measure``: measure registered metrics of sub-networks listed in a JSONL file."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from elasticnas._io import atomic_write, check_output_path, parse_json, read_text
from elasticnas.cli._args import (
    DefaultsFormatter,
    LazySubParsers,
    add_progress_flag,
    add_task_arg,
    add_token_args,
    batch_size,
    input_file,
    non_negative_int,
    positive_float,
    positive_int,
    seed,
    supernet_kwargs,
    thread_count,
    wants_progress,
)
from elasticnas.errors import ElasticNASError

DEFAULT_METRICS = "macs,params,latency_ms"


def read_configs(path: str, space: Any) -> list[dict[str, Any]]:
    """Validated configurations, one JSON object per non-blank line of ``path``."""
    lines = read_text(path, what="configs file").splitlines()
    configs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        raw = parse_json(line, what=f"{path} line {number}")
        try:
            configs.append(space.validate(raw))
        except ElasticNASError as exc:
            raise ElasticNASError(f"{path} line {number}: {exc}") from None
    if not configs:
        raise ElasticNASError(f"configs file {path!r} holds no configurations (one JSON object per line)")
    return configs


def _measure(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from elasticnas.measure import Measurer, TimingPolicy
    from elasticnas.measure.latency import check_device
    from elasticnas.measure.metrics import parse_metrics
    from elasticnas.supernets import create_supernet

    out = check_output_path(args.out, what="CSV file")
    metrics = parse_metrics(args.metrics)  # unknown names fail before anything is built
    check_device(args.device)
    supernet = create_supernet(args.supernet, weights=args.weights, **supernet_kwargs(args))
    configs = read_configs(args.configs, supernet.search_space)
    policy = TimingPolicy().with_budget(args.budget_s)
    data = _data_specs(args, supernet.name)
    measurer = Measurer(
        supernet,
        runtime=args.runtime,
        device=args.device,
        batch_size=args.batch_size,
        threads=args.threads,
        policy=policy,
        val_data=data["val_data"],
        calib_data=data["calib_data"],
        calib_batches=args.calib_batches,
        max_val_batches=args.max_val_batches,
        seq_len=args.seq_len,
        context_len=args.context_len,
        lut=args.lut,
        seed=args.seed,
    )
    measurer.check([m.name for m in metrics])
    columns = [c for m in metrics for c in m.columns]
    header = ["index", "config_id", *columns, "config"]
    space = supernet.search_space
    rows: list[list[Any]] = []
    bar = tqdm(configs, desc="measure", unit="cfg", file=sys.stderr, disable=not wants_progress(args))
    interleave = args.interleave if any(m.name == "latency_ms" for m in metrics) else 1
    try:
        for index, cfg in enumerate(bar):
            if interleave > 1 and index % interleave == 0:
                measurer.measure_latencies(configs[index : index + interleave])
            values = measurer.measure(cfg, [m.name for m in metrics])
            row = [index, space.config_id(cfg), *(_fmt(values[c]) for c in columns)]
            rows.append([*row, json.dumps(cfg, separators=(",", ":"))])
    except KeyboardInterrupt as exc:  # the rows measured so far are kept (SIGTERM arrives as a subclass)
        bar.close()
        if not rows:
            raise type(exc)(f"no sub-network was measured; {out} was not written") from None
        _write_csv(out, header, rows)
        done = f"the {len(rows)} of {len(configs)} sub-networks measured so far are written to {out}"
        raise type(exc)(done) from None
    _write_csv(out, header, rows)
    threads = measurer.threads if measurer.threads is not None else 1
    print(
        f"wrote {len(configs)} rows x {len(columns)} metric columns to {out} "
        f"(supernet {supernet.name}, runtime {args.runtime}, device {args.device}, "
        f"batch {args.batch_size}, threads {threads})"
    )
    return 0


def _write_csv(out: Path, header: list[str], rows: list[list[Any]]) -> None:
    """Write the CSV whole or not at all."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as fh:
            csv.writer(fh).writerows([header, *rows])

    atomic_write(out, write, what="CSV file")


def _data_specs(args: argparse.Namespace, supernet: str) -> dict[str, str | None]:
    """The data flags, else the super-network's built-in data set (as the search command does)."""
    from elasticnas.problems._supernet import BUILTIN_DATA, builtin_data

    if args.val_data is None and args.calib_data is None and supernet in BUILTIN_DATA:
        return dict(builtin_data(supernet))
    return {"val_data": args.val_data, "calib_data": args.calib_data or args.val_data}


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


def register(subparsers: LazySubParsers) -> None:
    """Add ``elasticnas measure``."""
    subparsers.add_lazy_parser(
        "measure",
        _fill,
        help="measure metrics (latency, accuracy, costs, memory) of sub-networks listed in a JSONL file",
        formatter_class=DefaultsFormatter,
    )


def _fill(p: argparse.ArgumentParser) -> None:
    from elasticnas.measure import DEFAULT_RUNTIME, list_metrics, list_runtimes

    p.description = (
        "Measure sub-networks of a super-network, one JSON configuration per line of --configs. "
        "Writes a CSV in input order: index, config_id, one column per metric (latency with its "
        "p90, IQR and run count beside the median), config. Metrics: " + ", ".join(list_metrics()) + "."
    )
    p.add_argument("--supernet", required=True, help="registered super-network name, e.g. tiny_mbv3, or hf:FOLDER")
    add_task_arg(p)
    p.add_argument("--weights", type=input_file, help="checkpoint of the super-network (loaded with weights_only=True)")
    p.add_argument("--configs", type=input_file, required=True,
                   help="JSONL file: one sub-network configuration per line")
    p.add_argument("--metrics", default=DEFAULT_METRICS, help="comma-separated metrics")
    p.add_argument("--runtime", default=DEFAULT_RUNTIME, choices=list_runtimes(), help="latency runtime")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--batch-size", type=batch_size, default=1, help="batch size of latency/memory")
    p.add_argument("--threads", type=thread_count, default=1, help="threads pinned while timing")
    p.add_argument(
        "--budget-s", type=positive_float, default=5.0, help="most seconds of timed runs per sub-network"
    )
    p.add_argument(
        "--interleave",
        type=positive_int,
        default=1,
        metavar="N",
        help="measure the latency of N sub-networks at a time, interleaved in 5 rounds, so that a machine whose "
        "speed drifts shifts them alike and their ranking holds (keeps N sub-networks in memory; "
        "1: one after another)",
    )
    p.add_argument("--lut", type=input_file, help="lookup table JSON for latency_lut_ms (from 'elasticnas lut build')")
    p.add_argument(
        "--val-data",
        help="validation data for accuracy metrics: an image folder (root/<class>/<image>) or a built-in "
        "dataset NAME:SPLIT, e.g. digits:val (default: the super-network's built-in validation split, if any)",
    )
    p.add_argument(
        "--calib-data", help="training data for BatchNorm recalibration (image folder or NAME:SPLIT, e.g. "
        "digits:calib; default: --val-data, else the built-in calibration split)"
    )
    p.add_argument(
        "--calib-batches", type=non_negative_int, default=50, help="BatchNorm recalibration batches (0: none)"
    )
    add_token_args(p)
    p.add_argument("--seed", type=seed, default=0, help="seed of inputs and calibration batches")
    p.add_argument("--out", required=True,
                   help="CSV file to write (written whole, or after Ctrl-C with the rows measured so far)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (as --no-progress)")
    add_progress_flag(p)
    p.set_defaults(func=_measure)
