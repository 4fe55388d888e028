"""Live progress: the bar moves per finished task inside a chunk, not once per chunk."""

from __future__ import annotations

from pathlib import Path

from fleetnas.fleet import PlanConfig, make_executor, plan_fleet, read_fleet
from fleetnas.store import open_store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "fleets"


def test_progress_counts_tasks_within_one_chunk(help_db: str) -> None:
    fleet = read_fleet(EXAMPLES / "help_nb201.yaml")
    config = PlanConfig(space="nb201", approach="proxy", chunk_size=fleet.n_tasks)
    calls: list[tuple[int, int]] = []
    with open_store(help_db) as store:
        run = plan_fleet(
            fleet, config, store, executor=make_executor("serial", None, None),
            progress=lambda done, total: calls.append((done, total)),
        )  # fmt: skip
    assert run.computed == fleet.n_tasks == 12
    done = [d for d, _ in calls]
    assert calls[0] == (0, 12) and calls[-1] == (12, 12)
    assert done == sorted(done) and len(set(done)) == len(done)
    # one chunk of 12 tasks: a per-chunk bar would only ever show 0 and 12
    assert any(0 < d < 12 for d in done), calls


def test_pool_workers_count_their_tasks(help_db: str) -> None:
    fleet = read_fleet(EXAMPLES / "help_nb201.yaml")
    config = PlanConfig(space="nb201", approach="proxy", chunk_size=6)
    calls: list[int] = []
    with open_store(help_db) as store:
        ex = make_executor("local", 2, None)
        plan_fleet(fleet, config, store, executor=ex, progress=lambda d, t: calls.append(d))
        assert ex.counter is not None and ex.counter.value == 12
    assert calls[-1] == 12
