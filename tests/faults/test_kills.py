"""kill -9, SIGTERM and SIGINT at random moments of ``data import`` and ``plan`` (issue 18,
fault suite), with exact row counts afterwards: an import is all or nothing, a plan keeps
every entry it stored, and running the command again completes the job with no row twice."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from faultkit import ENV, cli, rows

from fleetnas.spaces import get_space

pytestmark = pytest.mark.slow
SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)


def _exchange(path: Path, n: int) -> Path:
    space = get_space("nb201")
    archs = np.unique(space.sample(3 * n, rng=np.random.default_rng(0)), axis=0)[:n]
    pd.DataFrame(
        {
            "space": "nb201",
            "architecture": space.format_many(archs),
            "device": "victim",
            "metric": "latency",
            "value": np.linspace(1.0, 9.0, len(archs)),
            "unit": "ms",
        }
    ).to_csv(path, index=False)
    return path


def _interrupt_after(args: list[str], delay: float, sig: int) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(cli(*args), env=ENV, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(sig)
    err = proc.communicate(timeout=120)[1]
    return subprocess.CompletedProcess(args, proc.returncode, "", err)


def _integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def test_import_killed_at_random_moments_is_all_or_nothing(tmp_path: Path):
    n = 8000
    src = _exchange(tmp_path / "m.csv", n)
    rng = np.random.default_rng(18)
    for k, sig in enumerate(SIGNALS):
        db = tmp_path / f"s{k}.db"
        args = ["data", "import", "--file", str(src), "--db", str(db), "--json"]
        done = _interrupt_after(args, float(rng.uniform(1.0, 5.0)), sig)
        assert "Traceback" not in done.stderr, done.stderr
        if sig == signal.SIGINT and done.returncode != 0:
            assert done.returncode == 130 and "interrupted" in done.stderr
        if db.exists():
            got = rows(db, "select count(*) from measurements")
            assert got in (0, n), f"{signal.Signals(sig).name}: {got} of {n} rows survived"
            assert _integrity(db) == "ok"
        again = subprocess.run(cli(*args), env=ENV, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr
        assert rows(db, "select count(*) from measurements") == n
        assert rows(db, "select count(distinct arch_id) from measurements") == n


def test_plan_killed_at_random_moments_resumes_exactly(help_only: Path, small_fleet):
    fleet = small_fleet(4)
    args = ["plan", str(fleet), "--space", "nb201", "--approach", "proxy", "--executor",
            "serial", "--chunk-size", "2", "--db", str(help_only), "--quiet",
            "--no-truth"]  # fmt: skip
    rng = np.random.default_rng(7)
    kept: dict[str, int] = {}
    for sig in SIGNALS:
        done = _interrupt_after(args, float(rng.uniform(2.0, 12.0)), sig)
        assert "Traceback" not in done.stderr, done.stderr
        if sig != signal.SIGKILL and done.returncode != 0:
            assert done.returncode == 128 + sig and "run the same command again" in done.stderr
        now = _entries(help_only)
        assert {k: now[k] for k in kept} == kept, "an entry stored earlier was lost or redone"
        kept = now
    final = subprocess.run(cli(*args), env=ENV, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    after = _entries(help_only)
    assert len(after) == 8 and {k: after[k] for k in kept} == kept


def _entries(db: Path) -> dict[str, int]:
    with sqlite3.connect(db, timeout=60) as conn:
        return dict(conn.execute("select device, run_id from plans").fetchall())
