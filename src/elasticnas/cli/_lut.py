"""``elasticnas lut build``: a per-layer latency lookup table of a super-network on this machine."""

from __future__ import annotations

import argparse
import sys

from elasticnas._io import check_output_path
from elasticnas.cli._args import (
    DefaultsFormatter,
    LazySubParsers,
    add_progress_flag,
    batch_size,
    int_between,
    positive_float,
    seed,
    thread_count,
    wants_progress,
)


def _build(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from elasticnas.measure import build_lut, collect_layer_specs
    from elasticnas.measure.latency import check_device
    from elasticnas.measure.lut import LUT_POLICY
    from elasticnas.supernets import create_supernet

    out = check_output_path(args.out, what="lookup table")
    check_device(args.device)
    supernet = create_supernet(args.supernet)
    specs = collect_layer_specs(supernet, seed=args.seed)
    bar = tqdm(total=len(specs), desc="lut build", unit="layer", file=sys.stderr, disable=not wants_progress(args))

    def progress(done: int, total: int) -> None:
        bar.total = total  # the layers, then the whole sub-networks that calibrate the scale
        bar.update(done - bar.n)

    try:
        lut = build_lut(
            supernet,
            runtime=args.runtime,
            device=args.device,
            batch_size=args.batch_size,
            threads=args.threads,
            specs=specs,
            policy=LUT_POLICY.with_budget(args.budget_s),
            calibrate=args.calibrate,
            seed=args.seed,
            progress=progress,
        )
    finally:
        bar.close()
    lut.save(out)
    print(
        f"wrote {len(lut)} layer latencies of {lut.supernet} to {out} "
        f"(runtime {lut.runtime}, device {lut.device}, batch {lut.batch_size}, threads {lut.threads}, "
        f"per-call overhead {lut.overhead_ms:.4f} ms, scale {lut.scale:.3f} "
        f"from {lut.calibration_n} whole sub-networks)"
    )
    return 0


def register(subparsers: LazySubParsers) -> None:
    """Add ``elasticnas lut build``."""
    subparsers.add_lazy_parser("lut", _fill_lut, help="latency lookup tables", description="Latency lookup tables.")


def _fill_lut(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="lut_command", metavar="ACTION", required=True, action=LazySubParsers)
    assert isinstance(sub, LazySubParsers)
    sub.add_lazy_parser(
        "build",
        _fill_build,
        help="time each distinct layer of a super-network once on this machine",
        formatter_class=DefaultsFormatter,
        description=(
            "Time each distinct layer of the super-network's sub-networks once and write a JSON lookup "
            "table; 'elasticnas measure --metrics latency_lut_ms --lut FILE' then estimates a sub-network's "
            "latency as the sum over its layers, scaled by a fit on whole sub-networks."
        ),
    )


def _fill_build(b: argparse.ArgumentParser) -> None:
    from elasticnas.measure import DEFAULT_RUNTIME, list_runtimes
    from elasticnas.measure.lut import LUT_CALIBRATE, LUT_POLICY

    b.add_argument("--supernet", required=True, help="registered super-network name, e.g. tiny_mbv3")
    b.add_argument("--runtime", default=DEFAULT_RUNTIME, choices=list_runtimes(), help="latency runtime")
    b.add_argument("--device", default="cpu", help="cpu or cuda")
    b.add_argument("--batch-size", type=batch_size, default=1, help="batch size of the timed runs")
    b.add_argument("--threads", type=thread_count, default=1, help="threads pinned while timing")
    b.add_argument(
        "--budget-s", type=positive_float, default=LUT_POLICY.budget_s,
        help="most seconds of timed runs per layer",
    )
    b.add_argument(
        "--calibrate", type=int_between(0, 10_000), default=LUT_CALIBRATE,
        help=(
            "whole sub-networks measured directly to fit the table's scale (a layer timed alone runs at "
            "another speed than inside a network); 0 = no calibration"
        ),
    )
    b.add_argument("--seed", type=seed, default=0, help="seed of the sub-networks visited to find layers")
    b.add_argument("--out", required=True, help="JSON file to write")
    b.add_argument("--quiet", action="store_true", help="no progress bar (as --no-progress)")
    add_progress_flag(b)
    b.set_defaults(func=_build)
