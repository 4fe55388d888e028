"""Helpers of the fault suite: run the CLI in a subprocess, count rows, watch processes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import yaml

from fleetnas.fleet import sim_fleet, write_fleet
from fleetnas.sim import generate_fleet
from fleetnas.spaces import get_space


def write_small_fleet(n: int, path: Path) -> Path:
    """``n`` simulated devices, two absolute latency budgets each (the 30th and 70th
    percentiles of 300 random designs on the device), written as a YAML fleet file."""
    space = get_space("nb201")
    archs = space.sample(300, 0)
    write_fleet(sim_fleet(n, seed=0, budgets=["p25"]), path)
    doc = yaml.safe_load(path.read_text())
    for d, sim in zip(doc["devices"], generate_fleet(n, rng=0), strict=True):
        assert d["name"] == sim.device.name
        q = np.percentile(sim.latency(space, archs), [30, 70])
        d["budgets"] = [{"latency_ms": float(f"{v:.4g}"), "label": f"q{p}"} for p, v in
                        zip((30, 70), q, strict=True)]  # fmt: skip
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "fleetnas.cli.main", *args]


def rows(db: Path, sql: str) -> int:
    with sqlite3.connect(db, timeout=60) as conn:
        return int(conn.execute(sql).fetchone()[0])


def children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (from /proc; Linux)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def alive(pids: Sequence[int]) -> list[int]:
    live = []
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            live.append(p)
    return live


def wait_until(check: Callable[[], bool], proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert proc.poll() is None, "the command finished before it could be stopped"
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        time.sleep(0.05)


ENV = {**os.environ, "PYTHONWARNINGS": "ignore::UserWarning:multiprocessing.resource_tracker"}


def _default_sigint() -> None:
    """In the child before exec: a shell's background job inherits SIGINT ignored, and Python
    then never turns it into KeyboardInterrupt; the fault suite wants the real behaviour."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(args: Sequence[str], **kwargs: object) -> subprocess.Popen:
    """``fleetnas ARGS`` in a subprocess with SIGINT at its default, stderr piped as text."""
    return subprocess.Popen(
        cli(*args),
        env=ENV,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
        **kwargs,  # type: ignore[arg-type]
    )


def interrupt(
    args: Sequence[str], sig: int, delay: float, after: Callable[[], bool] | None = None
) -> tuple[int, str, bool]:
    """Run ``fleetnas ARGS``; once ``after()`` holds (at once without it) wait ``delay`` s and
    send ``sig``. Returns (exit code, stderr, whether the command was still running)."""
    proc = start(args)
    try:
        if after is not None:
            deadline = time.monotonic() + 300
            while not after() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
        time.sleep(delay)
        hit = proc.poll() is None
        if hit:
            proc.send_signal(sig)
        err = proc.communicate(timeout=300)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err, hit
