"""Data loading: tensors, Datasets, DataLoaders, ImageNet-layout image folders (Pillow-decoded) and
built-in byte-level text (``pystdlib``) for language models.

The names below are imported on first use (PEP 562), so ``list_builtin_datasets()`` and
``list_text_corpora()`` do not load PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from elasticnas.registry import lazy_exports

if TYPE_CHECKING:
    from elasticnas.data._builtin import (
        BuiltinDataset,
        builtin_dataset,
        builtin_weights,
        has_builtin_weights,
        list_builtin_datasets,
        register_builtin_dataset,
    )
    from elasticnas.data._imagefolder import (
        DEFAULT_CROP_FRACTION,
        GRAY_MEAN,
        GRAY_STD,
        IMAGE_EXTENSIONS,
        IMAGENET_MEAN,
        IMAGENET_STD,
        DataError,
        DataSource,
        ImageFolder,
        as_loader,
        eval_transform,
        resize_batch,
    )
    from elasticnas.data._spec import data_spec, resolve_data
    from elasticnas.data._text import TextCorpus, list_text_corpora, register_text_corpus, text_corpus
    from elasticnas.data._tokens import TokenWindows

_LAZY = {
    "data_spec": "elasticnas.data._spec",
    "resolve_data": "elasticnas.data._spec",
    "BuiltinDataset": "elasticnas.data._builtin",
    "builtin_dataset": "elasticnas.data._builtin",
    "builtin_weights": "elasticnas.data._builtin",
    "has_builtin_weights": "elasticnas.data._builtin",
    "list_builtin_datasets": "elasticnas.data._builtin",
    "register_builtin_dataset": "elasticnas.data._builtin",
    "DEFAULT_CROP_FRACTION": "elasticnas.data._imagefolder",
    "GRAY_MEAN": "elasticnas.data._imagefolder",
    "GRAY_STD": "elasticnas.data._imagefolder",
    "IMAGE_EXTENSIONS": "elasticnas.data._imagefolder",
    "IMAGENET_MEAN": "elasticnas.data._imagefolder",
    "IMAGENET_STD": "elasticnas.data._imagefolder",
    "DataError": "elasticnas.data._imagefolder",
    "DataSource": "elasticnas.data._imagefolder",
    "ImageFolder": "elasticnas.data._imagefolder",
    "as_loader": "elasticnas.data._imagefolder",
    "eval_transform": "elasticnas.data._imagefolder",
    "resize_batch": "elasticnas.data._imagefolder",
    "TextCorpus": "elasticnas.data._text",
    "list_text_corpora": "elasticnas.data._text",
    "register_text_corpus": "elasticnas.data._text",
    "text_corpus": "elasticnas.data._text",
    "TokenWindows": "elasticnas.data._tokens",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "data_spec",
    "resolve_data",
    "BuiltinDataset",
    "builtin_dataset",
    "builtin_weights",
    "has_builtin_weights",
    "list_builtin_datasets",
    "register_builtin_dataset",
    "DEFAULT_CROP_FRACTION",
    "GRAY_MEAN",
    "GRAY_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_EXTENSIONS",
    "DataError",
    "DataSource",
    "ImageFolder",
    "as_loader",
    "eval_transform",
    "resize_batch",
    "TextCorpus",
    "TokenWindows",
    "list_text_corpora",
    "register_text_corpus",
    "text_corpus",
]
