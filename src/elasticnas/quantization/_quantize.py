"""Post-training quantization of extracted sub-networks with ONNX Runtime: static QDQ (INT8) and MatMulNBits (INT4).

The FP32 sub-network is exported to ONNX once per architecture and calibrated once per architecture:
ONNX Runtime's calibration cache (``quantize_static(calibration_cache_path=...)``) holds every
activation range of the FP32 graph, so each precision policy of that architecture only inserts
QuantizeLinear / DequantizeLinear pairs around its INT8 layers (the nodes of its FP32 and INT4
layers excluded by name) and packs its INT4 weights.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import shutil
import tempfile
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from elasticnas.errors import ElasticNASError
from elasticnas.quantization._space import WEIGHT_SCHEMES

Feed = dict[str, np.ndarray]


class QuantizationError(ElasticNASError):
    """A sub-network cannot be quantized as asked."""


@dataclass(frozen=True)
class QuantizationSettings:
    """How sub-networks are quantized with ONNX Runtime.

    ``calib_batches`` batches of ``calib_batch_size`` samples calibrate the activation ranges
    (``calibrate_method``: ``minmax``, ``entropy`` or ``percentile``); activations are
    ``uint8`` (the fast path of x86 CPUs with VNNI) or ``int8``, INT8 weights signed,
    ``per_channel`` and ``symmetric_weights`` unless the policy's weight scheme says otherwise;
    INT4 weights come in blocks of ``int4_block_size``. ``keep_models``: FP32 ONNX files of the
    most recent architectures kept on disk for their next policy (calibration ranges are kept for all).
    """

    calib_batches: int = 4
    calib_batch_size: int = 16
    per_channel: bool = True
    symmetric_weights: bool = True
    activation_type: Literal["uint8", "int8"] = "uint8"
    calibrate_method: Literal["minmax", "entropy", "percentile"] = "minmax"
    int4_block_size: int = 32
    keep_models: int = 4

    def __post_init__(self) -> None:
        if self.calib_batches < 1 or self.calib_batch_size < 1:
            raise QuantizationError("quantization needs calib_batches >= 1 and calib_batch_size >= 1")
        if self.activation_type not in ("uint8", "int8"):
            raise QuantizationError(f"activation_type must be 'uint8' or 'int8', got {self.activation_type!r}")
        if self.calibrate_method not in ("minmax", "entropy", "percentile"):
            raise QuantizationError(f"unknown calibrate_method {self.calibrate_method!r}")
        if self.int4_block_size < 16 or self.int4_block_size & (self.int4_block_size - 1):
            raise QuantizationError("int4_block_size must be a power of two >= 16")
        if self.keep_models < 1:
            raise QuantizationError("keep_models must be >= 1")

    def weights(self, scheme: str | None) -> tuple[bool, bool]:
        """(symmetric, per-channel) INT8 weights under weight scheme ``scheme`` (None: these settings')."""
        if scheme is None:
            return self.symmetric_weights, self.per_channel
        if scheme not in WEIGHT_SCHEMES:
            raise QuantizationError(f"unknown weight scheme {scheme!r}; choose from: {', '.join(WEIGHT_SCHEMES)}")
        return scheme.startswith("symmetric"), scheme.endswith("channel")


DEFAULT_SETTINGS = QuantizationSettings()


@dataclass(frozen=True)
class CacheInfo:
    """Calibrations reused (``hits``) and computed (``misses``), FP32 models re-exported, architectures seen."""

    hits: int
    misses: int
    reexports: int
    architectures: int


def onnx_scope(module_path: str) -> str:
    """The node-name prefix the TorchScript ONNX exporter gives the nodes of module ``module_path``
    (``blocks.3.conv`` -> ``/blocks.3/conv/``)."""
    parts: list[str] = []
    for name in module_path.split("."):
        if name.isdigit() and parts:
            parts[-1] += "." + name
        else:
            parts.append(name)
    return "/" + "/".join(parts) + "/"


def export_fp32(module: nn.Module, inputs: Sequence[torch.Tensor], path: str) -> None:
    """Export ``module`` (eval mode) to ONNX with the input names of
    :func:`~elasticnas.measure.latency.onnx_input_names`, output ``output`` and a dynamic batch axis, with the
    TorchScript exporter (whose node names follow the modules)."""
    from elasticnas.measure.latency import onnx_input_names

    names = onnx_input_names(len(inputs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                module.eval(), tuple(inputs), path, dynamo=False, input_names=names, output_names=["output"],
                dynamic_axes={n: {0: "batch"} for n in [*names, "output"]}, opset_version=17,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the exporter raises many types
            raise QuantizationError(f"cannot export the sub-network to ONNX: {type(exc).__name__}: {exc}") from None


def layer_nodes(model: Any, modules: Sequence[str]) -> list[str]:
    """Names of the nodes of ONNX ``model`` that belong to any of ``modules`` (module paths)."""
    scopes = tuple(onnx_scope(m) for m in modules)
    return [n.name for n in model.graph.node if n.name.startswith(scopes)] if scopes else []


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence ONNX Runtime's quantization advice (root-logger warnings) and Python warnings."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _reader(feeds: Sequence[Feed]) -> Any:
    """An ONNX Runtime ``CalibrationDataReader`` over ``feeds``."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime ships no type hints
        def __init__(self) -> None:
            self._it = iter(feeds)

        def get_next(self) -> Feed | None:
            return next(self._it, None)

    return Reader()


class ArchCache:
    """Per-architecture FP32 ONNX files and calibration ranges in a private temporary folder."""

    def __init__(self, keep_models: int) -> None:
        self._tmp = tempfile.mkdtemp(prefix="elasticnas-quant-")
        self._finalizer = weakref.finalize(self, _remove_tree, self._tmp)
        self.keep_models = keep_models
        self._models: OrderedDict[str, str] = OrderedDict()
        self.hits = self.misses = self.reexports = 0
        self._ranges: set[str] = set()

    def info(self) -> CacheInfo:
        return CacheInfo(self.hits, self.misses, self.reexports, len(self._ranges))

    def ranges_path(self, arch_id: str) -> str:
        return os.path.join(self._tmp, f"{arch_id}.ranges.json")

    def has_ranges(self, arch_id: str) -> bool:
        return os.path.isfile(self.ranges_path(arch_id))

    def model_path(self, arch_id: str) -> str | None:
        """The FP32 ONNX file of ``arch_id`` if still kept (marked as the most recent)."""
        if arch_id not in self._models:
            return None
        self._models.move_to_end(arch_id)
        return self._models[arch_id]

    def add_model(self, arch_id: str, write: Any) -> str:
        """Write the FP32 ONNX file of ``arch_id`` with ``write(path)``, dropping the oldest beyond ``keep_models``."""
        path = os.path.join(self._tmp, f"{arch_id}.onnx")
        write(path)
        if self.has_ranges(arch_id):
            self.reexports += 1
        self._models[arch_id] = path
        while len(self._models) > self.keep_models:
            _, old = self._models.popitem(last=False)
            with contextlib.suppress(OSError):
                os.remove(old)
        return path

    def note_ranges(self, arch_id: str, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        self._ranges.add(arch_id)


def _remove_tree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def quantize_onnx(
    fp32_path: str,
    ranges_path: str,
    feeds: Sequence[Feed] | None,
    *,
    include: Sequence[str],
    excluded: Sequence[str],
    int4_nodes: Sequence[str],
    settings: QuantizationSettings,
    scheme: str | None,
) -> bytes:
    """The QDQ model of the FP32 ONNX file ``fp32_path``: the nodes ``include`` INT8, the ``excluded`` nodes
    and every other node FP32, the MatMul nodes ``int4_nodes`` packed to INT4 (MatMulNBits). Activation
    ranges come from ``ranges_path`` when it exists, else from calibrating on ``feeds`` (then written there)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    symmetric, per_channel = settings.weights(scheme)
    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[settings.calibrate_method]
    if include and feeds is None and not os.path.isfile(ranges_path):
        raise QuantizationError("no calibration data and no cached calibration for this architecture")
    out = fp32_path + ".qdq.onnx"
    with _quiet():
        if not include:  # quantize_static reads an empty list as "every node": copy the model unchanged
            shutil.copyfile(fp32_path, out)
        else:
            quantize_static(
                fp32_path, out, None if feeds is None else _reader(feeds), quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                activation_type=QuantType.QUInt8 if settings.activation_type == "uint8" else QuantType.QInt8,
                weight_type=QuantType.QInt8, nodes_to_quantize=list(include),
                nodes_to_exclude=[*excluded, *int4_nodes], calibrate_method=method,
                extra_options={"WeightSymmetric": symmetric}, calibration_cache_path=ranges_path,
            )  # fmt: skip
        if int4_nodes:
            _pack_int4(out, int4_nodes, settings.int4_block_size)
    try:
        with open(out, "rb") as fh:
            return fh.read()
    finally:
        os.remove(out)


def _pack_int4(path: str, nodes: Sequence[str], block_size: int) -> None:
    """Replace the MatMul nodes ``nodes`` of the ONNX file ``path`` by 4-bit weight-only MatMulNBits, in place."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    model = onnx.load(path)
    matmuls = {n.name for n in model.graph.node if n.op_type == "MatMul"}
    missing = [n for n in nodes if n not in matmuls]
    if missing:
        raise QuantizationError(f"int4 needs MatMul nodes with constant weights; {missing[0]!r} is not one")
    quantizer = MatMulNBitsQuantizer(
        model, bits=4, block_size=block_size, is_symmetric=True, nodes_to_include=list(nodes)
    )
    quantizer.process()
    onnx.save(quantizer.model.model, path)


def model_feeds(batches: Sequence[Sequence[torch.Tensor]]) -> list[Feed]:
    """ONNX Runtime feeds (:func:`~elasticnas.measure.latency.onnx_input_names`) of batches of model inputs."""
    from elasticnas.measure.latency import onnx_input_names

    return [{n: x.detach().cpu().numpy() for n, x in zip(onnx_input_names(len(b)), b, strict=True)} for b in batches]


def _session(model: bytes) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


class OnnxSubnet(nn.Module):
    """A sub-network held as an ONNX model (QDQ where quantized) and run by ONNX Runtime on the CPU.

    ``forward(*inputs)`` returns the first output as a tensor; :meth:`save_onnx` writes the model,
    which the ``onnxruntime`` latency runtime and the ``qdq`` export use as it is. ``policy``:
    the precision of each layer of the super-network that runs in it. It has no parameters.
    """

    def __init__(self, model: bytes, policy: Mapping[str, str]) -> None:
        super().__init__()
        self.policy = dict(policy)
        self._model = model
        self._session: Any = None

    @property
    def onnx_model(self) -> bytes:
        """The serialized ONNX model."""
        return self._model

    def replace_model(self, model: bytes) -> None:
        """Run ``model`` from now on (a re-quantization of the same sub-network)."""
        self._model, self._session = model, None

    def save_onnx(self, path: str | os.PathLike[str]) -> None:
        """Write the ONNX model to ``path``."""
        with open(path, "wb") as fh:
            fh.write(self._model)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        from elasticnas.measure.latency import onnx_feed

        if self._session is None:
            self._session = _session(self._model)
        out = self._session.run(None, onnx_feed(self._session, tuple(inputs)))[0]
        return torch.from_numpy(np.ascontiguousarray(out))

    def __deepcopy__(self, memo: dict[int, Any]) -> OnnxSubnet:
        twin = OnnxSubnet(self._model, copy.deepcopy(self.policy, memo))
        return twin.train(self.training)
