from __future__ import annotations

import numpy as np
import pytest

from fleetnas.errors import InputError
from fleetnas.predict.metrics import (
    kendall,
    mape,
    per_device_report,
    regression_report,
    spearman,
    within,
)


def test_known_values():
    y = np.array([4.0, 8.0, 16.0])
    p = np.array([4.25, 8.0, 12.0])
    assert mape(y, p) == pytest.approx(100 * (0.0625 + 0 + 0.25) / 3)
    assert within(y, p, 0.10) == pytest.approx(2 / 3)
    assert within(y, p, 0.05) == pytest.approx(1 / 3)
    assert spearman(y, p) == pytest.approx(1.0)
    assert kendall(y, p[::-1]) == pytest.approx(-1.0)


def test_report_and_per_device_mask():
    rng = np.random.default_rng(0)
    y = rng.uniform(1, 10, size=(50, 2))
    p = y * np.array([1.0, 1.2])
    mask = np.ones(50, dtype=bool)
    mask[:10] = False
    rep = per_device_report(y, p, ["a", "b"], mask)
    assert list(rep["device"]) == ["a", "b", "mean"]
    assert rep.loc[0, "mape"] == pytest.approx(0.0)
    assert rep.loc[1, "mape"] == pytest.approx(20.0)
    assert rep.loc[1, "within10"] == 0.0
    assert rep.loc[0, "n"] == 40
    assert rep.loc[2, "mape"] == pytest.approx(10.0)
    full = regression_report(y[:, 0], p[:, 0])
    assert set(full) == {"spearman", "kendall", "mape", "within5", "within10", "n"}


@pytest.mark.parametrize(
    ("y", "p", "msg"),
    [
        ([1.0, 2.0], [1.0], "equal lengths"),
        ([1.0, np.nan], [1.0, 2.0], "NaN"),
        ([1.0], [1.0], "at least 2"),
    ],
)
def test_bad_input(y, p, msg):
    with pytest.raises(InputError, match=msg):
        regression_report(y, p)


def test_kendall_tau_b_equals_scipy_with_ties_and_constants():
    from scipy.stats import kendalltau

    from fleetnas.predict.metrics import kendall_tau_b

    rng = np.random.default_rng(3)
    for n in (2, 3, 5, 12, 40, 200):
        for levels in (3, 1000):
            x = rng.integers(0, levels, n).astype(float)
            y = x * 0.5 + rng.integers(0, levels, n)
            want = kendalltau(x, y)[0]
            got = kendall_tau_b(x, y)
            if np.isnan(want):
                assert np.isnan(got)
            else:
                assert got == want, (n, levels)
    assert np.isnan(kendall_tau_b([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert kendall_tau_b([1, 2, 3], [3, 2, 1]) == -1.0
    long = rng.normal(size=2000)
    assert kendall_tau_b(long, long**3) == pytest.approx(1.0)
