"""The README's example is run as written, so it cannot drift from the code."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_starts_with_the_demo_and_test_commands():
    lines = README.read_text().splitlines()
    first_block = "\n".join(lines[2:6])
    assert "elasticnas demo" in first_block
    assert "python -m pytest" in first_block


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "README.md", "exec"), {})
    import elasticnas as en

    study = en.load_study("sqlite:///study.db", "readme")
    assert study.n_evals == 150
    assert len({r.config_id for r in study.trials}) == len(study.trials)
    assert capsys.readouterr().out.strip()
