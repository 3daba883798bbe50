from __future__ import annotations

from collections.abc import Callable

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
def _one_thread():  # type: ignore[no-untyped-def]
    """Tiny convolutions run faster on one thread (and do not fight other tests for the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def small_supernet() -> Callable[..., Supernet]:
    return _small_supernet


@pytest.fixture(scope="session")
def digits16() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = builtin_dataset("digits", resolution=RES).train
    return x[:96], y[:96]
