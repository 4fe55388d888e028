"""kill -9, SIGTERM and SIGINT at random moments of ``data import`` and ``plan`` (issue 18,
fault suite), with exact row counts afterwards: an import is all or nothing, a plan keeps
every entry it stored, and running the command again completes the job with no row twice."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from faultkit import ENV, cli, interrupt, rows

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
        code, err, hit = interrupt(args, sig, float(rng.uniform(1.0, 5.0)))
        assert "Traceback" not in err, err
        got = rows(db, "select count(*) from measurements") if db.exists() else 0
        assert got in (0, n), f"{signal.Signals(sig).name}: {got} of {n} rows survived"
        if db.exists():
            assert _integrity(db) == "ok"
        if sig == signal.SIGINT and hit and got == 0:  # it exited 0 having imported nothing
            assert code == 130 and "interrupted" in err, (code, err)
        again = subprocess.run(cli(*args), env=ENV, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr
        assert rows(db, "select count(*) from measurements") == n
        assert rows(db, "select count(distinct arch_id) from measurements") == n


def test_plan_killed_at_random_moments_resumes_exactly(help_only: Path, small_fleet, tmp_path):
    """Each signal hits a fresh copy of the store between its first and last stored chunk."""
    n_devices = 8  # 16 entries in chunks of 2: the plan outlives its first chunk on a quiet machine
    fleet = small_fleet(n_devices)
    total = 2 * n_devices
    rng = np.random.default_rng(7)
    hits = 0
    for sig in SIGNALS:
        db = tmp_path / f"{signal.Signals(sig).name}.db"
        shutil.copy(help_only, db)
        args = ["plan", str(fleet), "--space", "nb201", "--approach", "proxy", "--executor",
                "serial", "--chunk-size", "2", "--db", str(db), "--quiet",
                "--no-truth"]  # fmt: skip
        first = lambda db=db: rows(db, "select count(*) from plans") >= 2  # noqa: E731
        code, err, hit = interrupt(args, sig, float(rng.uniform(0.0, 0.3)), after=first)
        hits += hit
        assert "Traceback" not in err, err
        kept = _entries(db)
        assert len(kept) >= 2
        stopped_mid_plan = hit and len(kept) < total  # not on its way out
        if stopped_mid_plan and sig != signal.SIGKILL:
            assert code == 128 + sig and "run the same command again" in err, err
        final = subprocess.run(cli(*args), env=ENV, capture_output=True, text=True)
        assert final.returncode == 0, final.stderr
        after = _entries(db)
        assert len(after) == total, "every (device, budget) entry once"
        assert {k: after[k] for k in kept} == kept, "an entry stored before the kill was redone"
    assert hits >= 1, "no signal arrived while the plan was running"


def _entries(db: Path) -> dict[str, int]:
    with sqlite3.connect(db, timeout=60) as conn:
        return dict(conn.execute("select device, run_id from plans").fetchall())
