"""Gradient-boosted trees on the one-hot encoding, as an ensemble of stochastic boosters.

Each member is a scikit-learn ``GradientBoostingRegressor`` with row subsampling and its own
seed. After fitting, the trees are kept as plain arrays (feature, threshold, children, leaf
value) read from scikit-learn's public ``tree_`` attributes, so a saved model loads without
unpickling and predicts with a vectorized NumPy walk.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np

from fleetnas.errors import InputError
from fleetnas.predict.base import Predictor, TargetEnsemble, fingerprint, to_numpy
from fleetnas.spaces import SearchSpace


class _Forest:
    """Many regression trees as flat arrays; ``predict`` returns ``n x T`` leaf values."""

    def __init__(
        self,
        feature: np.ndarray,
        threshold: np.ndarray,
        left: np.ndarray,
        right: np.ndarray,
        value: np.ndarray,
        roots: np.ndarray,
        depth: int,
    ) -> None:
        self.feature = feature.astype(np.int64)
        self.threshold = threshold.astype(np.float64)
        self.left = left.astype(np.int64)
        self.right = right.astype(np.int64)
        self.value = value.astype(np.float64)
        self.roots = roots.astype(np.int64)
        self.depth = int(depth)

    @classmethod
    def from_sklearn(cls, trees: list[Any]) -> _Forest:
        feats, thrs, lefts, rights, vals, roots = [], [], [], [], [], []
        offset = 0
        depth = 0
        for est in trees:
            t = est.tree_
            leaf = t.children_left < 0
            feats.append(np.where(leaf, 0, t.feature))
            thrs.append(np.where(leaf, 0.0, t.threshold))
            lefts.append(np.where(leaf, np.arange(t.node_count), t.children_left) + offset)
            rights.append(np.where(leaf, np.arange(t.node_count), t.children_right) + offset)
            vals.append(t.value.reshape(t.node_count, -1)[:, 0])
            roots.append(offset)
            offset += t.node_count
            depth = max(depth, int(t.max_depth))
        return cls(
            np.concatenate(feats),
            np.concatenate(thrs),
            np.concatenate(lefts),
            np.concatenate(rights),
            np.concatenate(vals),
            np.array(roots),
            depth,
        )

    def predict_sum(self, x: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """``n`` sums of the leaf values of all trees."""
        out = np.empty(len(x))
        flat_x = np.ascontiguousarray(x, dtype=np.float32)
        thr = self.threshold.astype(np.float32)
        feat = self.feature.astype(np.int32)
        left, right = self.left.astype(np.int32), self.right.astype(np.int32)
        for start in range(0, len(x), chunk):
            xb = flat_x[start : start + chunk]
            base = (np.arange(len(xb), dtype=np.int64) * xb.shape[1])[:, None]
            node = np.broadcast_to(self.roots.astype(np.int32), (len(xb), len(self.roots)))
            xr = xb.ravel()
            for _ in range(self.depth):
                go_left = xr[base + feat[node]] <= thr[node]
                node = np.where(go_left, left[node], right[node])
            out[start : start + chunk] = self.value[node].sum(axis=1)
        return out

    def state(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "threshold": self.threshold,
            "left": self.left,
            "right": self.right,
            "value": self.value,
            "roots": self.roots,
            "depth": self.depth,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> _Forest:
        return cls(
            *(to_numpy(s[k]) for k in ("feature", "threshold", "left", "right", "value", "roots")),
            int(s["depth"]),
        )


class GBTEnsemble(TargetEnsemble, Predictor):
    """Stochastic gradient-boosted trees, ``n_members`` boosters with different seeds.

    ``target``: ``"identity"`` or ``"log"`` (positive metrics such as latency and energy).
    Not differentiable: :meth:`torch_module` raises.
    """

    name = "gbt"
    min_samples = 10

    def __init__(
        self,
        space: SearchSpace | str,
        target: str = "log",
        n_members: int = 5,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        max_depth: int = 4,
        subsample: float = 0.8,
        seed: int = 0,
    ) -> None:
        super().__init__(space)
        self._check_ensemble(target, n_members)
        if not 0.0 < float(subsample) <= 1.0:
            raise InputError(f"subsample must be in (0, 1], got {subsample}")
        self.target = target
        self.n_members = int(n_members)
        self.n_estimators = int(n_estimators)
        self.learning_rate = float(learning_rate)
        self.max_depth = int(max_depth)
        self.subsample = float(subsample)
        self.seed = int(seed)

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        from sklearn.ensemble import GradientBoostingRegressor

        a, t = self._check_fit(
            X, y, positive=self.target == "log", min_samples=self.min_samples, what="targets"
        )
        z = np.log(t) if self.target == "log" else t
        enc = self.space.encode(a).astype(np.float64)
        self._init = np.zeros(self.n_members)
        self._forests: list[_Forest] = []
        for m in range(self.n_members):
            gb = GradientBoostingRegressor(
                n_estimators=self.n_estimators,
                learning_rate=self.learning_rate,
                max_depth=self.max_depth,
                subsample=self.subsample,
                random_state=self.seed + m,
            ).fit(enc, z)
            self._init[m] = float(np.mean(z))
            forest = _Forest.from_sklearn(list(gb.estimators_[:, 0]))
            forest.value = forest.value * self.learning_rate
            self._forests.append(forest)
        self._mark_fitted(data_fingerprint=fingerprint(a, t), n_train=len(a))
        return self

    def _members(self, X: np.ndarray) -> np.ndarray:
        self._require_fitted()
        enc = self.space.encode(self._check_X(X)).astype(np.float64)
        return np.stack(
            [i + f.predict_sum(enc) for i, f in zip(self._init, self._forests, strict=True)]
        )

    def _get_state(self) -> dict[str, Any]:
        return {"init": self._init, "forests": [f.state() for f in self._forests]}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._init = to_numpy(state["init"]).astype(float)
        self._forests = [_Forest.from_state(s) for s in state["forests"]]


__all__ = ["GBTEnsemble"]
