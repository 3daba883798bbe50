from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from elasticnas.data import builtin_dataset
from elasticnas.supernets import SUPERNETS
from elasticnas.supernets.base import Supernet

RES = 16


def _small_supernet(seed: int = 0) -> Supernet:
    """``tiny_mbv3`` at 12/16 px (fast) with random weights drawn with ``seed`` (never the shipped ones)."""
    net = SUPERNETS.get("tiny_mbv3")(resolutions=(12, RES), seed=seed)
    net.name = "tiny_mbv3"
    return net


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every training test runs PyTorch on one thread (tests/conftest.py)."""


@pytest.fixture
def small_supernet() -> Callable[..., Supernet]:
    return _small_supernet


@pytest.fixture(scope="session")
def digits16() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = builtin_dataset("digits", resolution=RES).train
    return x[:96], y[:96]


BYTES = b"the cat sat on the mat; the dog sat on the log. "
SEQ = 16


@pytest.fixture(scope="session")
def gpt2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 over bytes (vocabulary 256, 4 blocks, dropout on) saved with ``save_pretrained``."""
    transformers = pytest.importorskip("transformers")
    transformers.utils.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_embd=32, n_layer=4, n_head=4, vocab_size=256, n_positions=SEQ, bos_token_id=0, eos_token_id=0
    )
    folder = tmp_path_factory.mktemp("gpt2")
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


@pytest.fixture
def gpt2_supernet(gpt2_folder: Path) -> Callable[[], Supernet]:
    """Builds the elastic GPT-2 of ``gpt2_folder`` afresh (``create_supernet("hf:...")``)."""
    from elasticnas.supernets import create_supernet

    return lambda: create_supernet(f"hf:{gpt2_folder}", task="causal-lm")


@pytest.fixture(scope="session")
def byte_lm_data() -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, target_ids)``: windows of ``SEQ`` bytes of a repeated sentence, the target shifted by one."""
    stream = torch.tensor(list(BYTES * 8))
    starts = torch.arange(0, len(stream) - SEQ - 1, 5)
    ids = torch.stack([stream[s : s + SEQ] for s in starts])
    return ids, torch.stack([stream[s + 1 : s + SEQ + 1] for s in starts])
