"""Shared fixtures of the simulator tests: the NB201 space and a fixed sample of its cells."""

from __future__ import annotations

import numpy as np
import pytest

from fleetnas.spaces import SearchSpace, get_space


@pytest.fixture(scope="session")
def nb201() -> SearchSpace:
    return get_space("nb201")


@pytest.fixture(scope="session")
def nb201_archs(nb201: SearchSpace) -> np.ndarray:
    """1,500 distinct NB201 cells (a fixed random subset of the 15,625)."""
    every = nb201.enumerate()
    pick = np.random.default_rng(7).choice(len(every), size=1500, replace=False)
    return every[np.sort(pick)]
