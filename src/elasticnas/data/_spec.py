"""Data named by a string, so that a study can record it and a later export can find it again.

A spec is the path of an image folder (ImageNet layout), ``NAME:SPLIT`` of a built-in
image data set (``digits:val``) or of a built-in text corpus (``pystdlib:val``: windows of
128 byte tokens). :func:`resolve_data` turns a spec into something
:func:`~elasticnas.data.as_loader` reads; any other object (tensors, a Dataset, a
DataLoader) passes through unchanged and has no spec.
"""

from __future__ import annotations

import os
from typing import Any

from elasticnas.errors import ElasticNASError


def data_spec(data: Any) -> str | None:
    """The spec of ``data`` (a string or path), or None when ``data`` is an in-memory object."""
    return os.fspath(data) if isinstance(data, str | os.PathLike) else None


def resolve_data(data: Any) -> Any:
    """An existing image-folder path (returned as a string), a built-in image ``NAME:SPLIT`` (its tensors),
    a built-in text ``NAME:SPLIT`` (its :class:`~elasticnas.data.TokenWindows` of the default length),
    or ``data`` itself when it is not a string; an unknown string raises one clear line."""
    spec = data_spec(data)
    if spec is None:
        return data
    if os.path.exists(spec):
        return spec
    from elasticnas.data._builtin import builtin_dataset, list_builtin_datasets
    from elasticnas.data._text import list_text_corpora, text_corpus

    name, _, split = spec.partition(":")
    if name in list_builtin_datasets():
        return builtin_dataset(name).split(split or "val")
    if name in list_text_corpora():
        return text_corpus(name).windows(split or "val")
    known = [*list_builtin_datasets(), *list_text_corpora()]
    raise ElasticNASError(
        f"data {spec!r} is neither an existing image folder nor a built-in data set NAME:SPLIT "
        f"({', '.join(f'{n}:val' for n in known)})"
    )
