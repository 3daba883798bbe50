"""``elasticnas train``: train a super-network (progressive shrinking or the sandwich rule)."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

from elasticnas._io import check_output_path
from elasticnas.cli._args import (
    DefaultsFormatter,
    LazySubParsers,
    add_progress_flag,
    batch_size,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    seed,
    thread_count,
    wants_progress,
)
from elasticnas.errors import ElasticNASError


def register(subparsers: LazySubParsers) -> None:
    subparsers.add_lazy_parser(
        "train",
        _fill,
        help="train an elastic super-network (checkpoint every epoch; resumes an interrupted run)",
        description=(
            "Train a super-network with progressive shrinking (OFA) or the sandwich rule with in-place "
            "distillation (BigNAS). A checkpoint is written to --out after every epoch; running the same "
            "command again resumes from it and gives the same result as an uninterrupted run."
        ),
        formatter_class=DefaultsFormatter,
    )


def _fill(p: argparse.ArgumentParser) -> None:
    from elasticnas.data import list_builtin_datasets
    from elasticnas.training import TrainConfig, list_trainers

    d = TrainConfig()
    p.add_argument("--supernet", required=True, help="registered super-network name, e.g. tiny_mbv3")
    p.add_argument(
        "--data",
        default="digits",
        help=f"built-in data set ({', '.join(list_builtin_datasets())}) or a folder with train/ and val/ "
        "image folders in ImageNet layout",
    )
    p.add_argument("--method", default="sandwich", choices=list_trainers(), help="training method")
    p.add_argument("--epochs", type=positive_int, default=d.epochs, help="epochs")
    p.add_argument("--out", required=True, help="checkpoint path, rewritten after every epoch")
    p.add_argument("--seed", type=seed, default=d.seed, help="seed of the initialisation and the run")
    p.add_argument("--batch-size", type=batch_size, default=d.batch_size)
    p.add_argument("--lr", type=positive_float, default=d.lr, help="peak learning rate")
    p.add_argument(
        "--num-random", type=non_negative_int, default=d.num_random, help="random sub-networks per step"
    )
    p.add_argument("--kd-ratio", type=non_negative_float, default=d.kd_ratio, help="distillation weight")
    p.add_argument("--augment-shift", type=non_negative_int, default=d.augment_shift, help="max random shift in pixels (0: none)")
    p.add_argument("--train-samples", type=positive_int, help="train on the first N training samples only (smoke runs)")
    p.add_argument("--weights-out", help="also write the final weights alone (no optimizer state) to this path")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--threads", type=thread_count, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--overwrite", action="store_true", help="start afresh even if --out holds a checkpoint")
    p.add_argument("--no-val", action="store_true", help="skip validating after every epoch")
    add_progress_flag(p)
    p.set_defaults(func=run)


def _load_data(spec: str, resolution: int) -> tuple[Any, Any, Any, int, int]:
    """(train, calib, val, in_channels, num_classes) for a built-in name or an image-folder root."""
    from elasticnas.data._builtin import BUILTIN_DATASETS, builtin_dataset

    if spec in BUILTIN_DATASETS:
        ds = builtin_dataset(spec, resolution=resolution)
        return ds.train, ds.calib, ds.val, ds.in_channels, ds.num_classes
    root = Path(spec)
    if not (root / "train").is_dir():
        raise ElasticNASError(
            f"--data {spec!r} is neither a built-in data set nor a folder holding train/ (and val/) image folders"
        )
    from elasticnas.data import ImageFolder

    train = ImageFolder(root / "train", resolution)
    val = ImageFolder(root / "val", resolution) if (root / "val").is_dir() else None
    return train, train, val, 3, len(train.classes)


def _print_epoch(r: Any) -> None:
    val = "" if math.isnan(r.val_max) else f", val largest {r.val_max:.2f}%, smallest {r.val_min:.2f}%"
    print(f"epoch {r.epoch} [{r.phase}]: loss {r.loss:.3f}, train acc {r.train_acc:.1f}%{val} ({r.seconds:.0f} s)", flush=True)


def _first(data: Any, n: int) -> Any:
    if isinstance(data, tuple):
        return data[0][:n], data[1][:n]
    from torch.utils.data import Subset

    return Subset(data, range(min(n, len(data))))


def run(args: argparse.Namespace) -> int:
    import torch

    from elasticnas.measure.latency import check_device
    from elasticnas.supernets import SUPERNETS, ImageSupernet
    from elasticnas.training import TrainConfig, create_trainer

    out = check_output_path(args.out, what="checkpoint")
    if args.weights_out:
        check_output_path(args.weights_out, what="weights file")
    check_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    name = SUPERNETS.canonical(args.supernet)
    probe = SUPERNETS.get(name)(seed=args.seed)
    if not isinstance(probe, ImageSupernet):
        raise ElasticNASError(f"elasticnas train trains image super-networks; {name!r} is not one")
    resolution = probe.resolution(probe.max_config())
    train, calib, val, in_channels, num_classes = _load_data(args.data, resolution)
    try:
        net = SUPERNETS.get(name)(seed=args.seed, in_channels=in_channels, num_classes=num_classes)
    except TypeError as exc:
        raise ElasticNASError(f"super-network {name!r} cannot be built for this data: {exc}") from None
    assert isinstance(net, ImageSupernet)  # the same class as the probe
    net.name = name
    if args.train_samples:
        train = _first(train, args.train_samples)
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        num_random=args.num_random,
        kd_ratio=args.kd_ratio,
        augment_shift=args.augment_shift,
        seed=args.seed,
    )
    trainer = create_trainer(args.method, net, config, device=args.device)
    if out.exists() and not args.overwrite:
        print(f"resuming from {out}")
    try:
        result = trainer.fit(
            train,
            out=out,
            resume=not args.overwrite,
            val_data=None if args.no_val else val,
            calib_data=calib,
            progress=wants_progress(args),
            callback=None if wants_progress(args) else _print_epoch,
        )
    except KeyboardInterrupt as exc:  # SIGTERM arrives as a subclass
        raise type(exc)(f"{out} holds the checkpoint of the last finished epoch, if any; run again to resume") from None
    if result.resumed_from:
        print(f"resumed after epoch {result.resumed_from}")
    last = result.history[-1] if result.history else None
    if last is not None:
        msg = f"done: {len(result.history)} epochs, last loss {last.loss:.3f}, train acc {last.train_acc:.1f}%"
        if not math.isnan(last.val_max):
            msg += f", val largest {last.val_max:.2f}%, smallest {last.val_min:.2f}%"
        print(msg)
    print(f"checkpoint: {out}")
    if args.weights_out:
        path = trainer.export_weights(args.weights_out)
        print(f"weights: {path} ({os.path.getsize(path) / 1e6:.2f} MB)")
    return 0

