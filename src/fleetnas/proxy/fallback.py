"""When performance monotonicity does not hold (Remark 4.3): detect it, then fall back.

Detection (:func:`check_monotonicity`): among the designs measured on the target so far, take
the pairs the proxy tells apart (predicted latencies differ by more than ``tol``, relative) and
count those the target orders the other way by more than ``tol`` -- "the actual latency of a new
design becomes significantly higher while it is expected to be lower". Monotonicity has failed
when at least ``min_pairs`` pairs are comparable and more than ``max_share`` of them contradict.
The tolerance keeps measurement noise and near-ties from triggering it.

Fallback (:func:`train_target_predictor`): measure ``n`` more designs on the target (spread over
the space), train the target's own latency (and energy) predictor on everything measured there,
and use it as the proxy; the caller registers it in the pool for future devices
(:meth:`~fleetnas.proxy.pool.ProxyPool.register`). Every fallback measurement is charged to the
session and so appears in the reported total.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.proxy.session import TargetSession
from fleetnas.spaces.base import MAX_ENUMERABLE

if TYPE_CHECKING:
    from fleetnas.predict.base import Predictor


@dataclass
class MonotonicityCheck:
    """Result of :func:`check_monotonicity` on the designs measured so far."""

    designs: int
    pairs: int
    contradictions: int
    share: float
    failed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_monotonicity(
    predicted: np.ndarray,
    measured: np.ndarray,
    tol: float = 0.1,
    max_share: float = 0.25,
    min_pairs: int = 6,
) -> MonotonicityCheck:
    """Contradicted share of the pairs the proxy separates by more than ``tol`` (see module)."""
    p = np.log(np.asarray(predicted, dtype=float).reshape(-1))
    m = np.log(np.asarray(measured, dtype=float).reshape(-1))
    if p.shape != m.shape:
        raise InputError(f"{len(p)} predictions but {len(m)} measurements")
    if tol < 0 or not 0 <= max_share <= 1:
        raise InputError(f"need tol >= 0 and 0 <= max_share <= 1, got {tol}, {max_share}")
    lt = np.log1p(tol)
    dp = p[:, None] - p[None, :]
    dm = m[:, None] - m[None, :]
    upper = np.triu(np.ones_like(dp, dtype=bool), k=1)
    comparable = upper & (np.abs(dp) > lt)
    contra = comparable & (np.abs(dm) > lt) & (np.sign(dp) != np.sign(dm))
    pairs, bad = int(comparable.sum()), int(contra.sum())
    share = bad / pairs if pairs else 0.0
    return MonotonicityCheck(
        designs=len(p),
        pairs=pairs,
        contradictions=bad,
        share=float(share),
        failed=bool(pairs >= min_pairs and share > max_share),
    )


def spread_designs(
    space: Any, n: int, seed: int = 0, candidates: np.ndarray | None = None
) -> np.ndarray:
    """``n`` distinct designs drawn uniformly (without replacement for enumerable spaces);
    for a space too large to enumerate, from ``candidates`` (``m x D``, e.g. a workspace's
    finite candidate table) when given, else sampled from the space."""
    if n < 1:
        raise InputError(f"need at least one design, got {n}")
    rng = np.random.default_rng(seed)
    if space.size > MAX_ENUMERABLE and candidates is not None and len(candidates):
        c = np.unique(space.check(candidates), axis=0)
        return c[np.sort(rng.choice(len(c), size=min(n, len(c)), replace=False))]
    if space.size <= MAX_ENUMERABLE:
        all_ = space.enumerate()
        return all_[np.sort(rng.choice(len(all_), size=min(n, len(all_)), replace=False))]
    return np.unique(space.sample(n, rng), axis=0)


def train_target_predictor(
    session: TargetSession,
    n: int = 100,
    seed: int = 0,
    n_members: int = 3,
    candidates: np.ndarray | None = None,
) -> tuple[Predictor, Predictor | None, int]:
    """Measure ``n`` spread designs (:func:`spread_designs`, from ``candidates`` where the space
    cannot be enumerated) on the session's target and fit its own predictors
    (:class:`~fleetnas.predict.GBTEnsemble` on log values) on everything measured there.
    Returns ``(latency predictor, energy predictor or None, designs charged)``."""
    from fleetnas.predict import GBTEnsemble

    before = session.cost.measurements
    session.measure(spread_designs(session.space, n, seed, candidates))
    archs, vals = session.measured
    if len(archs) < GBTEnsemble.min_samples:
        raise InputError(
            f"the fallback predictor needs at least {GBTEnsemble.min_samples} designs, "
            f"got {len(archs)}"
        )
    lat = GBTEnsemble(session.space, target="log", n_members=n_members, seed=seed)
    lat.fit(archs, vals[:, 0])
    en = None
    if "energy" in session.metrics:
        en = GBTEnsemble(session.space, target="log", n_members=n_members, seed=seed)
        en.fit(archs, vals[:, 1])
    return lat, en, session.cost.measurements - before


__all__ = ["MonotonicityCheck", "check_monotonicity", "spread_designs", "train_target_predictor"]
