"""Export sub-networks as standalone files or folders, with a parity check.

- ``pt``: one file with the super-network's family, the architecture as JSON (OFA ``net.config``
  format for the OFA families) and the weights; reloads with :func:`load_subnet` through
  ``torch.load(..., weights_only=True)`` (no pickled code) and the builder registered for the
  family (:func:`~elasticnas.supernets.register_subnet_builder`).
- ``safetensors``: the same as a folder of ``model.safetensors`` and ``elasticnas.json``, also read
  by :func:`load_subnet`.
- ``onnx``: one input per tensor of the family's ``example_inputs``, each with a dynamic batch axis.
- ``hf``: a Hugging Face folder (``save_pretrained``, with the tokenizer or image processor of the
  super-network's folder) that ``AutoModelFor*.from_pretrained`` loads without remote code; for
  sub-networks of Hugging Face super-networks whose layers share one shape.
- ``peft``: a PEFT adapter folder (``adapter_config.json``, ``adapter_model.safetensors``) with its base
  model as a Hugging Face folder in ``base/``, for adapter super-networks over Hugging Face ones
  (:class:`elasticnas.adapters.LoraSupernet`); ``peft.PeftModel.from_pretrained`` loads it.
- ``qdq``: the ONNX file of a quantized sub-network as it was measured (QuantizeLinear /
  DequantizeLinear around its INT8 layers), for quantized super-networks
  (:func:`elasticnas.quantization.quantize_supernet`).

Every export is reloaded (or run in ONNX Runtime) and compared with the PyTorch sub-network on
the same seeded inputs before it replaces anything.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from elasticnas.errors import CheckpointError, ElasticNASError
from elasticnas.supernets import SUBNET_BUILDERS, create_supernet

if TYPE_CHECKING:  # PyTorch is imported where it is used, so that FORMATS loads without it
    import torch
    from torch import nn

    from elasticnas.measure.accuracy import AccuracyResult, Calibration
    from elasticnas.measure.latency import Inputs
    from elasticnas.supernets import Supernet

FORMATS = ("pt", "onnx", "safetensors", "hf", "peft", "qdq")
FOLDER_FORMATS = ("safetensors", "hf", "peft")
_PT_FORMAT = "elasticnas-subnet"
_PT_VERSION = 1
INFO_FILE = "elasticnas.json"  # in exported folders: what was exported (and the mark of a folder elasticnas wrote)
WEIGHTS_FILE = "model.safetensors"


class ExportError(ElasticNASError):
    """A sub-network could not be exported, or the export does not match PyTorch."""


@dataclass(frozen=True)
class ExportRecord:
    """What :func:`export_subnet` wrote, and how closely it reproduces the measured sub-network.

    ``max_abs_diff``: largest absolute difference between the exported file's outputs
    (reloaded, or run in ONNX Runtime) and the extracted, recalibrated PyTorch sub-network's;
    ``atol``: the tolerance it was checked against (``atol`` times the largest output magnitude, at least 1);
    ``supernet_diff``: the same between the extracted sub-network before recalibration and the
    activated super-network (both in eval mode); ``calibration_batches``: batches its BatchNorm
    statistics were re-estimated on (0: the super-network's kept); ``input_shape``: the shape of one
    input without the batch axis ((C, H, W) for images), one such shape per input for a family of
    several inputs (token ids and an attention mask, ...); ``accuracy_top1`` and ``loss``: top-1
    accuracy (%; per token for language models) and mean cross-entropy of the exported file itself
    on the validation data, when given; ``recorded_accuracy_top1`` and ``recorded_loss``: what the
    study recorded for the trial (:meth:`Study.export`; None where it did not measure them).
    """

    path: str
    format: str
    supernet: str
    config_json: str
    config_id: str
    input_shape: tuple[Any, ...]
    macs: int
    params: int
    max_abs_diff: float
    supernet_diff: float
    atol: float
    calibration_batches: int = 0
    accuracy_top1: float | None = None
    recorded_accuracy_top1: float | None = None
    loss: float | None = None
    recorded_loss: float | None = None
    trial: int | None = None

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.config_json)  # type: ignore[no-any-return]  # written from a config dict

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "config_json"}
        return {**out, "config": self.config, "input_shape": _as_lists(self.input_shape)}


def _as_lists(shape: Any) -> Any:
    """A (nested) shape tuple as JSON lists."""
    return [_as_lists(v) for v in shape] if isinstance(shape, tuple | list) else shape


def _as_tuples(shape: Any) -> Any:
    """A (nested) shape read from JSON as tuples."""
    return tuple(_as_tuples(v) for v in shape) if isinstance(shape, tuple | list) else shape


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).abs().max())


def _supernet_parity(supernet: Supernet, config: Mapping[str, Any], sub: nn.Module, xs: Inputs) -> float:
    """Max |activated super-network - extracted| in eval mode; restores the super-network's state."""
    import torch

    was_training, previous = supernet.training, supernet._active
    try:
        supernet.eval()
        supernet.activate(config)
        with torch.no_grad():
            return _max_diff(supernet(*xs), sub(*xs))
    finally:
        supernet.train(was_training)
        if previous is not None:
            supernet.activate(previous)


def _calibration(calibration_data: Any, recalibrate: bool, sub: nn.Module, supernet_name: str) -> Calibration | None:
    """The calibration to apply before export: refuses to export BatchNorm statistics by accident."""
    from elasticnas.data._spec import resolve_data
    from elasticnas.measure.accuracy import Calibration, has_batchnorm

    if not recalibrate:
        if calibration_data is not None:
            raise ExportError("give calibration data or recalibrate=False (--no-recalibrate), not both")
        return None
    if calibration_data is None:
        if has_batchnorm(sub):
            raise ExportError(
                f"{supernet_name} sub-networks have BatchNorm, whose statistics must be re-estimated for the "
                "sub-network as its accuracy was measured: pass calibration_data= (CLI: --calib-data DATA), or "
                "recalibrate=False (--no-recalibrate) to keep the super-network's statistics"
            )
        return None
    if isinstance(calibration_data, Calibration):
        return calibration_data
    return Calibration(resolve_data(calibration_data))


def export_subnet(
    supernet: Supernet | str,
    config: Mapping[str, Any],
    format: Literal["pt", "onnx", "safetensors", "hf", "peft", "qdq"] = "pt",  # noqa: A002 - the public name users pass
    path: str | os.PathLike[str] | None = None,
    *,
    weights: str | os.PathLike[str] | None = None,
    calibration_data: Any = None,
    recalibrate: bool = True,
    val_data: Any = None,
    val_batches: int | None = None,
    check: bool = True,
    atol: float = 1e-4,
    seed: int = 0,
    batch_size: int = 2,
    opset: int = 17,
) -> ExportRecord:
    """Extract sub-network ``config`` of ``supernet`` (an instance or a registered name) and write it to ``path``.

    The sub-network's BatchNorm statistics are re-estimated on ``calibration_data`` (data, a
    data spec such as ``"digits:calib"``, or a :class:`~elasticnas.measure.Calibration`) exactly
    as the accuracy metric does; a sub-network with BatchNorm is refused without calibration
    data unless ``recalibrate=False``. The file is reloaded (``pt``) or run in ONNX Runtime
    (``onnx``) on a seeded random batch and compared with the PyTorch sub-network; with
    ``check`` a difference above ``atol`` (times the largest output magnitude where that exceeds 1:
    float32 rounding grows with it) raises :class:`ExportError`. With ``val_data`` the
    exported file's own top-1 accuracy (over at most ``val_batches`` batches) is recorded.
    """
    import torch

    from elasticnas._io import atomic_write, atomic_write_dir, check_output_dir, check_output_path

    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; choose one of: {', '.join(FORMATS)}")
    if path is None:
        raise ExportError("export_subnet needs an output path")
    from elasticnas.data._spec import resolve_data

    if format in FOLDER_FORMATS:
        out = os.fspath(check_output_dir(path, marker=INFO_FILE, what="export folder"))
    else:
        out = os.fspath(check_output_path(path, what="export file"))
    val = None if val_data is None else resolve_data(val_data)  # a bad data spec is refused before any work
    if isinstance(supernet, str):
        supernet = create_supernet(supernet, weights=weights)
    elif weights is not None:
        supernet.load_weights(weights)
    space = supernet.search_space
    cfg = space.validate(config)
    if format in ("pt", "safetensors") and supernet.family not in SUBNET_BUILDERS:
        raise ExportError(
            f"super-network {supernet.name or type(supernet).__name__!r} cannot be exported as {format}: its family "
            f"{supernet.family!r} has no sub-network builder (register_subnet_builder); export it as onnx"
        )
    xs = supernet.example_inputs(cfg, batch_size, seed=seed)
    shapes = tuple(tuple(int(n) for n in x.shape[1:]) for x in xs)
    shape = shapes[0] if len(shapes) == 1 else shapes
    sub = supernet.extract(cfg).eval()
    if (format == "qdq") != callable(getattr(sub, "save_onnx", None)):
        raise ExportError(
            "format qdq is the ONNX model of a quantized sub-network (elasticnas.quantization.quantize_supernet), "
            "which exports as qdq only"
        )
    calibration = _calibration(calibration_data, recalibrate, sub, supernet.name)
    parity = _supernet_parity(supernet, cfg, sub, xs)
    used = 0 if calibration is None else supernet.calibrate(sub, cfg, calibration)
    with torch.no_grad():
        ref = sub(*xs)
    tolerance = atol * max(1.0, float(ref.abs().max()))  # float32 rounding grows with the outputs' magnitude

    info = {
        "format": _PT_FORMAT,
        "version": _PT_VERSION,
        "supernet": supernet.name,
        "family": supernet.family,
        "config": json.dumps(cfg),
        "input_shape": _as_lists(shape),
        "arch": json.dumps(supernet.arch(cfg)),
    }
    diffs: list[float] = []
    scores: list[AccuracyResult] = []

    def write(tmp: str) -> None:
        if format == "pt":
            torch.save({**info, "state_dict": sub.state_dict()}, tmp)
        elif format == "safetensors":
            from safetensors.torch import save_model

            save_model(sub, os.path.join(tmp, WEIGHTS_FILE))
        elif format == "hf":
            _save_hf(supernet, cfg, sub, tmp)
        elif format == "peft":
            _save_peft(supernet, cfg, tmp)
        if format in FOLDER_FORMATS:
            with open(os.path.join(tmp, INFO_FILE), "w", encoding="utf-8") as fh:
                json.dump({**info, "format": f"{_PT_FORMAT}-{format}"}, fh, indent=1)
        if format == "onnx":
            diff = _export_onnx(sub, xs, tmp, opset, ref)
        elif format == "qdq":
            diff = _save_qdq(sub, xs, tmp, ref)
        else:
            with torch.no_grad():
                diff = _max_diff(load_subnet(tmp)(*xs), ref)
        if check and not diff <= tolerance:
            raise ExportError(
                f"exported {format} model differs from the PyTorch sub-network by {diff:.3g} > {tolerance:.3g} "
                f"(atol {atol:g} x the largest output magnitude, at least 1)"
            )
        diffs.append(diff)
        if val is not None:  # scored before it replaces anything: unreadable data leaves the old file
            scores.append(_file_scores(tmp, format, val, supernet, cfg, val_batches))

    if format in FOLDER_FORMATS:
        atomic_write_dir(out, write, marker=INFO_FILE, what="export folder")
    else:
        atomic_write(out, write, what="export file")
    costs = supernet.costs(cfg)
    return ExportRecord(
        path=out,
        format=format,
        supernet=supernet.name,
        config_json=json.dumps(cfg),
        config_id=space.config_id(cfg),
        input_shape=shape,
        macs=int(costs["macs"]),
        params=int(costs["params"]),
        max_abs_diff=diffs[0],
        supernet_diff=parity,
        atol=tolerance,
        calibration_batches=used,
        accuracy_top1=scores[0].top1 if scores else None,
        loss=scores[0].loss if scores else None,
    )


def _save_hf(supernet: Supernet, config: Mapping[str, Any], sub: nn.Module, folder: str) -> None:
    """Write sub-network ``config`` (extracted as ``sub``) as a Hugging Face folder, if its family can."""
    save = getattr(supernet, "save_subnet_pretrained", None)
    if save is None:
        raise ExportError(
            f"format hf is for sub-networks of Hugging Face super-networks (--supernet hf:PATH); export "
            f"{supernet.name or type(supernet).__name__!r} sub-networks as onnx, pt or safetensors"
        )
    save(config, sub, folder)


def _save_peft(supernet: Supernet, config: Mapping[str, Any], folder: str) -> None:
    """Write sub-network ``config`` as a PEFT adapter folder with its base model, if the super-network can."""
    save = getattr(supernet, "save_peft_pretrained", None)
    if save is None:
        raise ExportError(
            f"format peft is for adapter super-networks (elasticnas.adapters.LoraSupernet); export "
            f"{supernet.name or type(supernet).__name__!r} sub-networks as onnx, pt, safetensors or hf"
        )
    save(config, folder)


def _file_scores(
    path: str, format: str, val_data: Any, supernet: Supernet, config: Mapping[str, Any], max_batches: int | None
) -> AccuracyResult:
    """Accuracy and loss of the exported file itself, run as a user runs it (ONNX Runtime or load_subnet);
    images are resized to an image family's resolution."""
    from elasticnas.data import as_loader
    from elasticnas.measure.accuracy import evaluate_accuracy
    from elasticnas.supernets import ImageSupernet

    model = _onnx_module(path) if format in ("onnx", "qdq") else load_subnet(path)
    resolution, channels = None, None
    if isinstance(supernet, ImageSupernet):
        channels, resolution, _ = supernet.input_shape(config)
    loader = as_loader(val_data, batch_size=64, resolution=resolution, channels=channels)
    return evaluate_accuracy(model, loader, resolution=resolution, max_batches=max_batches)


def _export_onnx(sub: nn.Module, xs: Inputs, out: str, opset: int, ref: torch.Tensor) -> float:
    import torch

    from elasticnas.measure.latency import onnx_feed, onnx_input_names

    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - a declared dependency
        raise ExportError("ONNX export needs onnxruntime; pip install onnxruntime") from None
    names = onnx_input_names(len(xs))
    kwargs: dict[str, Any] = {
        "input_names": names,
        "output_names": ["logits"],
        "dynamic_axes": {name: {0: "batch"} for name in [*names, "logits"]},
        "opset_version": opset,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # the TorchScript exporter: fast and quiet for these plain convolutional networks
            torch.onnx.export(sub, xs, out, dynamo=False, **kwargs)
        except Exception as legacy_error:  # noqa: BLE001 - fall back to the torch.export-based exporter
            from elasticnas.measure.latency import require_onnxscript

            require_onnxscript(legacy_error, ExportError)
            kwargs.pop("dynamic_axes")
            try:
                torch.onnx.export(sub, xs, out, dynamo=True, external_data=False, **kwargs)
            except Exception as exc:  # noqa: BLE001
                raise ExportError(f"ONNX export failed: {type(exc).__name__}: {exc}") from None
    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, onnx_feed(session, xs))
    return _max_diff(torch.from_numpy(got), ref)


def _save_qdq(sub: nn.Module, xs: Inputs, out: str, ref: torch.Tensor) -> float:
    """Write the ONNX model ``sub`` holds and run the file in ONNX Runtime: its largest difference from ``ref``."""
    import onnxruntime as ort
    import torch

    from elasticnas.measure.latency import onnx_feed

    sub.save_onnx(out)  # type: ignore[operator]  # checked by export_subnet: a quantized sub-network's method
    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    return _max_diff(torch.from_numpy(session.run(None, onnx_feed(session, xs))[0]), ref)


def _onnx_module(path: str) -> nn.Module:
    """An ``nn.Module`` whose forward runs the ONNX file in ONNX Runtime (CPU), for evaluation code."""
    import onnxruntime as ort
    import torch
    from torch import nn

    from elasticnas.measure.latency import onnx_feed

    class OnnxModule(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            (logits,) = self.session.run(None, onnx_feed(self.session, inputs))
            return torch.from_numpy(logits)

    return OnnxModule()


def load_subnet(path: str | os.PathLike[str]) -> nn.Module:
    """Rebuild a sub-network written by :func:`export_subnet` (eval mode): a ``pt`` file, or a
    ``safetensors``, ``hf`` or ``peft`` folder.

    ``pt`` files are read with ``torch.load(..., weights_only=True)``; the module is rebuilt with
    the builder registered for the recorded family (files without one name it in the
    architecture, as OFA's ``net.config`` does). The exported configuration and super-network
    name are on ``module.elasticnas_info``.
    """
    import torch

    from elasticnas.supernets import build_subnet

    src = os.fspath(path)
    if os.path.isdir(src):
        return _load_folder(src)
    try:
        data = torch.load(src, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"sub-network file {src!r} does not exist") from None
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"sub-network file {src!r} could not be read safely: {type(exc).__name__}") from None
    if not isinstance(data, dict) or data.get("format") != _PT_FORMAT:
        raise CheckpointError(
            f"{src!r} is not an elasticnas sub-network file (written by export_subnet(..., format='pt'))"
        )
    if data.get("version") != _PT_VERSION:
        raise CheckpointError(
            f"{src!r} has sub-network format version {data.get('version')!r}; this elasticnas reads {_PT_VERSION}"
        )
    family = data.get("family")
    try:
        arch = json.loads(data["arch"])
        family = family if family is not None else str(arch.get("name"))
        if family not in SUBNET_BUILDERS:
            raise CheckpointError(
                f"{src!r} holds a sub-network of family {family!r}, which no loaded module registers a builder "
                "for: import the module that calls register_subnet_builder (or pass --plugin MODULE)"
            )
        net = build_subnet(arch, family)
        net.load_state_dict(data["state_dict"], strict=True)
    except (KeyError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{src!r} holds an inconsistent sub-network: {first}") from None
    return _with_info(net, data)


def _with_info(net: nn.Module, info: Mapping[str, Any]) -> nn.Module:
    net.elasticnas_info = {  # type: ignore[assignment]  # a plain attribute on the rebuilt module
        "supernet": info.get("supernet"),
        "config": json.loads(info["config"]),
        "input_shape": _as_tuples(info["input_shape"]),
    }
    return net.eval()


def _load_folder(src: str) -> nn.Module:
    """A ``safetensors``, ``hf`` or ``peft`` export folder as a module (see :func:`load_subnet`)."""
    from elasticnas._io import InputError, parse_json, read_text
    from elasticnas.supernets import build_subnet

    try:
        info = parse_json(read_text(os.path.join(src, INFO_FILE), what="export description"))
    except InputError as exc:
        raise CheckpointError(f"{src!r} is not an elasticnas export folder: {exc}") from None
    kind = info.get("format") if isinstance(info, dict) else None
    if kind not in [f"{_PT_FORMAT}-{f}" for f in FOLDER_FORMATS] or info.get("version") != _PT_VERSION:
        raise CheckpointError(f"{src!r} holds no elasticnas sub-network this version reads ({INFO_FILE}: {kind!r})")
    try:
        if kind.endswith("-peft"):
            from elasticnas.adapters import load_peft_subnet

            return _with_info(load_peft_subnet(src), info)
        if kind.endswith("-hf"):
            from elasticnas.supernets.hf import load_hf_subnet

            return _with_info(load_hf_subnet(src), info)
        from safetensors.torch import load_model

        net = build_subnet(json.loads(info["arch"]), info["family"])
        load_model(net, os.path.join(src, WEIGHTS_FILE), strict=True)
    except (KeyError, ValueError, RuntimeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{src!r} holds an inconsistent sub-network: {first}") from None
    return _with_info(net, info)


__all__ = ["ExportError", "ExportRecord", "export_subnet", "load_subnet"]
