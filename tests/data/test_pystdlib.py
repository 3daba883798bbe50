"""The built-in byte-level text corpus ``pystdlib``: shipped data, fixed disjoint splits, token windows."""

from __future__ import annotations

import hashlib
import json
import lzma
import platform
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch

from elasticnas.data import TokenWindows, as_loader, list_text_corpora, text_corpus
from elasticnas.data._spec import resolve_data
from elasticnas.data._text import CORPUS_FILE, MANIFEST_FILE, PYSTDLIB_DIR, split_files, write_pystdlib
from elasticnas.errors import ElasticNASError

MANIFEST = json.loads((PYSTDLIB_DIR / MANIFEST_FILE).read_text())


def test_the_shipped_files_match_their_manifest_and_licence() -> None:
    compressed = (PYSTDLIB_DIR / CORPUS_FILE).read_bytes()
    assert len(compressed) < 400_000
    blob = lzma.decompress(compressed)
    assert hashlib.sha256(blob).hexdigest() == MANIFEST["sha256"]
    offset = 0
    for entry in MANIFEST["files"]:
        part = blob[offset : offset + entry["bytes"]]
        assert hashlib.sha256(part).hexdigest() == entry["sha256"]
        offset += entry["bytes"]
    assert offset == len(blob)
    names = [e["name"] for e in MANIFEST["files"]]
    assert names == sorted(names) and all(n.endswith(".py") and not n.startswith("_") for n in names)
    assert MANIFEST["python_version"] == "3.11.7"
    assert "PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2" in (PYSTDLIB_DIR / "LICENSE").read_text()
    assert "3.11.7" in (PYSTDLIB_DIR / "README.md").read_text()


@pytest.mark.skipif(platform.python_version() != MANIFEST["python_version"], reason="made from another Python")
def test_the_corpus_is_rebuilt_identically_from_the_stdlib(tmp_path: Path) -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    if not (stdlib / "abc.py").is_file():
        pytest.skip("this interpreter ships no standard-library sources")
    assert write_pystdlib(tmp_path, stdlib) == MANIFEST
    assert lzma.decompress((tmp_path / CORPUS_FILE).read_bytes()) == lzma.decompress(
        (PYSTDLIB_DIR / CORPUS_FILE).read_bytes()
    )


def test_splits_are_whole_disjoint_files_covering_the_corpus() -> None:
    corpus = text_corpus("pystdlib")
    train, val = set(corpus.files["train"]), set(corpus.files["val"])
    assert not train & val
    assert train | val == {e["name"] for e in MANIFEST["files"]}
    total = sum(e["bytes"] for e in MANIFEST["files"])
    assert len(corpus.data["train"]) + len(corpus.data["val"]) == total
    assert 0.1 <= len(corpus.data["val"]) / total < 0.15
    sizes = {e["name"]: e["bytes"] for e in MANIFEST["files"]}
    assert len(corpus.data["val"]) == sum(sizes[n] for n in val)
    assert corpus.vocab_size == 256 and "3.11.7" in corpus.source


def test_splits_are_fixed_by_the_seed_and_cached() -> None:
    a = text_corpus("pystdlib")
    assert text_corpus("pystdlib") is a  # decompressed once
    text_corpus.cache_clear()
    b = text_corpus("pystdlib")
    assert b is not a and b.files == a.files and b.data == a.data
    other = text_corpus("pystdlib", seed=1)
    assert other.files["val"] != a.files["val"]
    sizes = {"a": 5, "b": 5, "c": 5, "d": 5}
    assert split_files(sizes, 0.5, seed=3) == split_files(sizes, 0.5, seed=3)
    train, val = split_files(sizes, 0.5, seed=3)
    assert len(val) == 2 and sorted(train + val) == sorted(sizes)


def test_windows_are_shifted_byte_tokens_without_overlap() -> None:
    corpus = text_corpus("pystdlib")
    tokens = corpus.tokens("val")
    assert tokens.dtype == torch.uint8 and bytes(tokens.tolist()) == corpus.data["val"]
    w = corpus.windows("val", seq_len=64)
    assert isinstance(w, TokenWindows) and len(w) == (len(tokens) - 1) // 64
    x0, y0 = w[0]
    x1, _ = w[1]
    assert x0.shape == y0.shape == (64,) and x0.dtype == y0.dtype == torch.int64
    assert torch.equal(x0[1:], y0[:-1]) and y0[-1] == x1[0]  # the target is the input shifted by one token
    inputs = torch.cat([w[i][0] for i in range(len(w))])
    assert torch.equal(inputs, tokens[: len(w) * 64].long())  # windows tile the split, no overlap
    assert torch.equal(w[-1][0], w[len(w) - 1][0])
    assert 0 <= int(inputs.min()) and int(inputs.max()) <= 255
    with pytest.raises(IndexError):
        w[len(w)]
    with pytest.raises(ElasticNASError, match="seq_len"):
        corpus.windows("val", seq_len=0)
    with pytest.raises(ElasticNASError, match="unknown split 'test'"):
        corpus.windows("test")


def test_specs_resolve_to_windows_of_128_tokens_and_load_seeded() -> None:
    assert "pystdlib" in list_text_corpora()
    val = resolve_data("pystdlib:val")
    assert isinstance(val, TokenWindows) and val.seq_len == 128 and val.vocab_size == 256
    assert len(resolve_data("pystdlib")) == len(val)  # the split defaults to val
    train = resolve_data("pystdlib:train")
    assert len(train) > 8 * len(val)
    batches = [next(iter(as_loader(train, batch_size=4, shuffle=True, seed=7))) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(*batches, strict=True))
    ids, target = batches[0]
    assert ids.shape == target.shape == (4, 128) and ids.dtype == torch.int64
    with pytest.raises(ElasticNASError, match="pystdlib:val"):
        resolve_data("no_such_corpus:val")


def test_listing_the_corpora_loads_no_pytorch() -> None:
    code = (
        "import json, sys; from elasticnas.data import list_text_corpora; "
        "print(json.dumps({'names': list_text_corpora(), 'torch': 'torch' in sys.modules}))"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=300)
    assert json.loads(done.stdout) == {"names": ["pystdlib"], "torch": False}
