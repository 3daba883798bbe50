"""Export sub-networks as standalone PyTorch (``pt``) or ONNX files, with a parity check.

``pt`` files hold the architecture as JSON (OFA ``net.config`` format) and the
weights, and reload with :func:`load_subnet` through ``torch.load(...,
weights_only=True)`` (no pickled code). ``onnx`` files are checked in ONNX Runtime
against the PyTorch sub-network on the same seeded input.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from elasticnas.errors import CheckpointError, ElasticNASError
from elasticnas.supernets import create_supernet

if TYPE_CHECKING:  # PyTorch is imported where it is used, so that FORMATS loads without it
    import torch
    from torch import nn

    from elasticnas.measure.accuracy import Calibration
    from elasticnas.supernets import Supernet

FORMATS = ("pt", "onnx")
_PT_FORMAT = "elasticnas-subnet"
_PT_VERSION = 1


class ExportError(ElasticNASError):
    """A sub-network could not be exported, or the export does not match PyTorch."""


@dataclass(frozen=True)
class ExportRecord:
    """What :func:`export_subnet` wrote, and how closely it reproduces the measured sub-network.

    ``max_abs_diff``: largest absolute difference between the exported file's outputs
    (reloaded, or run in ONNX Runtime) and the extracted, recalibrated PyTorch sub-network's;
    ``supernet_diff``: the same between the extracted sub-network before recalibration and the
    activated super-network (both in eval mode); ``calibration_batches``: batches its BatchNorm
    statistics were re-estimated on (0: the super-network's kept); ``accuracy_top1``: top-1
    accuracy (%) of the exported file itself on the validation data, when given;
    ``recorded_accuracy_top1``: what the study recorded for the trial (:meth:`Study.export`).
    """

    path: str
    format: str
    supernet: str
    config_json: str
    config_id: str
    input_shape: tuple[int, int, int]
    macs: int
    params: int
    max_abs_diff: float
    supernet_diff: float
    atol: float
    calibration_batches: int = 0
    accuracy_top1: float | None = None
    recorded_accuracy_top1: float | None = None
    trial: int | None = None

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.config_json)  # type: ignore[no-any-return]

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "config_json"}
        return {**out, "config": self.config, "input_shape": list(self.input_shape)}


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).abs().max())


def _supernet_parity(supernet: Supernet, config: Mapping[str, Any], sub: nn.Module, x: torch.Tensor) -> float:
    """Max |activated super-network - extracted| in eval mode; restores the super-network's state."""
    import torch

    was_training, previous = supernet.training, supernet._active
    try:
        supernet.eval()
        supernet.activate(config)
        with torch.no_grad():
            return _max_diff(supernet(x), sub(x))
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
    format: Literal["pt", "onnx"] = "pt",  # noqa: A002 - the public name users pass
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
    ``check`` a difference above ``atol`` raises :class:`ExportError`. With ``val_data`` the
    exported file's own top-1 accuracy (over at most ``val_batches`` batches) is recorded.
    """
    import torch

    from elasticnas._io import atomic_write, check_output_path

    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; choose one of: {', '.join(FORMATS)}")
    if path is None:
        raise ExportError("export_subnet needs an output path")
    from elasticnas.data._spec import resolve_data

    out = os.fspath(check_output_path(path, what="export file"))
    val = None if val_data is None else resolve_data(val_data)  # a bad data spec is refused before any work
    if isinstance(supernet, str):
        supernet = create_supernet(supernet, weights=weights)
    elif weights is not None:
        supernet.load_weights(weights)
    space = supernet.search_space
    cfg = space.validate(config)
    shape = supernet.input_shape(cfg)
    sub = supernet.extract(cfg).eval()
    calibration = _calibration(calibration_data, recalibrate, sub, supernet.name)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, *shape, generator=gen)
    parity = _supernet_parity(supernet, cfg, sub, x)
    used = 0 if calibration is None else calibration.apply(sub, resolution=shape[-1], channels=shape[0])
    with torch.no_grad():
        ref = sub(x)
    diffs: list[float] = []

    def write(tmp: str) -> None:
        if format == "pt":
            torch.save(
                {
                    "format": _PT_FORMAT,
                    "version": _PT_VERSION,
                    "supernet": supernet.name,
                    "config": json.dumps(cfg),
                    "input_shape": list(shape),
                    "arch": json.dumps(supernet.arch(cfg)),
                    "state_dict": sub.state_dict(),
                },
                tmp,
            )
            with torch.no_grad():
                diff = _max_diff(load_subnet(tmp)(x), ref)
        else:
            diff = _export_onnx(sub, x, tmp, opset, ref)
        if check and not diff <= atol:
            raise ExportError(
                f"exported {format} model differs from the PyTorch sub-network by {diff:.3g} > atol {atol:g}"
            )
        diffs.append(diff)
        if val is not None:  # scored before it replaces anything: unreadable data leaves the old file
            accuracies.append(_file_accuracy(tmp, format, val, shape, val_batches))

    accuracies: list[float] = []
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
        atol=atol,
        calibration_batches=used,
        accuracy_top1=accuracies[0] if accuracies else None,
    )


def _file_accuracy(path: str, format: str, val_data: Any, shape: tuple[int, int, int], max_batches: int | None) -> float:  # noqa: A002
    """Top-1 accuracy (%) of the exported file itself, run as a user runs it (ONNX Runtime or load_subnet)."""
    from elasticnas.data import as_loader
    from elasticnas.measure.accuracy import evaluate_accuracy

    model = load_subnet(path) if format == "pt" else _onnx_module(path)
    loader = as_loader(val_data, batch_size=64, resolution=shape[-1], channels=shape[0])
    return evaluate_accuracy(model, loader, resolution=shape[-1], max_batches=max_batches).top1


def _export_onnx(sub: nn.Module, x: torch.Tensor, out: str, opset: int, ref: torch.Tensor) -> float:
    import torch

    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - a declared dependency
        raise ExportError("ONNX export needs onnxruntime; pip install onnxruntime") from None
    kwargs: dict[str, Any] = {
        "input_names": ["input"],
        "output_names": ["logits"],
        "dynamic_axes": {"input": {0: "batch"}, "logits": {0: "batch"}},
        "opset_version": opset,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # the TorchScript exporter: fast and quiet for these plain convolutional networks
            torch.onnx.export(sub, (x,), out, dynamo=False, **kwargs)
        except Exception as legacy_error:  # noqa: BLE001 - fall back to the torch.export-based exporter
            from elasticnas.measure.latency import require_onnxscript

            require_onnxscript(legacy_error, ExportError)
            kwargs.pop("dynamic_axes")
            try:
                torch.onnx.export(sub, (x,), out, dynamo=True, external_data=False, **kwargs)
            except Exception as exc:  # noqa: BLE001
                raise ExportError(f"ONNX export failed: {type(exc).__name__}: {exc}") from None
    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    (got,) = session.run(None, {name: x.numpy()})
    return _max_diff(torch.from_numpy(got), ref)


def _onnx_module(path: str) -> nn.Module:
    """An ``nn.Module`` whose forward runs the ONNX file in ONNX Runtime (CPU), for evaluation code."""
    import onnxruntime as ort
    import torch
    from torch import nn

    class OnnxModule(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            self.input_name = self.session.get_inputs()[0].name

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            (logits,) = self.session.run(None, {self.input_name: x.detach().cpu().numpy()})
            return torch.from_numpy(logits)

    return OnnxModule()


def load_subnet(path: str | os.PathLike[str]) -> nn.Module:
    """Rebuild a sub-network written by :func:`export_subnet` in ``pt`` format (eval mode).

    Reads with ``torch.load(..., weights_only=True)``. The architecture JSON is on
    ``module.config``; the exported configuration and super-network name on
    ``module.elasticnas_info``.
    """
    import torch

    from elasticnas.supernets import build_subnet

    src = os.fspath(path)
    try:
        data = torch.load(src, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"sub-network file {src!r} does not exist") from None
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"sub-network file {src!r} could not be read safely: {type(exc).__name__}") from None
    if not isinstance(data, dict) or data.get("format") != _PT_FORMAT:
        raise CheckpointError(f"{src!r} is not an elasticnas sub-network file (written by export_subnet(..., format='pt'))")
    if data.get("version") != _PT_VERSION:
        raise CheckpointError(f"{src!r} has sub-network format version {data.get('version')!r}; this elasticnas reads {_PT_VERSION}")
    try:
        net = build_subnet(json.loads(data["arch"]))
        net.load_state_dict(data["state_dict"], strict=True)
    except (KeyError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{src!r} holds an inconsistent sub-network: {first}") from None
    net.elasticnas_info = {  # type: ignore[assignment]
        "supernet": data.get("supernet"),
        "config": json.loads(data["config"]),
        "input_shape": tuple(data["input_shape"]),
    }
    return net.eval()


__all__ = ["ExportError", "ExportRecord", "export_subnet", "load_subnet"]
