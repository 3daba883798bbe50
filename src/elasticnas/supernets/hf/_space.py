"""The search space of an elastic transformer: depth, heads, FFN width (per block or shared) and hidden size."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from elasticnas.space import Choice, SearchSpace

NAMES = ("depth", "heads", "ffn", "hidden")


class TransformerSpace(SearchSpace):
    """Choices ``depth``, ``heads``, ``ffn`` and ``hidden``; ``heads`` and ``ffn`` are lists of one
    value per block (``per_layer``) or single values shared by all blocks.

    A network of depth ``d`` runs the blocks ``layer_order[:d]`` (the ``d`` most important, in
    their original order); the ``heads`` and ``ffn`` genes of the other blocks are inactive.
    """

    def __init__(self, choices: Mapping[str, Choice], layer_order: Sequence[int]) -> None:
        super().__init__(choices)
        if tuple(self.choices) != NAMES:
            raise ValueError(f"a TransformerSpace needs choices {', '.join(NAMES)} (in this order), got {self.names}")
        self.layer_order = tuple(int(i) for i in layer_order)
        n = len(self.layer_order)
        if sorted(self.layer_order) != list(range(n)):
            raise ValueError(f"layer_order must be a permutation of range({n}), got {list(self.layer_order)}")
        if max(int(v) for v in self.choices["depth"].values) > n:
            raise ValueError(f"depth choices exceed the {n} layers")
        for name in ("heads", "ffn"):
            if self.choices[name].size not in (None, n):
                raise ValueError(f"{name} takes one value per layer ({n}) or one shared value")
        self.per_layer = self.choices["heads"].size is not None or self.choices["ffn"].size is not None

    def active_layers(self, config: Mapping[str, Any]) -> tuple[int, ...]:
        """The blocks a (valid) configuration runs, in order."""
        return tuple(sorted(self.layer_order[: int(config["depth"])]))

    def inactive_mask(self, genes: np.ndarray) -> np.ndarray:
        G = np.asarray(genes, dtype=np.int64).reshape(-1, self.n_genes)
        mask = np.zeros(G.shape, dtype=bool)
        depths = np.asarray(self.choices["depth"].values, dtype=np.int64)[G[:, self._offsets[0]]]
        rank = np.empty(len(self.layer_order), dtype=np.int64)
        rank[list(self.layer_order)] = np.arange(len(self.layer_order))
        dropped = rank[None, :] >= depths[:, None]  # (n, layers)
        for k, name in enumerate(NAMES):
            if name in ("heads", "ffn") and self.choices[name].size is not None:
                mask[:, self._offsets[k] : self._offsets[k] + dropped.shape[1]] = dropped
        return mask.reshape(np.shape(genes))

    def __eq__(self, other: object) -> bool:
        return super().__eq__(other) and self.layer_order == getattr(other, "layer_order", None)

    def __hash__(self) -> int:
        return hash((super().__hash__(), self.layer_order))

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "layer_order": list(self.layer_order)}

    @classmethod
    def _from_json(cls, data: Mapping[str, Any]) -> SearchSpace:
        return cls({n: Choice(c["values"], size=c["size"]) for n, c in data["choices"].items()}, data["layer_order"])
