"""Fixtures of the fault suite: a store with HELP's NAS-Bench-201 latencies only (Approach 1
needs nothing else), copied per test, and small simulated fleets."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fleetnas.store import open_store

sys.path.insert(0, str(Path(__file__).parent))
from faultkit import write_small_fleet


@pytest.fixture(scope="session")
def help_only_master(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fleetnas.data import import_all

    path = tmp_path_factory.mktemp("faults-db") / "help.db"
    with open_store(str(path)) as store:
        import_all(store, data_dir, parts=["help-nasbench201"])
    return path


@pytest.fixture
def help_only(help_only_master: Path, tmp_path: Path) -> Path:
    path = tmp_path / "store.db"
    shutil.copy(help_only_master, path)
    return path


@pytest.fixture
def small_fleet(tmp_path: Path) -> Callable[[int], Path]:
    return lambda n: write_small_fleet(n, tmp_path / "fleet.yaml")
