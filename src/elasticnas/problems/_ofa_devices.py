"""OFA-MobileNetV3 (w1.2) for 13 hardware targets: one accuracy, a latency per target.

Accuracy is the OFA authors' w1.2 top-1 predictor (:class:`~elasticnas.problems._ofa_mbv3.OFAAccuracyPredictor`,
percent, as in ``ofa_mbv3_note10``), the expensive evaluation. Latency is known on 13 targets:

- ``note10``: the Samsung Note10 lookup table summed over the layers, exactly as ``ofa_mbv3_note10`` computes it;
- ``rtx2080ti_b1`` ... ``v100_b64``: HELP's measured latency (https://github.com/HayeonLee/HELP, MIT) of 5,000
  w1.2 sub-networks on RTX 2080 Ti, Titan RTX, Titan Xp and V100 at batch 1, 32 and 64
  (``data/ofa_mbv3/help_w12_latency.csv.gz``, built by ``benchmarks/data/make_help_latency_table.py``).

The HELP latencies exist for those 5,000 sub-networks only (r in 128..224, step 4), so the space is *projected*
onto them, as :class:`~elasticnas.problems._hwgpt.HWGPTSpace` projects onto its table: :class:`OFADevicesSpace`
canonicalises every configuration to the nearest table architecture. The distance is a weighted Hamming
distance on the genes after the genes of skipped blocks (beyond a stage's depth, :meth:`inactive_mask`) are set
to their first value, so a configuration's skipped blocks never matter: a differing resolution counts 8
(:data:`RESOLUTION_WEIGHT`), each differing stage depth 4 (:data:`DEPTH_WEIGHT`), each differing kernel size or
expand ratio 1; ties go to the lower table row. (With the resolution at 8, a random configuration keeps its
resolution in about 98 % of projections onto the 1,013 rows and 90 % onto the 5,000; the median distance of a
random configuration to its projection is 20.) A searcher may propose anything; configurations projecting onto
one table architecture share one config id and are evaluated once.

The Note10 lookup table covers r in {160, 176, 192, 208, 224} only (1,013 of the 5,000 rows). A problem with
the ``note10`` target (the default, all 13) is therefore over those 1,013 rows, its space's resolutions the five
of ``ofa_mbv3_note10``; a problem without it is over all 5,000 (25 resolutions). The rows a space projects onto
follow from its resolutions alone, so a space rebuilt from JSON projects as the original did.

    problem = make_ofa_mbv3_devices_problem()                     # 13 targets, 1,013 rows
    gpus = make_ofa_mbv3_devices_problem(["v100_b1", "v100_b64"])  # 2 targets, 5,000 rows
"""

from __future__ import annotations

import csv
import functools
import gzip
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from elasticnas.pareto import non_dominated_mask
from elasticnas.problems._ofa_mbv3 import (
    DATA_DIR,
    N_BLOCKS,
    RESOLUTIONS,
    OFAMobileNetV3Space,
    accuracy_predictor,
    note10_lut,
    ofa_mbv3_space,
)
from elasticnas.problems._tables import NearestRows, checked_targets, latency_objective
from elasticnas.space import Choice, Config, SearchSpace

if TYPE_CHECKING:
    from elasticnas.problems.base import Problem
    from elasticnas.records import Direction

TABLE_FILE = DATA_DIR / "help_w12_latency.csv.gz"
# HELP's column of every GPU target (ms), in the table's column order
HELP_COLUMNS = {
    f"{name}_b{batch}": f"lat_{column}_{batch}"
    for name, column in (
        ("rtx2080ti", "2080ti"),
        ("titan_rtx", "titan_rtx"),
        ("titan_xp", "titan_xp"),
        ("v100", "v100"),
    )
    for batch in (1, 32, 64)
}
TARGETS: tuple[str, ...] = ("note10", *HELP_COLUMNS)
HELP_RESOLUTIONS: tuple[int, ...] = tuple(range(128, 225, 4))
NOTE10_RESOLUTIONS: tuple[int, ...] = RESOLUTIONS

RESOLUTION_WEIGHT = 8.0
DEPTH_WEIGHT = 4.0
_WEIGHTS = np.array([1.0] * (2 * N_BLOCKS) + [DEPTH_WEIGHT] * 5 + [RESOLUTION_WEIGHT], dtype=np.float32)

# Hypervolume reference (objective units), fixed: the lowest predicted top-1 of the 5,000 rows (76.02 %) rounded
# down to ofa_mbv3_note10's 75, and each target's highest latency over the rows it is known on, rounded up to the
# next whole millisecond (the tests check that every row lies inside).
REFERENCE_POINT: dict[str, float] = {
    "accuracy_top1": 75.0,
    "latency_ms_note10": 62.0,
    "latency_ms_rtx2080ti_b1": 28.0,
    "latency_ms_rtx2080ti_b32": 41.0,
    "latency_ms_rtx2080ti_b64": 58.0,
    "latency_ms_titan_rtx_b1": 10.0,
    "latency_ms_titan_rtx_b32": 29.0,
    "latency_ms_titan_rtx_b64": 55.0,
    "latency_ms_titan_xp_b1": 20.0,
    "latency_ms_titan_xp_b32": 55.0,
    "latency_ms_titan_xp_b64": 108.0,
    "latency_ms_v100_b1": 16.0,
    "latency_ms_v100_b32": 23.0,
    "latency_ms_v100_b64": 43.0,
}


@functools.lru_cache(maxsize=1)
def load_help_table() -> dict[str, np.ndarray]:
    """The 5,000 HELP sub-networks in the source's order: ``ks``, ``e`` (5000, 20), ``d`` (5000, 5) and ``r``
    (5000,) as values (blocks beyond a stage's depth as the source has them), the latency (ms) of every GPU
    target by target name, and ``note10`` (the lookup-table sum; NaN where the tables lack the resolution)."""
    with gzip.open(TABLE_FILE, "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    out: dict[str, np.ndarray] = {
        "ks": np.array([[int(c) for c in r["ks"]] for r in rows], dtype=np.int64),
        "e": np.array([[int(c) for c in r["e"]] for r in rows], dtype=np.int64),
        "d": np.array([[int(c) for c in r["d"]] for r in rows], dtype=np.int64),
        "r": np.array([int(r["r"]) for r in rows], dtype=np.int64),
    }
    for target, column in HELP_COLUMNS.items():
        out[target] = np.array([float(r[column]) for r in rows])
    lut = note10_lut()
    out["note10"] = np.array(
        [
            lut.latency_ms({"ks": ks.tolist(), "e": e.tolist(), "d": d.tolist(), "r": int(r)})
            if int(r) in lut.resolutions
            else np.nan
            for ks, e, d, r in zip(out["ks"], out["e"], out["d"], out["r"], strict=True)
        ]
    )
    for v in out.values():
        v.setflags(write=False)
    return out


@functools.lru_cache(maxsize=1)
def help_accuracy() -> np.ndarray:
    """Predicted top-1 (%) of the 5,000 table rows (the OFA w1.2 predictor)."""
    space = OFADevicesSpace(ofa_mbv3_space(HELP_RESOLUTIONS).choices)
    top1: np.ndarray = accuracy_predictor().top1(space, space._projection().genes)
    top1.setflags(write=False)
    return top1


@dataclass(frozen=True)
class _Projection:
    rows: np.ndarray  # the table rows this space projects onto (indices into the 5,000)
    genes: np.ndarray  # their canonical genes in this space
    nearest: NearestRows  # canonical genes -> (position in rows, weighted distance) of the nearest

    @classmethod
    def of(cls, rows: np.ndarray, genes: np.ndarray, cardinalities: np.ndarray) -> _Projection:
        """The projection onto table ``rows`` whose canonical genes are ``genes``."""
        return cls(rows, genes, NearestRows(genes, cardinalities, _WEIGHTS))


@functools.lru_cache(maxsize=4)
def _projection_for(resolutions: tuple[int, ...]) -> _Projection:
    table = load_help_table()
    space = OFADevicesSpace(ofa_mbv3_space(resolutions).choices)
    rows = np.flatnonzero(np.isin(table["r"], resolutions))
    index_of = {name: {v: i for i, v in enumerate(space.choices[name].values)} for name in ("ks", "e", "d", "r")}
    raw = np.hstack(
        [
            np.vectorize(index_of["ks"].__getitem__)(table["ks"][rows]),
            np.vectorize(index_of["e"].__getitem__)(table["e"][rows]),
            np.vectorize(index_of["d"].__getitem__)(table["d"][rows]),
            np.vectorize(index_of["r"].__getitem__)(table["r"][rows])[:, None],
        ]
    ).astype(np.int64)
    genes = space._inactive_to_first(raw)
    genes.setflags(write=False)
    return _Projection.of(rows, genes, space.cardinalities)


class OFADevicesSpace(OFAMobileNetV3Space):
    """OFA-MobileNetV3 choices (``ks``, ``e``, ``d``, ``r``), every configuration projected onto the nearest HELP
    sub-network whose resolution is among this space's (module docstring: the distance and its weights).

    Blocks skipped by their stage's depth are inactive genes (:meth:`inactive_mask`, as in the OFA space).
    """

    def __init__(self, choices: Mapping[str, Choice]) -> None:
        super().__init__(choices)
        ofa = ofa_mbv3_space().choices
        r = self.choices.get("r")
        if list(self.choices) != list(ofa) or any(self.choices[n] != ofa[n] for n in ("ks", "e", "d")) or r is None:
            raise ValueError("an OFADevicesSpace takes the OFA-MobileNetV3 choices ks, e, d, r (ofa_mbv3_space)")
        extra = [v for v in r.values if v not in HELP_RESOLUTIONS]
        if r.size is not None or extra:
            raise ValueError(f"resolutions {extra or r.values} are not in the HELP table (128..224, step 4)")

    def _inactive_to_first(self, genes: np.ndarray) -> np.ndarray:
        """The plain canonical form: inactive genes set to their first value (no projection)."""
        return SearchSpace.canonical_genes(self, genes)

    def _projection(self) -> _Projection:
        return _projection_for(tuple(int(r) for r in self.choices["r"].values))

    def _positions(self, genes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position in the projection's rows, weighted distance) of the nearest table row of every gene row."""
        return self._projection().nearest(self._inactive_to_first(genes))

    def canonical_genes(self, genes: np.ndarray) -> np.ndarray:
        """The genes of the nearest table architecture of every row (inactive genes first set to their first value)."""
        canonical: np.ndarray = self._projection().genes[self._positions(genes)[0]].copy()
        return canonical

    def table_rows(self, genes: np.ndarray) -> np.ndarray:
        """Rows of the HELP table (0..4999, the source's order) that gene rows project onto."""
        rows: np.ndarray = self._projection().rows[self._positions(genes)[0]]
        return rows

    def table_row(self, config: Config) -> int:
        """Row of the HELP table (0..4999) holding ``config`` after projection."""
        return int(self.table_rows(self.to_genes(config))[0])

    def distance_to_table(self, genes: np.ndarray) -> np.ndarray:
        """Weighted Hamming distance of every (valid) gene row to the table architecture it projects onto."""
        return self._positions(genes)[1]

    def table_genes(self) -> np.ndarray:
        """Canonical genes of the table rows this space projects onto (in :meth:`rows` order)."""
        genes: np.ndarray = self._projection().genes.copy()
        return genes

    def rows(self) -> np.ndarray:
        """The HELP table rows (0..4999) this space projects onto: those at its resolutions."""
        rows: np.ndarray = self._projection().rows.copy()
        return rows


def ofa_devices_space(targets: Sequence[str] | None = None) -> OFADevicesSpace:
    """The space of :func:`make_ofa_mbv3_devices_problem` with these targets."""
    resolutions = NOTE10_RESOLUTIONS if "note10" in checked_targets(targets, TARGETS, TARGETS) else HELP_RESOLUTIONS
    return OFADevicesSpace(ofa_mbv3_space(resolutions).choices)


def target_reference_front(target: str, targets: Sequence[str] | None = None) -> np.ndarray:
    """The exhaustive front of ``target``: columns accuracy_top1 (%), latency_ms_<target>, latency ascending.

    Over the table rows of ``make_ofa_mbv3_devices_problem(targets)`` (default all 13 targets: the 1,013 rows at
    the Note10 resolutions), which are every objective vector that problem can reach; ``targets=[target]`` for
    a GPU target gives its front over all 5,000 rows.
    """
    chosen = checked_targets(targets, TARGETS, TARGETS)
    if target not in chosen:
        checked_targets([target], TARGETS, TARGETS)
        raise ValueError(f"target {target!r} is not among the problem's targets {', '.join(chosen)}")
    rows = ofa_devices_space(chosen).rows()
    F = np.column_stack([help_accuracy()[rows], load_help_table()[target][rows]])
    front = F[non_dominated_mask(F * np.array([-1.0, 1.0]))]
    front = np.unique(front, axis=0)
    out: np.ndarray = front[np.lexsort((-front[:, 0], front[:, 1]))]
    return out


def make_ofa_mbv3_devices_problem(targets: Sequence[str] | None = None) -> Problem:
    """OFA-MobileNetV3 w1.2: predicted top-1 (expensive, shared) and the latency on each target (cheap)."""
    from elasticnas.problems.base import Problem

    chosen = checked_targets(targets, TARGETS, TARGETS)
    space = ofa_devices_space(chosen)
    predictor = accuracy_predictor()
    table = load_help_table()
    rows = space.rows()

    def evaluate(config: Config) -> dict[str, float]:
        return {"accuracy_top1": float(predictor.top1(space, space.to_genes(config))[0])}

    def latency_of(target: str) -> Callable[[Config], float]:
        column = table[target]

        def latency_ms(config: Config) -> float:
            return float(column[space.table_row(config)])

        latency_ms.__name__ = latency_objective(target)
        return latency_ms

    objectives: dict[str, Direction] = {"accuracy_top1": "maximize"}
    objectives.update({latency_objective(t): "minimize" for t in chosen})
    F = np.column_stack([help_accuracy()[rows], *(table[t][rows] for t in chosen)])

    def reference_front() -> np.ndarray:
        front: np.ndarray = F[non_dominated_mask(F * np.array([-1.0] + [1.0] * len(chosen)))]
        return front

    where = "all 13 targets" if chosen == TARGETS else ", ".join(chosen)
    return Problem(
        name="ofa_mbv3_devices" if chosen == TARGETS else f"ofa_mbv3_devices[{','.join(chosen)}]",
        space=space,
        objectives=objectives,
        evaluate=evaluate,
        cheap_metrics={latency_objective(t): latency_of(t) for t in chosen},
        reference_point=tuple(REFERENCE_POINT[name] for name in objectives),
        description=(
            f"OFA-MobileNetV3 w1.2 projected onto {len(rows):,} HELP sub-networks: ImageNet top-1 (%) from the OFA "
            f"accuracy predictor (expensive, shared) and latency (ms, cheap) on {where}: Samsung Note10 from the "
            "OFA lookup table, RTX 2080 Ti / Titan RTX / Titan Xp / V100 at batch 1, 32, 64 measured by HELP"
        ),
        reference_front_fn=reference_front,
        targets={t: (latency_objective(t),) for t in chosen},
    )
