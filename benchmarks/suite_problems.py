"""Five more problems for a search generality suite: many objectives, two expensive metrics, a large tabular
space with inactive genes, a small one with measured accuracy, and noisy real evaluations.

    import sys; sys.path.insert(0, "benchmarks")
    from suite_problems import SUITE, suite_problem
    problem = suite_problem("hwgpt_s_energy")

Every problem follows :class:`elasticnas.problems.Problem`: ``evaluate`` returns the expensive metrics,
``cheap_metrics`` the free exact ones, ``reference_point`` and ``reference_front()`` are in the objectives' own
units and directions. ``benchmarks/search_efficiency.py --problems NAME`` finds them by name.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import gzip
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from elasticnas.pareto import non_dominated_mask
from elasticnas.problems import Problem, builtin_data, supernet_problem
from elasticnas.problems._hwgpt import DATA_DIR as HWGPT_DATA
from elasticnas.problems._hwgpt import hwgpt_space, load_table, make_hwgpt_devices_problem
from elasticnas.problems._ofa_devices import (
    OFADevicesSpace,
    _Projection,
    make_ofa_mbv3_devices_problem,
    target_reference_front,
)
from elasticnas.problems._ofa_mbv3 import ofa_mbv3_space
from elasticnas.problems._tables import latency_objective
from elasticnas.records import Direction, as_objectives
from elasticnas.space import Config, SearchSpace

DATA = Path(__file__).resolve().parent / "data"
HWGPT_ENERGY_FILE = DATA / "hwgpt_s_energy.csv.gz"
OFA_MEASURED_FILE = DATA / "ofa_mbv3_measured_w10.csv.gz"
TINY_FRONT_FILE = DATA / "tiny_mbv3_digits_front.csv"
TINY_REFERENCE_FILE = DATA / "tiny_mbv3_digits_reference.json"
HWGPT_4DEVICES = ("a100", "rtx2080", "v100", "cpu_a6000")
HELP_TARGET = "titan_rtx_b64"


def objective_signs(objectives: Mapping[str, Direction]) -> np.ndarray:
    """+1 for a minimised objective, -1 for a maximised one (objective order)."""
    return np.array([o.sign for o in as_objectives(objectives)], dtype=float)


def padded_worst(F: np.ndarray, signs: np.ndarray) -> tuple[float, ...]:
    """Reference point of the objective matrix ``F`` (objective units): per objective its worst value pushed out
    by 1 % of its range (the rule of the built-in ``hwgpt_s_*`` problems); ``signs`` +1 minimise, -1 maximise."""
    M = F * signs
    return tuple(float(x) for x in signs * (M.max(axis=0) + 0.01 * (M.max(axis=0) - M.min(axis=0))))


def exhaustive_front(F: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """The distinct non-dominated rows of ``F`` (objective units; ``signs`` as in :func:`padded_worst`)."""
    front: np.ndarray = np.unique(F[non_dominated_mask(F * signs)], axis=0)
    return front


def table_problem(
    name: str,
    space: SearchSpace,
    objectives: dict[str, Direction],
    F: np.ndarray,
    evaluate: Callable[[Config], dict[str, float]],
    cheap_metrics: Mapping[str, Callable[[Config], float]],
    description: str,
) -> Problem:
    """A problem over a table whose rows' objective values are ``F`` (objective units, objectives' order): the
    exhaustive front of the rows, the reference point their :func:`padded_worst`."""
    signs = objective_signs(objectives)
    return Problem(
        name=name,
        space=space,
        objectives=objectives,
        evaluate=evaluate,
        cheap_metrics=cheap_metrics,
        reference_point=padded_worst(F, signs),
        description=description,
        reference_front_fn=exhaustive_front(F, signs).copy,
    )


# -- 1. hwgpt_s_energy ----------------------------------------------------------------------------------------
@functools.cache
def hwgpt_energy_a100() -> np.ndarray:
    """``energy_Wh_a100`` of every row of the package's HW-GPT-S table, in its order (the keys are checked)."""
    with gzip.open(HWGPT_ENERGY_FILE, "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with gzip.open(HWGPT_DATA / "hwgpt_s_table.csv.gz", "rt", newline="") as fh:
        keys = [r["ppl_index"] for r in csv.DictReader(fh)]
    if [r["ppl_index"] for r in rows] != keys:
        raise ValueError(f"{HWGPT_ENERGY_FILE.name} is not row for row the package's HW-GPT-S table: rebuild it")
    energy = np.array([float(r["energy_Wh_a100"]) for r in rows])
    energy.setflags(write=False)
    return energy


def make_hwgpt_s_energy() -> Problem:
    """HW-GPT-Bench GPT-S (https://github.com/automl/HW-GPT-Bench, Apache-2.0): perplexity and energy on an A100
    (both expensive: measuring energy takes a run) against A100 latency (cheap), over the 10,000 table rows.

    The measured A100 energy hardly follows latency (Spearman 0.05 over the table), so the three-objective front
    is far from the two-objective one. Exhaustive front; reference point: worst value + 1 % of the range.
    """
    space = hwgpt_space()
    table = load_table()
    latency = table[latency_objective("a100")]
    perplexity, energy = table["perplexity"], hwgpt_energy_a100()

    def evaluate(config: Config) -> dict[str, float]:
        row = space.table_row(config)
        return {"perplexity": float(perplexity[row]), "energy_Wh_a100": float(energy[row])}

    def latency_ms_a100(config: Config) -> float:
        return float(latency[space.table_row(config)])

    objectives: dict[str, Direction] = {
        "perplexity": "minimize",
        "energy_Wh_a100": "minimize",
        latency_objective("a100"): "minimize",
    }
    return table_problem(
        "hwgpt_s_energy",
        space,
        objectives,
        np.column_stack([perplexity, energy, latency]),
        evaluate,
        {latency_objective("a100"): latency_ms_a100},
        "HW-GPT-Bench GPT-S: perplexity and A100 energy (Wh, both expensive), A100 latency (ms, cheap), "
        "10,000 tabulated sub-networks",
    )


# -- 2. hwgpt_s_4devices --------------------------------------------------------------------------------------
def make_hwgpt_s_4devices() -> Problem:
    """HW-GPT-Bench GPT-S (Apache-2.0): perplexity (expensive) and the latency (ms, cheap) on an A100, an RTX 2080,
    a V100 and the CPU of the A6000 host, as five plain objectives (no hardware targets): a many-objective
    tabular problem over 10,000 rows. ``hwgpt_s_devices``' exhaustive front and reference-point rule."""
    problem = make_hwgpt_devices_problem(HWGPT_4DEVICES)
    return dataclasses.replace(
        problem,
        name="hwgpt_s_4devices",
        targets=None,
        description="HW-GPT-Bench GPT-S: perplexity (expensive) and latency (ms, cheap) on "
        f"{', '.join(HWGPT_4DEVICES)} as five objectives, 10,000 tabulated sub-networks",
    )


# -- 3. ofa_mbv3_help_titanrtx_b64 ----------------------------------------------------------------------------
def make_ofa_mbv3_help_titanrtx_b64() -> Problem:
    """OFA-MobileNetV3 w1.2: the OFA predictor's top-1 (expensive; https://github.com/mit-han-lab/once-for-all,
    MIT) against HELP's latency measured on a Titan RTX at batch 64 (cheap; https://github.com/HayeonLee/HELP,
    MIT), the space projected onto HELP's 5,000 sub-networks (r 128..224): a large space with inactive genes
    (blocks beyond a stage's depth). Two objectives, no targets; exhaustive front over the 5,000 rows."""
    problem = make_ofa_mbv3_devices_problem([HELP_TARGET])
    return dataclasses.replace(
        problem,
        name="ofa_mbv3_help_titanrtx_b64",
        targets=None,
        description="OFA-MobileNetV3 w1.2 projected onto HELP's 5,000 sub-networks: predicted ImageNet top-1 (%, "
        "expensive) and Titan RTX latency at batch 64 (ms, measured by HELP, cheap)",
        reference_front_fn=functools.partial(target_reference_front, HELP_TARGET, [HELP_TARGET]),
    )


# -- 4. ofa_mbv3_measured_w10 ---------------------------------------------------------------------------------
@functools.cache
def load_measured_w10() -> dict[str, np.ndarray]:
    """The shipped DyNAS-T table: ``genes`` (canonical, in :func:`measured_w10_space`), ``top1`` (%), ``macs``."""
    with gzip.open(OFA_MEASURED_FILE, "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    space = ofa_mbv3_space((224,))
    configs = [{"ks": [int(c) for c in r["ks"]], "e": [int(c) for c in r["e"]], "d": [int(c) for c in r["d"]],
                "r": 224} for r in rows]  # fmt: skip
    out = {
        "genes": np.stack([space.to_genes(c) for c in configs]),
        "top1": np.array([float(r["top1"]) for r in rows]),
        "macs": np.array([float(r["macs"]) for r in rows]),
    }
    if len(np.unique(out["genes"], axis=0)) != len(rows):
        raise ValueError(f"{OFA_MEASURED_FILE.name} holds a network twice: rebuild it")
    for v in out.values():
        v.setflags(write=False)
    return out


@functools.cache
def _measured_projection() -> _Projection:
    genes = load_measured_w10()["genes"]
    return _Projection.of(np.arange(len(genes)), genes, measured_w10_space().cardinalities)


class OFAMeasuredW10Space(OFADevicesSpace):
    """OFA-MobileNetV3 w1.0 choices at r=224, every configuration projected onto the nearest of the 2,162
    networks DyNAS-T measured (the distance and tie rule of :class:`OFADevicesSpace`); ``table_row`` gives the
    row of :func:`load_measured_w10`, ``canonical_genes`` its genes (distinct configurations, distinct rows)."""

    def _projection(self) -> _Projection:
        return _measured_projection()


def measured_w10_space() -> OFAMeasuredW10Space:
    return OFAMeasuredW10Space(ofa_mbv3_space((224,)).choices)


def make_ofa_mbv3_measured_w10() -> Problem:
    """OFA-MobileNetV3 w1.0 at r=224: ImageNet top-1 *measured* by DyNAS-T (expensive;
    https://github.com/IntelLabs/DyNAS-T, Apache-2.0, on the Once-for-All super-network, MIT) against MACs
    (cheap, exact), the space projected onto the 2,162 distinct measured networks (DyNAS-T's 2,223 rows, 57
    duplicates merged). Exhaustive front; reference point: worst value + 1 % of the range."""
    space = measured_w10_space()
    table = load_measured_w10()

    def evaluate(config: Config) -> dict[str, float]:
        return {"accuracy_top1": float(table["top1"][space.table_row(config)])}

    def macs(config: Config) -> float:
        return float(table["macs"][space.table_row(config)])

    objectives: dict[str, Direction] = {"accuracy_top1": "maximize", "macs": "minimize"}
    return table_problem(
        "ofa_mbv3_measured_w10",
        space,
        objectives,
        np.column_stack([table["top1"], table["macs"]]),
        evaluate,
        {"macs": macs},
        "OFA-MobileNetV3 w1.0, r=224, projected onto 2,162 sub-networks with ImageNet top-1 (%) measured by DyNAS-T "
        "(expensive) and MACs (cheap)",
    )


# -- 5. tiny_mbv3_digits ----------------------------------------------------------------------------------------
def tiny_mbv3_digits_measured() -> Problem:
    """The built-in trained ``tiny_mbv3`` on the built-in digits, as ``elasticnas demo`` measures it: validation
    top-1 after BatchNorm recalibration (expensive) and MACs (cheap); no reference point or front."""
    from elasticnas.supernets import create_supernet

    problem = supernet_problem(create_supernet("tiny_mbv3"), ("accuracy_top1", "macs"), **builtin_data("tiny_mbv3"))
    return dataclasses.replace(problem, name="tiny_mbv3_digits")


def _tiny_front() -> np.ndarray:
    with TINY_FRONT_FILE.open(newline="") as fh:
        return np.array([[float(r["accuracy_top1"]), float(r["macs"])] for r in csv.DictReader(fh)]).reshape(-1, 2)


def make_tiny_mbv3_digits() -> Problem:
    """NOISY REAL evaluations: the built-in ``tiny_mbv3`` (elasticnas, Apache-2.0) with its shipped weights on the
    built-in digits (scikit-learn, BSD-3-Clause), validation top-1 measured after BatchNorm recalibration
    (expensive, 0.25-0.6 s on one CPU thread; 539 images, so top-1 moves in steps of 0.19 points) against MACs (cheap).

    The space holds ~3.9e9 networks, too many to evaluate: the reference front is the best of a 3,000-evaluation
    search (1,000 random, then 2,000 NSGA-II, ``benchmarks/data/make_tiny_mbv3_digits_front.py``), the
    reference point (worst value + 1 % of the range over those evaluations) is stored beside it.
    """
    problem = tiny_mbv3_digits_measured()
    if not TINY_REFERENCE_FILE.exists():
        return problem
    point = json.loads(TINY_REFERENCE_FILE.read_text())["reference_point"]
    return dataclasses.replace(
        problem,
        reference_point=tuple(float(point[name]) for name in problem.objectives),
        reference_front_fn=_tiny_front,
    )


SUITE: dict[str, Callable[[], Problem]] = {
    "hwgpt_s_energy": make_hwgpt_s_energy,
    "hwgpt_s_4devices": make_hwgpt_s_4devices,
    "ofa_mbv3_help_titanrtx_b64": make_ofa_mbv3_help_titanrtx_b64,
    "ofa_mbv3_measured_w10": make_ofa_mbv3_measured_w10,
    "tiny_mbv3_digits": make_tiny_mbv3_digits,
}


@functools.cache
def suite_problem(name: str) -> Problem:
    """The suite problem ``name``, built on first use and then shared (problems are immutable)."""
    if name not in SUITE:
        raise KeyError(f"unknown suite problem {name!r}; known: {', '.join(SUITE)}")
    return SUITE[name]()

