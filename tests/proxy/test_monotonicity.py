"""Pairwise monotonicity statistics against brute force, and the Figure 4 plot."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fleetnas.errors import InputError
from fleetnas.proxy import discordant_pairs, pair_stats, plot_figure4


def brute(a, b):
    n = len(a)
    flips = ta = tb = untied = 0
    for i in range(n):
        for j in range(i + 1, n):
            da, db = a[i] - a[j], b[i] - b[j]
            flips += da * db < 0
            ta += da == 0
            tb += db == 0
            untied += da != 0 and db != 0
    return flips, ta, tb, untied


@pytest.mark.parametrize("n", [2, 3, 7, 50, 203])
def test_flip_counts_match_brute_force(n):
    rng = np.random.default_rng(n)
    for levels in (3, 10, 10_000):  # heavy ties, some ties, (almost) none
        a = rng.integers(0, levels, n).astype(float)
        b = a + rng.integers(-levels // 2 - 1, levels // 2 + 2, n)
        flips, ta, tb, untied = brute(a, b)
        s = pair_stats(a, b)
        assert s.flipped == flips == discordant_pairs(a, b)
        assert (s.tied_a, s.tied_b, s.pairs) == (ta, tb, n * (n - 1) // 2)
        assert s.flip_share == pytest.approx(flips / s.pairs)
        assert s.flip_share_untied == pytest.approx(flips / untied if untied else 0.0)
        if len(set(a)) > 1 and len(set(b)) > 1:
            assert s.kendall == pytest.approx(stats.kendalltau(a, b)[0])
            assert s.spearman == pytest.approx(stats.spearmanr(a, b)[0])


def test_identical_and_reversed_orders():
    x = np.arange(100.0)
    assert pair_stats(x, 2 * x + 1).flip_share == 0.0
    rev = pair_stats(x, -x)
    assert rev.flip_share == 1.0 and rev.kendall == pytest.approx(-1.0)


def test_bad_inputs_are_clear():
    with pytest.raises(InputError, match="equally long"):
        pair_stats([1.0, 2.0], [1.0])
    with pytest.raises(InputError, match="NaN"):
        pair_stats([1.0, np.nan], [1.0, 2.0])


def test_figure4_is_written(tmp_path):
    rng = np.random.default_rng(0)
    pred = rng.uniform(1, 10, 40)
    path = plot_figure4(tmp_path / "fig" / "f4.png", pred, pred * 1.05, pred * 3 + 1, "a", "b")
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(path.parent.glob("*.tmp.png"))
