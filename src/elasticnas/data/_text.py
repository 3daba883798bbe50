"""Built-in text data: byte-level token windows for language models, shipped with the package.

``text_corpus("pystdlib")`` is a fixed selection of CPython's standard-library sources
(``elasticnas/data/pystdlib/``: the files, their Python version and the PSF licence are
recorded there). Its bytes are the tokens (ids 0..255, vocabulary 256). The files are split
into train and validation files with a seed, so the splits never share a byte;
:meth:`TextCorpus.windows` cuts a split into fixed-length windows, each yielding
``(input_ids, target_ids)`` with the target the input shifted by one token (nanoGPT style).
The data spec ``pystdlib:val`` (or ``:train``) names the windows of the default length.
"""

from __future__ import annotations

import functools
import hashlib
import json
import lzma
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from elasticnas.errors import ElasticNASError
from elasticnas.registry import Registry

if TYPE_CHECKING:  # PyTorch is imported where it is used, so that list_text_corpora() loads without it
    import torch

    from elasticnas.data._tokens import TokenWindows

TEXT_SPLITS: tuple[str, ...] = ("train", "val")
DEFAULT_SEQ_LEN = 128
BYTE_VOCAB = 256
VAL_FRACTION = 0.1  # of the bytes, in whole files
PYSTDLIB_DIR = Path(__file__).resolve().parent / "pystdlib"
PYSTDLIB_MAX_BYTES = 32 * 1024  # the selection rule: public top-level modules of Lib/ of at most 32 KiB
CORPUS_FILE, MANIFEST_FILE = "corpus.bin.xz", "manifest.json"


@dataclass(frozen=True)
class TextCorpus:
    """A byte-level corpus split into whole files: ``files[split]`` names each split's files, in order."""

    name: str
    files: Mapping[str, tuple[str, ...]]
    data: Mapping[str, bytes]
    source: str
    vocab_size: int = BYTE_VOCAB

    def tokens(self, split: str) -> torch.Tensor:
        """The bytes of split ``split`` (``train`` or ``val``) as a uint8 tensor."""
        import torch

        if split not in TEXT_SPLITS:
            raise ElasticNASError(f"unknown split {split!r} of {self.name!r}; choose one of: {', '.join(TEXT_SPLITS)}")
        return torch.from_numpy(np.frombuffer(self.data[split], dtype=np.uint8).copy())

    def windows(self, split: str, seq_len: int = DEFAULT_SEQ_LEN) -> TokenWindows:
        """The ``(input_ids, target_ids)`` windows of ``seq_len`` tokens of split ``split``."""
        from elasticnas.data._tokens import TokenWindows

        return TokenWindows(self.tokens(split), int(seq_len), self.vocab_size)


CorpusFactory = Callable[..., TextCorpus]
TEXT_CORPORA: Registry[CorpusFactory] = Registry("built-in text corpus")


def register_text_corpus(name: str, factory: CorpusFactory, *, aliases: tuple[str, ...] = ()) -> None:
    """Register a factory ``(seed=...) -> TextCorpus``."""
    TEXT_CORPORA.register(name, factory, aliases=aliases)


def list_text_corpora(pattern: str | None = None) -> list[str]:
    """Names of the built-in text corpora."""
    return TEXT_CORPORA.names(pattern)


@functools.cache
def text_corpus(name: str = "pystdlib", *, seed: int = 0) -> TextCorpus:
    """The built-in text corpus ``name``; ``seed`` fixes which files are validation files (cached)."""
    return TEXT_CORPORA.get(TEXT_CORPORA.canonical(name))(seed=int(seed))


def split_files(sizes: Mapping[str, int], fraction: float, seed: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(train, val) file names, each sorted: files in a seeded random order go to validation until they
    hold ``fraction`` of the bytes; the rest are training files."""
    names = sorted(sizes)
    order = np.random.default_rng(seed).permutation(len(names))
    target, held, val = fraction * sum(sizes.values()), 0, set()
    for i in order:
        if held >= target:
            break
        val.add(names[i])
        held += sizes[names[i]]
    return tuple(n for n in names if n not in val), tuple(n for n in names if n in val)


@functools.cache
def _pystdlib_files() -> dict[str, bytes]:
    """The shipped files by name, decompressed once and checked against the manifest."""
    manifest = json.loads((PYSTDLIB_DIR / MANIFEST_FILE).read_text())
    try:
        blob = lzma.decompress((PYSTDLIB_DIR / CORPUS_FILE).read_bytes())
    except (OSError, lzma.LZMAError) as exc:
        raise ElasticNASError(f"the built-in corpus 'pystdlib' is missing or corrupt: {exc}") from None
    if hashlib.sha256(blob).hexdigest() != manifest["sha256"]:
        raise ElasticNASError("the built-in corpus 'pystdlib' does not match its manifest (corrupt installation)")
    files, offset = {}, 0
    for entry in manifest["files"]:
        files[entry["name"]] = blob[offset : offset + entry["bytes"]]
        offset += entry["bytes"]
    return files


def _pystdlib(*, seed: int = 0) -> TextCorpus:
    files = _pystdlib_files()
    train, val = split_files({n: len(b) for n, b in files.items()}, VAL_FRACTION, seed)
    version = json.loads((PYSTDLIB_DIR / MANIFEST_FILE).read_text())["python_version"]
    return TextCorpus(
        name="pystdlib",
        files={"train": train, "val": val},
        data={"train": b"".join(files[n] for n in train), "val": b"".join(files[n] for n in val)},
        source=f"CPython {version} standard library (Lib/*.py), PSF License Version 2",
    )


register_text_corpus("pystdlib", _pystdlib)


def write_pystdlib(directory: str | os.PathLike[str], stdlib: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the ``pystdlib`` corpus from a CPython ``Lib`` folder ``stdlib`` into ``directory``: the public
    top-level modules (``*.py`` not starting with ``_``) of at most :data:`PYSTDLIB_MAX_BYTES`, in name order,
    concatenated and xz-compressed, and their manifest (Python version, sizes, SHA-256); returns the manifest.
    This is how the shipped data was made (from the running interpreter's ``sysconfig`` stdlib)."""
    import platform

    lib, out = Path(stdlib), Path(directory)
    paths = sorted(p for p in lib.glob("*.py") if not p.name.startswith("_") and p.stat().st_size <= PYSTDLIB_MAX_BYTES)
    contents = [p.read_bytes() for p in paths]
    blob = b"".join(contents)
    manifest: dict[str, Any] = {
        "python_version": platform.python_version(),
        "rule": f"Lib/*.py not starting with '_', at most {PYSTDLIB_MAX_BYTES} bytes, sorted by name",
        "sha256": hashlib.sha256(blob).hexdigest(),
        "files": [
            {"name": p.name, "bytes": len(c), "sha256": hashlib.sha256(c).hexdigest()}
            for p, c in zip(paths, contents, strict=True)
        ],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / CORPUS_FILE).write_bytes(lzma.compress(blob, preset=9 | lzma.PRESET_EXTREME))
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


__all__ = [
    "DEFAULT_SEQ_LEN",
    "TEXT_CORPORA",
    "TextCorpus",
    "list_text_corpora",
    "register_text_corpus",
    "split_files",
    "text_corpus",
    "write_pystdlib",
]
