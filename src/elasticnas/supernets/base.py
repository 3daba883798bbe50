from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from elasticnas.errors import CheckpointError
from elasticnas.space import Config, SearchSpace

if TYPE_CHECKING:
    from elasticnas.measure.accuracy import Calibration


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a sub-network, for per-layer latency lookup tables.

    ``key`` names the layer's type, input shape and hyper-parameters (OFA's lookup
    table spelling, e.g. ``expanded_conv-input:112x112x24-output:56x56x32-expand:72-
    kernel:3-stride:2-idskip:0-se:0-hs:0``); equal keys denote interchangeable layers.
    ``input_shape`` is the shape of one input, without the batch axis ((C, H, W) for
    images); ``build()`` returns a standalone module of that layer (weights arbitrary).
    A sub-network is the chain of its layers.
    """

    key: str
    input_shape: tuple[int, ...]
    build: Callable[[], nn.Module]


IN_MEMORY_WEIGHTS = "<state dict>"  # Supernet.weights_source of weights given as a mapping: not reloadable


class Supernet(nn.Module, ABC):
    """An elastic super-network of any model family: any configuration of :attr:`search_space` is a sub-network.

    Contract (checked by :mod:`elasticnas.testing.supernets`):

    * :meth:`activate` switches the module in place to run a sub-network with shared
      weights (``forward(*example_inputs(config, n))`` then runs it);
    * :meth:`extract` returns a standalone ``nn.Module`` holding only the active
      weights, equal in eval mode to the activated super-network;
    * :meth:`example_inputs` describes the inputs: images, token ids and an attention
      mask, or anything else, as a tuple of batched tensors;
    * :meth:`arch` describes the sub-network as JSON, which the builder registered for
      :attr:`family` (:func:`~elasticnas.supernets.register_subnet_builder`) turns back
      into a standalone module (``pt`` export);
    * :meth:`costs` counts MACs and parameters analytically (for one input of
      :meth:`example_inputs`); :meth:`layer_specs` is optional (latency lookup tables).

    The public methods validate the configuration; subclasses implement the
    underscore hooks and receive validated (canonical) configurations.
    :class:`ImageSupernet` is the base of image families.
    """

    name: str = ""
    # the registered sub-network builder that rebuilds an exported architecture ("" : none, no pt export)
    family: str = ""
    # where the weights came from: None for create_supernet's default, "random", a checkpoint path, IN_MEMORY_WEIGHTS
    weights_source: str | None = None
    search_space: SearchSpace

    def __init__(self) -> None:
        super().__init__()
        self._active: Config | None = None

    # -- hooks ---------------------------------------------------------------
    @abstractmethod
    def _activate(self, config: Config) -> None:
        """Make the forward pass run sub-network ``config``."""

    @abstractmethod
    def _extract(self, config: Config) -> nn.Module:
        """A standalone copy of sub-network ``config`` with its weights."""

    @abstractmethod
    def _arch(self, config: Config) -> dict[str, Any]:
        """The JSON architecture of sub-network ``config``."""

    @abstractmethod
    def _costs(self, config: Config) -> dict[str, int]:
        """``{"macs", "params"}`` of sub-network ``config`` on one input of :meth:`example_inputs`."""

    def _layer_specs(self, config: Config) -> list[LayerSpec]:
        """The layers of sub-network ``config``; families without lookup-table support keep this default."""
        raise NotImplementedError(f"super-network {self.name or type(self).__name__!r} does not list its layers")

    @abstractmethod
    def example_inputs(
        self, config: Mapping[str, Any], batch_size: int = 1, *, seed: int = 0
    ) -> tuple[torch.Tensor, ...]:
        """Seeded inputs of a batch of ``batch_size`` for sub-network ``config``: ``module(*inputs)`` runs it."""

    def _calibrate(self, module: nn.Module, config: Config, calibration: Calibration) -> int:
        """Re-estimate the BatchNorm statistics of ``module`` (sub-network ``config``); returns the batches used."""
        return calibration.apply(module, resolution=None)

    def _convert_state_dict(self, state_dict: Mapping[str, Any]) -> dict[str, Any]:
        """Hook: rename keys of foreign checkpoints (e.g. older OFA releases) to this module's names."""
        return dict(state_dict)

    # -- public API -------------------------------------------------------------
    @property
    def active_config(self) -> Config:
        """The configuration the forward pass currently runs."""
        if self._active is None:
            self.activate(self.max_config())
        assert self._active is not None
        return self._active

    def activate(self, config: Mapping[str, Any]) -> None:
        """Make the forward pass run sub-network ``config`` (weights shared, nothing copied)."""
        cfg = self.search_space.validate(config)
        self._activate(cfg)
        self._active = cfg

    def extract(self, config: Mapping[str, Any], calibration: Calibration | None = None) -> nn.Module:
        """A standalone copy of sub-network ``config`` holding only its weights, in this module's train/eval mode.

        With ``calibration`` its BatchNorm statistics are re-estimated exactly as the accuracy
        metric does before it evaluates (the copy is then in eval mode): the network that was
        measured. Without, it keeps the super-network's running statistics.
        The copies run on one torch thread (restored afterwards): they are many small
        operations, which extra threads only slow down, badly so on a busy machine.
        """
        cfg = self.search_space.validate(config)
        threads = torch.get_num_threads()
        if threads > 1:
            torch.set_num_threads(1)
        try:
            net = self._extract(cfg)
        finally:
            if threads > 1:
                torch.set_num_threads(threads)
        net.train(self.training)
        if calibration is not None:
            self._calibrate(net, cfg, calibration)
        return net

    def calibrate(self, module: nn.Module, config: Mapping[str, Any], calibration: Calibration) -> int:
        """Re-estimate the BatchNorm statistics of ``module``, an extracted sub-network ``config``, as
        :meth:`extract` does with ``calibration`` (then in eval mode); returns the batches used."""
        return self._calibrate(module, self.search_space.validate(config), calibration)

    def arch(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The architecture of sub-network ``config`` as JSON (OFA ``net.config`` format for the OFA families)."""
        return self._arch(self.search_space.validate(config))

    def costs(self, config: Mapping[str, Any]) -> dict[str, int]:
        """Exact ``{"macs": ..., "params": ...}`` of sub-network ``config``, counted analytically."""
        return self._costs(self.search_space.validate(config))

    def layer_specs(self, config: Mapping[str, Any]) -> list[LayerSpec]:
        """The layers of sub-network ``config`` in order, keyed for latency lookup tables.

        Raises ``NotImplementedError`` for a family that does not list its layers.
        """
        return self._layer_specs(self.search_space.validate(config))

    def recipe(self) -> dict[str, Any]:
        """How to build this super-network again, as JSON (:func:`~elasticnas.supernets.rebuild_supernet`
        reads it; a study records it with its measurement): the registered ``supernet`` name, the
        ``weights`` source and the factory's ``options``. A wrapper (quantization, adapters) gives its
        registered ``wrapper`` name, its ``options``, its own ``weights`` (None: as built) and its ``base``'s recipe.
        """
        return {"supernet": self.name, "weights": self.weights_source, "options": {}}

    def max_config(self) -> Config:
        """The largest sub-network: the last (largest) value of every choice."""
        return self.search_space.from_genes(self.search_space.cardinalities - 1)

    def min_config(self) -> Config:
        """The smallest sub-network: the first (smallest) value of every choice."""
        return self.search_space.from_genes(self.search_space.cardinalities * 0)

    def load_weights(self, weights: str | os.PathLike[str] | Mapping[str, Any]) -> None:
        """Load a checkpoint strictly: every key and shape must match this super-network.

        ``weights`` is a path (a ``.safetensors`` file, else read with
        ``torch.load(..., weights_only=True)``) or a state dict; a ``{"state_dict": ...}`` wrapper is unpacked. Raises
        :class:`CheckpointError` naming the first mismatching keys and shapes.
        """
        source = "state dict"
        if isinstance(weights, str | os.PathLike):
            source = os.fspath(weights)
            try:
                loaded = _read_state_dict(source)
            except FileNotFoundError:
                raise CheckpointError(f"checkpoint {source!r} does not exist") from None
            except Exception as exc:  # noqa: BLE001 - corrupt / unsafe pickles have many types
                raise _unreadable_checkpoint(source, exc) from None
        else:
            loaded = weights
        if isinstance(loaded, Mapping) and "state_dict" in loaded and isinstance(loaded["state_dict"], Mapping):
            loaded = loaded["state_dict"]
        if not isinstance(loaded, Mapping) or not all(isinstance(k, str) for k in loaded):
            raise CheckpointError(f"checkpoint {source!r} is not a state dict (a mapping of names to tensors)")
        state = self._convert_state_dict(loaded)
        own = self.state_dict()
        optional = {k for k in own if k.endswith("num_batches_tracked")}
        missing = [k for k in own if k not in state and k not in optional]
        unexpected = [k for k in state if k not in own]
        mismatched = [
            k
            for k in own
            if k in state and (not torch.is_tensor(state[k]) or tuple(state[k].shape) != tuple(own[k].shape))
        ]
        if missing or unexpected or mismatched:
            parts = []

            def shape(t: Any) -> str:
                return str(tuple(t.shape)) if torch.is_tensor(t) else type(t).__name__

            if mismatched:
                parts.append(
                    "shape mismatches: "
                    + ", ".join(f"{k} checkpoint {shape(state[k])} vs model {shape(own[k])}" for k in mismatched[:5])
                )
            if missing:
                parts.append("missing keys: " + ", ".join(f"{k} {shape(own[k])}" for k in missing[:5]))
            if unexpected:
                parts.append("unexpected keys: " + ", ".join(f"{k} {shape(state[k])}" for k in unexpected[:5]))
            counts = f"({len(mismatched)} mismatched, {len(missing)} missing, {len(unexpected)} unexpected)"
            raise CheckpointError(
                f"checkpoint {source!r} does not fit super-network {self.name or type(self).__name__!r} {counts}; "
                + "; ".join(parts)
            )
        self.load_state_dict(state, strict=False)
        self._active = None
        self.weights_source = os.path.abspath(source) if isinstance(weights, str | os.PathLike) else IN_MEMORY_WEIGHTS


class ImageSupernet(Supernet):
    """A super-network of images: one input of shape (N, C, H, W) with H = W = :meth:`resolution`.

    Families implement :meth:`resolution`, :attr:`in_channels` and :meth:`_costs_at` (and
    optionally :meth:`_layer_specs_at`); costs, layer specs and example inputs can then be
    asked for at another ``resolution`` than the configuration's own. The image-specific
    paths (accuracy on image data, BatchNorm calibration resizing, per-layer lookup tables)
    use :meth:`input_shape`.
    """

    @abstractmethod
    def resolution(self, config: Mapping[str, Any]) -> int:
        """Input height (= width) of sub-network ``config``."""

    @property
    @abstractmethod
    def in_channels(self) -> int:
        """Channels of the input images."""

    @abstractmethod
    def _costs_at(self, config: Config, resolution: int) -> dict[str, int]:
        """``{"macs", "params"}`` of sub-network ``config`` on one ``resolution`` x ``resolution`` image."""

    def _layer_specs_at(self, config: Config, resolution: int) -> list[LayerSpec]:
        """The layers of sub-network ``config`` at ``resolution``; this default lists none."""
        return super()._layer_specs(config)

    def _costs(self, config: Config) -> dict[str, int]:
        return self._costs_at(config, self.resolution(config))

    def _layer_specs(self, config: Config) -> list[LayerSpec]:
        return self._layer_specs_at(config, self.resolution(config))

    def _calibrate(self, module: nn.Module, config: Config, calibration: Calibration) -> int:
        return calibration.apply(module, resolution=self.resolution(config), channels=self.in_channels)

    def _size(self, config: Config, resolution: int | None) -> int:
        return self.resolution(config) if resolution is None else int(resolution)

    def costs(self, config: Mapping[str, Any], *, resolution: int | None = None) -> dict[str, int]:
        """Exact ``{"macs": ..., "params": ...}`` of sub-network ``config``, counted analytically.

        ``resolution`` overrides the configuration's own (for example to cost a network
        at a size outside the search space).
        """
        cfg = self.search_space.validate(config)
        return self._costs_at(cfg, self._size(cfg, resolution))

    def layer_specs(self, config: Mapping[str, Any], *, resolution: int | None = None) -> list[LayerSpec]:
        """The layers of sub-network ``config`` in order, keyed for latency lookup tables (at ``resolution``)."""
        cfg = self.search_space.validate(config)
        return self._layer_specs_at(cfg, self._size(cfg, resolution))

    def input_shape(self, config: Mapping[str, Any]) -> tuple[int, int, int]:
        """(channels, height, width) of one input image of sub-network ``config``."""
        r = self.resolution(self.search_space.validate(config))
        return (self.in_channels, r, r)

    def example_inputs(
        self, config: Mapping[str, Any], batch_size: int = 1, *, seed: int = 0, resolution: int | None = None
    ) -> tuple[torch.Tensor, ...]:
        """One seeded standard-normal image batch ``(batch_size, C, r, r)``; ``resolution`` overrides ``r``."""
        cfg = self.search_space.validate(config)
        r = self._size(cfg, resolution)
        gen = torch.Generator().manual_seed(seed)
        return (torch.randn((batch_size, self.in_channels, r, r), generator=gen),)


def _read_state_dict(path: str) -> Any:
    """The tensors of a ``.safetensors`` file, or a ``torch.load(..., weights_only=True)`` checkpoint."""
    if path.endswith(".safetensors"):
        if not os.path.isfile(path):
            raise FileNotFoundError(path)
        from safetensors.torch import load_file

        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TORCH_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation", "In PyTorch 2.6")


def _unreadable_checkpoint(source: str, exc: Exception) -> CheckpointError:
    """One clear line for a checkpoint ``torch.load(weights_only=True)`` refused or could not parse."""
    lines = [line.strip() for line in _ANSI.sub("", str(exc)).splitlines() if line.strip()]
    unsafe = next((m for line in lines if (m := re.search(r"Unsupported global: (GLOBAL \S+)", line))), None)
    if unsafe is not None:
        what = unsafe.group(1)
        return CheckpointError(
            f"checkpoint {source!r} was refused: it holds Python objects other than tensors ({what}), which could "
            "run code; only plain state dicts are loaded (torch.load weights_only=True)"
        )
    detail = next((line for line in lines if not line.startswith(_TORCH_BOILERPLATE)), type(exc).__name__)
    return CheckpointError(
        f"checkpoint {source!r} is not a readable PyTorch state dict (corrupt, truncated, another format, "
        f"or a pickle refused by weights_only=True): {detail}"
    )
