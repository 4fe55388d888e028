"""Faults a store meets in the field (issue 18, cases 5 and 6): a read-only database file, a
full disk, and a write-ahead log that must not be the only copy of an import."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fleetnas.cli.main import main
from fleetnas.data.exchange import import_table
from fleetnas.spaces import get_space
from fleetnas.store import SQLStore


def _exchange_file(path: Path, device: str, n: int, seed: int = 0) -> Path:
    space = get_space("nb201")
    archs = np.unique(space.sample(3 * n, rng=np.random.default_rng(seed)), axis=0)[:n]
    pd.DataFrame(
        {
            "space": "nb201",
            "architecture": [space.format(a) for a in archs],
            "device": device,
            "metric": "latency",
            "value": np.arange(1, len(archs) + 1, dtype=float),
            "unit": "ms",
        }
    ).to_csv(path, index=False)
    return path


def _rows_without_log(db: Path, tmp: Path) -> int:
    """Measurements in the database file alone, as a user who deleted the -wal would see."""
    copy = tmp / f"alone-{db.stat().st_mtime_ns}.db"
    shutil.copyfile(db, copy)
    alone = SQLStore(f"sqlite:///{copy}")
    try:
        return alone.counts()["measurements"]
    finally:
        alone.close()


def test_import_is_in_the_database_file_not_only_in_the_log(tmp_path: Path):
    """Case 6: the data of an import that reported success lived only in the -wal file."""
    db = tmp_path / "s.db"
    store = SQLStore(f"sqlite:///{db}")
    try:
        rep = import_table(store, _exchange_file(tmp_path / "a.csv", "d1", 200))
        assert rep.rows == 200
        wal = Path(f"{db}-wal")
        assert not wal.exists() or wal.stat().st_size == 0
        assert _rows_without_log(db, tmp_path) == 200
    finally:
        store.close()


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """Make ``path`` unwritable even for root (``chattr +i``), or skip with the reason."""
    path.chmod(0o444)
    immutable = False
    if os.access(path, os.W_OK):  # root ignores the mode bits
        chattr = shutil.which("chattr")
        done = chattr and subprocess.run([chattr, "+i", str(path)], capture_output=True)
        if not done or done.returncode != 0:
            path.chmod(0o644)
            pytest.skip("cannot make a file read-only here (root, and chattr +i is refused)")
        immutable = True
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        path.chmod(0o644)


def test_import_into_a_read_only_database_is_one_line(tmp_path: Path, capsys):
    """Case 5: a traceback and exit code 1 before."""
    db = tmp_path / "ro.db"
    assert main(["data", "import", "--file", str(_exchange_file(tmp_path / "a.csv", "d1", 5)),
                 "--db", str(db)]) == 0  # fmt: skip
    capsys.readouterr()
    with _read_only(db):
        code = main(["data", "import", "--file", str(_exchange_file(tmp_path / "b.csv", "d2", 5)),
                     "--db", str(db)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error:") and "read-only" in err and "\n" not in err
    assert "Traceback" not in err


@contextlib.contextmanager
def _small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where``, or a skip saying why there is none."""
    where.mkdir()
    mount = shutil.which("mount")
    if mount is None or os.geteuid() != 0:
        pytest.skip("a disk-full test needs to mount a small tmpfs (root and mount(8))")
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()[:200]}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_disk_full_is_one_line_and_loses_nothing(tmp_path: Path, capsys):
    """Case 6: "imported" with rc 0 onto a full disk, the data only in the -wal file. Now: each
    import either ends in the database file or fails with one line; after space is freed the
    same import finishes the job, and every row is there exactly once."""
    files = [_exchange_file(tmp_path / f"m{i}.csv", f"dev{i}", 5000, seed=i) for i in range(2)]
    with _small_tmpfs(tmp_path / "mnt", "3m") as mnt:
        db = mnt / "x.db"
        code = main(["data", "import", "--file", str(files[0]), "--db", str(db), "--json"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("error:") and "\n" not in err, err
        assert "disk holding the store is full" in err
        code = main(["data", "import", "--file", str(files[1]), "--db", str(db), "--json"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and "full" in err and "\n" not in err, err
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        for f in files:
            assert main(["data", "import", "--file", str(f), "--db", str(db), "--json"]) == 0
        capsys.readouterr()
        wal = Path(f"{db}-wal")
        assert not wal.exists() or wal.stat().st_size == 0
        assert _rows_without_log(db, tmp_path) == 10_000
        store = SQLStore(f"sqlite:///{db}")
        frame = store.measurements_frame()
        store.close()
        assert len(frame) == 10_000
        assert not frame.duplicated(["device", "architecture"]).any()
