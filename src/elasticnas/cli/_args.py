"""Argument types and input readers shared by the subcommands."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from elasticnas.errors import ElasticNASError


class LazySubParsers(argparse._SubParsersAction):  # type: ignore[type-arg]
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
        parser = self.add_parser(name, **kwargs)
        self._fills[name] = fill
        return parser

    def filled(self, name: str) -> argparse.ArgumentParser:
        """The parser of subcommand ``name`` with all its arguments."""
        parser = self._name_parser_map[name]
        fill = self._fills.pop(name, None)
        if fill is not None:
            fill(parser)
        return parser

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if values and values[0] in self._name_parser_map:  # an unknown name fails in argparse as before
            self.filled(values[0])
        super().__call__(parser, namespace, values, option_string)


def _int_at_least(text: str, low: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0, "an integer >= 0")


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def data_source(text: str | None) -> Any:
    """An image-folder path, or ``NAME:SPLIT`` of a built-in dataset (e.g. ``digits:val``) as tensors."""
    if text is None or os.path.exists(text):
        return text
    from elasticnas.data import builtin_dataset, list_builtin_datasets

    name, _, split = text.partition(":")
    if name in list_builtin_datasets():
        try:
            return builtin_dataset(name).split(split or "val")
        except (KeyError, ValueError) as exc:
            raise ElasticNASError(f"built-in dataset {name!r}: {str(exc).strip(chr(39))}") from None
    raise ElasticNASError(
        f"data {text!r} is neither an existing image folder nor a built-in dataset NAME:SPLIT "
        f"({', '.join(list_builtin_datasets())})"
    )
