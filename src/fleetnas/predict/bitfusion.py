"""Latency and energy of APQ designs on BitFusion, summed from APQ's published table.

The sum follows APQ's ``utils/latency_predictor.py`` (mit-han-lab/apq): the table's ``head`` plus
``tail`` entries, then for every active MBConv layer three convolutions looked up at their own
shape and bit-widths -- the point-wise expansion ``(c_in, mid, hw, 1, 1, 0, 1)`` at the layer's
point-wise weight/activation bits, the depth-wise ``(mid, mid, hw, k, stride, k // 2, mid)`` at
its depth-wise bits, and the point-wise projection ``(mid, c_out, hw // stride, 1, 1, 0, 1)``
at the point-wise bits. Units are the table's (APQ reports them as ms and mJ).

A design that needs a key the table lacks (4-bit activations of a 7x7 depth-wise convolution)
has no cost: :meth:`BitFusionCost.predict` returns ``inf`` for it, so no budget admits it, and
:meth:`BitFusionCost.missing_keys` names the keys. It is never priced as zero.
"""

from __future__ import annotations

import os
from typing import Any, Self

import numpy as np

from fleetnas.errors import InputError
from fleetnas.predict.base import Predictor, fingerprint, to_numpy
from fleetnas.spaces import SearchSpace
from fleetnas.spaces.apq import (
    BITS,
    DW_A,
    DW_W,
    KS,
    KS_COLS,
    MID_CHOICES,
    MID_COLS,
    N_LAYERS,
    PW_A,
    PW_W,
    SHAPES,
    APQSpace,
)

METRICS = ("latency", "energy")
UNITS = {"latency": "ms", "energy": "mJ"}
_MAX_MID = max(len(c) for c in MID_CHOICES)


def bitfusion_device() -> Any:
    """The BitFusion accelerator as a fleetnas device (costs from APQ's table, batch 1): the
    catalog's ``bitfusion`` record (:data:`fleetnas.devices.catalog.BITFUSION`)."""
    from fleetnas.devices.catalog import get_catalog_device

    return get_catalog_device("bitfusion")


def layer_keys(
    i: int, k: int, mid: int
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """The three convolution shapes of MBConv layer ``i`` at kernel ``k`` and middle width."""
    s = SHAPES[i]
    hw, stride = s["hw"], s["stride"]
    return (
        (s["c_in"], mid, hw, 1, 1, 0, 1),
        (mid, mid, hw, k, stride, k // 2, mid),
        (mid, s["c_out"], hw // stride, 1, 1, 0, 1),
    )


def _key(shape: tuple[int, ...], w: int, a: int) -> str:
    return f"({', '.join(map(str, shape))})-W{w}A{a}"


class BitFusionCost(Predictor):
    """BitFusion latency (``metric="latency"``) or energy (``"energy"``) of ``apq`` designs.

    Built from the table (:meth:`from_data`, :meth:`from_table`), not fitted; vectorized:
    ``n x 131`` designs -> ``n`` costs, ``inf`` where the table has no entry.
    """

    name = "bitfusion"

    def __init__(self, space: SearchSpace | str = "apq", metric: str = "latency") -> None:
        super().__init__(space)
        if not isinstance(self.space, APQSpace):
            raise InputError(f"BitFusionCost works on the 'apq' space, got {self.space.name!r}")
        if metric not in METRICS:
            raise InputError(f"unknown BitFusion metric {metric!r}; expected latency or energy")
        self.metric = metric

    @property
    def unit(self) -> str:
        return UNITS[self.metric]

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        raise InputError(
            "BitFusionCost is built from APQ's table (from_data/from_table), not fitted"
        )

    @classmethod
    def from_data(
        cls, data_dir: str | os.PathLike[str] | None = None, metric: str = "latency"
    ) -> Self:
        """From ``apq/BitFusion_new.b1.dict`` in the public data folder (SHA-256 checked)."""
        from fleetnas.data.apq import read_bitfusion

        return cls(metric=metric).from_table(read_bitfusion(data_dir))

    def from_table(self, table: dict[str, tuple[float, float]]) -> Self:
        """Vectorize ``{key: (latency, energy)}`` (:func:`fleetnas.data.apq.read_bitfusion`)."""
        col = METRICS.index(self.metric)
        nb = len(BITS)
        pw = np.full((N_LAYERS, _MAX_MID, nb, nb), np.inf)
        dw = np.full((N_LAYERS, len(KS), _MAX_MID, nb, nb), np.inf)
        missing = 0
        for i in range(N_LAYERS):
            for m, mid in enumerate(MID_CHOICES[i]):
                for ki, k in enumerate(KS):
                    expand, depth, project = layer_keys(i, k, mid)
                    for wi, w in enumerate(BITS):
                        for ai, a in enumerate(BITS):
                            d_entry = table.get(_key(depth, w, a))
                            missing += d_entry is None
                            if d_entry is not None:
                                dw[i, ki, m, wi, ai] = d_entry[col]
                            if ki:
                                continue
                            e1, e2 = table.get(_key(expand, w, a)), table.get(_key(project, w, a))
                            missing += (e1 is None) + (e2 is None)
                            if e1 is not None and e2 is not None:
                                pw[i, m, wi, ai] = e1[col] + e2[col]
        self._fixed = float(table["head"][col] + table["tail"][col])
        self._pw, self._dw = pw, dw
        self._mark_fitted(
            source="apq/BitFusion_new.b1.dict",
            data_fingerprint=fingerprint(
                np.nan_to_num(pw, posinf=-1), np.nan_to_num(dw, posinf=-1)
            ),
            missing_entries=int(missing),
        )
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``n`` costs in :attr:`unit`; ``inf`` for designs the table cannot price."""
        self._require_fitted()
        a = self.space.canonicalize(self._check_X(X))
        if a.ndim == 1:
            a = a[None, :]
        layer = np.arange(N_LAYERS)[None, :]
        mid = a[:, MID_COLS]
        pw = self._pw[layer, mid, a[:, PW_W], a[:, PW_A]]
        dw = self._dw[layer, a[:, KS_COLS], mid, a[:, DW_W], a[:, DW_A]]
        active = self.space.active_layers(a)
        return self._fixed + np.where(active, pw + dw, 0.0).sum(axis=1)

    def feasible(self, X: np.ndarray) -> np.ndarray:
        """``n`` bool: the table prices every convolution of the design."""
        return np.isfinite(self.predict(X))

    def missing_keys(self, arch: np.ndarray) -> list[str]:
        """The table keys one design needs that the table lacks (``[]`` when it is priced)."""
        self._require_fitted()
        a = self.space.canonicalize(self._check_X(arch))[0]
        active = self.space.active_layers(a)[0]
        out = []
        for i in np.flatnonzero(active):
            k, mid = KS[a[i]], MID_CHOICES[i][a[N_LAYERS + i]]
            expand, depth, project = layer_keys(i, k, mid)
            pw_bits = (BITS[a[PW_W][i]], BITS[a[PW_A][i]])
            dw_bits = (BITS[a[DW_W][i]], BITS[a[DW_A][i]])
            m = a[N_LAYERS + i]
            if not np.isfinite(self._dw[i, a[i], m, a[DW_W][i], a[DW_A][i]]):
                out.append(_key(depth, *dw_bits))
            if not np.isfinite(self._pw[i, m, a[PW_W][i], a[PW_A][i]]):
                out += [_key(expand, *pw_bits), _key(project, *pw_bits)]
        return out

    def _get_state(self) -> dict[str, Any]:
        return {"fixed": self._fixed, "pw": self._pw, "dw": self._dw}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._fixed = float(state["fixed"])
        self._pw = to_numpy(state["pw"]).astype(float)
        self._dw = to_numpy(state["dw"]).astype(float)


__all__ = ["BitFusionCost", "bitfusion_device", "layer_keys"]
