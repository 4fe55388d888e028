"""Performance monotonicity between two devices (Sec. 4.2) and the paper's Figure 4.

:func:`pair_stats` measures how well one device's latency order predicts another's over the same
designs: Spearman's ρ, Kendall's τ-b, and the share of design *pairs* whose order flips
(``(a_i - a_j)(b_i - b_j) < 0``), counted exactly in ``O(n log n)``: sort by the first device
(ties by the second), then the flipped pairs are the strict inversions of the second device's
ranks, counted level by level of a merge sort with one vectorized ``searchsorted`` per level.
For NAS-Bench-201 (15,625 designs, 122 million pairs) this takes milliseconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.predict.metrics import kendall, spearman

if TYPE_CHECKING:
    from fleetnas.spaces import SearchSpace
    from fleetnas.store import Store


@dataclass(frozen=True)
class PairStats:
    """Rank agreement of two devices over ``n`` common designs. ``flip_share``: flipped pairs
    over all ``n (n - 1) / 2`` pairs; ``flip_share_untied``: over the pairs tied on neither
    device; ``tied_a``/``tied_b``: pairs tied on each device."""

    n: int
    spearman: float
    kendall: float
    flipped: int
    pairs: int
    tied_a: int
    tied_b: int
    flip_share: float
    flip_share_untied: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tied_pairs(x: np.ndarray) -> int:
    _, counts = np.unique(x, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def _strict_inversions(y: np.ndarray) -> int:
    """Pairs ``i < j`` with ``y[i] > y[j]`` for ints ``y`` in ``[0, n)``."""
    n = len(y)
    a = np.asarray(y, dtype=np.int64).copy()
    pos = np.arange(n)
    total = 0
    width = 1
    while width < n:
        blk = pos // width
        pair = blk // 2
        right = (blk % 2) == 1
        key = pair * (n + 1) + a
        left_keys = key[~right]
        le = np.searchsorted(left_keys, key[right], side="right")
        end = np.searchsorted(left_keys, pair[right] * (n + 1) + n, side="right")
        total += int((end - le).sum())
        a = a[np.lexsort((a, pair))]
        width *= 2
    return total


def discordant_pairs(a: np.ndarray, b: np.ndarray) -> int:
    """Number of pairs ordered strictly one way by ``a`` and strictly the other way by ``b``."""
    x = np.asarray(a, dtype=float).reshape(-1)
    y = np.asarray(b, dtype=float).reshape(-1)
    if x.shape != y.shape:
        raise InputError(f"need two equally long value lists, got {len(x)} and {len(y)}")
    order = np.lexsort((y, x))
    ranks = np.unique(y, return_inverse=True)[1].reshape(-1)
    return _strict_inversions(ranks[order])


def pair_stats(a: np.ndarray, b: np.ndarray) -> PairStats:
    """:class:`PairStats` of two ``n`` arrays of one metric over the same designs."""
    x = np.asarray(a, dtype=float).reshape(-1)
    y = np.asarray(b, dtype=float).reshape(-1)
    if x.shape != y.shape or len(x) < 2:
        raise InputError(
            f"monotonicity needs two equally long lists of at least 2 values, got {len(x)} "
            f"and {len(y)}"
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError("monotonicity got NaN or infinite values")
    n = len(x)
    pairs = n * (n - 1) // 2
    flipped = discordant_pairs(x, y)
    ta, tb = _tied_pairs(x), _tied_pairs(y)
    both = _tied_pairs(np.unique(np.stack([x, y], axis=1), axis=0, return_inverse=True)[1])
    untied = pairs - ta - tb + both
    constant = np.ptp(x) == 0 or np.ptp(y) == 0
    return PairStats(
        n=n,
        spearman=float("nan") if constant else spearman(x, y),
        kendall=float("nan") if constant else kendall(x, y),
        flipped=flipped,
        pairs=pairs,
        tied_a=ta,
        tied_b=tb,
        flip_share=flipped / pairs,
        flip_share_untied=flipped / untied if untied else 0.0,
    )


def device_values(
    store: Store,
    space: SearchSpace,
    devices: list[str],
    metric: str = "latency",
) -> tuple[np.ndarray, np.ndarray]:
    """``(archs n x D, values n x len(devices))`` of the designs every device has a stored value
    for (statistic ``median``, else ``mean``)."""
    from fleetnas.errors import DataError

    table: dict[bytes, list[float]] = {}
    rows: dict[bytes, np.ndarray] = {}
    for j, dev in enumerate(devices):
        store.get_device(dev)
        archs = vals = None
        for stat in ("median", "mean"):
            archs, vals = store.get_measurements(space, dev, metric, statistic=stat)
            if len(vals):
                break
        if vals is None or not len(vals):
            raise DataError(f"device {dev!r} has no stored {metric} values in space {space.name!r}")
        for row, v in zip(archs, vals, strict=True):
            k = row.tobytes()
            if j == 0:
                table[k] = [float(v)]
                rows[k] = row
            elif k in table and len(table[k]) == j:
                table[k].append(float(v))
    keys = [k for k, v in table.items() if len(v) == len(devices)]
    if len(keys) < 2:
        raise DataError(
            f"devices {', '.join(devices)} share {len(keys)} measured designs in space "
            f"{space.name!r}; need at least 2"
        )
    return np.stack([rows[k] for k in keys]), np.array([table[k] for k in keys])


def joint_values(
    store: Store, space: SearchSpace, devices: dict[str, dict[str, str]]
) -> tuple[np.ndarray, np.ndarray]:
    """Latencies of *compressed* designs (``space`` a compressed space such as ``nb201+q``)
    on devices stored one table per precision: ``devices`` maps a name to ``{precision: stored
    device}`` (``ptable:`` specs). Returns ``(archs n x D, values n x len(devices))`` over the
    joint designs every device runs: each common base design at each common precision, width
    1. With compression the latency order is not shared (int8 faster on one stack, slower on
    another): :func:`pair_stats` over these values shows it (issue 17 item 3)."""
    from fleetnas.errors import DataError

    base = space.base  # type: ignore[attr-defined]
    precs = sorted(set.intersection(*(set(t) for t in devices.values())))
    if not precs:
        raise DataError(f"devices {', '.join(devices)} share no precision")
    stored = sorted({d for t in devices.values() for d in t.values()})
    archs, vals = device_values(store, base, stored)
    col = {d: j for j, d in enumerate(stored)}
    nb = space.n_blocks  # type: ignore[attr-defined]
    one = space.widths.index(1.0)  # type: ignore[attr-defined]
    parts, values = [], []
    for p in precs:
        q = np.full((len(archs), nb), space.precisions.index(p), dtype=np.int64)  # type: ignore[attr-defined]
        w = np.full((len(archs), nb), one, dtype=np.int64)
        parts.append(space.join(archs, q, w))  # type: ignore[attr-defined]
        values.append(np.stack([vals[:, col[t[p]]] for t in devices.values()], axis=1))
    return space.canonicalize(np.concatenate(parts)), np.concatenate(values)  # type: ignore[attr-defined]


def device_pair_stats(
    store: Store, space: SearchSpace, device_a: str, device_b: str, metric: str = "latency"
) -> PairStats:
    """:class:`PairStats` of two stored devices over their common designs."""
    _, v = device_values(store, space, [device_a, device_b], metric)
    return pair_stats(v[:, 0], v[:, 1])


def plot_figure4(
    path: str | Path,
    predicted: np.ndarray,
    proxy_measured: np.ndarray,
    target_measured: np.ndarray,
    proxy_name: str = "proxy",
    target_name: str = "target",
    unit: str = "ms",
) -> Path:
    """The paper's Figure 4 as a PNG: designs ordered by the proxy predictor's latency, with the
    proxy's prediction and measurement (left axis) and the target's measurement (right axis;
    devices differ in scale, the question is whether the *order* is kept). Returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = np.asarray(predicted, dtype=float)
    m0 = np.asarray(proxy_measured, dtype=float)
    m1 = np.asarray(target_measured, dtype=float)
    if not (p.shape == m0.shape == m1.shape) or p.ndim != 1 or len(p) < 2:
        raise InputError("Figure 4 needs three equally long 1-D value lists (at least 2)")
    order = np.argsort(p, kind="stable")
    x = np.arange(1, len(p) + 1)
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=120)
    ax.plot(x, p[order], "-", color="tab:blue", label=f"{proxy_name} predicted")
    ax.plot(x, m0[order], "o", ms=4, color="tab:blue", mfc="none", label=f"{proxy_name} measured")
    ax.set_xlabel(f"design, ordered by predicted latency on {proxy_name}")
    ax.set_ylabel(f"{proxy_name} latency ({unit})", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(x, m1[order], "s-", ms=3, lw=0.8, color="tab:red", label=f"{target_name} measured")
    ax2.set_ylabel(f"{target_name} latency ({unit})", color="tab:red")
    s = pair_stats(p, m1)
    ax.set_title(
        f"{proxy_name} predictor vs {target_name}: Spearman {s.spearman:.3f}, "
        f"Kendall {s.kendall:.3f}, flipped pairs {100 * s.flip_share:.1f} %",
        fontsize=9,
    )
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, loc="upper left")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out)
    return out


__all__ = [
    "PairStats",
    "device_pair_stats",
    "device_values",
    "discordant_pairs",
    "pair_stats",
    "plot_figure4",
]
