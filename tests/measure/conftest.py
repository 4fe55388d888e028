"""Shared fixtures of the measure tests: one ONNX export cache per test session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fleetnas-cache")


@pytest.fixture
def shared_cache(onnx_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Let the tests of a session reuse exported models (exports take ~0.3 s each)."""
    monkeypatch.setenv("FLEETNAS_CACHE", str(onnx_cache))
    return onnx_cache
