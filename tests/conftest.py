"""Shared fixtures: the public data folder (tests skip with a reason when it is absent)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    return Path(os.environ.get("FLEETNAS_DATA_DIR") or REPO.parent / "shared" / "data")


# Library code finds the data through FLEETNAS_DATA_DIR (the Makefile exports it); give tests run
# by hand the same default, ../shared/data beside the repository.
if "FLEETNAS_DATA_DIR" not in os.environ and (_data_dir() / "README.md").exists():
    os.environ["FLEETNAS_DATA_DIR"] = str(_data_dir())


#: The agent's default port. ``make test`` passes while another agent holds it (issue 19): the
#: suite holds it itself whenever it is free, so a test that needs it free, or talks to whatever
#: listens there, fails on every run.
AGENT_PORT = 8765


def _refuse_all(sock: socket.socket) -> None:
    """Accept and drop every connection, as a busy stranger on the port would answer."""
    with contextlib.suppress(OSError):
        while True:
            sock.accept()[0].close()


@pytest.fixture(scope="session", autouse=True)
def agent_port_taken() -> Iterator[bool]:
    """Hold 127.0.0.1:8765 for the session (``False`` where another program already holds it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", AGENT_PORT))
        sock.listen(16)
    except OSError:
        sock.close()
        yield False
        return
    threading.Thread(target=_refuse_all, args=(sock,), daemon=True).start()
    try:
        yield True
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The public data folder; skips the test when it is missing."""
    path = _data_dir()
    if not (path / "README.md").exists():
        pytest.skip(f"public data folder not found at {path} (set FLEETNAS_DATA_DIR)")
    return path


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Keep every test's default store and caches out of the user's home."""
    home = tmp_path_factory.mktemp("fleetnas-home")
    monkeypatch.setenv("FLEETNAS_HOME", str(home))
    monkeypatch.setenv("FLEETNAS_CACHE", str(home / "cache"))
    monkeypatch.delenv("FLEETNAS_DB", raising=False)
    yield
