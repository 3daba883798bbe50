"""The MobileNetV3 search space (torch-free): shared by the elastic super-networks and the OFA benchmark problems."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from elasticnas.space import Choice, Config, SearchSpace


class MobileNetV3Space(SearchSpace):
    """Kernel size ``ks`` and expand ratio ``e`` per block, depth ``d`` per stage, resolution ``r``.

    A stage of depth ``d`` runs its first ``d`` blocks; ``ks`` and ``e`` of the other
    blocks do not change the network: they are inactive genes (:meth:`inactive_mask`),
    so validation sets them to their first value and configurations of one network
    (OFA and DyNAS-T write any value there) share one config id and one gene row.
    :meth:`network_form` writes those values as ``None``.
    """

    def __init__(self, choices: Mapping[str, Choice]) -> None:
        super().__init__(choices)
        if list(self.choices) != ["ks", "e", "d", "r"]:
            raise ValueError(f"a MobileNetV3Space needs choices ks, e, d, r (in this order), got {self.names}")
        ks, e, d = self.choices["ks"], self.choices["e"], self.choices["d"]
        if d.size is None or ks.size is None or e.size != ks.size or self.choices["r"].size is not None:
            raise ValueError("ks and e must be lists of equal size, d a list and r a scalar")
        max_depth = max(int(v) for v in d.values)
        if ks.size != d.size * max_depth:
            raise ValueError(
                f"ks has {ks.size} blocks but {d.size} stages x depth {max_depth} need {d.size * max_depth}"
            )
        self.n_stages, self.max_depth = d.size, max_depth
        self.n_blocks = d.size * max_depth

    def active_blocks(self, config: Mapping[str, Any]) -> list[bool]:
        """Whether each block runs, given the stage depths ``config["d"]``."""
        return [b < config["d"][s] for s in range(self.n_stages) for b in range(self.max_depth)]

    def active_block_mask(self, genes: np.ndarray) -> np.ndarray:
        """Whether each block runs, for every row of the gene matrix ``genes``: (n, blocks) booleans."""
        G = np.asarray(genes, dtype=np.int64).reshape(-1, self.n_genes)
        depth_genes = G[:, 2 * self.n_blocks : 2 * self.n_blocks + self.n_stages]
        depth = np.asarray(self.choices["d"].values, dtype=np.int64)[depth_genes]
        active: np.ndarray = np.arange(self.max_depth)[None, None, :] < depth[:, :, None]
        return active.reshape(len(G), self.n_blocks)

    def inactive_mask(self, genes: np.ndarray) -> np.ndarray:
        """``ks`` and ``e`` of every block its stage's depth skips."""
        skipped = ~self.active_block_mask(genes)
        mask = np.zeros((len(skipped), self.n_genes), dtype=bool)
        mask[:, : self.n_blocks] = mask[:, self.n_blocks : 2 * self.n_blocks] = skipped
        return mask.reshape(np.shape(genes))

    def network_form(self, config: Mapping[str, Any]) -> Config:
        """``config`` validated, with ``ks`` and ``e`` of skipped blocks set to ``None``."""
        cfg = self.validate(config)
        active = self.active_blocks(cfg)
        return {
            "ks": [k if a else None for k, a in zip(cfg["ks"], active, strict=True)],
            "e": [v if a else None for v, a in zip(cfg["e"], active, strict=True)],
            "d": list(cfg["d"]),
            "r": cfg["r"],
        }

    def config_id(self, config: Mapping[str, Any]) -> str:
        """A stable id of the network (the hash of :meth:`network_form`, as before skipped blocks' genes were
        inactive, so that studies written then keep their ids)."""
        text = json.dumps(self.network_form(config), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]
