"""Per-space layer featurization: architectures as counts of distinct layers.

Every space builds its networks from a small set of distinct layers (NB201 has a few dozen, OFA a
few thousand), so a batch of ``n`` architectures becomes a sparse ``n x U`` count matrix over
``U`` distinct layers plus ``U``-long arrays of per-layer quantities. A device prices the ``U``
layers once; latency for ``m`` devices and ``n`` architectures is then one sparse matrix product.
Each space's table grows as new architectures are seen and is kept for the life of the process.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from fleetnas.spaces import LAYER_KINDS, Layer, SearchSpace

_KIND_INDEX = {k: i for i, k in enumerate(LAYER_KINDS)}


@dataclass(frozen=True)
class LayerTable:
    """``n`` architectures over ``U`` distinct layers (batch 1).

    ``counts`` is an ``n x U`` sparse (CSR) matrix of how often each layer occurs; ``kind`` is a
    ``U`` int array (index into :data:`LAYER_KINDS`); ``flops`` (2 x MACs), ``out_elems`` (output
    elements: the parallel work), ``act_elems`` (input plus output elements) and
    ``weight_elems`` are ``U`` float arrays.
    """

    counts: sp.csr_matrix
    kind: np.ndarray
    flops: np.ndarray
    out_elems: np.ndarray
    act_elems: np.ndarray
    weight_elems: np.ndarray

    @functools.cached_property
    def dense_counts(self) -> np.ndarray:
        """``counts`` as a dense ``n x U`` float array (for small ``U``)."""
        return self.counts.toarray()

    @property
    def n(self) -> int:
        return self.counts.shape[0]

    @property
    def n_layers(self) -> int:
        return self.counts.shape[1]

    def totals(self) -> dict[str, np.ndarray]:
        """Per-architecture sums (``n`` arrays): flops, act_elems, weight_elems, layers."""
        c = self.counts
        return {
            "flops": c @ self.flops,
            "act_elems": c @ self.act_elems,
            "weight_elems": c @ self.weight_elems,
            "layers": np.asarray(c.sum(axis=1)).ravel(),
        }


#: Layer objects whose identity :class:`_SpaceFeaturizer` remembers before it starts over.
_MAX_OBJECTS = 200_000


class _SpaceFeaturizer:
    """Distinct layers of one space and, per architecture seen, its (layer id, count) lists.

    Layers are counted by object identity first and mapped to their id by equality once per
    object (kept alive in ``objects`` so that an identity is never reused): a space that
    builds its lists from shared layer objects (NB201 repeats a few dozen ~150 times per
    design) is featurized without hashing every layer; equal layers built apart still get one
    id."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.ids: dict[Layer, int] = {}
        self.quantities: list[tuple[int, float, float, float, float]] = []
        self.rows: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        self.objects: dict[int, tuple[Layer, int]] = {}
        self.lock = threading.Lock()

    def _uid(self, layer: Layer) -> int:
        uid = self.ids.get(layer)
        if uid is None:
            uid = self.ids[layer] = len(self.quantities)
            out = layer.out_ch * layer.out_hw * layer.out_hw
            self.quantities.append(
                (
                    _KIND_INDEX[layer.kind],
                    2.0 * layer.macs,
                    float(out),
                    float(layer.activation_elems),
                    float(layer.params),
                )
            )
        return uid

    def _row(self, arch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = arch.tobytes()
        row = self.rows.get(key)
        if row is None:
            layers = self.space.layers(arch)
            if len(self.objects) > _MAX_OBJECTS:
                self.objects.clear()
            merged: dict[int, int] = {}
            by_id: dict[int, Layer] | None = None
            for obj, n in Counter(map(id, layers)).items():
                known = self.objects.get(obj)
                if known is None:
                    by_id = by_id or {id(x): x for x in layers}
                    known = self.objects[obj] = (by_id[obj], self._uid(by_id[obj]))
                merged[known[1]] = merged.get(known[1], 0) + n
            ids = np.fromiter(merged, dtype=np.int64, count=len(merged))
            cnt = np.fromiter(merged.values(), dtype=float, count=len(merged))
            row = self.rows[key] = (ids, cnt)
        return row

    def table(self, archs: np.ndarray) -> LayerTable:
        with self.lock:
            rows = [self._row(a) for a in archs]
            q = np.array(self.quantities, dtype=float).reshape(-1, 5)
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(r[0]) for r in rows])
        if rows:
            indices = np.concatenate([r[0] for r in rows])
            data = np.concatenate([r[1] for r in rows])
        else:
            indices, data = np.zeros(0, np.int64), np.zeros(0)
        counts = sp.csr_matrix((data, indices, indptr), shape=(len(rows), len(q)))
        return LayerTable(
            counts=counts,
            kind=q[:, 0].astype(np.int64),
            flops=q[:, 1].copy(),
            out_elems=q[:, 2].copy(),
            act_elems=q[:, 3].copy(),
            weight_elems=q[:, 4].copy(),
        )


_featurizers: dict[tuple[str, int], _SpaceFeaturizer] = {}
_lock = threading.Lock()


def layer_table(space: SearchSpace, archs: np.ndarray) -> LayerTable:
    """The :class:`LayerTable` of ``archs`` (``n x D`` int array) in ``space``; memoized per
    space and architecture, so repeated calls (e.g. all 15,625 NB201 cells) are cheap."""
    archs = space.check(archs)
    key = (space.name, id(space))
    with _lock:
        feat = _featurizers.get(key)
        if feat is None:
            feat = _featurizers[key] = _SpaceFeaturizer(space)
    return feat.table(archs)


def clear_layer_tables() -> None:
    """Forget every memoized layer table (frees memory; the next call featurizes again)."""
    with _lock:
        _featurizers.clear()
