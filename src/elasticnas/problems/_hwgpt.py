"""HW-GPT-Bench, GPT-S space: perplexity (expensive) and measured latency (cheap) of 10,000 sub-networks.

The table covers 10,000 of the ~10^13 configurations of the choices below,
so the space is *projected* onto the table: :class:`HWGPTSpace` canonicalises
every configuration to the nearest architecture in the table (weighted Hamming
distance on the choices: embedding dim and layer count weigh 4, each active
layer's MLP ratio and head count 1, inactive layers set to their first value;
ties go to the lower table row). A
searcher can therefore propose anything; configurations that project to the
same table architecture share one config id, so they are evaluated once. The
exhaustive front of the table is the reference front. ``sample_bias`` varies
in the table but never distinguishes two architectures, so it is not a choice.

The table also holds the latency of every sub-network measured on 14 devices
(:data:`DEVICES`); ``hwgpt_s_devices`` (:func:`make_hwgpt_devices_problem`)
searches for the perplexity/latency front of all of them at once, one hardware
target per device.
"""

from __future__ import annotations

import csv
import functools
import gzip
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from elasticnas.pareto import non_dominated_mask
from elasticnas.problems._tables import NearestRows, checked_targets, latency_objective
from elasticnas.space import Choice, Config, SearchSpace

if TYPE_CHECKING:
    from elasticnas.problems.base import Problem

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "hwgpt_s"
EMBED = (192, 384, 768)
LAYERS = (10, 11, 12)
MLP = (2, 3, 4)
HEADS = (4, 8, 12)
MAX_LAYERS = 12


_LATENCY_COLUMN = re.compile(r"lat_(ms|s)_(.+)")


def _device_columns() -> dict[str, str]:
    """Device name -> its latency column of the table (GPUs first, then CPUs, each in table order)."""
    with gzip.open(DATA_DIR / "hwgpt_s_table.csv.gz", "rt", newline="") as fh:
        header = next(csv.reader(fh))
    found = [(m.group(1), m.group(2).lower(), c) for c in header if (m := _LATENCY_COLUMN.fullmatch(c))]
    return {name: c for unit in ("ms", "s") for u, name, c in found if u == unit}


_DEVICE_COLUMNS = _device_columns()
#: Devices with measured latency in the table, named after their latency column: ``lat_ms_<gpu>``
#: (milliseconds) or ``lat_s_<cpu>`` (seconds) without the prefix, lower-cased (``lat_ms_P100`` ->
#: ``"p100"``, ``lat_s_cpu_a6000`` -> ``"cpu_a6000"``); GPUs first, then CPUs, each in table order.
#: ``cpu_meta`` holds implausible latencies (75-979 s) on 1,736 of its rows: see the data's README.
DEVICES: tuple[str, ...] = tuple(_DEVICE_COLUMNS)
#: The 13 devices of ``hwgpt_s_devices`` by default: all but ``cpu_meta``, whose outliers set its reference point.
DEFAULT_DEVICES: tuple[str, ...] = tuple(d for d in DEVICES if d != "cpu_meta")


@functools.lru_cache(maxsize=1)
def load_table() -> dict[str, np.ndarray]:
    """The bundled table: canonical gene matrix ``genes`` and metric columns.

    Metric columns as stored (``perplexity``, ``lat_ms_<gpu>``, ``lat_s_<cpu>``), plus
    ``latency_ms_<device>`` for every device of :data:`DEVICES`, in milliseconds (CPU seconds times 1000).
    """
    with gzip.open(DATA_DIR / "hwgpt_s_table.csv.gz", "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    genes = np.zeros((len(rows), 2 + 2 * MAX_LAYERS), dtype=np.int64)
    for k, r in enumerate(rows):
        n_layer = int(r["n_layer"])
        genes[k, 0] = EMBED.index(int(r["embed_dim"]))
        genes[k, 1] = LAYERS.index(n_layer)
        for i in range(n_layer):
            genes[k, 2 + i] = MLP.index(int(r[f"mlp_ratio_{i}"]))
            genes[k, 2 + MAX_LAYERS + i] = HEADS.index(int(r[f"n_head_{i}"]))
    out: dict[str, np.ndarray] = {"genes": genes}
    for col in ("perplexity", *_DEVICE_COLUMNS.values()):
        out[col] = np.array([float(r[col]) for r in rows])
    for device, col in _DEVICE_COLUMNS.items():
        out[latency_objective(device)] = out[col] if col.startswith("lat_ms_") else 1000.0 * out[col]
    return out


class HWGPTSpace(SearchSpace):
    """GPT-S choices, every configuration projected onto the nearest HW-GPT-Bench table architecture.

    The MLP ratio and head count of layers beyond ``n_layer`` are inactive genes (:meth:`inactive_mask`).
    """

    def inactive_mask(self, genes: np.ndarray) -> np.ndarray:
        """The MLP ratio and head count of every layer beyond ``n_layer``."""
        G = np.atleast_2d(genes)
        beyond = np.arange(MAX_LAYERS)[None, :] >= np.array(LAYERS)[G[:, 1]][:, None]
        return np.hstack([np.zeros((len(G), 2), dtype=bool), beyond, beyond])

    def _table_rows(self, G: np.ndarray) -> np.ndarray:
        canonical = super().canonical_genes(G)
        return _nearest_row()(canonical)[0]

    def canonical_genes(self, genes: np.ndarray) -> np.ndarray:
        """The genes of the nearest table architecture of every row (inactive genes first set to 0)."""
        canonical: np.ndarray = load_table()["genes"][self._table_rows(genes)].copy()
        return canonical

    def table_row(self, config: Config) -> int:
        """Row of the table holding ``config`` (after projection)."""
        return int(self._table_rows(self.to_genes(config))[0])


_WEIGHTS = np.array([4.0, 4.0] + [1.0] * (2 * MAX_LAYERS), dtype=np.float32)


@functools.lru_cache(maxsize=1)
def _nearest_row() -> NearestRows:
    genes = load_table()["genes"]
    return NearestRows(genes, np.full(genes.shape[1], 3), _WEIGHTS)


def hwgpt_space() -> HWGPTSpace:
    return HWGPTSpace(
        {
            "embed_dim": Choice(EMBED),
            "n_layer": Choice(LAYERS),
            "mlp_ratio": Choice(MLP, size=MAX_LAYERS),
            "n_head": Choice(HEADS, size=MAX_LAYERS),
        }
    )


def make_hwgpt_problem(device: Literal["gpu", "cpu"]) -> Problem:
    from elasticnas.problems.base import Problem

    space = hwgpt_space()
    table = load_table()
    latency = table["lat_ms_a100"] if device == "gpu" else 1000.0 * table["lat_s_cpu_a6000"]
    perplexity = table["perplexity"]

    def evaluate(config: Config) -> dict[str, float]:
        return {"perplexity": float(perplexity[space.table_row(config)])}

    def latency_ms(config: Config) -> float:
        return float(latency[space.table_row(config)])

    F = np.column_stack([perplexity, latency])
    front = _front_2d(F)
    # reference point: the worst perplexity and latency in the table, pushed out by 1 % of their range
    ref = F.max(axis=0) + 0.01 * (F.max(axis=0) - F.min(axis=0))
    where = "NVIDIA A100 (lat_ms_a100)" if device == "gpu" else "the CPU of the A6000 host (lat_s_cpu_a6000, in ms)"
    return Problem(
        name=f"hwgpt_s_{device}",
        space=space,
        objectives={"perplexity": "minimize", "latency_ms": "minimize"},
        evaluate=evaluate,
        cheap_metrics={"latency_ms": latency_ms},
        reference_point=(float(ref[0]), float(ref[1])),
        description=f"HW-GPT-Bench GPT-S: perplexity (expensive) and latency on {where} (cheap), "
        "10,000 tabulated sub-networks",
        reference_front_fn=lambda: front.copy(),
    )


def _front_2d(F: np.ndarray) -> np.ndarray:
    """Non-dominated rows of a (perplexity, latency) matrix, by increasing latency."""
    front = F[non_dominated_mask(F)]
    sorted_front: np.ndarray = front[np.argsort(front[:, 1], kind="stable")]
    return sorted_front


@functools.cache
def _target_front(device: str) -> np.ndarray:
    table = load_table()
    return _front_2d(np.column_stack([table["perplexity"], table[latency_objective(device)]]))


def target_reference_front(device: str) -> np.ndarray:
    """Exhaustive (perplexity, latency in ms) front of the whole table on ``device``, by increasing latency.

    The best any search of ``hwgpt_s_devices`` can find for that target (every configuration projects
    onto a table row); compare a study's ``pareto_front(target=device)`` with it.
    """
    (device,) = checked_targets((device,), DEVICES, DEFAULT_DEVICES)
    front: np.ndarray = _target_front(device).copy()
    return front


def make_hwgpt_devices_problem(devices: Sequence[str] | None = None) -> Problem:
    """Perplexity (expensive) and the latency of every device in ``devices`` (cheap), one target per device.

    ``devices`` are names of :data:`DEVICES` (default :data:`DEFAULT_DEVICES`: all but ``cpu_meta``).
    Objectives: ``perplexity`` (shared by every target) and ``latency_ms_<device>`` (milliseconds) for
    each device, all minimised; target ``<device>`` owns ``latency_ms_<device>``. The reference point
    is, per objective, the worst value in the table pushed out by 1 % of its range (as in
    ``hwgpt_s_gpu``); the reference front is the exhaustive front of the table over all the
    objectives, :func:`target_reference_front` that of one target.
    """
    from elasticnas.problems.base import Problem

    chosen = checked_targets(devices, DEVICES, DEFAULT_DEVICES)
    space = hwgpt_space()
    table = load_table()
    perplexity = table["perplexity"]
    names = [latency_objective(d) for d in chosen]

    def evaluate(config: Config) -> dict[str, float]:
        return {"perplexity": float(perplexity[space.table_row(config)])}

    def latency_of(column: np.ndarray) -> Callable[[Config], float]:
        def latency_ms(config: Config) -> float:
            return float(column[space.table_row(config)])

        return latency_ms

    F = np.column_stack([perplexity, *(table[n] for n in names)])
    # reference point: the worst value of every objective in the table, pushed out by 1 % of its range
    ref = F.max(axis=0) + 0.01 * (F.max(axis=0) - F.min(axis=0))

    @functools.cache
    def front() -> np.ndarray:
        nondominated: np.ndarray = F[non_dominated_mask(F)]
        return nondominated

    return Problem(
        name="hwgpt_s_devices" if chosen == DEFAULT_DEVICES else f"hwgpt_s_devices[{','.join(chosen)}]",
        space=space,
        objectives={"perplexity": "minimize", **dict.fromkeys(names, "minimize")},
        evaluate=evaluate,
        cheap_metrics={n: latency_of(table[n]) for n in names},
        reference_point=tuple(float(x) for x in ref),
        description=f"HW-GPT-Bench GPT-S: perplexity (expensive) and measured latency (cheap) on "
        f"{len(chosen)} device(s) ({', '.join(chosen)}), one hardware target each, 10,000 tabulated sub-networks",
        reference_front_fn=lambda: front().copy(),
        targets={d: (n,) for d, n in zip(chosen, names, strict=True)},
    )
