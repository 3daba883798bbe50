"""Fixtures shared by the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from elasticnas.cli import main


@pytest.fixture(scope="session")
def study_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite study 's' of the built-in problem ofa_mbv3_note10 holding 6 evaluations (copy it before use)."""
    path = tmp_path_factory.mktemp("study") / "s.db"
    assert main(["search", "--problem", "ofa_mbv3_note10", "--quiet", "--n-evals", "6", "--searcher", "random",
                 "--storage", f"sqlite:///{path}", "--study", "s"]) == 0
    return path
