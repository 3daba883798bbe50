"""Peer searchers from other libraries on search_efficiency.py's problems, seeds and budgets (benchmark only).

Each run proposes one configuration at a time until ``--budget`` evaluations and yields the minimisation
objective vector of every evaluated configuration, in order; the hypervolume trace, the run record and the
results document have search_efficiency.py's shape, so ``search_efficiency.py --merge`` merges them:

- ``optuna_gp``: Optuna's ``GPSampler`` (log-EHVI for several objectives; ``deterministic_objective=True``, the
  problems are noise-free) through plain ``study.ask`` / ``study.tell``.
- ``syne_morea``: Syne Tune's multi-objective regularised evolution (``MultiObjectiveRegularizedEvolution``; what
  ``syne_tune.optimizer.baselines.MOREA`` was before 0.16) with whittle's settings: population 10, sample 5, and
  whittle's initial design (every gene at its last value, at its first value, first half first / second half last).
- ``syne_ehvi``: Syne Tune's ``EHVI`` searcher (BoTorch qLogEHVI over a one-hot relaxation, optimised by
  ``optimize_acqf``; 3 random starts). Its reference point is fixed at 2 in its maximisation space, which every
  point of these problems lies outside (latencies in ms), so the values it is told are rescaled from the data seen
  so far, ``(f - ref) / span - 2`` with ``ref = worst + 0.1 * span`` per objective: its fixed reference point then
  sits where predicted_hvi's and Optuna's data-derived ones do. (It runs with float64 as torch's default dtype:
  Syne Tune 0.16 mixes float32 data into a float64 GP, which BoTorch 0.18 refuses.) It does not avoid
  configurations it has evaluated: on ofa_mbv3_note10 most of its proposals after ~20 are repeats.
- ``botorch_qnehvi``: BoTorch directly: one ``SingleTaskGP`` per objective (a batched multi-output model) over the
  space's one-hot encoding of canonical genes, ``qLogNoisyExpectedHypervolumeImprovement`` (reference point
  ``worst + 0.1 * span`` of the data seen), maximised over a seeded pool of 2,000 random configurations plus 500
  one-to-three-gene mutations of the current front (never one already evaluated); 10 random starts.

Problems are looked up by ``search_efficiency.problem_by_name`` (built-in, else suite_problems.py's), and traces
and summary are search_efficiency's (``hypervolume_fractions``, ``summarise``). Every peer sees the space as one
categorical parameter per gene (``<choice>_<position>``, categories the gene's value indices) and every objective
alike, cheap ones included (a peer cannot exploit a cheap metric). Duplicates: every proposal counts as one
evaluation, as a real search pays for it, but a configuration the space canonicalises to one already evaluated
reuses that evaluation's metrics (the repeats per run are listed under ``repeated_proposals``). Each run seeds
Python's, NumPy's global and torch's generators with its seed (Syne Tune 0.16 samples random configurations from
NumPy's global generator), so a seed gives one trace.

Methods need their libraries in the running interpreter: ``optuna_gp`` runs in the main venv, the Syne Tune and
BoTorch peers in /work/st-venv (Syne Tune 0.16, BoTorch); a method whose library is missing is refused.

    python benchmarks/search_peers.py --smoke                        # the peers importable here, < 90 s
    .venv/bin/python benchmarks/search_peers.py --methods optuna_gp --seeds 10 --budget 100 \\
        --out benchmarks/results/search_peers_optuna.json
    /work/st-venv/bin/python benchmarks/search_peers.py --methods syne_morea syne_ehvi botorch_qnehvi \\
        --seeds 10 --budget 1000 --budgets syne_ehvi=100 botorch_qnehvi=100 \\
        --out benchmarks/results/search_peers_st.json
    python benchmarks/search_efficiency.py --merge benchmarks/results/search_efficiency.json \\
        benchmarks/results/search_peers_optuna.json benchmarks/results/search_peers_st.json --out merged.json
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import platform
import random
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from elasticnas.pareto import default_reference_point, non_dominated_mask, objective_spans  # noqa: E402
from elasticnas.problems import Problem  # noqa: E402
from elasticnas.space import SearchSpace  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# problem_by_name: a built-in problem, else suite_problems.suite_problem(name); hypervolume_fractions: run_one's trace
from search_efficiency import (  # noqa: E402
    PROBLEMS,
    RunLog,
    hypervolume_fractions,
    problem_by_name,
    results_json,
    summarise,
)

MAIN_VENV = "/work/main/.venv"
ST_VENV = "/work/st-venv"
#: method -> (modules it imports, the venv that has them)
PEERS: dict[str, tuple[tuple[str, ...], str]] = {
    "optuna_gp": (("optuna", "torch", "scipy"), MAIN_VENV),
    "syne_morea": (("syne_tune",), ST_VENV),
    "syne_ehvi": (("syne_tune", "botorch"), ST_VENV),
    "botorch_qnehvi": (("botorch", "gpytorch"), ST_VENV),
}
SMOKE_PROBLEM, SMOKE_BUDGET = "ofa_mbv3_note10", 15


def missing_libraries(method: str) -> list[str]:
    """The modules ``method`` needs that the running interpreter cannot import."""
    return [m for m in PEERS[method][0] if importlib.util.find_spec(m) is None]


def available_methods() -> list[str]:
    """The peers whose libraries the running interpreter has."""
    return [m for m in PEERS if not missing_libraries(m)]


def gene_keys(space: SearchSpace) -> list[str]:
    """One parameter name per gene, in gene order: ``<choice>_<position>``."""
    return [f"{name}_{i}" for name, choice in space.choices.items() for i in range(choice.length)]


class Evaluations:
    """The problem's minimisation objective vectors of proposed gene rows, in order. Every proposal counts;
    a configuration the space canonicalises to one already evaluated reuses its metrics (``repeats``)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.space = problem.space
        self.objectives = problem.objective_list
        self.F: list[list[float]] = []
        self.genes: list[np.ndarray] = []  # canonical gene rows, in order
        self.repeats = 0
        self._cache: dict[bytes, list[float]] = {}

    def __len__(self) -> int:
        return len(self.F)

    def __call__(self, genes: Sequence[int] | np.ndarray) -> list[float]:
        """Evaluate one gene row (any form the space accepts); returns its minimisation vector."""
        canonical = self.space.validate_genes(np.asarray(genes, dtype=np.int64))[0]
        key = canonical.tobytes()
        f = self._cache.get(key)
        if f is None:
            metrics = self.problem(self.space.from_genes(canonical))
            f = self._cache[key] = [o.sign * float(metrics[o.name]) for o in self.objectives]
        else:
            self.repeats += 1
        self.F.append(f)
        self.genes.append(canonical)
        return list(f)

    def seen(self, genes: np.ndarray) -> np.ndarray:
        """Mask of canonical gene rows already evaluated."""
        return np.array([g.tobytes() in self._cache for g in np.atleast_2d(genes)], dtype=bool)


# -- the peers: each proposes until ``len(ev) == budget`` ---------------------------------------------------------
def _optuna_gp(ev: Evaluations, budget: int, seed: int) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    sampler = optuna.samplers.GPSampler(seed=seed, deterministic_objective=True)
    study = optuna.create_study(directions=["minimize"] * len(ev.objectives), sampler=sampler)
    params = list(zip(gene_keys(ev.space), ev.space.cardinalities.tolist(), strict=True))
    while len(ev) < budget:
        trial = study.ask()
        study.tell(trial, ev([trial.suggest_categorical(k, list(range(c))) for k, c in params]))


def _syne_config_space(space: SearchSpace) -> dict[str, Any]:
    from syne_tune.config_space import choice

    return {k: choice(list(range(c))) for k, c in zip(gene_keys(space), space.cardinalities.tolist(), strict=True)}


def _whittle_initial_design(space: SearchSpace) -> list[dict[str, int]]:
    """whittle's ``initial_design``: every gene at its last value, at its first, then first half first / rest last."""
    keys, last = gene_keys(space), (space.cardinalities - 1).tolist()
    half = len(keys) // 2
    return [dict(zip(keys, last, strict=True)), dict.fromkeys(keys, 0),
            {k: 0 if i < half else last[i] for i, k in enumerate(keys)}]


def _drive_syne(ev: Evaluations, budget: int, seed: int, searcher: Any, config_space: dict[str, Any]) -> None:
    from syne_tune.optimizer.schedulers.ask_tell_scheduler import AskTellScheduler
    from syne_tune.optimizer.schedulers.single_fidelity_scheduler import SingleFidelityScheduler

    metrics = [f"f{j}" for j in range(len(ev.objectives))]
    scheduler = AskTellScheduler(
        SingleFidelityScheduler(config_space, metrics=metrics, do_minimize=True, searcher=searcher, random_seed=seed)
    )
    keys = gene_keys(ev.space)
    while len(ev) < budget:
        trial = scheduler.ask()
        f = ev([int(trial.config[k]) for k in keys])
        scheduler.tell(trial, dict(zip(metrics, f, strict=True)))


def _syne_morea(ev: Evaluations, budget: int, seed: int) -> None:
    from syne_tune.optimizer.schedulers.multiobjective import MultiObjectiveRegularizedEvolution

    config_space = _syne_config_space(ev.space)
    searcher = MultiObjectiveRegularizedEvolution(
        config_space, points_to_evaluate=_whittle_initial_design(ev.space), population_size=10, sample_size=5,
        random_seed=seed,
    )
    _drive_syne(ev, budget, seed, searcher, config_space)


def _syne_ehvi(ev: Evaluations, budget: int, seed: int) -> None:
    from syne_tune.optimizer.schedulers.multiobjective.expected_hyper_volume_improvement import (
        ExpectedHyperVolumeImprovement,
    )

    class RescaledEHVI(ExpectedHyperVolumeImprovement):  # type: ignore[misc]
        """Syne Tune's EHVI told values whose fixed reference point (2, maximised) lies at the data's
        ``worst + 0.1 * span``."""

        def objectives(self) -> np.ndarray:
            F: np.ndarray = super().objectives()
            if len(F) == 0:
                return F
            scaled: np.ndarray = (F - default_reference_point(F)) / objective_spans(F) - 2.0
            return scaled

    import torch

    # Syne Tune 0.16 builds its data and reference point with ``torch.Tensor`` (float32) but fits a float64 GP,
    # which BoTorch 0.18's fused log-EHVI kernel refuses ("expected scalar type Double but found Float"): with
    # float64 as the default dtype for the run, every tensor it builds is float64.
    warnings.filterwarnings("ignore", message="Very small noise values")  # its fixed noise 1e-8, raised to 1e-6
    warnings.filterwarnings("ignore", message="Sparse invariant checks")  # linear_operator's, on every import
    config_space = _syne_config_space(ev.space)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        _drive_syne(ev, budget, seed, RescaledEHVI(config_space, random_seed=seed), config_space)
    finally:
        torch.set_default_dtype(default)


def _botorch_qnehvi(
    ev: Evaluations, budget: int, seed: int, n_initial: int = 10, n_random: int = 2000, n_mutants: int = 500
) -> None:
    import torch
    from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
    from botorch.exceptions.errors import ModelFittingError
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.sampling import SobolQMCNormalSampler
    from gpytorch.mlls import ExactMarginalLogLikelihood
    from linear_operator.utils.errors import NotPSDError

    rng = np.random.default_rng(seed)
    space, card = ev.space, ev.space.cardinalities
    while len(ev) < budget:
        if len(ev) < n_initial:
            ev(rng.integers(0, card))
            continue
        G, F = np.array(ev.genes), np.array(ev.F)
        # the pool: random rows and 1-3-gene mutations of the front, canonical, new, each once
        front = G[non_dominated_mask(F)]
        mutants = front[np.arange(n_mutants) % len(front)].copy()
        for row in mutants:
            genes = rng.choice(len(card), size=rng.integers(1, 4), replace=False)
            row[genes] = (row[genes] + rng.integers(1, np.maximum(card[genes], 2))) % card[genes]
        pool = space.canonical_genes(np.vstack([rng.integers(0, card, size=(n_random, len(card))), mutants]))
        pool = np.unique(pool, axis=0)
        pool = pool[~ev.seen(pool)]
        if len(pool) == 0:
            ev(rng.integers(0, card))
            continue
        X = torch.tensor(space.encode_genes(G, "onehot"), dtype=torch.double)
        Y = -torch.tensor(F, dtype=torch.double)  # BoTorch maximises
        ref = default_reference_point(F)
        try:
            model = SingleTaskGP(X, Y)
            fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
            acq = qLogNoisyExpectedHypervolumeImprovement(
                model, ref_point=(-ref).tolist(), X_baseline=X, prune_baseline=True,
                sampler=SobolQMCNormalSampler(torch.Size([128]), seed=int(rng.integers(2**31 - 1))),
            )
            Xpool = torch.tensor(space.encode_genes(pool, "onehot"), dtype=torch.double)
            with torch.no_grad():
                scores = torch.cat([acq(chunk[:, None, :]) for chunk in Xpool.split(500)])
            ev(pool[int(scores.argmax())])
        except (ModelFittingError, NotPSDError) as exc:
            warnings.warn(f"botorch_qnehvi: {type(exc).__name__}; a random pool member instead", stacklevel=1)
            ev(pool[rng.integers(len(pool))])


DRIVERS: dict[str, Callable[[Evaluations, int, int], None]] = {
    "optuna_gp": _optuna_gp,
    "syne_morea": _syne_morea,
    "syne_ehvi": _syne_ehvi,
    "botorch_qnehvi": _botorch_qnehvi,
}


def _seed_globals(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    if "torch" in sys.modules or importlib.util.find_spec("torch") is not None:
        import torch

        torch.manual_seed(seed)


def search(problem: Problem, method: str, seed: int, budget: int) -> tuple[Evaluations, float]:
    """Run peer ``method`` for ``budget`` evaluations; returns the evaluations and the seconds the search took."""
    missing = missing_libraries(method)
    if missing:
        raise ModuleNotFoundError(refusal(method, missing))
    _seed_globals(seed)
    ev = Evaluations(problem)
    start = time.perf_counter()
    with warnings.catch_warnings():
        DRIVERS[method](ev, budget, seed)
    return ev, time.perf_counter() - start


def run_peer(problem_name: str, method: str, seed: int, budget: int) -> dict[str, Any]:
    """One peer search, as a search_efficiency run: ``{"problem", "method", "seed", "seconds", "hv"}``."""
    return _run(problem_name, method, seed, budget)[0]


def _run(problem_name: str, method: str, seed: int, budget: int) -> tuple[dict[str, Any], int]:
    problem = problem_by_name(problem_name)
    ev, seconds = search(problem, method, seed, budget)
    hv = hypervolume_fractions(problem, ev.F).tolist()
    run = {"problem": problem_name, "method": method, "seed": seed, "seconds": seconds, "hv": hv}
    return run, ev.repeats


def refusal(method: str, missing: list[str]) -> str:
    """The one line refusing ``method`` in this interpreter."""
    return (f"{method} needs {', '.join(missing)}, which {sys.executable} cannot import: run it with "
            f"{PEERS[method][1]}/bin/python benchmarks/search_peers.py")


def _versions() -> dict[str, str]:
    out = {}
    for name in ("optuna", "syne_tune", "botorch", "gpytorch", "torch", "numpy", "scipy"):
        if importlib.util.find_spec(name) is not None:
            out[name] = str(getattr(importlib.import_module(name), "__version__", "?"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true",
                    help=f"{SMOKE_PROBLEM}, {SMOKE_BUDGET} evaluations, 1 seed, the peers importable here unless "
                         "--methods names some (< 90 s)")
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    ap.add_argument("--methods", nargs="+", default=None, choices=list(PEERS),
                    help="default: the peers importable in this interpreter")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="seeds FIRST..FIRST+SEEDS-1 (add seeds to an earlier run, then --merge the two)")
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--budgets", nargs="*", default=[], metavar="METHOD=N", help="per-method budget overrides")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.smoke:
        args.problems, args.seeds, args.budget = [SMOKE_PROBLEM], 1, SMOKE_BUDGET
    methods: list[str] = args.methods or available_methods()
    refused = [refusal(m, missing) for m in methods if (missing := missing_libraries(m))]
    if refused or not methods:
        print("\n".join(refused) or f"no peer's libraries are importable in {sys.executable}", file=sys.stderr)
        return 2
    out = args.out or HERE / "results" / ("search_peers_smoke.json" if args.smoke else "search_peers.json")
    budgets = {m: args.budget for m in methods} | {k: int(v) for k, v in (b.split("=") for b in args.budgets)}
    jobs = [(p, m, s, budgets[m]) for p in args.problems for s in range(args.first_seed, args.first_seed + args.seeds)
            for m in methods]
    cost = {"optuna_gp": 4, "syne_ehvi": 3, "botorch_qnehvi": 3}  # longest jobs first keeps the workers busy
    jobs.sort(key=lambda j: -cost.get(j[1], 1))
    start = time.time()
    runs: list[dict[str, Any]] = []
    repeats: dict[str, int] = {}
    log = RunLog(out)

    def record(run: dict[str, Any], n_repeats: int) -> None:
        runs.append(run)
        log.add(run)
        repeats[f"{run['problem']}/{run['method']}/{run['seed']}"] = n_repeats
        print(f"{run['problem']:16s} {run['method']:14s} seed {run['seed']:2d} {run['seconds']:7.1f}s "
              f"hv@end {run['hv'][-1]:.4f} repeats {n_repeats}", flush=True)

    if args.workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(min(args.workers, len(jobs))) as pool:
            for future in [pool.submit(_run, *j) for j in jobs]:
                record(*future.result())
    else:
        for j in jobs:
            record(*_run(*j))
    wall = time.time() - start
    argv = sys.argv[1:] if argv is None else argv
    result = {
        "command": " ".join([sys.executable, "benchmarks/search_peers.py", *argv]),
        "wall_seconds": wall,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average": os.getloadavg(), "versions": _versions()},
        "budget": args.budget,
        "budgets": budgets,
        "seeds": args.seeds,
        "first_seed": args.first_seed,
        "methods": methods,
        "summary": summarise(runs, args.budget),
        "repeated_proposals": repeats,
        "runs": runs,
    }
    out.write_text(results_json(result))
    log.close()
    print(f"wrote {out} in {wall:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
