"""Per-operator lookup-table latency predictors: the paper's proxy ``latency_d0(x)`` (Sec. 4.1).

A network's latency is the sum of its operators' measured latencies. The operator keys are
the strings of once-for-all's ``ofa/nas/efficiency_predictor/latency_lookup_table.py`` /
``ofa/tutorial/latency_table.py``, e.g.
``expanded_conv-input:112x112x24-output:56x56x32-expand:144-kernel:3-stride:2-idskip:0-se:0-hs:0``
(``expand`` is the middle width for MobileNetV3 tables and the expansion ratio for
ProxylessNAS's). Tables are vectorized once: per (resolution, layer, kernel, expansion) an array
entry, so 10,000 designs predict in milliseconds.

- :class:`OFALatencyLUT`: OFA-MobileNetV3 on Samsung Note10 (tables at 160, 176, 192, 208, 224).
  Resolution rule for the space's other resolutions (128..224 step 4): inside 160..224, each
  operator's latency is interpolated linearly in ``r^2`` (pixel count) between the two nearest
  tables; below 160 it follows the least-squares line ``a + b r^2`` of that operator over all
  five tables, floored at 0. ``exact_resolutions`` lists where no rule is needed.
- :class:`ProxylessLatencyLUT`: Google Pixel 1 table of ProxylessNAS (``mobile_trim.yaml``).
  It covers the ProxylessNAS-Mobile space ``proxylessnas`` (224 px; 21 MBConv layers in stages
  of width 24/40/80/96/192/320 with 4/4/4/4/4/1 layers; kernel 3/5/7, expansion 3/6, and a
  ``zero`` op for the non-first layer of each stage; :mod:`fleetnas.spaces.proxylessnas`),
  *not* OFA-MobileNetV3 (different widths, SE and h-swish; none of its keys occur there).

Both read a table measured on the user's own device by ``fleetnas predict lut``
(:mod:`fleetnas.predict.lut_build`); :func:`lut_class` picks the reader for a space and
:func:`load_lut` resolves ``lut:NAME|FILE`` (a stored table or a table file) with one clear
error for an unknown name, a missing file or a table of another space.
"""

from __future__ import annotations

import os
from typing import Any, Self

import numpy as np
import torch
from torch import nn

from fleetnas.errors import DataError, InputError
from fleetnas.predict.base import Predictor, fingerprint, to_numpy
from fleetnas.spaces import SearchSpace

#: Store artifact kind of the imported tables (:func:`fleetnas.data.import_ofa_assets`).
LUT_KIND = "latency_lut"


def _shape(*dims: int) -> str:
    return "x".join(str(d) for d in dims)


def _mbconv_key(
    hw: int, cin: int, hw_out: int, cout: int, expand: int, k: int, stride: int, idskip: int, **kw
) -> str:
    key = (
        f"expanded_conv-input:{_shape(hw, hw, cin)}-output:{_shape(hw_out, hw_out, cout)}"
        f"-expand:{expand}-kernel:{k}-stride:{stride}-idskip:{idskip}"
    )
    if kw:
        key += f"-se:{kw['se']}-hs:{kw['hs']}"
    return key


def _lookup(table: dict[str, Any], key: str, where: str) -> float:
    try:
        entry = table[key]
    except KeyError:
        raise DataError(f"latency table {where} has no operator {key!r}") from None
    return float(entry["mean"] if isinstance(entry, dict) else entry)


class _LUTBase(Predictor):
    """Shared plumbing: building from the data folder, the store or an in-memory table."""

    lut_name = ""

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        raise InputError(
            f"{type(self).__name__} is built from its measured operator table "
            "(from_data/from_store/from_lut), not fitted; use MLPEnsemble or GBTEnsemble to "
            "learn latencies from (design, latency) pairs"
        )

    @classmethod
    def from_data(cls, data_dir: str | os.PathLike[str] | None = None, **params: Any) -> Self:
        """From the table files in the public data folder."""
        from fleetnas.data import read_lut

        return cls(**params).from_lut(read_lut(data_dir, cls.lut_name))

    @classmethod
    def from_store(cls, store: Any, name: str | None = None, **params: Any) -> Self:
        """From a ``latency_lut`` artifact: the imported table (``fleetnas data import``) or
        one measured by ``fleetnas predict lut`` (``name``)."""
        from fleetnas.data.ofa_assets import lut_from_artifact

        return cls(**params).from_lut(
            lut_from_artifact(store.load_artifact(name or cls.lut_name, LUT_KIND))
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **params: Any) -> Self:
        """From a table file that ``fleetnas predict lut --out`` writes (YAML or JSON)."""
        from fleetnas.data.ofa_assets import read_lut_file

        return cls(**params).from_lut(read_lut_file(path))

    def from_lut(self, lut: dict[str, Any]) -> Self:
        """Vectorize a table dict ``{"tables": {resolution: {key: {"mean": ms, ...}}}}``."""
        tables = {int(r): t for r, t in lut["tables"].items()}
        if not tables:
            raise DataError("latency table has no resolutions")
        self._build(tables)
        self._mark_fitted(
            source=str(lut.get("device", self.lut_name)),
            data_fingerprint=fingerprint(*self._arrays()),
            resolutions=sorted(tables),
        )
        return self

    def _build(self, tables: dict[int, dict[str, Any]]) -> None:
        raise NotImplementedError

    def _arrays(self) -> list[np.ndarray]:
        raise NotImplementedError


class OFALatencyLUT(_LUTBase):
    """Sum of OFA's per-operator latencies (ms) for OFA-MobileNetV3 designs (Note10 table)."""

    name = "ofa-lut"
    lut_name = "note10"

    def __init__(self, space: SearchSpace | str = "ofa_mbv3") -> None:
        super().__init__(space)
        from fleetnas.spaces.ofa_mbv3 import OFAMobileNetV3Space

        if not isinstance(self.space, OFAMobileNetV3Space):
            raise InputError(
                f"OFALatencyLUT works on an OFA-MobileNetV3 space, got {self.space.name!r}"
            )

    # ---- keys -----------------------------------------------------------------------------
    def _layer_io(self, resolution: int) -> list[tuple[int, int, int, int, int, int, int]]:
        """Per searchable layer: (hw_in, c_in, hw_out, c_out, stride, idskip, stage)."""
        from fleetnas.spaces import ofa_mbv3 as o

        sp = self.space
        hw = (resolution + 1) // 2
        c_in = sp.block0_width
        out = []
        for s in range(o.N_STAGES):
            c = sp.stage_widths[s]
            for p in range(o.MAX_DEPTH):
                stride = o.STRIDES[s] if p == 0 else 1
                hw_out = int((hw - 1) / stride + 1)
                cin = c_in if p == 0 else c
                idskip = 1 if (stride == 1 and cin == c) else 0
                out.append((hw, cin, hw_out, c, stride, idskip, s))
                hw = hw_out
            c_in = c
        return out

    def _layer_key(self, io: tuple[int, ...], k: int, e: int) -> str:
        from fleetnas.spaces import ofa_mbv3 as o

        hw, cin, hw_out, c, stride, idskip, s = io
        mid = o.make_divisible(round(cin * e))
        se, hs = int(o.USE_SE[s]), int(o.ACTS[s] == "hswish")
        return _mbconv_key(hw, cin, hw_out, c, mid, k, stride, idskip, se=se, hs=hs)

    def _fixed_keys(self, resolution: int) -> list[str]:
        sp = self.space
        h = (resolution + 1) // 2
        f = self._layer_io(resolution)[-1][2]
        b0, first = sp.block0_width, sp.first_width
        last, fe, mix = sp.stage_widths[-1], sp.final_expand_width, sp.last_width
        return [
            f"Conv-input:{_shape(resolution, resolution, 3)}-output:{_shape(h, h, first)}",
            _mbconv_key(h, first, h, b0, b0, 3, 1, int(first == b0), se=0, hs=0),
            f"Conv_1-input:{_shape(f, f, last)}-output:{_shape(f, f, fe)}",
            f"AvgPool2D-input:{_shape(f, f, fe)}-output:{_shape(1, 1, fe)}",
            f"Conv_2-input:{_shape(1, 1, fe)}-output:{_shape(1, 1, mix)}",
            f"Logits-input:{_shape(1, 1, mix)}-output:1000",
        ]

    def op_keys(self, arch: np.ndarray) -> list[str]:
        """The table keys one design sums, in network order, as OFA's latency table builds them
        (at the design's resolution, whether or not a table exists for it)."""
        from fleetnas.spaces import ofa_mbv3 as o

        d = self.space.to_dict(self.space.check(arch)[0])
        r = d["r"]
        fixed = self._fixed_keys(r)
        keys = fixed[:2]
        for i, io in enumerate(self._layer_io(r)):
            if i % o.MAX_DEPTH < d["d"][i // o.MAX_DEPTH]:
                keys.append(self._layer_key(io, d["ks"][i], d["e"][i]))
        return keys + fixed[2:]

    # ---- tables ---------------------------------------------------------------------------
    def _build(self, tables: dict[int, dict[str, Any]]) -> None:
        from fleetnas.spaces import ofa_mbv3 as o

        res_t = np.array(sorted(tables))
        fixed_t = np.zeros(len(res_t))
        layer_t = np.zeros((len(res_t), o.N_LAYERS, len(o.KS), len(o.EXPANDS)))
        for ri, r in enumerate(res_t):
            where = f"{self.lut_name}@{r}"
            fixed_t[ri] = sum(_lookup(tables[r], k, where) for k in self._fixed_keys(int(r)))
            for i, io in enumerate(self._layer_io(int(r))):
                for ki, k in enumerate(o.KS):
                    for ei, e in enumerate(o.EXPANDS):
                        layer_t[ri, i, ki, ei] = _lookup(
                            tables[r], self._layer_key(io, k, e), where
                        )
        res = np.asarray(o.RESOLUTIONS, dtype=float)
        self._fixed = _resample(res_t, fixed_t, res)
        self._layer = _resample(res_t, layer_t, res)
        self._exact = [int(r) for r in o.RESOLUTIONS if r in tables]

    def _arrays(self) -> list[np.ndarray]:
        return [self._fixed, self._layer]

    @property
    def exact_resolutions(self) -> list[int]:
        """Space resolutions that have their own table (no interpolation)."""
        self._require_fitted()
        return list(self._exact)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``n`` predicted latencies (ms)."""
        from fleetnas.spaces import ofa_mbv3 as o

        self._require_fitted()
        a = self.space.canonicalize(self._check_X(X))
        r = a[:, o.R_COL]
        active = self.space.active_layers(a)
        per = self._layer[
            r[:, None], np.arange(o.N_LAYERS)[None, :], a[:, o.KS_COLS], a[:, o.E_COLS]
        ]
        return self._fixed[r] + (per * active).sum(axis=1)

    def torch_module(self) -> nn.Module:
        """Encoding ``n x 160`` (one-hot or relaxed) -> ``n`` ms: ``sum_r p_r fixed_r + sum_i
        sum_{k,e} p_r (a_i p_k)(a_i p_e) L[r,i,k,e]`` with ``a_i`` the layer's activity; equal
        to :meth:`predict` on one-hot encodings."""
        self._require_fitted()
        return _OFALUTModule(self._fixed, self._layer)

    def _get_state(self) -> dict[str, Any]:
        return {"fixed": self._fixed, "layer": self._layer, "exact": list(self._exact)}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._fixed = to_numpy(state["fixed"]).astype(float)
        self._layer = to_numpy(state["layer"]).astype(float)
        self._exact = [int(r) for r in state["exact"]]


def _resample(res_t: np.ndarray, values: np.ndarray, res: np.ndarray) -> np.ndarray:
    """Values at table resolutions ``res_t`` (first axis) -> at ``res``: linear in ``r^2``
    between tables, least-squares line in ``r^2`` outside, floored at 0."""
    x_t = res_t.astype(float) ** 2
    x = res**2
    flat = values.reshape(len(res_t), -1)
    out = np.empty((len(res), flat.shape[1]))
    design = np.c_[np.ones_like(x_t), x_t]
    coef = np.linalg.lstsq(design, flat, rcond=None)[0]
    for i, xi in enumerate(x):
        if x_t[0] <= xi <= x_t[-1]:
            j = int(np.clip(np.searchsorted(x_t, xi), 1, len(x_t) - 1))
            w = (xi - x_t[j - 1]) / (x_t[j] - x_t[j - 1]) if len(x_t) > 1 else 0.0
            out[i] = flat[j - 1] + w * (flat[j] - flat[j - 1]) if len(x_t) > 1 else flat[0]
        else:
            out[i] = np.maximum(coef[0] + coef[1] * xi, 0.0)
    return out.reshape((len(res), *values.shape[1:]))


class _OFALUTModule(nn.Module):
    def __init__(self, fixed: np.ndarray, layer: np.ndarray) -> None:
        super().__init__()
        from fleetnas.spaces import ofa_mbv3 as o

        self.register_buffer("fixed", torch.as_tensor(fixed, dtype=torch.float32))
        self.register_buffer("layer", torch.as_tensor(layer, dtype=torch.float32))
        self.n = o.N_LAYERS
        self.n_res = len(o.RESOLUTIONS)

    def forward(self, encoding: torch.Tensor) -> torch.Tensor:
        enc = encoding.to(torch.float32)
        b = enc.shape[0]
        pk = enc[:, : 3 * self.n].reshape(b, self.n, 3)
        pe = enc[:, 3 * self.n : 6 * self.n].reshape(b, self.n, 3)
        pr = enc[:, -self.n_res :]
        return pr @ self.fixed + torch.einsum("br,bik,bie,rike->b", pr, pk, pe, self.layer)


# ---- ProxylessNAS -----------------------------------------------------------------------
def proxylessnas_space() -> SearchSpace:
    """The ProxylessNAS-Mobile space that Pixel 1's table covers (registered as
    ``proxylessnas``, :class:`fleetnas.spaces.proxylessnas.ProxylessNASSpace`: 21 decisions
    ``layer_i``; the first layer of each stage cannot be ``zero``). Designs are
    ``layer_0=k3_e3,...``."""
    from fleetnas.spaces import get_space

    return get_space("proxylessnas")


class ProxylessLatencyLUT(_LUTBase):
    """Sum of per-operator latencies (ms) on :func:`proxylessnas_space`: ProxylessNAS's Pixel 1
    table, or one measured by ``fleetnas predict lut --space proxylessnas``."""

    name = "proxyless-lut"
    lut_name = "pixel1"

    def __init__(self, space: SearchSpace | str | None = None) -> None:
        super().__init__(space if space is not None else proxylessnas_space())
        from fleetnas.spaces.proxylessnas import ProxylessNASSpace

        if not isinstance(self.space, ProxylessNASSpace):
            raise InputError(
                f"ProxylessLatencyLUT works on the 'proxylessnas' space, got {self.space.name!r}"
            )
        self.resolution = self.space.resolution

    @classmethod
    def from_bytes(cls, data: bytes, space: SearchSpace | str | None = None) -> Self:
        return super().from_bytes(data, space if space is not None else proxylessnas_space())

    def op_keys(self, arch: np.ndarray) -> list[str]:
        """The table keys one design sums (``zero`` layers contribute none)."""
        return self.space.op_keys(arch)

    def _build(self, tables: dict[int, dict[str, Any]]) -> None:
        from fleetnas.spaces.proxylessnas import OPS, mbconv_key, op_kernel_expand

        if self.resolution not in tables:
            raise DataError(
                f"latency table {self.lut_name!r} has no resolution {self.resolution} (it has "
                f"{', '.join(map(str, sorted(tables)))})"
            )
        t = tables[self.resolution]
        where = f"{self.lut_name}@{self.resolution}"
        self._fixed = float(sum(_lookup(t, k, where) for k in self.space.fixed_keys().values()))
        per = np.zeros((self.space.n_decisions, len(OPS)))
        for i, io in enumerate(self.space.layer_io()):
            for j, op in enumerate(OPS):
                if op != "zero" and j < self.space.cardinalities[i]:
                    per[i, j] = _lookup(t, mbconv_key(io, *op_kernel_expand(op)), where)
        self._per = per

    def _arrays(self) -> list[np.ndarray]:
        return [np.array([self._fixed]), self._per]

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._require_fitted()
        a = self._check_X(X)
        return self._fixed + self._per[np.arange(a.shape[1])[None, :], a].sum(axis=1)

    def torch_module(self) -> nn.Module:
        """Encoding ``n x F`` -> ``n`` ms (linear in the encoding: exact for relaxed designs
        as an expectation)."""
        self._require_fitted()
        offsets = self.space.offsets
        w = np.concatenate(
            [self._per[i, : offsets[i + 1] - offsets[i]] for i in range(self.space.n_decisions)]
        )
        lin = nn.Linear(len(w), 1)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(w[None, :], dtype=torch.float32))
            lin.bias.fill_(self._fixed)
        return _Squeeze(lin)

    def _get_state(self) -> dict[str, Any]:
        return {"fixed": self._fixed, "per": self._per}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._fixed = float(state["fixed"])
        self._per = to_numpy(state["per"]).astype(float)


class _Squeeze(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.to(torch.float32))[:, 0]


def lut_class(space: SearchSpace) -> type[_LUTBase]:
    """The table reader of ``space``, or :class:`InputError` if no operator table fits it."""
    from fleetnas.spaces.ofa_mbv3 import OFAMobileNetV3Space
    from fleetnas.spaces.proxylessnas import ProxylessNASSpace

    if isinstance(space, OFAMobileNetV3Space):
        return OFALatencyLUT
    if isinstance(space, ProxylessNASSpace):
        return ProxylessLatencyLUT
    raise InputError(
        f"space {space.name!r} has no operator latency table; tables exist for ofa_mbv3 "
        "(ofa_mbv3_w1.0) and proxylessnas"
    )


def load_lut(store: Any, space: SearchSpace, source: str, what: str = "lut") -> _LUTBase:
    """The fitted table predictor of ``source`` for ``space``: a table file (``.yaml``/
    ``.yml``/``.json``, as ``fleetnas predict lut --out`` writes or a flat ``mobile_trim.yaml``)
    or a stored ``latency_lut`` artifact (``fleetnas predict lut`` or ``fleetnas data import``).
    :class:`InputError` names ``what`` (e.g. ``--latency lut:X``) for an unknown name, a missing
    file or a table of another space."""
    from pathlib import Path

    from fleetnas.data.ofa_assets import lut_from_artifact, read_lut_file
    from fleetnas.errors import FleetnasError, UnknownNameError

    cls = lut_class(space)
    if source.endswith((".yaml", ".yml", ".json")):
        if not Path(source).is_file():
            raise InputError(f"{what}: no latency table file {source}")
        lut = read_lut_file(source)
        where = f"file {source}"
    else:
        if store is None:
            raise InputError(f"{what}: a stored latency table needs a store (--db)")
        try:
            lut = lut_from_artifact(store.load_artifact(source, LUT_KIND))
        except UnknownNameError:
            raise InputError(
                f"{what}: no stored latency table {source!r} and no such table file "
                "(.yaml/.yml/.json); build one with fleetnas predict lut"
            ) from None
        where = f"stored table {source!r}"
    of = lut.get("space")
    if of is not None and of != space.name:
        raise InputError(f"{what}: {where} is a latency table of space {of!r}, not {space.name!r}")
    try:
        return cls(space).from_lut(lut)
    except FleetnasError as exc:
        raise InputError(f"{what}: {where} does not fit space {space.name!r}: {exc}") from None


__all__ = [
    "LUT_KIND",
    "OFALatencyLUT",
    "ProxylessLatencyLUT",
    "load_lut",
    "lut_class",
    "proxylessnas_space",
]
