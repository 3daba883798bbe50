"""``elasticnas export``: write a sub-network as a standalone file or folder (PyTorch, safetensors, ONNX,
Hugging Face, PEFT, QDQ)."""

from __future__ import annotations

import argparse
import json
import math
from typing import TYPE_CHECKING, Any

from elasticnas._io import InputError, parse_json, read_text
from elasticnas.cli._args import DefaultsFormatter, LazySubParsers, input_file, non_negative_int, positive_float
from elasticnas.errors import ElasticNASError, InvalidConfigError

if TYPE_CHECKING:
    from elasticnas.export import ExportRecord


def read_config(text: str) -> dict[str, Any]:
    """A configuration from JSON text, or from a file named ``@PATH`` (JSON, or the first JSON line)."""
    source = "--config"
    if text.startswith("@"):
        source = text[1:]
        try:
            text = read_text(source, what="configuration file")
        except InputError as exc:
            raise InvalidConfigError(str(exc)) from None
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) > 1:
            try:
                json.loads(text)
            except (json.JSONDecodeError, RecursionError):
                text = lines[0]  # JSON lines: the first configuration
    try:
        data = parse_json(text, what=source)
    except InputError as exc:
        raise InvalidConfigError(str(exc)) from None
    if not isinstance(data, dict):
        raise InvalidConfigError(
            f"{source} must be a JSON object such as " '{"ks": [...], "e": [...], "d": [...], "r": 224}'
        )
    return data


def register(subparsers: LazySubParsers) -> None:
    subparsers.add_lazy_parser(
        "export",
        _fill,
        help="export a sub-network as measured: a standalone PyTorch (.pt) or ONNX file, checked against PyTorch",
        description=(
            "Write one sub-network as a standalone file: 'pt' (architecture JSON + weights; reload with "
            "elasticnas.load_subnet) or 'onnx' (checked in ONNX Runtime against PyTorch). Its BatchNorm statistics "
            "are re-estimated on calibration data exactly as the accuracy metric does, so the file is the network "
            "that was measured. Either name a trial of a study (--storage, --study, --trial: the super-network, "
            "weights and data come from the study) or a super-network and a configuration (--supernet, --config)."
        ),
        formatter_class=DefaultsFormatter,
    )


def _fill(p: argparse.ArgumentParser) -> None:
    from elasticnas.cli._study_commands import DEFAULT_STORAGE
    from elasticnas.export import FORMATS

    trial = p.add_argument_group("a trial of a study")
    trial.add_argument("--storage", default=DEFAULT_STORAGE, help="Optuna storage URL of the study")
    trial.add_argument("--study", help="study name")
    trial.add_argument("--trial", type=non_negative_int, help="trial number (see 'elasticnas pareto')")
    direct = p.add_argument_group("or a super-network and a configuration")
    direct.add_argument("--supernet", help="registered super-network name, e.g. ofa_mbv3_w10, tiny_mbv3")
    direct.add_argument("--weights", type=input_file, help="checkpoint of the super-network (default: its built-in "
                        "weights if it has some, else seeded random ones)")
    direct.add_argument("--config", help="configuration as JSON text, or @FILE holding it")
    p.add_argument("--format", choices=FORMATS, default="onnx", help="output format")
    p.add_argument("--out", required=True, help="output file")
    data = p.add_argument_group("BatchNorm recalibration and the accuracy check")
    data.add_argument("--calib-data", help="data to re-estimate BatchNorm statistics on: an image folder or a built-in "
                      "NAME:SPLIT (default: what the study recorded, else the super-network's built-in calibration "
                      "split)")
    data.add_argument("--no-recalibrate", action="store_true",
                      help="keep the super-network's BatchNorm statistics (the file then differs from what was "
                      "measured)")
    data.add_argument("--val-data", help="data to score the exported file on (default: what the study recorded, else "
                      "the super-network's built-in validation split)")
    p.add_argument("--atol", type=positive_float, default=1e-4, help="largest accepted |exported - PyTorch|")
    p.set_defaults(func=run)


def _direct(args: argparse.Namespace) -> ExportRecord:
    from elasticnas.export import export_subnet
    from elasticnas.problems._supernet import BUILTIN_DATA, builtin_data

    if args.config is None:
        raise ElasticNASError(
            "--supernet needs --config JSON (or @FILE); or export a study's trial with --study and --trial"
        )
    config = read_config(args.config)
    builtin = builtin_data(args.supernet) if args.supernet in BUILTIN_DATA else {}
    calib = None if args.no_recalibrate else args.calib_data or builtin.get("calib_data")
    return export_subnet(
        args.supernet, config, args.format, args.out, weights=args.weights, calibration_data=calib,
        recalibrate=not args.no_recalibrate, val_data=args.val_data or builtin.get("val_data"), atol=args.atol,
    )


def _from_study(args: argparse.Namespace) -> ExportRecord:
    from elasticnas.study import load_study

    given = [flag for flag, value in (("--supernet", args.supernet), ("--weights", args.weights),
                                      ("--config", args.config)) if value is not None]
    if given:
        raise ElasticNASError(f"{given[0]} cannot be combined with --trial: the study records what trial it measured")
    study = load_study(args.storage, args.study)
    return study.export(
        args.trial, args.format, args.out, calibration_data=args.calib_data, val_data=args.val_data,
        recalibrate=not args.no_recalibrate, atol=args.atol,
    )


def run(args: argparse.Namespace) -> int:
    if (args.study is None) != (args.trial is None):
        raise ElasticNASError("give --study and --trial together (a trial of a study), or --supernet and --config")
    if args.study is None and args.supernet is None:
        raise ElasticNASError("give --study NAME --trial N (a trial of a study) or --supernet NAME --config JSON")
    record = _from_study(args) if args.study is not None else _direct(args)
    shape = "x".join(map(str, record.input_shape))
    print(
        f"wrote {record.path} ({record.format}): {record.supernet} sub-network {record.config_id}"
        + (f" (trial {record.trial})" if record.trial is not None else "")
        + f", input {shape}, {record.macs / 1e6:.2f} M MACs, {record.params / 1e6:.3f} M params, "
        f"max |{record.format} - pytorch| = {record.max_abs_diff:.2e}"
    )
    if record.calibration_batches:
        print(f"BatchNorm statistics re-estimated on {record.calibration_batches} calibration batches")
    elif args.no_recalibrate:
        print("BatchNorm statistics kept from the super-network (--no-recalibrate): the file may score lower than "
              "the sub-network measured after recalibration")
    if record.accuracy_top1 is not None and (record.recorded_accuracy_top1 is not None or record.recorded_loss is None):
        recorded = record.recorded_accuracy_top1
        print(f"accuracy of the exported file on the validation data: {record.accuracy_top1:.2f} %"
              + (f" (the study recorded {recorded:.2f} %)" if recorded is not None else ""))
    if record.loss is not None and record.recorded_loss is not None:
        print(f"loss of the exported file on the validation data: {record.loss:.4f} (perplexity "
              f"{math.exp(record.loss):.3f}; the study recorded {record.recorded_loss:.4f})")
    return 0
