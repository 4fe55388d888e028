"""SIGTERM and SIGINT to ``fleetnas plan`` on a process pool (issue 18, case 5): the workers
stop, what is done stays stored, the resume line is printed, the exit code is 143 / 130, no
worker traceback; the resumed plan is complete with no entry twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time

import pytest
from faultkit import ENV, alive, children, cli, rows, wait_until

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "sig, group, code",
    [(signal.SIGTERM, False, 143), (signal.SIGINT, False, 130), (signal.SIGINT, True, 130)],
    ids=["sigterm-parent", "sigint-parent", "sigint-group"],
)
def test_signal_stops_workers_and_keeps_what_is_done(help_only, small_fleet, sig, group, code):
    n_devices = 12  # 24 entries: the plan still runs when its second entry is stored
    fleet = small_fleet(n_devices)
    total = 2 * n_devices
    args = ["plan", str(fleet), "--space", "nb201", "--approach", "proxy", "--executor",
            "local", "--workers", "2", "--chunk-size", "2", "--db", str(help_only), "--quiet",
            "--no-truth"]  # fmt: skip
    proc = subprocess.Popen(
        cli(*args), env=ENV, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        wait_until(lambda: len(children(proc.pid)) >= 3, proc, 120)  # tracker + 2 workers
        workers = children(proc.pid)
        wait_until(lambda: rows(help_only, "select count(*) from plans") >= 2, proc, 240)
        os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
        err = proc.communicate(timeout=150)[1]  # a loaded CI core is slow to unwind
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == code, err
    assert "Traceback" not in err and "Error" not in err, err
    assert "run the same command again to continue" in err
    deadline = time.monotonic() + 10
    while alive(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(workers), f"workers {alive(workers)} outlived the plan"
    kept = runs_of(help_only)
    assert 2 <= len(kept) < total
    serial = [a if a != "local" else "serial" for a in args]
    done = subprocess.run(cli(*serial), env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    after = runs_of(help_only)
    assert len(after) == total  # each (device, budget) once
    assert {k: after[k] for k in kept} == kept  # what was stored before the signal is kept


def runs_of(db) -> dict[str, int]:
    """Plan entry -> the run that stored it."""
    with sqlite3.connect(db, timeout=60) as conn:
        return dict(conn.execute("select device, run_id from plans").fetchall())
