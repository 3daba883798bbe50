"""Subcommands over studies: search, pareto, report, studies, demo."""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elasticnas._io import check_output_path
from elasticnas.cli._args import (
    DefaultsFormatter,
    LazySubParsers,
    add_progress_flag,
    add_task_arg,
    add_token_args,
    batch_size,
    input_file,
    positive_int,
    seed,
    supernet_kwargs,
    thread_count,
    wants_progress,
)
from elasticnas.errors import ElasticNASError, StorageError

if TYPE_CHECKING:  # the modules below import Optuna, PyTorch and the search libraries: each function imports them
    from elasticnas.problems import Problem
    from elasticnas.space import Config
    from elasticnas.study import Study
    from elasticnas.supernets import Supernet

DEFAULT_STORAGE = "sqlite:///elasticnas.db"


def _add_storage_args(p: argparse.ArgumentParser, *, default_study: bool) -> None:
    p.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help="Optuna storage URL: sqlite:///FILE.db or postgresql://USER@HOST/DB",
    )
    p.add_argument(
        "--study",
        required=not default_study,
        help="study name" + (" (default: the problem's or super-network's name)" if default_study else ""),
    )


def _print_front(study: Study, limit: int = 15, target: str | None = None) -> None:
    """The front (of ``target``; of every target in turn for a study with targets) as a table."""
    from elasticnas.report import format_table, pareto_rows

    if target is None and study.targets:
        for name in study.targets:
            print(f"target {name}:")
            _print_front(study, limit, name)
        return
    header, rows = pareto_rows(study, target)
    shown = [row[:-1] for row in rows[:limit]]  # the config JSON is too wide for a terminal
    print(format_table(header[:-1], shown))
    if len(rows) > limit:
        which = f" --target {target}" if target else ""
        print(f"... {len(rows) - limit} more; full table: elasticnas pareto{which} --csv FILE")


def _reference_point(problem: Problem, objectives: Iterable[str]) -> list[float] | None:
    """The problem's hypervolume reference point restricted to the chosen objectives."""
    if problem.reference_point is None:
        return None
    names = list(problem.objectives)
    return [problem.reference_point[names.index(n)] for n in objectives]


# -- search ---------------------------------------------------------------------------------
DEFAULT_SUPERNET_OBJECTIVES = "accuracy_top1,latency_ms"
DATA_METRICS = {"accuracy_top1", "accuracy_top5", "loss", "perplexity"}  # measured on validation data
_WHAT_TO_SEARCH = "give exactly one of --problem NAME or --supernet NAME"
_PROBLEM_ATTR = "elasticnas_problem"  # the built-in problem a CLI study searches
# CLI flag -> Measurer.settings() key: what a resumed search takes from the study
_MEASUREMENT_FLAGS = {
    "supernet": "supernet", "weights": "weights", "val_data": "val_data", "calib_data": "calib_data",
    "runtime": "runtime", "device": "device", "batch_size": "batch_size", "threads": "threads", "lut": "lut",
    "max_val_batches": "max_val_batches", "seq_len": "seq_len", "context_len": "context_len",
    "precisions": "precisions",
}


class _Explicit(argparse.Action):
    """Stores a value and notes that the user gave the option (``namespace.explicit``), so a resumed
    search can tell a flag typed on the command line from a default."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if self.dest == "constraint":
            values = [*(getattr(namespace, self.dest) or []), values]
        setattr(namespace, self.dest, values)
        namespace.explicit = {*getattr(namespace, "explicit", set()), self.dest}


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _split(text: str, flag: str = "--objectives") -> list[str]:
    """The comma-separated names of ``--objectives`` (or another ``flag``: ``--targets``), each at most once."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ElasticNASError(f"{flag} names {twice[0]!r} twice; give each {flag[2:].rstrip('s')} once")
    return names


def _targets(
    problem: Problem, objectives: dict[str, str], chosen: str | None
) -> tuple[dict[str, str], dict[str, list[str]] | None]:
    """The objectives and hardware targets of a search: ``--targets`` (default: all of the problem's) keeps
    those targets' own objectives and the shared ones."""
    if not problem.targets:
        if chosen:
            raise ElasticNASError(f"--targets is for problems with hardware targets; {problem.name!r} has none")
        return objectives, None
    names = _split(chosen, "--targets") if chosen else list(problem.targets)
    unknown = [n for n in names if n not in problem.targets]
    if unknown or not names:
        raise ElasticNASError(f"problem {problem.name!r} has no target {unknown[0] if unknown else chosen!r}; "
                              f"choose from: {', '.join(problem.targets)}")
    dropped = {m for t, own in problem.targets.items() if t not in names for m in own}
    kept = {n: d for n, d in objectives.items() if n not in dropped}
    targets = {t: [m for m in problem.targets[t] if m in kept] for t in names}
    return kept, {t: own for t, own in targets.items() if own} or None


def _builtin_problem(args: argparse.Namespace) -> tuple[Problem, dict[str, str]]:
    from elasticnas.problems import create_problem

    problem = create_problem(args.problem)
    objectives: dict[str, str] = dict(problem.objectives)
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
    supernet = create_supernet(args.supernet, weights=args.weights, **supernet_kwargs(args))
    data = _data_kwargs(args, required=needs_data)
    if args.precisions is not None:
        supernet = _quantized(supernet, args.precisions, data.get("calib_data"))
    problem = supernet_problem(
        supernet,
        objectives,
        extra_metrics=extra,
        runtime=args.runtime,
        device=args.device,
        batch_size=args.batch_size,
        threads=args.threads,
        lut=args.lut,
        max_val_batches=args.max_val_batches,
        seq_len=args.seq_len,
        context_len=args.context_len,
        **data,
    )
    return problem, dict(problem.objectives)


def _precisions(text: str) -> tuple[str, ...]:
    """``--precisions``: comma-separated, fp32 and int8 and optionally int4 (weight-only, transformer linears)."""
    from elasticnas.quantization import PRECISIONS

    chosen = tuple(_split(text, "--precisions"))
    if not {"fp32", "int8"} <= set(chosen) or not set(chosen) <= set(PRECISIONS):
        raise ElasticNASError(
            f"--precisions {text!r}: give fp32,int8 (one of them per layer) or fp32,int8,int4 (INT4 weight-only for "
            "the linear layers of elastic transformers)"
        )
    return chosen


def _quantized(supernet: Supernet, precisions: str, calib_data: str | None) -> Supernet:
    """``supernet`` searched over architecture x per-layer precision, its INT8 activation ranges (and, for
    BatchNorm networks, statistics) calibrated on ``calib_data``."""
    from elasticnas.measure import Calibration
    from elasticnas.quantization import quantize_supernet

    calibration = None if calib_data is None else Calibration(calib_data)
    return quantize_supernet(supernet, calibration=calibration, int4="int4" in _precisions(precisions))


def _flag_settings(measurement: dict[str, Any], study: str) -> dict[str, Any]:
    """The measurement of a study as the flags that built it: a quantized super-network's base name, weights
    and ``--precisions`` from its recipe. Other wrappers have no flags: such studies continue in Python."""
    recipe = measurement.get("recipe") or {}
    if "wrapper" not in recipe:
        return {**measurement, "precisions": None}
    if recipe["wrapper"] != "qdq" or "wrapper" in recipe["base"]:
        raise ElasticNASError(
            f"study {study!r} searches a super-network built in Python ({measurement.get('supernet')!r}), which the "
            "command line cannot build again; continue it with study.optimize"
        )
    precisions = "fp32,int8,int4" if recipe["options"].get("int4") else "fp32,int8"
    return {**measurement, "supernet": recipe["base"]["supernet"], "weights": recipe["base"]["weights"],
            "precisions": precisions}


def _data_kwargs(args: argparse.Namespace, *, required: bool) -> dict[str, str]:
    """Validation and calibration data specs from the flags, else the super-network's built-in data set
    (when it has one, or when ``required``: then its absence is an error)."""
    from elasticnas.problems._supernet import BUILTIN_DATA, builtin_data

    if args.val_data is None:
        return builtin_data(args.supernet) if required or args.supernet in BUILTIN_DATA else {}
    return {"val_data": args.val_data, "calib_data": args.calib_data or args.val_data}


def _evaluate_fn(args: argparse.Namespace) -> Callable[[Config], dict[str, float]]:
    """The search's expensive evaluation, built from the arguments (run once in each Ray worker)."""
    return (_supernet_problem(args) if args.supernet else _builtin_problem(args))[0].evaluate


def _resume_settings(args: argparse.Namespace) -> None:
    """Fill the flags a user left out from the study being resumed, and refuse the ones that differ.

    Only ``--storage``, ``--study`` and ``--n-evals`` are needed to continue a search: the
    super-network or problem, objectives, constraints and measurement settings are the study's.
    """
    from elasticnas.study import load_study

    name = args.study or args.problem or args.supernet
    if name is None:
        raise ElasticNASError(f"{_WHAT_TO_SEARCH}, or --study NAME to continue a search")
    try:
        study = load_study(args.storage, name)
    except StorageError as exc:
        if args.problem is None and args.supernet is None:
            raise ElasticNASError(f"{_WHAT_TO_SEARCH} to start study {name!r} ({exc})") from None
        return  # a new study
    explicit: set[str] = getattr(args, "explicit", set())
    stored: dict[str, Any] = {
        "objectives": ",".join(o.name for o in study.objectives),
        "constraint": [str(c) for c in study.constraints],
        "problem": study.optuna_study.user_attrs.get(_PROBLEM_ATTR),
        "targets": ",".join(study.targets) if study.targets else None,
    }
    measurement = study.measurement or {}
    if measurement:
        flags = _flag_settings(measurement, study.name)
        stored.update({dest: flags.get(key) for dest, key in _MEASUREMENT_FLAGS.items()})
    if stored["problem"] is None and not measurement:
        if args.problem is None and args.supernet is None:
            raise ElasticNASError(
                f"study {study.name!r} records no super-network or problem (it was not created by "
                "'elasticnas search'): give --supernet NAME or --problem NAME, or continue it with study.optimize"
            )
        return  # create_study checks that its space, objectives and constraints match
    kind = "problem" if stored["problem"] is not None else "supernet"
    other = "supernet" if kind == "problem" else "problem"
    if other in explicit:
        raise ElasticNASError(f"study {study.name!r} searches {kind} {stored.get(kind)!r}, not a {other}: "
                              f"leave {_flag(other)} out to continue it, or give another --study name")
    for dest, value in stored.items():
        given = getattr(args, dest)
        if dest not in explicit:
            setattr(args, dest, value)
            continue
        same = given == value
        if dest in ("weights", "lut", "val_data", "calib_data") and given is not None and value is not None:
            same = _same_path(given, value)
        elif dest in ("objectives", "targets"):
            same = _split(given or "", _flag(dest)) == _split(value or "", _flag(dest))
        elif dest == "constraint":
            from elasticnas.records import as_constraints

            same = as_constraints(given) == as_constraints(value)
        if not same:
            raise ElasticNASError(
                f"{_flag(dest)} {given!r} differs from study {study.name!r}, which has {value!r}; "
                f"leave {_flag(dest)} out to continue it, or give another --study name"
            )


def _same_path(a: str, b: str) -> bool:
    import os

    return os.path.abspath(a) == os.path.abspath(b) if os.path.exists(a) else a == b


def _search(args: argparse.Namespace) -> int:
    from elasticnas.study import create_study, extremes

    if args.problem is not None and args.supernet is not None:
        raise ElasticNASError(_WHAT_TO_SEARCH)
    _resume_settings(args)
    problem, objectives = _supernet_problem(args) if args.supernet else _builtin_problem(args)
    objectives, targets = _targets(problem, objectives, args.targets)
    study = create_study(
        problem.space,
        objectives,
        storage=args.storage,
        study_name=args.study or args.problem or args.supernet,
        constraints=args.constraint,
        reference_point=_reference_point(problem, objectives),
        targets=targets,
    )
    if problem.measurement is not None:
        study.set_measurement(problem.measurement)
    if args.problem:
        study.optuna_study.set_user_attr(_PROBLEM_ATTR, args.problem)
    progress = wants_progress(args)
    initial = extremes(problem.space) if args.supernet else []  # they bound the trade-off from the start
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
            show_progress=progress,
            initial_configs=initial,
        )
    else:
        study.optimize(
            problem.evaluate,
            n_evals=args.n_evals,
            searcher=args.searcher,
            seed=args.seed,
            cheap_metrics=problem.cheap_metrics,
            round_size=args.round_size,
            show_progress=progress,
            initial_configs=initial,
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
            "Re-running with --storage, --study and a larger --n-evals continues the study until --n-evals "
            "evaluations are recorded, with the super-network or problem, objectives, constraints and measurement "
            "settings the study recorded; a configuration the study holds is never evaluated again."
        ),
        formatter_class=DefaultsFormatter,
    )


def _fill_search(p: argparse.ArgumentParser) -> None:
    from elasticnas.measure import DEFAULT_RUNTIME, list_metrics, list_runtimes
    from elasticnas.problems import list_problems
    from elasticnas.searchers import list_searchers
    from elasticnas.study import DEFAULT_SEARCHER
    from elasticnas.supernets import list_supernets

    what = p.add_argument_group("what to search (one of; a resumed study knows)")
    what.add_argument("--supernet", action=_Explicit, help=f"super-network: {', '.join(list_supernets())}")
    what.add_argument("--problem", action=_Explicit, help=f"built-in problem: {', '.join(list_problems())}")
    p.add_argument(
        "--objectives", action=_Explicit,
        help=f"comma-separated metrics (super-network default: {DEFAULT_SUPERNET_OBJECTIVES}; "
        f"problem default: all its objectives); metrics: {', '.join(list_metrics())}",
    )
    p.add_argument("--n-evals", type=positive_int, default=200, help="total expensive evaluations")
    p.add_argument("--searcher", default=DEFAULT_SEARCHER, help=f"one of: {', '.join(list_searchers())}")
    p.add_argument("--seed", type=seed, default=0, help="random seed")
    p.add_argument("--constraint", action=_Explicit, default=[], metavar="EXPR",
                   help="e.g. latency_ms<=20; may be repeated")
    p.add_argument("--targets", action=_Explicit, metavar="NAMES",
                   help="for problems with hardware targets (e.g. hwgpt_s_devices, ofa_mbv3_devices): the targets "
                   "whose fronts one search finds at once, comma-separated (default: all); the expensive "
                   "evaluations are shared, 'elasticnas pareto --target NAME' shows one front")
    p.add_argument("--round-size", type=positive_int, default=1, help="configurations proposed per round")
    p.add_argument("--quiet", action="store_true", help="no progress bar or table")
    add_progress_flag(p)
    _add_storage_args(p, default_study=True)
    r = p.add_argument_group("parallel evaluation on Ray (pip install 'elasticnas[ray]')")
    r.add_argument("--workers", type=positive_int, help="evaluate on N Ray workers at once (local Ray runtime)")
    r.add_argument("--ray-address", metavar="auto|HOST:PORT", help="evaluate on the workers of a running Ray cluster")
    m = p.add_argument_group("measurement (with --supernet)")
    add_task_arg(m)
    m.add_argument("--weights", action=_Explicit, type=input_file,
                   help="checkpoint of the super-network (default: its built-in weights, if any)")
    m.add_argument("--val-data", action=_Explicit, help="validation data: an ImageNet-layout image folder or a "
                   "built-in NAME:SPLIT (default: the super-network's built-in data set, e.g. digits:val for "
                   "tiny_mbv3)")
    m.add_argument("--calib-data", action=_Explicit, help="data for BatchNorm recalibration (default: --val-data, "
                   "or the built-in calibration split)")
    m.add_argument("--runtime", action=_Explicit, default=DEFAULT_RUNTIME, choices=list_runtimes(),
                   help="latency runtime")
    m.add_argument("--device", action=_Explicit, default="cpu", choices=["cpu", "cuda"], help="latency device")
    m.add_argument("--batch-size", action=_Explicit, type=batch_size, default=1, help="latency batch size")
    m.add_argument("--threads", action=_Explicit, type=thread_count, default=1,
                   help="inference threads, pinned while timing and recorded")
    add_token_args(m, explicit=_Explicit)
    m.add_argument("--lut", action=_Explicit, type=input_file,
                   help="latency lookup table (JSON from 'elasticnas lut build') for latency_lut_ms")
    m.add_argument("--precisions", action=_Explicit, metavar="fp32,int8[,int4]",
                   help="search a precision per layer too (SimQ-NAS): sub-networks are measured as ONNX Runtime "
                   "QDQ models, their activation ranges calibrated on --calib-data; add int4 for weight-only INT4 "
                   "transformer linears; objectives such as model_size_bytes and bops see the precision")
    p.set_defaults(func=_search)


# -- pareto / report / studies ----------------------------------------------------------------------
_PICK = re.compile(r"^\s*([^<>=\s]+)\s*(<=|>=)\s*(best\s*[-+]\s*)?([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)\s*$")


def parse_picks(picks: Iterable[str], study: Study) -> tuple[dict[str, float], dict[str, float]]:
    """``--pick`` terms as :meth:`Study.select` arguments ``(max_drop, bounds)``.

    ``accuracy_top1>=best-1`` keeps trials within one point of the best accuracy,
    ``latency_ms<=0.1`` those at most 0.1 ms; the bound must point the way its objective improves.
    """
    directions = {o.name: o.direction for o in study.objectives}
    max_drop: dict[str, float] = {}
    bounds: dict[str, float] = {}
    for text in picks:
        match = _PICK.match(text)
        if match is None:
            raise ElasticNASError(f"--pick {text!r}: expected METRIC<=VALUE, METRIC>=VALUE, METRIC>=best-DROP "
                                  "or METRIC<=best+DROP, e.g. accuracy_top1>=best-1")
        name, op, relative, number = match.groups()
        if name not in directions:
            raise ElasticNASError(f"--pick {text!r}: {name!r} is not an objective; objectives: {', '.join(directions)}")
        want = ">=" if directions[name] == "maximize" else "<="
        if op != want:
            raise ElasticNASError(f"--pick {text!r}: {name} is {directions[name]}d, so bound it with {want}")
        try:
            value = float(number)
        except ValueError:
            raise ElasticNASError(f"--pick {text!r}: {number!r} is not a number") from None
        if relative:
            sign = relative.replace(" ", "")[-1]
            if (sign == "-") != (want == ">="):
                raise ElasticNASError(f"--pick {text!r}: write {name}{want}best{'-' if want == '>=' else '+'}DROP")
            max_drop[name] = value
        else:
            bounds[name] = value
    return max_drop, bounds


def _pareto(args: argparse.Namespace) -> int:
    from elasticnas.report import pareto_rows, target_rows, write_csv
    from elasticnas.study import load_study

    study = load_study(args.storage, args.study)
    if args.csv:
        check_output_path(args.csv, what="CSV file")
    if args.pick or args.optimize:
        max_drop, bounds = parse_picks(args.pick, study)
        chosen = study.select(max_drop=max_drop, bounds=bounds, optimize=args.optimize)
        metrics = ", ".join(f"{o.name}={chosen.metrics[o.name]:.6g}" for o in study.objectives)
        print(f"picked trial {chosen.number}: {metrics}")
        print(json.dumps(dict(chosen.config)))
        print(f"export it: elasticnas export --storage {args.storage} --study {study.name} --trial {chosen.number} "
              "--out subnet.onnx")
        return 0
    if args.target is not None:
        study.target_objectives(args.target)  # an unknown target: one line naming the study's
    if args.csv:
        every_target = args.target is None and study.targets
        header, rows = target_rows(study) if every_target else pareto_rows(study, args.target)
        write_csv(args.csv, header, rows)
        print(f"wrote {len(rows)} Pareto configurations to {args.csv}")
    else:
        _print_front(study, limit=sys.maxsize, target=args.target)
    return 0


def _report(args: argparse.Namespace) -> int:
    from elasticnas.report import write_report
    from elasticnas.study import load_study

    check_output_path(args.out, what="report")
    study = load_study(args.storage, args.study)
    path = write_report(study, args.out)
    print(f"wrote {path}")
    return 0


def _studies(args: argparse.Namespace) -> int:
    from elasticnas.report import format_table
    from elasticnas.study import list_studies

    rows = [[s.name, s.n_complete, s.n_failed, s.n_running, ", ".join(s.objectives) or "-",
             "yes" if s.elasticnas else "no"] for s in list_studies(args.storage)]
    if not rows:
        print(f"no studies in {args.storage}")
        return 0
    print(format_table(["study", "complete", "failed", "running", "objectives", "elasticnas"], rows))
    return 0


def _add_pareto_report(sub: LazySubParsers) -> None:
    fmt = {"formatter_class": DefaultsFormatter}
    sub.add_lazy_parser("pareto", _fill_pareto, help="print (or save) the Pareto front of a study, or pick a trial",
                        **fmt)
    sub.add_lazy_parser("report", _fill_report, help="write a self-contained HTML report of a study", **fmt)
    sub.add_lazy_parser("studies", _fill_studies, help="list the studies in a storage with their trial counts", **fmt)


def _fill_pareto(p: argparse.ArgumentParser) -> None:
    _add_storage_args(p, default_study=False)
    p.add_argument("--csv", metavar="FILE", help="write the front with full configurations as CSV")
    p.add_argument("--target", metavar="NAME", help="for a study with hardware targets: the front of this target "
                   "(default: every target's front, a 'target' column in the CSV)")
    p.add_argument("--pick", action="append", default=[], metavar="EXPR",
                   help="choose the trial to deploy: bounds such as 'latency_ms<=0.1' or 'accuracy_top1>=best-1' "
                   "(within 1 point of the best); may be repeated")
    p.add_argument("--optimize", metavar="OBJECTIVE",
                   help="with --pick: the objective to optimise among the trials kept (default: the first "
                   "unbounded one)")
    p.set_defaults(func=_pareto)


def _fill_report(p: argparse.ArgumentParser) -> None:
    _add_storage_args(p, default_study=False)
    p.add_argument("--out", default="report.html", help="HTML file to write")
    p.set_defaults(func=_report)


def _fill_studies(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", default=DEFAULT_STORAGE, help="Optuna storage URL")
    p.set_defaults(func=_studies)


# -- demo ------------------------------------------------------------------------------------------------
DEMO_SUPERNET = "tiny_mbv3"
DEMO_OBJECTIVES = ("accuracy_top1", "latency_ms")
DEMO_MAX_DROP = {"accuracy_top1": 1.0}  # export the fastest sub-network within one point of the best accuracy


def _demo(args: argparse.Namespace) -> int:
    from elasticnas.problems._supernet import builtin_data, supernet_problem
    from elasticnas.report import pareto_rows, write_csv, write_report
    from elasticnas.study import create_study, extremes
    from elasticnas.supernets import create_supernet

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ElasticNASError(f"cannot create output folder {str(out)!r}: {exc.strerror or exc}") from None
    for name in ("report.html", "pareto.csv", "subnet.onnx"):
        check_output_path(out / name)
    supernet = create_supernet(DEMO_SUPERNET)  # its shipped trained weights
    problem = supernet_problem(supernet, DEMO_OBJECTIVES, runtime="onnxruntime", **builtin_data(DEMO_SUPERNET))
    print(
        f"elasticnas demo: searching the built-in {DEMO_SUPERNET} super-network (trained on scikit-learn's digits) "
        f"for the best trade-offs of validation accuracy (BatchNorm recalibrated) and ONNX Runtime latency "
        f"on this CPU, {args.n_evals} evaluations"
    )
    study = create_study(problem.space, dict(problem.objectives), storage=f"sqlite:///{out / 'study.db'}",
                         study_name="demo")
    assert problem.measurement is not None  # a super-network problem records its measurement
    study.set_measurement(problem.measurement)
    study.optimize(
        problem.evaluate, n_evals=args.n_evals, seed=args.seed, cheap_metrics=problem.cheap_metrics,
        show_progress=wants_progress(args), initial_configs=extremes(problem.space),
    )
    _print_front(study)
    chosen = study.select(max_drop=DEMO_MAX_DROP, optimize="latency_ms")
    exported = study.export(chosen.number, "onnx", out / "subnet.onnx")
    report = write_report(study, out / "report.html", highlight={chosen.number: "exported"})
    header, rows = pareto_rows(study)
    write_csv(out / "pareto.csv", header, rows)
    print(
        f"exported trial {chosen.number} (the fastest within 1 point of the best accuracy: recorded accuracy "
        f"{chosen.metrics['accuracy_top1']:.2f} %, latency {chosen.metrics['latency_ms']:.3f} ms) to {exported.path}; "
        f"the exported file scores {exported.accuracy_top1:.2f} % on the validation data, "
        f"ONNX Runtime matches PyTorch to {exported.max_abs_diff:.1e}"
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
        formatter_class=DefaultsFormatter,
    )


def _fill_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="elasticnas-demo", help="output folder")
    p.add_argument("--n-evals", type=positive_int, default=80, help="measured sub-networks")
    p.add_argument("--seed", type=seed, default=0, help="random seed")
    add_progress_flag(p)
    p.set_defaults(func=_demo)


def register(sub: LazySubParsers) -> None:
    _add_demo(sub)
    _add_search(sub)
    _add_pareto_report(sub)
