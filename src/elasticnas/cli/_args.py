"""Argument types and input readers shared by the subcommands."""

from __future__ import annotations

import argparse
import os
from typing import Any

from elasticnas.errors import ElasticNASError


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
