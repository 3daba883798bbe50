"""Subcommands over studies: search, pareto, report, demo."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from elasticnas.cli._args import LazySubParsers, data_source, positive_int
from elasticnas.errors import ElasticNASError

if TYPE_CHECKING:  # the modules below import Optuna, PyTorch and the search libraries: each function imports them
    from elasticnas.problems import Problem
    from elasticnas.records import TrialRecord
    from elasticnas.space import Config
    from elasticnas.study import Study

DEFAULT_STORAGE = "sqlite:///elasticnas.db"


def _add_storage_args(p: argparse.ArgumentParser, *, default_study: bool) -> None:
    p.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"Optuna storage URL: sqlite:///FILE.db or postgresql://USER@HOST/DB (default: {DEFAULT_STORAGE})",
    )
    p.add_argument(
        "--study",
        required=not default_study,
        help="study name" + (" (default: the problem's name)" if default_study else ""),
    )


def _print_front(study: Study, limit: int = 15) -> None:
    from elasticnas.report import format_table, pareto_rows

    header, rows = pareto_rows(study)
    shown = [row[:-1] for row in rows[:limit]]  # the config JSON is too wide for a terminal
    print(format_table(header[:-1], shown))
    if len(rows) > limit:
        print(f"... {len(rows) - limit} more; full table: elasticnas pareto --csv FILE")


def _reference_point(problem: Problem, objectives: Iterable[str]) -> list[float] | None:
    """The problem's hypervolume reference point restricted to the chosen objectives."""
    if problem.reference_point is None:
        return None
    names = list(problem.objectives)
    return [problem.reference_point[names.index(n)] for n in objectives]


# -- search ---------------------------------------------------------------------------------
DEFAULT_SUPERNET_OBJECTIVES = "accuracy_top1,latency_ms"
DATA_METRICS = {"accuracy_top1", "accuracy_top5", "loss"}  # measured on validation data


def _split(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _builtin_problem(args: argparse.Namespace) -> tuple[Problem, dict[str, str]]:
    from elasticnas.problems import create_problem

    problem = create_problem(args.problem)
    objectives = dict(problem.objectives)
    if args.objectives:
        names = _split(args.objectives)
        unknown = [n for n in names if n not in objectives]
        if unknown or not names:
            raise ElasticNASError(
                f"problem {args.problem!r} has no objective {unknown[0] if unknown else args.objectives!r}; "
                f"choose from: {', '.join(objectives)}"
            )
        objectives = {n: objectives[n] for n in names}
    return problem, objectives


def _supernet_problem(args: argparse.Namespace) -> tuple[Problem, dict[str, str]]:
    from elasticnas.measure import get_metric
    from elasticnas.problems._supernet import supernet_problem
    from elasticnas.records import as_constraints
    from elasticnas.supernets import create_supernet

    objectives = _split(args.objectives or DEFAULT_SUPERNET_OBJECTIVES)
    extra = [c.metric for c in as_constraints(args.constraint)]
    needs_data = any(get_metric(n).name in DATA_METRICS for n in [*objectives, *extra])
    supernet = create_supernet(args.supernet, weights=args.weights)
    problem = supernet_problem(
        supernet,
        objectives,
        extra_metrics=extra,
        runtime=args.runtime,
        device=args.device,
        batch_size=args.batch_size,
        threads=args.threads,
        lut=args.lut,
        **(_data_kwargs(args) if needs_data else {}),
    )
    return problem, dict(problem.objectives)


def _data_kwargs(args: argparse.Namespace) -> dict[str, object]:
    """Validation and calibration data from the flags, else the super-network's built-in data set."""
    from elasticnas.problems._supernet import builtin_data

    if args.val_data is None:
        return builtin_data(args.supernet)
    val = data_source(args.val_data)
    return {"val_data": val, "calib_data": data_source(args.calib_data) if args.calib_data else val}


def _evaluate_extremes(study: Study, problem: Problem, n_evals: int) -> None:
    """Evaluate a new study's largest and smallest sub-networks first.

    They bound the accuracy / cost trade-off, so the searcher's hypervolume reference
    spans the whole front from the first round. Skipped for candidates that violate a
    constraint on a cheap metric (those are never evaluated) and for tiny budgets.
    """
    if study.n_evals or n_evals < 4:
        return
    space = problem.space
    for genes in (space.cardinalities - 1, space.cardinalities * 0):
        config = space.from_genes(genes)
        cheap = {c.metric: problem.cheap_metrics[c.metric](config) for c in study.constraints
                 if c.metric in problem.cheap_metrics}
        if all(c.violation(cheap[c.metric]) == 0.0 for c in study.constraints if c.metric in cheap):
            study.evaluate_config(problem.evaluate, config, problem.cheap_metrics)


def _evaluate_fn(args: argparse.Namespace) -> Callable[[Config], dict[str, float]]:
    """The search's expensive evaluation, built from the arguments (run once in each Ray worker)."""
    return (_supernet_problem(args) if args.supernet else _builtin_problem(args))[0].evaluate


def _search(args: argparse.Namespace) -> int:
    from elasticnas.study import create_study

    if (args.problem is None) == (args.supernet is None):
        raise ElasticNASError("give exactly one of --problem NAME or --supernet NAME")
    problem, objectives = _supernet_problem(args) if args.supernet else _builtin_problem(args)
    study = create_study(
        problem.space,
        objectives,
        storage=args.storage,
        study_name=args.study or args.problem or args.supernet,
        constraints=args.constraint,
        reference_point=_reference_point(problem, objectives),
    )
    if args.workers or args.ray_address:
        from elasticnas.distributed import optimize_parallel

        optimize_parallel(
            study,
            functools.partial(_evaluate_fn, args),  # each Ray worker builds the problem once
            n_evals=args.n_evals,
            n_workers=args.workers,
            ray_address=args.ray_address,
            searcher=args.searcher,
            seed=args.seed,
            cheap_metrics=problem.cheap_metrics,
            show_progress=not args.quiet,
        )
    else:
        if args.supernet:
            _evaluate_extremes(study, problem, args.n_evals)
        study.optimize(
            problem.evaluate,
            n_evals=args.n_evals,
            searcher=args.searcher,
            seed=args.seed,
            cheap_metrics=problem.cheap_metrics,
            batch_size=args.round_size,
            show_progress=not args.quiet,
        )
    if not args.quiet:
        _print_front(study)
    print(
        f"study {study.name!r}: {study.n_evals} evaluations, {len(study.pareto_front())} on the Pareto front; "
        f"report: elasticnas report --storage {args.storage} --study {study.name} --out report.html"
    )
    return 0


def _add_search(sub: LazySubParsers) -> None:
    sub.add_lazy_parser(
        "search",
        _fill_search,
        help="search a super-network or a built-in problem for its Pareto-optimal configurations",
        description=(
            "Run a multi-objective search and record every evaluation in an Optuna study. "
            "Re-running the same command continues the study until --n-evals evaluations are recorded; "
            "a configuration the study holds is never evaluated again."
        ),
    )


def _fill_search(p: argparse.ArgumentParser) -> None:
    from elasticnas.measure import list_metrics
    from elasticnas.problems import list_problems
    from elasticnas.searchers import list_searchers
    from elasticnas.study import DEFAULT_SEARCHER
    from elasticnas.supernets import list_supernets

    what = p.add_argument_group("what to search (one of)")
    what.add_argument("--supernet", help=f"super-network: {', '.join(list_supernets())}")
    what.add_argument("--problem", help=f"built-in problem: {', '.join(list_problems())}")
    p.add_argument(
        "--objectives",
        help=f"comma-separated metrics (super-network default: {DEFAULT_SUPERNET_OBJECTIVES}; "
        f"problem default: all its objectives); metrics: {', '.join(list_metrics())}",
    )
    p.add_argument("--n-evals", type=positive_int, default=200, help="total expensive evaluations (default: 200)")
    p.add_argument(
        "--searcher", default=DEFAULT_SEARCHER, help=f"one of: {', '.join(list_searchers())} (default: {DEFAULT_SEARCHER})"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--constraint", action="append", default=[], metavar="EXPR", help="e.g. latency_ms<=20; may be repeated"
    )
    p.add_argument("--round-size", type=positive_int, default=1, help="configurations proposed per round (default: 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or table")
    _add_storage_args(p, default_study=True)
    r = p.add_argument_group("parallel evaluation on Ray (pip install 'elasticnas[ray]')")
    r.add_argument("--workers", type=positive_int, help="evaluate on N Ray workers at once (local Ray runtime)")
    r.add_argument("--ray-address", metavar="auto|HOST:PORT", help="evaluate on the workers of a running Ray cluster")
    m = p.add_argument_group("measurement (with --supernet)")
    m.add_argument("--weights", help="checkpoint of the super-network (default: its built-in weights, if any)")
    m.add_argument("--val-data", help="validation data: an ImageNet-layout image folder or a built-in NAME:SPLIT "
                   "(default: the super-network's built-in data set, e.g. digits:val for tiny_mbv3)")
    m.add_argument("--calib-data", help="data for BatchNorm recalibration (default: --val-data, or the built-in "
                   "calibration split)")
    m.add_argument("--runtime", default="onnxruntime", choices=["torch", "onnxruntime"],
                   help="latency runtime (default: onnxruntime)")
    m.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="latency device (default: cpu)")
    m.add_argument("--batch-size", type=positive_int, default=1, help="latency batch size (default: 1)")
    m.add_argument("--threads", type=positive_int, help="inference threads, pinned and recorded (default: all cores)")
    m.add_argument("--lut", help="latency lookup table (JSON from 'elasticnas lut build') for latency_lut_ms")
    p.set_defaults(func=_search)


# -- pareto / report ------------------------------------------------------------------------------
def _pareto(args: argparse.Namespace) -> int:
    from elasticnas.report import pareto_rows, write_csv
    from elasticnas.study import load_study

    study = load_study(args.storage, args.study)
    if args.csv:
        header, rows = pareto_rows(study)
        write_csv(args.csv, header, rows)
        print(f"wrote {len(rows)} Pareto configurations to {args.csv}")
    else:
        _print_front(study, limit=sys.maxsize)
    return 0


def _report(args: argparse.Namespace) -> int:
    from elasticnas.report import write_report
    from elasticnas.study import load_study

    study = load_study(args.storage, args.study)
    path = write_report(study, args.out)
    print(f"wrote {path}")
    return 0


def _add_pareto_report(sub: LazySubParsers) -> None:
    sub.add_lazy_parser("pareto", _fill_pareto, help="print (or save) the Pareto front of a study")
    sub.add_lazy_parser("report", _fill_report, help="write a self-contained HTML report of a study")


def _fill_pareto(p: argparse.ArgumentParser) -> None:
    _add_storage_args(p, default_study=False)
    p.add_argument("--csv", metavar="FILE", help="write the front with full configurations as CSV")
    p.set_defaults(func=_pareto)


def _fill_report(p: argparse.ArgumentParser) -> None:
    _add_storage_args(p, default_study=False)
    p.add_argument("--out", default="report.html", help="HTML file to write (default: report.html)")
    p.set_defaults(func=_report)


# -- demo ------------------------------------------------------------------------------------------------
DEMO_SUPERNET = "tiny_mbv3"
DEMO_OBJECTIVES = ("accuracy_top1", "latency_ms")


def _pick_for_export(front: list[TrialRecord], tolerance: float = 1.0) -> TrialRecord:
    """The fastest configuration within ``tolerance`` accuracy points of the most accurate one."""
    best = max(r.metrics["accuracy_top1"] for r in front)
    close = [r for r in front if r.metrics["accuracy_top1"] >= best - tolerance]
    return min(close, key=lambda r: r.metrics["latency_ms"])


def _demo(args: argparse.Namespace) -> int:
    from elasticnas.export import export_subnet
    from elasticnas.problems._supernet import builtin_data, supernet_problem
    from elasticnas.report import pareto_rows, write_csv, write_report
    from elasticnas.study import create_study
    from elasticnas.supernets import create_supernet

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ElasticNASError(f"cannot create output folder {str(out)!r}: {exc.strerror or exc}") from None
    supernet = create_supernet(DEMO_SUPERNET)  # its shipped trained weights
    problem = supernet_problem(supernet, DEMO_OBJECTIVES, runtime="onnxruntime", **builtin_data(DEMO_SUPERNET))
    print(
        f"elasticnas demo: searching the built-in {DEMO_SUPERNET} super-network (trained on scikit-learn's digits) "
        f"for the best trade-offs of validation accuracy (BatchNorm recalibrated) and ONNX Runtime latency "
        f"on this CPU, {args.n_evals} evaluations"
    )
    study = create_study(problem.space, dict(problem.objectives), storage=f"sqlite:///{out / 'study.db'}",
                         study_name="demo")
    _evaluate_extremes(study, problem, args.n_evals)
    study.optimize(
        problem.evaluate, n_evals=args.n_evals, seed=args.seed, cheap_metrics=problem.cheap_metrics, show_progress=True
    )
    _print_front(study)
    report = write_report(study, out / "report.html")
    header, rows = pareto_rows(study)
    write_csv(out / "pareto.csv", header, rows)
    chosen = _pick_for_export(study.pareto_front())
    exported = export_subnet(supernet, chosen.config, format="onnx", path=out / "subnet.onnx")
    print(
        f"exported trial {chosen.number} (accuracy {chosen.metrics['accuracy_top1']:.2f} %, "
        f"latency {chosen.metrics['latency_ms']:.3f} ms; the fastest within 1 point of the best accuracy) "
        f"to {exported.path}; ONNX Runtime matches PyTorch to {exported.max_abs_diff:.1e}"
    )
    print(f"wrote {out / 'study.db'}, {report} and {out / 'pareto.csv'}")
    return 0


def _add_demo(sub: LazySubParsers) -> None:
    sub.add_lazy_parser(
        "demo",
        _fill_demo,
        help="run a complete hardware-aware search on the built-in super-network and export the pick",
        description=(
            "A first tour, offline, in a few minutes: search the built-in trained tiny_mbv3 super-network for "
            "accuracy against ONNX Runtime latency on this machine, print the Pareto table, and write the study "
            "(SQLite), an HTML report, the Pareto table (CSV) and the ONNX export of the fastest sub-network within "
            "one accuracy point of the best into --out. Re-running continues the same study."
        ),
    )


def _fill_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="elasticnas-demo", help="output folder (default: ./elasticnas-demo)")
    p.add_argument("--n-evals", type=positive_int, default=80, help="measured sub-networks (default: 80)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.set_defaults(func=_demo)


def register(sub: LazySubParsers) -> None:
    _add_demo(sub)
    _add_search(sub)
    _add_pareto_report(sub)
