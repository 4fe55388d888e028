"""Exact lookup for spaces with a full table, e.g. NAS-Bench-201 accuracy (``Acc(x)``).

The table is indexed by the design's rank in :meth:`SearchSpace.enumerate` order, so it works
for any enumerable space. Its torch module returns the *expected* value under a relaxed
(independent per-decision) distribution, which is the exact table value for one-hot inputs and
differentiable in the probabilities.
"""

from __future__ import annotations

import os
from typing import Any, Self

import numpy as np
import torch
from torch import nn

from fleetnas.errors import InputError
from fleetnas.predict.base import Predictor, check_targets, fingerprint, to_numpy
from fleetnas.spaces import SearchSpace
from fleetnas.spaces.base import MAX_ENUMERABLE


class _ExpectedTable(nn.Module):
    """``n x F`` per-decision probabilities -> ``n`` expected table values."""

    def __init__(self, table: np.ndarray, cards: np.ndarray) -> None:
        super().__init__()
        self.register_buffer(
            "table", torch.as_tensor(table.reshape(tuple(cards)), dtype=torch.float32)
        )
        self.offsets = np.concatenate([[0], np.cumsum(cards)]).tolist()

    def forward(self, encoding: torch.Tensor) -> torch.Tensor:
        enc = encoding.to(torch.float32)
        o = self.offsets
        out = torch.einsum("na,a...->n...", enc[:, o[0] : o[1]], self.table)
        for i in range(1, len(o) - 1):
            out = torch.einsum("na,na...->n...", enc[:, o[i] : o[i + 1]], out)
        return out


class TableLookup(Predictor):
    """Exact value per design from a table covering (part of) an enumerable space.

    :meth:`fit` stores the given values (a design given twice keeps the later value);
    predicting a design without a value raises :class:`InputError` naming it.
    """

    name = "lookup"
    min_samples = 1

    def __init__(self, space: SearchSpace | str) -> None:
        super().__init__(space)
        if self.space.size > MAX_ENUMERABLE:
            raise InputError(
                f"space {self.space.name!r} has {self.space.size:.3g} designs; a lookup table "
                f"needs an enumerable space (<= {MAX_ENUMERABLE:,})"
            )

    def _codes(self, a: np.ndarray) -> np.ndarray:
        return np.ravel_multi_index(tuple(a.T), tuple(self.space.cardinalities))

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        a, t = self._check_fit(X, y, positive=False, min_samples=1, what="table values")
        table = np.full(self.space.size, np.nan)
        table[self._codes(a)] = t
        self._table = table
        self._mark_fitted(
            data_fingerprint=fingerprint(a, t),
            n_train=len(a),
            coverage=float(np.isfinite(table).mean()),
        )
        return self

    @property
    def complete(self) -> bool:
        """Whether every design of the space has a value."""
        self._require_fitted()
        return bool(np.isfinite(self._table).all())

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._require_fitted()
        a = self._check_X(X)
        out = self._table[self._codes(a)]
        missing = np.isnan(out)
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise InputError(
                f"design {self.space.format(a[i])!r} (row {i}) has no value in the lookup table"
            )
        return out

    def torch_module(self) -> nn.Module:
        """Expected value under per-decision probabilities (``n x F`` encoding)."""
        self._require_fitted()
        if not self.complete:
            raise InputError("the differentiable lookup needs a complete table (every design)")
        return _ExpectedTable(self._table, self.space.cardinalities)

    def _get_state(self) -> dict[str, Any]:
        return {"table": self._table}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._table = to_numpy(state["table"]).astype(float)

    # ---- NAS-Bench-201 --------------------------------------------------------------------
    @classmethod
    def nb201_accuracy(
        cls,
        dataset: str = "cifar10",
        store: Any = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> Self:
        """NAS-Bench-201 test accuracy (%) of ``dataset`` (``cifar10``, ``cifar100``,
        ``imagenet16``) from the store (``fleetnas data import``) or, without one, the
        NATS-Bench CSV in the data folder."""
        from fleetnas import data

        metric = data.accuracy_metric(dataset)
        if store is not None:
            archs, values = data.get_accuracy(store, dataset)
        else:
            from fleetnas.data.nats import parse_archs, read_nats
            from fleetnas.spaces import get_space

            frame = read_nats(data_dir)
            archs = parse_archs(get_space("nb201"), frame["architecture"].tolist(), "nats")
            values = frame[metric].to_numpy()
        check_targets(values, positive=False, what=f"NAS-Bench-201 {metric}")
        obj = cls("nb201").fit(archs, values)
        obj._meta["metric"] = metric
        return obj


__all__ = ["TableLookup"]
