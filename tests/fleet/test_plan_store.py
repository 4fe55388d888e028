"""Plan entries in the store: several budgets of one device are separate entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetnas.store import open_store


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_entries_keyed_by_device_and_budget(tmp_path: Path, backend: str) -> None:
    url = "memory://" if backend == "memory" else str(tmp_path / "s.db")
    with open_store(url) as store:
        with store.run("plan") as run:
            run.save_plan_entries(
                "p",
                [
                    {"key": "a@p25", "device": "a", "design": "x"},
                    {"key": "a@p75", "device": "a", "design": "y"},
                    {"device": "b", "design": "z"},
                ],
            )
        with store.run("plan") as run:
            run.save_plan_entries("p", [{"key": "a@p75", "device": "a", "design": "w"}])
        got = store.get_plan("p")
    assert [(e.get("key"), e["design"]) for e in got] == [
        ("a@p25", "x"),
        ("a@p75", "w"),
        (None, "z"),
    ]
