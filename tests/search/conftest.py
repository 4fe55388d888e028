"""Fixtures of the search tests: NAS-Bench-201 with real accuracies and HELP latencies, and a
data-free problem on the same space built from its FLOPs and parameter counts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from fleetnas.search.objectives import MetricFn
from fleetnas.spaces import SearchSpace, get_space


@dataclass
class Problem:
    space: SearchSpace
    accuracy: MetricFn
    latency: MetricFn
    energy: MetricFn


@pytest.fixture(scope="session")
def nb201() -> SearchSpace:
    return get_space("nb201")


@pytest.fixture(scope="session")
def flops_problem(nb201: SearchSpace) -> Problem:
    """No data needed: 'accuracy' = log parameter count plus a deterministic cell-dependent
    term, 'latency' = FLOPs, 'energy' = FLOPs + 3 x params (all from the space itself)."""
    all_archs = nb201.enumerate()
    flops = nb201.flops(all_archs)
    params = nb201.params(all_archs)
    bonus = np.random.default_rng(7).normal(0, 0.05, size=len(all_archs))
    codes = lambda a: np.asarray(a) @ (5 ** np.arange(5, -1, -1))  # noqa: E731
    acc = np.log(params) + bonus
    energy = flops / flops.max() + 3 * params / params.max()
    return Problem(
        nb201,
        lambda a: acc[codes(a)],
        lambda a: flops[codes(a)] / 1e6,
        lambda a: energy[codes(a)],
    )


@pytest.fixture(scope="session")
def nats_help(nb201: SearchSpace, data_dir: Path) -> Problem:
    """NB201 with exact NATS-Bench CIFAR-10 accuracies (%), HELP pixel3 latencies (ms) and, as a
    second cost, HELP raspi4 latencies standing in for energy (all :class:`TableLookup`)."""
    from fleetnas.data.help import read_archs, read_latencies
    from fleetnas.data.nats import read_nats
    from fleetnas.predict import TableLookup

    space, help_archs = read_archs(data_dir, "nb201")
    frame = read_nats(data_dir)
    acc = TableLookup(space).fit(
        space.parse_many(frame["architecture"].tolist()), frame["accuracy_cifar10"].to_numpy()
    )
    lat, other = (
        TableLookup(space).fit(help_archs, read_latencies(data_dir, "nb201", dev))
        for dev in ("pixel3", "raspi4")
    )
    return Problem(space, acc.predict, lat.predict, other.predict)
