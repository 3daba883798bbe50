"""``elasticnas elasticize``: make a pretrained Hugging Face model elastic, its units sorted by importance."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from elasticnas.cli._args import DefaultsFormatter, LazySubParsers, add_task_arg, positive_int, seed
from elasticnas.errors import ElasticNASError


def register(subparsers: LazySubParsers) -> None:
    subparsers.add_lazy_parser(
        "elasticize",
        _fill,
        help="make a pretrained Hugging Face model elastic (importance-sorted), for search, train and export",
        description=(
            "Load a Hugging Face model folder (nothing is downloaded), score its attention heads, FFN neurons, "
            "hidden channels and blocks on calibration batches (activation magnitude, as Minitron), sort the "
            "weights so that every sub-network keeps the most important ones, and write the result to --out: "
            "a normal Hugging Face folder (the full model computes the same outputs) with elasticnas.json. "
            "Then: elasticnas search --supernet hf:OUT ..."
        ),
        formatter_class=DefaultsFormatter,
    )


def _fill(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL_DIR", help="a Hugging Face model folder (config.json and weights)")
    p.add_argument("--out", required=True, help="folder to write (new, empty, or one elasticnas wrote)")
    add_task_arg(p)
    p.add_argument("--method", choices=("activation", "first-k"), default="activation",
                   help="activation: sort units by importance; first-k: keep the natural order (whittle's default)")
    p.add_argument("--calib-data", help="data to score importance on: a built-in NAME:SPLIT (e.g. pystdlib:train) "
                   "or an image folder; needed by --method activation")
    p.add_argument("--calib-batches", type=positive_int, default=8, help="calibration batches")
    p.add_argument("--batch-size", type=positive_int, default=8, help="calibration batch size")
    p.add_argument("--seed", type=seed, default=0, help="seed of the calibration batches")
    p.add_argument("--shared", action="store_true", help="one heads / FFN choice for all blocks (default: per block)")
    p.set_defaults(func=_elasticize)


def _elasticize(args: argparse.Namespace) -> int:
    from elasticnas._io import atomic_write_dir, check_output_dir
    from elasticnas.supernets.hf._supernet import INFO_FILE

    src = os.path.abspath(args.model)
    if not os.path.isfile(os.path.join(src, "config.json")):
        raise ElasticNASError(f"{args.model!r} is not a Hugging Face model folder (no config.json)")
    check_output_dir(args.out, marker=INFO_FILE, what="output folder")
    if args.method == "activation" and args.calib_data is None:
        raise ElasticNASError("--method activation scores units on data: give --calib-data (e.g. pystdlib:train), "
                              "or --method first-k")
    batches = None if args.calib_data is None else _batches(args.calib_data, args.batch_size, args.seed)
    start = time.perf_counter()
    supernet = _load_and_elasticize(src, args, batches)

    # with the tokenizer / image-processor files of the source folder, which the loaded model names
    atomic_write_dir(args.out, supernet.save_pretrained, marker=INFO_FILE, what="output folder")
    space = supernet.search_space
    low, high = supernet.costs(supernet.min_config())["params"], supernet.costs(supernet.max_config())["params"]
    print(f"wrote {args.out}: {supernet.task} super-network ({args.method}), {space.n_genes} genes, "
          f"10^{space.log10_size:.1f} sub-networks, {low / 1e6:.2f}M to {high / 1e6:.2f}M parameters, "
          f"block ranking {list(supernet.layer_order)} ({time.perf_counter() - start:.1f} s)")
    print(f"next: elasticnas search --supernet hf:{args.out} --objectives ...")
    return 0


def _batches(spec: str, batch_size: int, seed: int) -> list[tuple[Any, ...]]:
    from elasticnas.data import as_loader
    from elasticnas.data._spec import resolve_data

    return [tuple(b) for b in as_loader(resolve_data(spec), batch_size=batch_size, shuffle=True, seed=seed)]


def _load_and_elasticize(src: str, args: argparse.Namespace, batches: Any) -> Any:
    """The elastic super-network of folder ``src``; transformers' own errors become one line."""
    from elasticnas.supernets.hf import elasticize
    from elasticnas.supernets.hf._families import infer_task
    from elasticnas.supernets.hf._supernet import auto_class

    try:
        from transformers import AutoConfig

        task = args.task or infer_task(AutoConfig.from_pretrained(src).architectures)
        model = auto_class(task).from_pretrained(src)
        return elasticize(model, batches, task=task, method=args.method, batches=args.calib_batches,
                          per_layer=not args.shared)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ElasticNASError(f"cannot make {args.model!r} elastic: {first}") from None
