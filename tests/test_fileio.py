from __future__ import annotations

import os

import pytest

from fleetnas.fileio import atomic_write_bytes, atomic_write_text


def test_write_creates_folder_and_follows_umask(tmp_path):
    target = tmp_path / "sub" / "plan.json"
    old = os.umask(0o022)
    try:
        atomic_write_text(target, "{}\n")
    finally:
        os.umask(old)
    assert target.read_text() == "{}\n"
    assert target.stat().st_mode & 0o777 == 0o644


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "report.html"
    atomic_write_bytes(target, b"old")

    with pytest.raises(TypeError):
        atomic_write_bytes(target, object())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
