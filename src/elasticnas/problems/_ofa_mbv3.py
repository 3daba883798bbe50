"""OFA-MobileNetV3 (w1.2) on ImageNet: accuracy from the OFA accuracy predictor, latency from the Note10 table.

The accuracy predictor is the OFA authors' MLP (128-400-400-400-1, MIT),
evaluated with numpy. Its input encoding (from the OFA repository): for each
active block ``i`` one-hot kernel size at ``3*i + {3:0,5:1,7:2}[ks]`` and
expand ratio at ``60 + 3*i + {3:0,4:1,6:2}[e]``; then one-hot resolution at
``120 + (r - 112) // 16``. It reproduces the ``top1_ofa_predictor_w12``
column of DyNAS-T's measured table, and the lookup-table sum its
``lat_note10_lut_w12_ms`` column, to 1e-4.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from elasticnas.measure.ofa_lut import OFALookupTable
from elasticnas.space import Choice, Config, SearchSpace
from elasticnas.supernets._mbv3_space import MobileNetV3Space

if TYPE_CHECKING:
    from elasticnas.problems.base import Problem

KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
DEPTHS = (2, 3, 4)
RESOLUTIONS = (160, 176, 192, 208, 224)
N_BLOCKS = 20

# Hypervolume reference (accuracy_top1 %, latency ms): the smallest network's accuracy (75.31 %, r=160)
# and the largest network's latency (92.40 ms, r=224), rounded outward.
REFERENCE_POINT = (75.0, 95.0)

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "ofa_mbv3"


class OFAMobileNetV3Space(MobileNetV3Space):
    """The OFA-MobileNetV3 space: 20 kernel sizes, 20 expand ratios, 5 stage depths, a resolution.

    Blocks skipped by their stage's depth do not exist in the network: their
    kernel size and expand ratio are inactive genes (as in every :class:`MobileNetV3Space`), so
    they are set to the smallest value (configurations differing only there
    share one config id) and their one-hot columns are zero, as in the OFA
    accuracy predictor's encoding.
    """

    def config_id(self, config: Mapping[str, Any]) -> str:
        """The hash of the validated configuration (:meth:`SearchSpace.config_id`: the ids the problems' studies
        have always had; the super-networks' space hashes :meth:`network_form` instead)."""
        return SearchSpace.config_id(self, config)


def ofa_mbv3_space(resolutions: tuple[int, ...] = RESOLUTIONS) -> OFAMobileNetV3Space:
    return OFAMobileNetV3Space(
        {
            "ks": Choice(KERNELS, size=N_BLOCKS),
            "e": Choice(EXPANDS, size=N_BLOCKS),
            "d": Choice(DEPTHS, size=5),
            "r": Choice(resolutions),
        }
    )


class OFAAccuracyPredictor:
    """The OFA authors' ImageNet top-1 predictor for the w1.2 super-network (numpy)."""

    def __init__(self, path: str | Path | None = None) -> None:
        z = np.load(Path(path) if path is not None else DATA_DIR / "acc_predictor_mbv3_w12.npz")
        self._layers = [
            (z[f"{i}_weight"].T.astype(np.float64), z[f"{i}_bias"].astype(np.float64)) for i in (0, 2, 4, 6)
        ]

    @staticmethod
    def features(space: OFAMobileNetV3Space, genes: np.ndarray) -> np.ndarray:
        """The predictor's 128 inputs of gene rows of ``space``: its one-hot kernel size and expand ratio
        columns (zero for skipped blocks), then the resolution one-hot at ``120 + (r - 112) // 16``."""
        G = np.atleast_2d(genes)
        X = np.zeros((len(G), 128))
        X[:, : 6 * N_BLOCKS] = space.encode_genes(G, "onehot")[:, : 6 * N_BLOCKS]
        r = np.array(space.choices["r"].values)[G[:, -1]]
        X[np.arange(len(G)), 120 + (r - 112) // 16] = 1.0
        return X

    def predict_features(self, X: np.ndarray) -> np.ndarray:
        h = np.asarray(X, dtype=np.float64)
        for W, b in self._layers[:-1]:
            h = np.maximum(h @ W + b, 0.0)
        W, b = self._layers[-1]
        out: np.ndarray = (h @ W + b)[:, 0]
        return out

    def top1(self, space: OFAMobileNetV3Space, genes: np.ndarray) -> np.ndarray:
        """Top-1 accuracy in percent of gene rows of ``space``."""
        return 100.0 * self.predict_features(self.features(space, genes))


class OFAMobileNetV3Oracle:
    """Vectorised accuracy and latency on gene matrices of :func:`ofa_mbv3_space` (for reference fronts)."""

    def __init__(self, space: OFAMobileNetV3Space, lut: OFALookupTable, predictor: OFAAccuracyPredictor) -> None:
        self.space = space
        self.predictor = predictor
        res = space.choices["r"].values
        # base[r], block[r, i, ks, e]
        self._base = np.zeros(len(res))
        self._block = np.zeros((len(res), N_BLOCKS, len(KERNELS), len(EXPANDS)))
        for ri, r in enumerate(res):
            smallest = {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "r": r}
            total = lut.latency_ms(smallest)
            keys = lut.layer_keys(smallest)
            # base = total minus the 10 blocks of a depth-2 network
            block_keys = keys[2:-4]
            table = lut._tables[int(r)]  # same package family, read-only
            self._base[ri] = total - sum(table[k] for k in block_keys)
            for ki, k in enumerate(KERNELS):
                for ei, e in enumerate(EXPANDS):
                    cfg = {"ks": [k] * 20, "e": [e] * 20, "d": [4] * 5, "r": r}
                    for i, key in enumerate(lut.layer_keys(cfg)[2:-4]):
                        self._block[ri, i, ki, ei] = table[key]

    def latency(self, G: np.ndarray) -> np.ndarray:
        G = np.atleast_2d(G)
        ks, e, r = G[:, :N_BLOCKS], G[:, N_BLOCKS : 2 * N_BLOCKS], G[:, -1]
        per_block = self._block[r[:, None], np.arange(N_BLOCKS)[None, :], ks, e]
        latency: np.ndarray = self._base[r] + (per_block * self.space.active_block_mask(G)).sum(axis=1)
        return latency

    def accuracy(self, G: np.ndarray) -> np.ndarray:
        return self.predictor.top1(self.space, G)


@functools.lru_cache(maxsize=1)
def note10_lut() -> OFALookupTable:
    return OFALookupTable.load(DATA_DIR / "note10_lut")


@functools.lru_cache(maxsize=1)
def accuracy_predictor() -> OFAAccuracyPredictor:
    return OFAAccuracyPredictor()


def reference_front_note10() -> np.ndarray:
    """The stored reference front: columns accuracy_top1 (%), latency_note10_ms."""
    import csv

    with open(DATA_DIR / "note10_reference_front.csv", newline="") as fh:
        rows = [(float(r["accuracy_top1"]), float(r["latency_note10_ms"])) for r in csv.DictReader(fh)]
    front = np.array(rows).reshape(-1, 2)
    from elasticnas.pareto import non_dominated_mask

    nd: np.ndarray = front[non_dominated_mask(front * np.array([-1.0, 1.0]))]  # rounding in the file can tie two rows
    return nd


def make_ofa_mbv3_note10() -> Problem:
    from elasticnas.problems.base import Problem

    space = ofa_mbv3_space()
    lut = note10_lut()
    predictor = accuracy_predictor()

    def evaluate(config: Config) -> dict[str, float]:
        return {"accuracy_top1": float(predictor.top1(space, space.to_genes(config))[0])}

    def latency_note10_ms(config: Config) -> float:
        return lut.latency_ms(config)

    return Problem(
        name="ofa_mbv3_note10",
        space=space,
        objectives={"accuracy_top1": "maximize", "latency_note10_ms": "minimize"},
        evaluate=evaluate,
        cheap_metrics={"latency_note10_ms": latency_note10_ms},
        reference_point=REFERENCE_POINT,
        description=(
            "OFA-MobileNetV3 w1.2, r in {160..224}: ImageNet top-1 (%) from the OFA accuracy predictor "
            "(expensive), Samsung Note10 latency (ms) from the OFA lookup table (cheap)"
        ),
        reference_front_fn=reference_front_note10,
    )
