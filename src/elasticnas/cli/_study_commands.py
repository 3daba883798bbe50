"""Subcommands over studies: search, pareto, report, demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from elasticnas.errors import ElasticNASError
from elasticnas.report import format_table, pareto_rows, write_csv, write_report
from elasticnas.searchers import list_searchers
from elasticnas.study import DEFAULT_SEARCHER, Study, create_study, load_study

if TYPE_CHECKING:
    from elasticnas.problems import Problem

DEFAULT_STORAGE = "sqlite:///elasticnas.db"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


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
def _search(args: argparse.Namespace) -> int:
    from elasticnas.problems import create_problem

    problem = create_problem(args.problem)
    objectives = dict(problem.objectives)
    if args.objectives:
        names = [n.strip() for n in args.objectives.split(",") if n.strip()]
        unknown = [n for n in names if n not in objectives]
        if unknown or not names:
            raise ElasticNASError(
                f"problem {args.problem!r} has no objective {unknown[0] if unknown else args.objectives!r}; "
                f"choose from: {', '.join(objectives)}"
            )
        objectives = {n: objectives[n] for n in names}
    study = create_study(
        problem.space,
        objectives,
        storage=args.storage,
        study_name=args.study or args.problem,
        constraints=args.constraint,
        reference_point=_reference_point(problem, objectives),
    )
    study.optimize(
        problem.evaluate,
        n_evals=args.n_evals,
        searcher=args.searcher,
        seed=args.seed,
        cheap_metrics=problem.cheap_metrics,
        batch_size=args.batch_size,
        show_progress=not args.quiet,
    )
    if not args.quiet:
        _print_front(study)
    print(
        f"study {study.name!r}: {study.n_evals} evaluations, {len(study.pareto_front())} on the Pareto front; "
        f"report: elasticnas report --storage {args.storage} --study {study.name} --out report.html"
    )
    return 0


def _add_search(sub: argparse._SubParsersAction) -> None:
    from elasticnas.problems import list_problems

    p = sub.add_parser(
        "search",
        help="search a built-in problem for its Pareto-optimal configurations",
        description=(
            "Run a multi-objective search and record every evaluation in an Optuna study. "
            "Re-running the same command continues the study until --n-evals evaluations are recorded."
        ),
    )
    p.add_argument("--problem", required=True, choices=list_problems(), help="built-in problem to search")
    p.add_argument("--objectives", help="comma-separated subset of the problem's objectives (default: all)")
    p.add_argument("--n-evals", type=_positive_int, default=200, help="total expensive evaluations (default: 200)")
    p.add_argument(
        "--searcher", default=DEFAULT_SEARCHER, help=f"one of: {', '.join(list_searchers())} (default: {DEFAULT_SEARCHER})"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--constraint", action="append", default=[], metavar="EXPR", help="e.g. latency_ms<=20; may be repeated"
    )
    p.add_argument("--batch-size", type=_positive_int, default=1, help="proposals per searcher round (default: 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or table")
    _add_storage_args(p, default_study=True)
    p.set_defaults(func=_search)


# -- pareto / report ------------------------------------------------------------------------------
def _pareto(args: argparse.Namespace) -> int:
    study = load_study(args.storage, args.study)
    if args.csv:
        header, rows = pareto_rows(study)
        write_csv(args.csv, header, rows)
        print(f"wrote {len(rows)} Pareto configurations to {args.csv}")
    else:
        _print_front(study, limit=sys.maxsize)
    return 0


def _report(args: argparse.Namespace) -> int:
    study = load_study(args.storage, args.study)
    path = write_report(study, args.out)
    print(f"wrote {path}")
    return 0


def _add_pareto_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pareto", help="print (or save) the Pareto front of a study")
    _add_storage_args(p, default_study=False)
    p.add_argument("--csv", metavar="FILE", help="write the front with full configurations as CSV")
    p.set_defaults(func=_pareto)

    p = sub.add_parser("report", help="write a self-contained HTML report of a study")
    _add_storage_args(p, default_study=False)
    p.add_argument("--out", default="report.html", help="HTML file to write (default: report.html)")
    p.set_defaults(func=_report)


# -- demo ------------------------------------------------------------------------------------------------
DEMO_PROBLEM = "ofa_mbv3_note10"


def _demo(args: argparse.Namespace) -> int:
    from elasticnas.problems import create_problem

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ElasticNASError(f"cannot create output folder {str(out)!r}: {exc.strerror or exc}") from None
    problem = create_problem(DEMO_PROBLEM)
    print(f"elasticnas demo: {problem.description}")
    storage = f"sqlite:///{out / 'study.db'}"
    objectives = dict(problem.objectives)
    study = create_study(
        problem.space,
        objectives,
        storage=storage,
        study_name="demo",
        reference_point=_reference_point(problem, objectives),
    )
    study.optimize(
        problem.evaluate, n_evals=args.n_evals, seed=args.seed, cheap_metrics=problem.cheap_metrics, show_progress=True
    )
    _print_front(study)
    report = write_report(study, out / "report.html")
    header, rows = pareto_rows(study)
    write_csv(out / "pareto.csv", header, rows)
    print(f"wrote {out / 'study.db'}, {report} and {out / 'pareto.csv'}")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run a complete hardware-aware search on the built-in example and write its report",
        description="A first tour: search the built-in problem, print the Pareto table, write study, report and CSV.",
    )
    p.add_argument("--out", default="elasticnas-demo", help="output folder (default: ./elasticnas-demo)")
    p.add_argument("--n-evals", type=_positive_int, default=250, help="expensive evaluations (default: 250)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.set_defaults(func=_demo)


def register(sub: argparse._SubParsersAction) -> None:
    _add_demo(sub)
    _add_search(sub)
    _add_pareto_report(sub)
