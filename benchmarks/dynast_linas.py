"""DyNAS-T itself (Intel's PyPI package ``dynast``) running its LINAS search on our ``ofa_mbv3_note10`` oracle.

Standalone: it needs its own virtual environment (DyNAS-T pins nothing usable on Python 3.11 and its
``pip install`` resolves CUDA builds of torch), so the test-suite never imports it. It drives DyNAS-T's own
``dynast.search.search_tactic.LINAS.search`` unchanged (population 50, its Ridge/SVR ``GridSearchCV``
predictors re-trained every loop, its inner pymoo NSGA-II with its operators and 20,000 predictor
evaluations per loop, its duplicate handling) and replaces only what touches the real network, the
evaluator: DyNAS-T's ``OFARunner`` (ImageNet validation, torch latency) is swapped for a runner that asks our
oracle (``elasticnas.problems.create_problem("ofa_mbv3_note10")``: OFA accuracy predictor = the expensive,
counted call; Note10 latency table = cheap), and the MobileNetV3 evaluation interface for one that also maps
the resolution. The hypervolume fraction is recorded after every expensive evaluation exactly as
``benchmarks/search_efficiency.py`` ``run_one`` does.

Environment (outside the repository; never let pip resolve torch or torchvision)::

    python3.11 -m venv /work/dynast-venv
    /work/dynast-venv/bin/pip install torch==2.13.0                  # the CPU wheel, first
    /work/dynast-venv/bin/pip install dynast==1.6.0 --no-deps
    /work/dynast-venv/bin/pip install numpy==2.4.6 scipy==1.17.1 pymoo==0.6.2 scikit-learn==1.9.1 \
        autograd==1.9.1 numba==0.68.1 pandas requests gdown sacremoses "transformers<5" optuna==5.0.0
    /work/dynast-venv/bin/pip install torchprofile --no-deps         # it would pull torchvision (and CUDA torch)

(numpy ... optuna: the versions of the project's own venv; optuna only because ``import elasticnas`` needs it.
elasticnas itself is not installed there: this script puts the repository's ``src`` on ``sys.path``.)

Run (one process; GridSearchCV inside DyNAS-T uses ``n_jobs=-1``)::

    /work/dynast-venv/bin/python benchmarks/dynast_linas.py --seeds 10 --budget 500
    # quick check:
    /work/dynast-venv/bin/python benchmarks/dynast_linas.py --seeds 1 --budget 100 --inner-evals 1000 --out /tmp/x.json

Workarounds needed to import DyNAS-T 1.6.0 on Python 3.11 (all in this script, none in DyNAS-T's files):

- ``torchvision`` is imported at import time (``dynast.utils.datasets``, OFA's ImageNet data provider) but the
  PyPI torchvision wheels do not import beside the local CPU torch 2.13.0 wheel, and an unpinned one drags in
  CUDA torch: a stub package (any attribute is an empty class) is put on the import path instead; nothing of
  torchvision is called, because no image is ever loaded.
- ``fairseq`` (DyNAS-T's Transformer-LT machine-translation runner, imported unconditionally by
  ``search_tactic``) has no Python 3.11 support (its dataclass configs fail on 3.11 and ``libbleu`` is a compiled
  extension loaded with ctypes at import): ``fairseq`` and ``dynast.supernetwork.machine_translation.
  transformer_interface`` are stubbed the same way; that runner is never used here.
- ``transformers`` must be < 5: DyNAS-T's BERT/SST-2 module imports ``transformers.data.processors.glue``,
  removed in transformers 5.
- ``PYTHONHASHSEED=0`` (the script re-executes itself with it): DyNAS-T orders its objectives through
  ``list(set(...))``, so without a fixed hash seed the same seed can give a different search.

Wiring (differences from DyNAS-T's stock OFA-MobileNetV3 w1.2 search space, ``ofa_mbv3_d234_e346_k357_w1.2``):

- DyNAS-T's space is ks 20x{3,5,7}, e 20x{3,4,6}, d 5x{2,3,4} (= ours) and its MobileNetV3 evaluation
  interface hard-codes ``r = [224]``. Our space also has r in {160, 176, 192, 208, 224}: a fifth parameter
  ``r: {count: 1, vars: [...]}`` is added to DyNAS-T's ``SUPERNET_PARAMETERS`` entry (its generic encoding and
  one-hot features then cover it: 140 features instead of 135) and the evaluation interface is replaced by one
  that passes the decoded r on. ``--r224`` keeps DyNAS-T's stock space instead (r fixed at 224).
- Latency: DyNAS-T trains a latency predictor and uses it in the inner loop, as it does on real hardware
  (our ``linas`` uses the exact table there); measured latency comes from our table.
- MACs / parameters are not measured (0 in DyNAS-T's results CSV; they are not objectives).
- Every call to the evaluator's ``validate_top1`` is counted as an expensive evaluation, including
  sub-networks that DyNAS-T evaluates again in a later loop (it does not skip them); the number of such repeats
  is recorded per run.
- LINAS evaluates ``round(budget / 50)`` populations; after the last one it still trains its predictors and runs
  one more inner search whose result is not evaluated (DyNAS-T's behaviour; its time is in ``seconds``).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.abc
import importlib.machinery
import json
import logging
import os
import platform
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SUPERNET = "ofa_mbv3_d234_e346_k357_w1.2"
PROBLEM = "ofa_mbv3_note10"
CHECKPOINTS = (100, 250, 500)
STUBBED = ("torchvision", "fairseq", "dynast.supernetwork.machine_translation.transformer_interface")


# ---------------------------------------------------------------------------------------------------------------
# import workarounds


class _StubModule(types.ModuleType):
    """A package whose every attribute is an empty class (enough for module-level imports and subclassing)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__path__: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        cls = type(name, (), {"__init__": lambda self, *a, **k: None, "__module__": self.__name__})
        setattr(self, name, cls)
        return cls


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if any(fullname == n or fullname.startswith(n + ".") for n in self.names):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _StubModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__path__ = []


def _load() -> types.SimpleNamespace:
    """Import DyNAS-T (with the stubs) and elasticnas (from this repository's ``src``)."""
    if str(REPO / "src") not in sys.path:
        sys.path.insert(0, str(REPO / "src"))
    import numpy as np

    from elasticnas.pareto import hypervolume, hypervolume_history
    from elasticnas.problems import create_problem

    sys.meta_path.insert(0, _StubFinder(STUBBED))  # after elasticnas: only DyNAS-T sees the stubs
    import dynast
    import dynast.search.search_tactic as tactic
    from dynast.search.evaluation_interface import EvaluationInterface
    from dynast.supernetwork import supernetwork_registry as registry

    return types.SimpleNamespace(
        dynast=dynast,
        tactic=tactic,
        registry=registry,
        EvolutionaryManager=tactic.EvolutionaryManager,  # DyNAS-T's own, before _wire patches the name
        EvaluationInterface=EvaluationInterface,
        np=np,
        hypervolume=hypervolume,
        hypervolume_history=hypervolume_history,
        create_problem=create_problem,
    )


# ---------------------------------------------------------------------------------------------------------------
# the evaluator wired to our oracle


class Tracker:
    """Counts expensive evaluations and keeps their objective vectors (signed for minimisation)."""

    def __init__(self, problem: Any, budget: int) -> None:
        self.problem = problem
        self.budget = budget
        self.objectives = problem.objective_list
        self.latency = dict(problem.cheap_metrics)
        self.F: list[list[float]] = []
        self.seen: set[str] = set()
        self.seen_canonical: set[str] = set()
        self.repeats = 0  # the very same sub-network dict evaluated again
        self.canonical_repeats = 0  # the same network (differing at most in blocks its depth skips)
        self.r_counts: dict[int, int] = {}

    @staticmethod
    def config(sample: dict[str, Any]) -> dict[str, Any]:
        """DyNAS-T's sub-network dict -> our configuration."""
        r = sample["r"]
        return {
            "ks": [int(v) for v in sample["ks"]],
            "e": [int(v) for v in sample["e"]],
            "d": [int(v) for v in sample["d"]],
            "r": int(r[0] if isinstance(r, list | tuple) else r),
        }

    def cheap(self, sample: dict[str, Any]) -> float:
        (fn,) = self.latency.values()
        return float(fn(self.config(sample)))

    def expensive(self, sample: dict[str, Any]) -> dict[str, float]:
        if len(self.F) >= self.budget:
            raise RuntimeError(f"DyNAS-T asked for more than {self.budget} expensive evaluations")
        cfg = self.config(sample)
        key, canonical = repr(cfg), self.problem.space.config_id(cfg)
        self.repeats += key in self.seen
        self.canonical_repeats += canonical in self.seen_canonical
        self.seen.add(key)
        self.seen_canonical.add(canonical)
        metrics = self.problem(cfg)
        self.F.append([o.sign * float(metrics[o.name]) for o in self.objectives])
        self.r_counts[cfg["r"]] = self.r_counts.get(cfg["r"], 0) + 1
        return metrics


def _wire(
    ns: types.SimpleNamespace, tracker: Tracker, r_choices: list[int] | None, inner_evals: int
) -> dict[str, list]:
    """Patch DyNAS-T's registries so that LINAS on ``SUPERNET`` evaluates through ``tracker``; returns timing lists."""
    acc_name = next(o.name for o in tracker.objectives if o.name not in tracker.latency)  # accuracy_top1
    timings: dict[str, list[float]] = {"train_predictors": [], "inner_search": []}

    class OracleRunner:
        """Stands in for DyNAS-T's ``OFARunner``: validation asks our oracle; prediction mode uses the predictors
        LINAS trained (the same methods and return shapes as ``OFARunner``)."""

        def __init__(self, supernet: str, acc_predictor: Any = None, latency_predictor: Any = None, **_: Any) -> None:
            self.acc_predictor = acc_predictor
            self.latency_predictor = latency_predictor

        def estimate_accuracy_top1(self, features: Any) -> Any:
            return self.acc_predictor.predict(features)

        def estimate_latency(self, features: Any) -> Any:
            return self.latency_predictor.predict(features)

        def measure_latency(self, sample: dict[str, Any]) -> tuple[float, float]:
            return tracker.cheap(sample), 0.0

        def validate_top1(self, sample: dict[str, Any]) -> float:
            return float(tracker.expensive(sample)[acc_name])

    class OracleInterface(ns.EvaluationInterface):
        """DyNAS-T's evaluation-interface contract (pymoo vector in; sub-network and objectives out, accuracy
        negated; validated rows appended to the results CSV that LINAS trains its predictors on), with r decoded
        from the vector instead of fixed at 224."""

        def __init__(
            self,
            evaluator: Any,
            manager: Any,
            optimization_metrics: list,
            measurements: list,
            csv_path: str | None = None,
            predictor_mode: bool = False,
        ) -> None:
            super().__init__(evaluator, manager, optimization_metrics, measurements, csv_path, predictor_mode)

        def eval_subnet(self, x: Any) -> tuple:
            params = self.manager.translate2param(x)
            r = params.get("r", [224])
            sample = {"wid": None, "ks": params["ks"], "e": params["e"], "d": params["d"], "r": list(r)}
            if self.predictor_mode:
                features = self.manager.onehot_generic(x).reshape(1, -1)
                acc = self.evaluator.estimate_accuracy_top1(features)[0]
                lat = self.evaluator.estimate_latency(features)[0]
            else:
                lat, _ = self.evaluator.measure_latency(sample)
                acc = self.evaluator.validate_top1(sample)
                if self.csv_path:
                    with open(self.csv_path, "a", newline="") as fh:
                        # DyNAS-T's image-classification columns: subnet, date, params, latency, macs, top-1
                        csv.writer(fh).writerow([sample, time.strftime("%Y-%m-%d %H:%M:%S"), 0, lat, 0, acc])
            values = {"accuracy_top1": -acc, "latency": lat}
            return (sample, *(values[m] for m in self.optimization_metrics))

    class TimedManager(ns.EvolutionaryManager):
        def run_search(self, problem: Any, save_history: bool = False) -> Any:
            t = time.perf_counter()
            with (
                open(os.devnull, "w") as devnull,
                contextlib.redirect_stdout(devnull),
            ):  # pymoo prints a dot per generation
                out = super().run_search(problem, save_history)
            timings["inner_search"].append(time.perf_counter() - t)
            return out

    params = ns.registry.SUPERNET_PARAMETERS[SUPERNET]
    params.pop("r", None)
    if r_choices is not None:
        params["r"] = {"count": 1, "vars": list(r_choices)}
    ns.registry.EVALUATION_INTERFACE[SUPERNET] = OracleInterface
    ns.registry.LINAS_INNERLOOP_EVALS[SUPERNET] = inner_evals
    ns.tactic.OFARunner = OracleRunner
    ns.tactic.EvolutionaryManager = TimedManager
    return timings


def run_one(
    ns: types.SimpleNamespace, seed: int, budget: int, inner_evals: int, r224: bool, workdir: str
) -> dict[str, Any]:
    np = ns.np
    problem = ns.create_problem(PROBLEM)
    r_choices = None if r224 else [int(v) for v in problem.space.choices["r"].values]  # 160 ... 224
    tracker = Tracker(problem, budget)
    timings = _wire(ns, tracker, r_choices, inner_evals)
    chosen: list[dict[str, str]] = []  # the regressor DyNAS-T's GridSearchCV picked per objective and loop

    class TimedLINAS(ns.tactic.LINAS):
        def train_predictors(self, results_path: str | None = None) -> None:
            t = time.perf_counter()
            super().train_predictors(results_path)
            timings["train_predictors"].append(time.perf_counter() - t)
            chosen.append(
                {
                    k: type(p.searchers[p.best_index].best_estimator_).__name__
                    for k, p in self.predictor_dict.items()
                    if p is not None
                }
            )

    start = time.perf_counter()
    linas = TimedLINAS(
        supernet=SUPERNET,
        optimization_metrics=["accuracy_top1", "latency"],
        measurements=["accuracy_top1", "latency"],
        num_evals=budget,
        population=50,
        seed=seed,
        results_path=os.path.join(workdir, f"dynast_linas_seed{seed}.csv"),
        device="cpu",
    )
    linas.search()
    seconds = time.perf_counter() - start
    ref = problem.reference_point_min()
    front = problem.reference_front() * np.array([o.sign for o in problem.objective_list])
    history = ns.hypervolume_history(np.array(tracker.F), ref) / ns.hypervolume(front, ref)
    loops = len(timings["inner_search"])
    return {
        "problem": PROBLEM,
        "method": "dynast_linas",
        "seed": seed,
        "seconds": seconds,
        "evaluations": len(tracker.F),
        "repeated_evaluations": tracker.repeats,
        "canonical_repeats": tracker.canonical_repeats,
        "linas_loops": loops,
        "seconds_per_loop": seconds / max(loops, 1),
        "train_predictors_seconds": timings["train_predictors"],
        "inner_search_seconds": timings["inner_search"],
        "evaluated_r": {str(k): v for k, v in sorted(tracker.r_counts.items())},
        "predictors": chosen,
        "hv": history.tolist(),
    }


# ---------------------------------------------------------------------------------------------------------------
# summary


def _stats(np: Any, values: list[float]) -> dict[str, float]:
    q = np.percentile(np.asarray(values, dtype=float), [25, 50, 75])
    return {"median": float(q[1]), "q25": float(q[0]), "q75": float(q[2])}


def summarise(np: Any, runs: list[dict[str, Any]]) -> dict[str, Any]:
    n_min = min(len(r["hv"]) for r in runs)
    out: dict[str, Any] = {str(k): _stats(np, [r["hv"][k - 1] for r in runs]) for k in CHECKPOINTS if k <= n_min}
    out["seconds"] = _stats(np, [r["seconds"] for r in runs])
    out["seconds_per_loop"] = _stats(np, [r["seconds_per_loop"] for r in runs])
    out["inner_search_seconds"] = _stats(np, [s for r in runs for s in r["inner_search_seconds"]])
    out["train_predictors_seconds"] = _stats(np, [s for r in runs for s in r["train_predictors_seconds"]])
    out["repeated_evaluations"] = _stats(np, [r["repeated_evaluations"] for r in runs])
    out["canonical_repeats"] = _stats(np, [r["canonical_repeats"] for r in runs])
    return out


def markdown(result: dict[str, Any]) -> str:
    """The README table: DyNAS-T's LINAS next to our ``linas`` and ``predicted_hvi`` (medians [IQR])."""
    def fmt(st: dict[str, float] | None) -> str:
        return "-" if st is None else f"{st['median']:.3f} [{st['q25']:.3f}, {st['q75']:.3f}]"
    summ = result["summary"]
    lines = ["| method | seeds | 100 | 250 | 500 | s/run |", "|---|---:|---:|---:|---:|---:|"]
    cells = " | ".join(fmt(summ.get(str(k))) for k in CHECKPOINTS)
    lines.append(f"| DyNAS-T `LINAS` (this script) | {result['seeds']} | {cells} | {summ['seconds']['median']:.0f} |")
    for m, h in result.get("ours", {}).items():
        lines.append(
            f"| `{m}` (search_efficiency.json) | {result.get('ours_seeds', '-')} | "
            + " | ".join(fmt(h.get(str(k))) for k in CHECKPOINTS)
            + " | |"
        )
    return "\n".join(lines)


def ours_seeds(path: Path) -> int | None:
    return json.loads(path.read_text()).get("seeds") if path.exists() else None


def ours(path: Path) -> dict[str, Any]:
    """Our ``linas`` and ``predicted_hvi`` medians on the same problem, from the search-efficiency results."""
    if not path.exists():
        return {}
    summ = json.loads(path.read_text())["summary"].get(PROBLEM, {}).get("hv_fraction", {})
    return {
        m: {k: v for k, v in summ[m].items() if k in {str(c) for c in CHECKPOINTS}}
        for m in ("linas", "predicted_hvi")
        if m in summ
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--budget", type=int, default=500, help="expensive evaluations (LINAS runs round(budget/50) loops)")
    ap.add_argument(
        "--inner-evals", type=int, default=20000, help="predictor evaluations per LINAS loop (DyNAS-T: 20,000)"
    )
    ap.add_argument("--r224", action="store_true", help="DyNAS-T's stock space: r fixed at 224")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "search_efficiency_dynast.json")
    ap.add_argument("--append", action="store_true", help="keep the runs already in --out and add the missing seeds")
    ap.add_argument("--markdown", action="store_true", help="print the README table of --out and exit")
    ap.add_argument("--verbose", action="store_true", help="DyNAS-T's own INFO log")
    args = ap.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.out.read_text())))
        return 0
    if os.environ.get("PYTHONHASHSEED") != "0":  # DyNAS-T orders its objectives by list(set(...))
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(
            sys.executable,
            [sys.executable, str(Path(__file__).resolve()), *(argv if argv is not None else sys.argv[1:])],
        )
    t0 = time.perf_counter()
    ns = _load()
    import_seconds = time.perf_counter() - t0
    logging.getLogger("dynast").setLevel(logging.INFO if args.verbose else logging.WARNING)
    from dynast.utils import log as dynast_log

    dynast_log.setLevel(logging.INFO if args.verbose else logging.WARNING)
    versions = {}
    for pkg in ("dynast", "torch", "pymoo", "scikit-learn", "pandas", "numpy", "transformers"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[pkg] = version(pkg)
    start = time.time()
    runs: list[dict[str, Any]] = []
    result: dict[str, Any] = {}
    command = " ".join([sys.executable, "benchmarks/dynast_linas.py", *(argv if argv is not None else sys.argv[1:])])
    commands, wall_before = [command], 0.0
    if args.append and args.out.exists():  # add seeds to an earlier run's results (same settings)
        old = json.loads(args.out.read_text())
        runs, wall_before = old["runs"], float(old["wall_seconds"])
        commands = [*(old["command"] if isinstance(old["command"], list) else [old["command"]]), command]
    done = {r["seed"] for r in runs}
    with tempfile.TemporaryDirectory() as workdir:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            if seed in done:
                continue
            runs.append(run_one(ns, seed, args.budget, args.inner_evals, args.r224, workdir))
            r = runs[-1]
            hv = r["hv"]
            print(
                f"dynast_linas seed {seed:2d} {r['seconds']:7.1f}s ({r['linas_loops']} loops, "
                f"{r['seconds_per_loop']:.1f} s/loop) evals {r['evaluations']} (repeats {r['repeated_evaluations']}) "
                f"r {r['evaluated_r']} " + " ".join(f"hv@{k} {hv[k - 1]:.4f}" for k in CHECKPOINTS if k <= len(hv)),
                flush=True,
            )
            result = {
                "command": commands,
                "wall_seconds": wall_before + time.time() - start,
                "import_seconds": import_seconds,
                "machine": {
                    "platform": platform.platform(),
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "load_average": os.getloadavg(),
                },
                "versions": versions,
                "setup": {
                    "supernet": SUPERNET,
                    "problem": PROBLEM,
                    "population": 50,
                    "inner_evals": args.inner_evals,
                    "budget": args.budget,
                    "r": [224] if args.r224 else "searched: 160, 176, 192, 208, 224",
                    "inner_loop_latency": "DyNAS-T's latency predictor",
                    "stubbed_modules": list(STUBBED),
                },
                "seeds": len(runs),
                "summary": summarise(ns.np, runs),
                "ours": ours(HERE / "results" / "search_efficiency.json"),
                "ours_seeds": ours_seeds(HERE / "results" / "search_efficiency.json"),
                "runs": runs,
            }
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out} in {result['wall_seconds']:.0f} s")
    print(json.dumps({k: v for k, v in result["summary"].items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
