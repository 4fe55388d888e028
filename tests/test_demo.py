"""The demo end to end on a small fleet (the full one is `make demo`)."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest

from fleetnas.demo import DemoConfig, run_demo, summary_by_source
from fleetnas.store import open_store


@pytest.fixture(scope="module")
def demo_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    with open_store(str(out / "store.db")) as store:
        config = DemoConfig(out_dir=out, n_sim=6, local=False, executor="serial", data_dir=data_dir)
        first = run_demo(config, store, PHASES.append, progress=_recording_bar)
        second = run_demo(config, store)
    return out, first, second


PHASES: list[str] = []
BAR: list[tuple[str, int, int]] = []


@contextmanager
def _recording_bar(description: str, total: int):
    yield lambda done, of: BAR.append((description, done, of))


def test_demo_says_its_phases_and_moves_a_bar_per_task(demo_run):
    text = "\n".join(PHASES)
    for phase in ("public data:", "optimizer network", "fleet: 33 devices", "plan: 66 tasks",
                  "plan: 66 entries computed", "report: writing"):  # fmt: skip
        assert phase in text, text
    assert BAR[0] == ("plan", 0, 66) and BAR[-1] == ("plan", 66, 66)
    # chunks of 256 tasks: a per-chunk bar would show 0 and 66 only
    assert any(0 < done < 66 for _, done, _ in BAR)


def test_demo_plans_every_help_device_and_writes_files(demo_run):
    out, first, _ = demo_run
    plan = json.loads((out / "plan.json").read_text())
    assert plan["summary"]["entries"] == (27 + 6) * 2
    assert plan["summary"]["failed"] == 0
    assert plan["summary"]["violations_known"] == 0
    assert (out / "report.html").stat().st_size > 100_000
    assert (out / "demo-fleet.yaml").exists()
    assert first.trained and first.computed == 66


def test_second_run_reuses_store(demo_run):
    _, first, second = demo_run
    assert not second.trained
    assert second.computed == 0 and second.reused == 66
    assert second.plan["devices"] == first.plan["devices"]


def test_summary_by_source_separates_replayed_and_simulated(demo_run):
    _, first, _ = demo_run
    rows = summary_by_source(first.plan)
    sources = {r["source"] for r in rows}
    assert sources == {"HELP (replayed)", "simulated"}
    help_rows = [r for r in rows if r["source"] == "HELP (replayed)"]
    assert sum(r["devices"] for r in help_rows) == 27
    assert all(r["mean regret pp"] is not None for r in rows)
