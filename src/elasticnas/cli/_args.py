"""Argument types and input readers shared by the subcommands."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from elasticnas.errors import ElasticNASError

if TYPE_CHECKING:  # generic only for type checkers: the class is not subscriptable at run time
    _SubParsersAction = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    _SubParsersAction = argparse._SubParsersAction


class LazySubParsers(_SubParsersAction):
    """Subcommands whose arguments are added only when that subcommand is parsed.

    ``elasticnas --help`` then lists every subcommand's name and help without adding their
    arguments, whose help texts, defaults and choices come from registries that import PyTorch
    and the search libraries. Pass it as ``add_subparsers(action=LazySubParsers)``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fills: dict[str, Callable[[argparse.ArgumentParser], None]] = {}

    def add_lazy_parser(
        self, name: str, fill: Callable[[argparse.ArgumentParser], None], **kwargs: Any
    ) -> argparse.ArgumentParser:
        """Add the subcommand ``name`` now (``help=`` shows in the command list); ``fill`` adds its arguments later."""
        parser: argparse.ArgumentParser = self.add_parser(name, **kwargs)
        self._fills[name] = fill
        return parser

    def filled(self, name: str) -> argparse.ArgumentParser:
        """The parser of subcommand ``name`` with all its arguments."""
        parser: argparse.ArgumentParser = self._name_parser_map[name]
        fill = self._fills.pop(name, None)
        if fill is not None:
            fill(parser)
        return parser

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if values and values[0] in self._name_parser_map:  # an unknown name fails in argparse as before
            self.filled(values[0])
        super().__call__(parser, namespace, values, option_string)


INT_LIMIT = 2**63  # integers at or above this do not fit the int64 of NumPy, PyTorch and the storages


def _int_in(text: str, low: int, high: int, what: str) -> int:
    """``text`` as a whole number with ``low <= value < high``; an argparse error naming ``what`` otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not low <= value < high:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (and below 2**63)."""
    return _int_in(text, 1, INT_LIMIT, "a positive integer")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (and below 2**63)."""
    return _int_in(text, 0, INT_LIMIT, "an integer >= 0")


def int_between(low: int, high: int) -> Callable[[str], int]:
    """argparse type: an integer with ``low <= value <= high`` (for counts whose huge values exhaust the machine)."""

    def parse(text: str) -> int:
        return _int_in(text, low, high + 1, f"an integer from {low} to {high}")

    parse.__name__ = f"int_between_{low}_{high}"
    return parse


thread_count = int_between(1, 1024)
"""argparse type: threads, 1 to 1024 (PyTorch crashes far above)."""

batch_size = int_between(1, 65536)
"""argparse type: a batch size, 1 to 65536."""


def seed(text: str) -> int:
    """argparse type: a random seed, 0 <= seed < 2**32 (what NumPy's legacy seeding and Optuna's samplers accept)."""
    return _int_in(text, 0, 2**32, "a seed 0 <= SEED < 2**32")


def _float_where(text: str, ok: Callable[[float], bool], what: str) -> float:
    """``text`` as a finite number for which ``ok`` holds; an argparse error naming ``what`` otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number (no nan, inf or overflow such as 1e400)."""
    return _float_where(text, lambda v: True, "a finite number")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _float_where(text, lambda v: v > 0, "a finite number > 0")


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _float_where(text, lambda v: v >= 0, "a finite number >= 0")


def input_file(text: str) -> str:
    """argparse type: a file to read; one that exists must be a regular file (a FIFO or device would
    block or never end).

    A missing file passes: its reader says so in its own words.
    """
    if os.path.exists(text) and not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular file (a directory, FIFO, device or socket)")
    return text


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each option's default, printed by argparse (none for unset or off flags)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, [], argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress``; see :func:`wants_progress`."""
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show a progress bar (default: when run in a terminal)")


def wants_progress(args: argparse.Namespace) -> bool:
    """The ``--progress`` choice, else a bar only in a terminal (stdout and stderr) without ``--quiet``."""
    if args.progress is not None:
        return bool(args.progress)
    return sys.stdout.isatty() and sys.stderr.isatty() and not getattr(args, "quiet", False)


TASKS = ("causal-lm", "sequence-classification", "image-classification")  # elasticnas.supernets.hf's tasks
HF_PREFIX = "hf:"  # as elasticnas.supernets.HF_PREFIX; not imported, so that building parsers loads no torch


def add_task_arg(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--task``, for super-networks given as ``hf:PATH``."""
    p.add_argument("--task", choices=TASKS, help="with --supernet hf:PATH: the model's task (default: the "
                   "folder's elasticnas.json, else its config's architectures)")


def supernet_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of ``create_supernet`` from ``--task``: only for ``hf:`` super-networks."""
    task = getattr(args, "task", None)
    if task is None:
        return {}
    if not str(args.supernet).startswith(HF_PREFIX):
        raise ElasticNASError(f"--task is for --supernet hf:PATH (a Hugging Face folder), not {args.supernet!r}")
    return {"task": task}


def add_token_args(
    p: argparse.ArgumentParser | argparse._ArgumentGroup, *, explicit: type[argparse.Action] | None = None
) -> None:
    """``--max-val-batches`` and, for token models, ``--seq-len`` / ``--context-len`` (``explicit``: the action
    that notes a flag the user typed, for a resumed search)."""
    kind: dict[str, Any] = {} if explicit is None else {"action": explicit}
    p.add_argument("--max-val-batches", type=positive_int, **kind,
                   help="evaluate accuracy / loss on at most this many validation batches (default: all)")
    p.add_argument("--seq-len", type=positive_int, **kind,
                   help="token models: sequence length of latency, memory and MACs (default: the super-network's)")
    p.add_argument("--context-len", type=positive_int, **kind,
                   help="causal LMs: cached tokens for decode_latency_ms and peak_memory_mb (default: --seq-len)")
