"""The precision space: one precision gene per quantizable layer of a super-network, and the weight scheme."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from elasticnas.errors import InvalidConfigError
from elasticnas.space import Choice, ProductSpace, SearchSpace

Precision = Literal["fp32", "int8", "int4"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "int8", "int4")
BITS: Mapping[str, int] = {"fp32": 32, "int8": 8, "int4": 4}
LayerKind = Literal["conv", "linear"]
WEIGHT_SCHEMES = ("symmetric-channel", "symmetric-tensor", "asymmetric-channel", "asymmetric-tensor")
PRECISION_KEY = "precision"
SCHEME_KEY = "weight_scheme"


@dataclass(frozen=True)
class QuantLayer:
    """A quantizable layer of a super-network (a gene of the precision space).

    ``active_if`` = ``(key, position, threshold)``: the layer runs in an architecture whose value of
    ``key`` (at ``position`` for a list choice) exceeds ``threshold``; ``None``: it always runs.
    """

    name: str
    kind: LayerKind
    active_if: tuple[str, int | None, int] | None = None

    def is_active(self, arch: Mapping[str, Any]) -> bool:
        """Whether the layer runs in (valid) architecture configuration ``arch``."""
        if self.active_if is None:
            return True
        key, position, threshold = self.active_if
        value = arch[key] if position is None else arch[key][position]
        return bool(value > threshold)


class PrecisionSpace(SearchSpace):
    """Choice ``precision``: one value per layer of :attr:`layers` (``fp32``, ``int8``, and ``int4``
    weight-only where allowed), and optionally ``weight_scheme`` (symmetric / asymmetric, per-channel /
    per-tensor INT8 weights).

    In a product with the architecture space the layers list refers to (``arch * precision``), the
    precision genes of layers the architecture skips are inactive (:meth:`inactive_mask_within`),
    and so is the weight scheme of a policy without INT8 layer.
    """

    def __init__(
        self,
        layers: Sequence[QuantLayer],
        precisions: Sequence[str] = ("fp32", "int8"),
        *,
        weight_schemes: bool = False,
    ) -> None:
        unknown = [p for p in precisions if p not in PRECISIONS]
        if unknown or not precisions:
            raise ValueError(f"unknown precision {unknown[:1]}; choose from: {', '.join(PRECISIONS)}")
        if "int4" in precisions and any(layer.kind != "linear" for layer in layers):
            raise ValueError("int4 (weight-only, MatMulNBits) is for linear layers only")
        choices = {PRECISION_KEY: Choice(list(precisions), size=len(layers))}
        if weight_schemes:
            choices[SCHEME_KEY] = Choice(list(WEIGHT_SCHEMES))
        super().__init__(choices)
        self.layers: tuple[QuantLayer, ...] = tuple(layers)
        self.precisions: tuple[str, ...] = tuple(precisions)

    def _parse(self, config: Mapping[str, Any]) -> np.ndarray:
        values = config.get(PRECISION_KEY) if isinstance(config, Mapping) else None
        if isinstance(values, list | tuple):  # one clear error naming the layer, before the generic one
            for layer, value in zip(self.layers, values, strict=False):
                if value not in self.precisions:
                    raise InvalidConfigError(
                        f"layer {layer.name!r}: unknown precision {value!r}; allowed: {', '.join(self.precisions)}"
                    )
        return super()._parse(config)

    def policy(self, config: Mapping[str, Any]) -> dict[str, str]:
        """``{layer name: precision}`` of (valid) configuration ``config``."""
        return dict(zip((layer.name for layer in self.layers), config[PRECISION_KEY], strict=True))

    def inactive_mask(self, genes: np.ndarray) -> np.ndarray:
        G = np.asarray(genes, dtype=np.int64).reshape(-1, self.n_genes)
        mask = np.zeros(G.shape, dtype=bool)
        if SCHEME_KEY in self.choices:
            int8 = self.precisions.index("int8") if "int8" in self.precisions else -1
            mask[:, -1] = ~(G[:, : len(self.layers)] == int8).any(axis=1)
        return mask.reshape(np.shape(genes))

    def inactive_mask_within(self, genes: np.ndarray, product: ProductSpace, product_genes: np.ndarray) -> np.ndarray:
        """Precision genes of layers the architecture part skips are inactive (then the scheme as
        :meth:`inactive_mask`, over the active layers)."""
        G = np.array(genes, dtype=np.int64, ndmin=2)
        skipped = np.zeros((G.shape[0], len(self.layers)), dtype=bool)
        offsets = _offsets(product)
        for j, layer in enumerate(self.layers):
            if layer.active_if is None:
                continue
            key, position, threshold = layer.active_if
            if key not in product.choices:
                raise ValueError(f"layer {layer.name!r} depends on choice {key!r}, which the product lacks")
            values = np.asarray(product.choices[key].values)
            column = product_genes[:, offsets[key] + (position or 0)]
            skipped[:, j] = ~(values[column] > threshold)
        masked = G.copy()
        masked[:, : len(self.layers)][skipped] = 0  # fp32 where skipped, for the scheme's test
        mask = self.inactive_mask(masked)
        mask[:, : len(self.layers)] |= skipped
        return mask.reshape(np.shape(genes))

    def __eq__(self, other: object) -> bool:
        return super().__eq__(other) and self.layers == getattr(other, "layers", None)

    def __hash__(self) -> int:
        return hash((super().__hash__(), self.layers))

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
            "layers": [
                {"name": q.name, "kind": q.kind, "active_if": None if q.active_if is None else list(q.active_if)}
                for q in self.layers
            ],
        }

    @classmethod
    def _from_json(cls, data: Mapping[str, Any]) -> SearchSpace:
        layers = [
            QuantLayer(q["name"], q["kind"], None if q["active_if"] is None else tuple(q["active_if"]))
            for q in data["layers"]
        ]
        return cls(layers, data["choices"][PRECISION_KEY]["values"], weight_schemes=SCHEME_KEY in data["choices"])


def _offsets(space: SearchSpace) -> dict[str, int]:
    """The first gene of each choice of ``space``."""
    out, offset = {}, 0
    for name, choice in space.choices.items():
        out[name] = offset
        offset += choice.length
    return out
