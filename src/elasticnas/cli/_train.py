"""``elasticnas train``: train a super-network (progressive shrinking or the sandwich rule).

Image super-networks train from scratch on image data; a Hugging Face model (``--supernet hf:PATH``)
is fine-tuned once for all its sub-networks (InstaTune) on token data, with the fine-tuning
defaults of :meth:`~elasticnas.training.TrainConfig.finetuning`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elasticnas._io import check_output_path
from elasticnas.cli._args import (
    HF_PREFIX,
    DefaultsFormatter,
    LazySubParsers,
    add_progress_flag,
    add_task_arg,
    batch_size,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    seed,
    supernet_kwargs,
    thread_count,
    wants_progress,
)
from elasticnas.errors import ElasticNASError

if TYPE_CHECKING:
    from elasticnas.supernets import Supernet
    from elasticnas.training import EpochResult

# settings whose default differs between image super-networks (TrainConfig()) and others (TrainConfig.finetuning())
_PER_KIND = ("optimizer", "lr", "weight_decay", "grad_clip", "warmup_epochs", "label_smoothing", "augment_shift")


def register(subparsers: LazySubParsers) -> None:
    subparsers.add_lazy_parser(
        "train",
        _fill,
        help="train an elastic super-network (checkpoint every epoch; resumes an interrupted run)",
        description=(
            "Train a super-network with progressive shrinking (OFA) or the sandwich rule with in-place "
            "distillation (BigNAS). Image super-networks train on image data; a Hugging Face model "
            "(--supernet hf:PATH, e.g. a folder elasticnas elasticize wrote) is fine-tuned once for all its "
            "sub-networks on token data (causal LM: next-token loss, validated by perplexity; sequence "
            "classification: batches of token ids, attention mask and labels), by default with AdamW at a "
            "small learning rate, weight decay and gradient clipping. A checkpoint is written to --out after "
            "every epoch; running the same command again resumes from it and gives the same result as an "
            "uninterrupted run."
        ),
        formatter_class=DefaultsFormatter,
    )


def _fill(p: argparse.ArgumentParser) -> None:
    from elasticnas.data import list_builtin_datasets
    from elasticnas.training import TrainConfig, list_trainers
    from elasticnas.training._config import OPTIMIZERS

    d, f = TrainConfig(), TrainConfig.finetuning()

    def per_kind(name: str, what: str) -> str:
        return f"{what} (default: {getattr(d, name)} for image super-networks, {getattr(f, name)} for others)"

    p.add_argument(
        "--supernet", required=True,
        help="registered super-network name, e.g. tiny_mbv3, or hf:PATH, a Hugging Face model folder",
    )  # fmt: skip
    add_task_arg(p)
    p.add_argument(
        "--data",
        help=f"image super-networks: a built-in data set ({', '.join(list_builtin_datasets())}; default: digits) "
        "or a folder with train/ and val/ image folders in ImageNet layout; token super-networks: a data spec "
        "NAME:SPLIT (e.g. pystdlib:train; NAME alone means NAME:train)",
    )
    p.add_argument("--val-data", help="token super-networks: validation data spec (default: NAME:val of --data)")
    p.add_argument("--method", default="sandwich", choices=list_trainers(), help="training method")
    p.add_argument("--epochs", type=positive_int, default=d.epochs, help="epochs")
    p.add_argument("--out", required=True, help="checkpoint path, rewritten after every epoch")
    p.add_argument("--seed", type=seed, default=d.seed, help="seed of the initialisation and the run")
    p.add_argument("--batch-size", type=batch_size, default=d.batch_size)
    p.add_argument("--optimizer", choices=OPTIMIZERS, help=per_kind("optimizer", "sgd (Nesterov) or adamw"))
    p.add_argument("--lr", type=positive_float, help=per_kind("lr", "peak learning rate"))
    p.add_argument("--weight-decay", type=non_negative_float, help=per_kind("weight_decay", "weight decay"))
    p.add_argument(
        "--grad-clip", type=non_negative_float, help=per_kind("grad_clip", "largest total gradient norm, 0 for none")
    )
    p.add_argument("--warmup-epochs", type=non_negative_int, help=per_kind("warmup_epochs", "epochs of warm-up"))
    p.add_argument(
        "--label-smoothing", type=non_negative_float, help=per_kind("label_smoothing", "label smoothing (0 to 1)")
    )
    p.add_argument(
        "--num-random", type=non_negative_int, default=d.num_random, help="random sub-networks per step"
    )
    p.add_argument("--kd-ratio", type=non_negative_float, default=d.kd_ratio, help="distillation weight")
    p.add_argument(
        "--augment-shift", type=non_negative_int,
        help=f"image super-networks: max random shift in pixels (0: none; default: {d.augment_shift})",
    )  # fmt: skip
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


def _token_data(args: argparse.Namespace) -> tuple[Any, Any]:
    """(train, val) of a token super-network from the data specs ``--data`` and ``--val-data``."""
    from elasticnas.data._spec import resolve_data

    if not args.data:
        raise ElasticNASError("a token super-network needs --data, a data spec NAME:SPLIT such as pystdlib:train")
    is_path = os.path.exists(args.data)
    train_spec = args.data if is_path or ":" in args.data else f"{args.data}:train"
    val_spec = args.val_data or (None if is_path else train_spec.partition(":")[0] + ":val")
    train = resolve_data(train_spec)
    val = None if args.no_val or val_spec is None else resolve_data(val_spec)
    for spec, data in ((train_spec, train), (val_spec, val)):
        if isinstance(data, str) or (isinstance(data, tuple) and data[0].is_floating_point()):
            raise ElasticNASError(f"data {spec!r} holds images; a token super-network trains on token ids")
    return train, val


def _supernet(args: argparse.Namespace) -> Supernet:
    """An ``hf:`` folder with its pretrained weights (``--task`` passed on), or a registered family seeded by
    ``--seed``."""
    from elasticnas.supernets import SUPERNETS, create_supernet

    kwargs = supernet_kwargs(args)
    if not args.supernet.startswith(HF_PREFIX):
        name = SUPERNETS.canonical(args.supernet)
        net = SUPERNETS.get(name)(seed=args.seed)
        net.name = name
        return net
    if not os.path.isfile(os.path.join(args.supernet[len(HF_PREFIX) :], "config.json")):
        raise ElasticNASError(f"--supernet {args.supernet!r} is not a Hugging Face model folder (no config.json)")
    try:
        return create_supernet(args.supernet, **kwargs)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # transformers' errors: the first line is the reason
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ElasticNASError(f"cannot load --supernet {args.supernet!r}: {first}") from None


def _print_epoch(r: EpochResult) -> None:
    print(
        f"epoch {r.epoch} [{r.phase}]: loss {r.loss:.3f}, train acc {r.train_acc:.1f}%{r.val_text(2)} "
        f"({r.seconds:.0f} s)",
        flush=True,
    )


def _first(data: Any, n: int) -> Any:
    if isinstance(data, tuple | list):
        return tuple(t[:n] for t in data)
    from torch.utils.data import Subset

    return Subset(data, range(min(n, len(data))))


def run(args: argparse.Namespace) -> int:
    import torch

    from elasticnas.measure.latency import check_device
    from elasticnas.supernets import SUPERNETS, ImageSupernet
    from elasticnas.training import TrainConfig, create_trainer, task_of

    out = check_output_path(args.out, what="checkpoint")
    if args.weights_out:
        check_output_path(args.weights_out, what="weights file")
    check_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    net = _supernet(args)
    calib = None
    if isinstance(net, ImageSupernet):  # built again for the data's channels and classes
        train, calib, val, in_channels, num_classes = _load_data(
            args.data or "digits", net.resolution(net.max_config())
        )
        try:
            net = SUPERNETS.get(net.name)(seed=args.seed, in_channels=in_channels, num_classes=num_classes)
        except TypeError as exc:
            raise ElasticNASError(f"super-network {args.supernet!r} cannot be built for this data: {exc}") from None
        net.name = SUPERNETS.canonical(args.supernet)
    elif task_of(net) == "image-classification":
        shape = net.example_inputs(net.max_config())[0].shape  # (1, C, H, W)
        train, calib, val, in_channels, _ = _load_data(args.data or "digits", int(shape[-1]))
        if in_channels != shape[1]:
            raise ElasticNASError(f"--data has {in_channels}-channel images; {net.name!r} takes {shape[1]} channels")
    else:
        train, val = _token_data(args)
    if args.train_samples:
        train = _first(train, args.train_samples)
    chosen = {name: getattr(args, name) for name in _PER_KIND if getattr(args, name) is not None}
    make = TrainConfig if isinstance(net, ImageSupernet) else TrainConfig.finetuning
    config = make(
        epochs=args.epochs, batch_size=args.batch_size, num_random=args.num_random, kd_ratio=args.kd_ratio,
        seed=args.seed, **chosen,
    )  # fmt: skip
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
        print(
            f"done: {len(result.history)} epochs, last loss {last.loss:.3f}, train acc {last.train_acc:.1f}%"
            + last.val_text(2)
        )
    print(f"checkpoint: {out}")
    if args.weights_out:
        path = trainer.export_weights(args.weights_out)
        print(f"weights: {path} ({os.path.getsize(path) / 1e6:.2f} MB)")
    return 0
