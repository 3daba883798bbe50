"""Fixtures shared by the tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from elasticnas._interrupts import clear_interrupts
from elasticnas.cli import main


@pytest.fixture(autouse=True)
def _forget_interrupts() -> Iterator[None]:
    """Interrupts a test raised are forgotten after it, as the CLI forgets them after a command."""
    yield
    clear_interrupts()


@pytest.fixture(scope="session")
def study_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite study 's' of the built-in problem ofa_mbv3_note10 holding 6 evaluations (copy it before use)."""
    path = tmp_path_factory.mktemp("study") / "s.db"
    assert main(["search", "--problem", "ofa_mbv3_note10", "--quiet", "--n-evals", "6", "--searcher", "random",
                 "--storage", f"sqlite:///{path}", "--study", "s"]) == 0
    return path


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """PyTorch on one thread during a test (small networks run faster so, and do not fight other tests for the
    cores); the thread count is restored afterwards. Modules use it with ``pytest.mark.usefixtures``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
