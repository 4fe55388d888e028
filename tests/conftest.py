"""Shared fixtures: the public data folder (tests skip with a reason when it is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    return Path(os.environ.get("FLEETNAS_DATA_DIR") or REPO.parent / "shared" / "data")


# Library code finds the data through FLEETNAS_DATA_DIR (the Makefile exports it); give tests run
# by hand the same default, ../shared/data beside the repository.
if "FLEETNAS_DATA_DIR" not in os.environ and (_data_dir() / "README.md").exists():
    os.environ["FLEETNAS_DATA_DIR"] = str(_data_dir())


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
