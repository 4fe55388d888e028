"""What survives processes: kills mid-run, reopening, schema versions, bad URLs and files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text, update

from fleetnas.devices import Device
from fleetnas.errors import StoreError
from fleetnas.store import InMemoryStore, MeasurementBatch, SQLStore, open_store
from fleetnas.store import schema as t
from fleetnas.store.base import COUNTED

HERE = Path(__file__).parent

KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {here!r})
    import numpy as np
    from store_toy_space import ToySpace
    from fleetnas.devices import Device
    from fleetnas.store import Artifact, MeasurementBatch, open_store

    space = ToySpace()
    archs = space.enumerate()
    store = open_store({url!r})
    with store.run("import", {{"doomed": True}}, key="killed") as run:
        run.add_device(Device("victim", "mobile_cpu", {{"cores": 4}}))
        for metric in ("latency", "energy", "power"):
            run.add_measurements(
                MeasurementBatch(space, archs, "victim", metric, np.ones(len(archs)), "x")
            )
        run.save_artifact(Artifact("p", "predictor", b"w" * 100_000))
        run.save_plan_entries("fleet", [{{"device": "victim", "design": "d"}}])
        print("inside", flush=True)
        time.sleep(120)
    """
)


def test_kill_inside_a_run_leaves_no_trace(sql_backend, space):
    store = sql_backend.open()
    store.add_device(Device("survivor", "desktop_cpu"))
    before = store.counts()
    script = KILLED_WRITER.format(here=str(HERE), url=sql_backend.url)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == "inside", proc.stderr.read()  # type: ignore[union-attr]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL

    after = sql_backend.open()
    assert after.counts() == before
    assert not after.has_run("killed")
    assert [d.name for d in after.list_devices()] == ["survivor"]
    if sql_backend.name == "sqlite":
        with after.engine.connect() as conn:  # type: ignore[attr-defined]
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    deadline = time.monotonic() + 30
    while True:  # PostgreSQL may take a moment to notice the dead client
        try:
            with after.run("import", key="killed") as run:
                run.add_measurements(
                    MeasurementBatch(
                        space, space.enumerate()[:3], "victim", "latency", [1, 2, 3], "x"
                    )
                )
            break
        except StoreError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert after.has_run("killed") and after.counts()["measurements"] == 3


def test_data_survives_reopening(sql_backend, space):
    with sql_backend.open().run("import", key="once") as run:
        run.add_measurements(
            MeasurementBatch(space, space.enumerate()[:4], "d", "m", [1, 2, 3, 4], "u")
        )
    again = sql_backend.open()
    assert again.has_run("once")
    np.testing.assert_allclose(np.sort(again.get_measurements(space, "d", "m")[1]), [1, 2, 3, 4])


def test_newer_schema_version_is_refused(sql_backend):
    store = sql_backend.open()
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(update(t.meta).where(t.meta.c.key == "schema_version").values(value="999"))
    with pytest.raises(StoreError, match=r"schema version 999.*upgrade fleetnas"):
        sql_backend.open()


def test_counts_cover_every_table(sql_backend):
    assert set(sql_backend.open().counts()) == set(COUNTED) == set(t.COUNTED_TABLES)


def test_sqlite_store_is_in_wal_mode_with_foreign_keys(tmp_path):
    store = SQLStore(f"sqlite:///{tmp_path / 'a' / 'b' / 's.db'}")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
    store.close()


def test_not_an_sqlite_file_gives_one_clear_error(tmp_path):
    bad = tmp_path / "notes.db"
    bad.write_bytes(b"this is a text file, not a database\n" * 200)
    with pytest.raises(StoreError, match=rf"cannot open the store at sqlite:///{bad}.*SQLite"):
        open_store(str(bad))
    with pytest.raises(StoreError, match="is a folder"):
        open_store(str(tmp_path))


def test_unreachable_server_error_hides_the_password():
    url = "postgresql+psycopg://alice:s3cret@127.0.0.1:1/fleet"
    with pytest.raises(StoreError) as info:
        open_store(url)
    message = str(info.value)
    assert "s3cret" not in message and "alice:***@127.0.0.1:1/fleet" in message
    assert "reachable database" in message


def test_bad_url_and_missing_driver():
    with pytest.raises(StoreError, match="not a database URL"):
        open_store("::nonsense://x")
    with pytest.raises(StoreError, match="driver"):
        open_store("postgresql+nosuchdriver://u@h/db")


def test_open_store_resolution(tmp_path, monkeypatch):
    default = open_store()
    assert isinstance(default, SQLStore)
    home_db = Path(os.environ["FLEETNAS_HOME"], "fleetnas.db")
    assert default.url == f"sqlite:///{home_db}" and home_db.exists()
    default.close()
    assert isinstance(open_store("memory://"), InMemoryStore)
    with pytest.raises(StoreError, match=r"folder .*sub does not exist; create it first"):
        open_store(str(tmp_path / "sub" / "plain.db"))
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path / 'sub' / 'deeper' / 'x.db'}")
    assert not (tmp_path / "sub").exists()  # case 4 of issue 18: it was created silently
    (tmp_path / "sub").mkdir()
    plain = open_store(str(tmp_path / "sub" / "plain.db"))
    assert (tmp_path / "sub" / "plain.db").exists()
    plain.close()
    monkeypatch.setenv("FLEETNAS_DB", str(tmp_path / "env.db"))
    from_env = open_store()
    assert from_env.url == f"sqlite:///{tmp_path / 'env.db'}"
    from_env.close()
