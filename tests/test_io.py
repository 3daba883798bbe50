"""Bounded input reading and checked, atomic output writing (elasticnas._io)."""

from __future__ import annotations

import os

import pytest

from elasticnas._io import MAX_JSON_DEPTH, InputError, OutputPathError, atomic_write_text, parse_json, read_text


def test_read_text_refuses_what_is_not_a_small_regular_utf8_file(tmp_path):
    ok = tmp_path / "ok.json"
    ok.write_text('{"a": 1}')
    assert read_text(ok) == '{"a": 1}'
    with pytest.raises(InputError, match="at most 4 are read"):
        read_text(ok, max_bytes=4)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        read_text(fifo)  # opened without blocking forever: the FIFO's writer end is never opened
    with pytest.raises(InputError, match="directory"):
        read_text(tmp_path)
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="not UTF-8"):
        read_text(tmp_path / "bin")
    with pytest.raises(InputError, match="cannot read"):
        read_text(tmp_path / "missing")


def test_parse_json_bounds_its_nesting():
    assert parse_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is not None
    with pytest.raises(InputError, match=f"deeper than {MAX_JSON_DEPTH}"):
        parse_json("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    with pytest.raises(InputError, match=f"deeper than {MAX_JSON_DEPTH}"):
        parse_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match="not valid JSON: Expecting value at line 1 column 1"):
        parse_json("")


def test_written_files_get_the_users_umask_and_replace_only_regular_files(tmp_path):
    old = os.umask(0o027)
    try:
        out = atomic_write_text(tmp_path / "r.html", "x")
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o640
    (tmp_path / "link").symlink_to(out)
    with pytest.raises(OutputPathError, match="symbolic link"):
        atomic_write_text(tmp_path / "link", "y")
    assert out.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["link", "r.html"]


def test_an_sqlite_database_is_never_overwritten_by_an_output(tmp_path):
    import elasticnas as en

    db = tmp_path / "study.db"
    en.create_study(en.SearchSpace({"a": en.Choice([1, 2])}), {"a": "maximize"}, storage=f"sqlite:///{db}",
                    study_name="s")
    before = db.read_bytes()
    with pytest.raises(OutputPathError, match="is an SQLite database"):
        atomic_write_text(db, "trial,a\n")
    assert db.read_bytes() == before and en.load_study(f"sqlite:///{db}", "s").name == "s"
