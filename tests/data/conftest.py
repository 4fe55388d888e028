"""Stores with real HELP / NATS data, shared so the 470k-row import runs once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fleetnas.data.help import import_help
from fleetnas.data.nats import import_nats
from fleetnas.store import SQLStore, Store


@pytest.fixture(scope="session")
def nb201_store(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """An SQLite store holding all of HELP's NAS-Bench-201 latencies and the accuracies.

    Read-only for the tests that use it.
    """
    store = SQLStore(f"sqlite:///{tmp_path_factory.mktemp('nb201') / 'store.db'}")
    import_help(store, data_dir, "nb201")
    import_nats(store, data_dir)
    yield store
    store.close()


@pytest.fixture
def store(tmp_path: Path):
    s = SQLStore(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


@pytest.fixture
def small_store(store: Store, data_dir: Path) -> Store:
    """A fresh store with two NAS-Bench-201 devices of HELP (pixel2 measured, eyeriss simulated)."""
    import_help(store, data_dir, "nb201", ["pixel2", "eyeriss"])
    return store


@pytest.fixture
def data_copy(data_dir: Path, tmp_path: Path):
    """``make(rels)``: a data folder holding copies of ``rels`` (for tests that damage one)."""

    def make(rels: list[str]) -> Path:
        target = tmp_path / "data-copy"
        for rel in rels:
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(data_dir / rel, target / rel)
        return target

    return make
