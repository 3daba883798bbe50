"""Bounded input reading and checked, atomic output writing (elasticnas._io)."""

from __future__ import annotations

import os

import pytest

from elasticnas._io import (
    MAX_JSON_DEPTH,
    InputError,
    OutputPathError,
    atomic_write_dir,
    atomic_write_text,
    check_output_dir,
    parse_json,
    read_text,
)


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


def _write_folder(marker: str, fail: bool = False):
    def write(tmp: str) -> None:
        with open(os.path.join(tmp, "weights.bin"), "wb") as fh:
            fh.write(b"new")
        if fail:
            raise OSError(28, "No space left on device")
        with open(os.path.join(tmp, marker), "w") as fh:
            fh.write("{}")

    return write


def test_folder_outputs_replace_only_empty_or_own_folders_and_appear_whole(tmp_path):
    marker = "elasticnas.json"
    out = tmp_path / "model"
    atomic_write_dir(out, _write_folder(marker), marker=marker)
    assert sorted(os.listdir(out)) == [marker, "weights.bin"]
    (out / "weights.bin").write_bytes(b"old")
    with pytest.raises(OutputPathError, match="No space left"):  # a failed rewrite keeps the old folder whole
        atomic_write_dir(out, _write_folder(marker, fail=True), marker=marker)
    assert (out / "weights.bin").read_bytes() == b"old"
    atomic_write_dir(out, _write_folder(marker), marker=marker)  # its own folder: replaced
    assert (out / "weights.bin").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary folder left behind

    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"x")
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    link = tmp_path / "link"
    link.symlink_to(out)
    for target, message in ((foreign, "did not write"), (afile, "not a folder"), (link, "symbolic link")):
        with pytest.raises(OutputPathError, match=message):
            check_output_dir(target, marker=marker)
    assert (foreign / "cat.jpg").read_bytes() == b"x" and afile.read_text() == "x"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert atomic_write_dir(empty, _write_folder(marker), marker=marker) == empty
