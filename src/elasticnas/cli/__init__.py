"""The ``elasticnas`` command: thin subcommands over the public API.

Each subcommand lives in its own module exposing ``register(subparsers)``,
which adds its parser and sets ``func`` (a callable taking the parsed
arguments and returning an exit status). ``subparsers`` is a
:class:`~elasticnas.cli._args.LazySubParsers`: a subcommand's arguments are
added only when it is the one parsed, and the modules import PyTorch, Optuna
and the registries inside functions, so ``elasticnas --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from elasticnas.cli import _export, _lut, _measure, _study_commands, _train
from elasticnas.cli._args import LazySubParsers
from elasticnas.errors import ElasticNASError

SUBCOMMAND_MODULES = [_study_commands, _export, _measure, _lut, _train]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="elasticnas",
        description=(
            "Find Pareto-optimal sub-networks of elastic super-networks: search, measure, "
            "report and export. Run 'elasticnas demo' for a first tour."
        ),
    )
    from elasticnas import __version__

    parser.add_argument("--version", action="version", version=f"elasticnas {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, action=LazySubParsers)
    for module in SUBCOMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own progress bar and summary say enough
    try:
        return int(args.func(args) or 0)
    except ElasticNASError as exc:
        print(f"elasticnas {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"elasticnas {args.command}: interrupted; finished evaluations are saved", file=sys.stderr)
        return 130
