"""Cost model: fit on runs, predictions, projection arithmetic."""

from __future__ import annotations

import pytest

from fleetnas.errors import InputError
from fleetnas.fleet.costmodel import CostModel, RunSample


def _sample(label: str, tasks: int, workers: int, task_s: float, eff: float) -> RunSample:
    executor = label.split("-")[0]
    startup = {"ray": 3.0, "local": 1.0, "serial": 0.0}[executor]
    write = tasks * 1e-5
    pipeline = tasks * task_s + write if executor == "serial" else tasks * task_s / (workers * eff)
    wall = 2.0 + startup + pipeline + tasks * 1e-6
    return RunSample(label, executor, workers, tasks, wall, startup, tasks * task_s, write,
                     prepare_s=2.0, finish_s=tasks * 1e-6)  # fmt: skip


def test_fit_recovers_the_generating_parameters() -> None:
    runs = [
        _sample("serial-a", 3_000, 1, 2e-3, 1.0),
        _sample("local-a", 30_000, 2, 2e-3, 0.8),
        _sample("local-b", 6_000, 2, 2e-3, 0.8),
        _sample("ray-a", 30_000, 2, 2e-3, 0.8),
    ]
    runs[1].worker_s *= 1.5  # per-task time inflated by sharing cores: not the dedicated cost
    model = CostModel.fit(runs[:3])
    assert model.task_s == pytest.approx(2e-3) and model.write_s == pytest.approx(1e-5)
    assert model.efficiency == pytest.approx(0.8) and model.prepare_s == 2.0
    assert model.startup_s == {"serial": 0.0, "local": 1.0}
    for row in model.check(runs[:3]):
        assert abs(row["error"]) < 1e-9 and row["fitted"]
    held_out = model.check(runs[3:])[0]
    assert not held_out["fitted"] and held_out["predicted_s"] < held_out["measured_s"]


def test_projection_scales_with_nodes_and_flags_the_serial_writer() -> None:
    model = CostModel(task_s=2e-3, write_s=1e-5, efficiency=0.8, startup_s={"ray": 3.0})
    assert model.prepare_s == 0.0 and model.finish_s == 0.0
    small = model.project(devices=1_000_000, nodes=2, cores_per_node=16, startup_s=0.0)
    big = model.project(devices=1_000_000, nodes=8, cores_per_node=16, startup_s=0.0)
    assert small["tasks"] == 3_000_000 and small["bound"] == "workers"
    assert small["wall_s"] == pytest.approx(3e6 * 2e-3 / (31 * 0.8))
    assert big["wall_s"] < small["wall_s"] / 3.5
    assert small["usd"] == pytest.approx(32 * small["wall_s"] / 3600 * 0.048)
    huge = model.project(devices=1_000_000, nodes=1000, cores_per_node=64, startup_s=0.0)
    assert huge["bound"] == "driver writes" and huge["wall_s"] == pytest.approx(3e6 * 1e-5)
    with pytest.raises(InputError):
        CostModel.fit([])
