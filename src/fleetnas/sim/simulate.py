"""Vectorized pricing: latency and energy of ``n`` architectures on ``m`` simulated devices.

Each device prices the ``U`` distinct layers of a :class:`~fleetnas.sim.features.LayerTable`
(an ``m x U`` array, see :mod:`fleetnas.sim.model` for the formulas); a batch of architectures
is then the sparse product with its ``n x U`` layer counts. 10,000 devices x 15,625 NB201 cells
is one pass over a 10,000 x U array and a sparse product per chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fleetnas.sim.features import LayerTable, layer_table
from fleetnas.sim.model import ROOFLINE_P, DeviceModel, ModelArrays
from fleetnas.spaces import LAYER_KINDS, SearchSpace

#: Method name written with every simulated value.
METHOD = "sim:analytic-v1"

_CONV_KINDS = [LAYER_KINDS.index(k) for k in ("conv", "dwconv", "pwconv")]

Models = DeviceModel | Sequence[DeviceModel] | ModelArrays


def _arrays(models: Models) -> ModelArrays:
    return models if isinstance(models, ModelArrays) else ModelArrays.of(models)


def layer_costs(models: Models, table: LayerTable) -> tuple[np.ndarray, np.ndarray]:
    """``(time, energy)``: ``m x U`` arrays of each distinct layer's latency (ms) and dynamic
    energy (mJ) on each device, for the whole batch of ``batch_size`` inputs."""
    p = _arrays(models)
    b = p.batch[:, None]
    work = b * table.flops[None, :]
    par = b * table.out_elems[None, :]
    util = par / (par + p.knee[:, None])
    thr = p.peak[:, None] * p.eff[:, table.kind] * util
    t_comp = np.divide(work, thr, out=np.zeros_like(work), where=work > 0) * 1e-6
    moved = (b * table.act_elems[None, :] + table.weight_elems[None, :]) * p.bytes_per_elem[:, None]
    t_mem = moved / p.bandwidth[:, None] * 1e-6
    hi = np.maximum(t_comp, t_mem)
    lo = np.minimum(t_comp, t_mem)
    ratio = np.divide(lo, hi, out=np.zeros_like(hi), where=hi > 0)
    ovh = p.overhead_ms[:, None]
    hide = p.overlap[:, None]
    roof = hi * (1.0 + ratio**ROOFLINE_P) ** (1.0 / ROOFLINE_P)
    time = ovh + roof - hide * np.minimum(ovh, roof)
    passes = p.unfused[:, None] * np.isin(table.kind, _CONV_KINDS)[None, :]
    pass_bytes = 2.0 * b * table.out_elems[None, :] * p.bytes_per_elem[:, None]
    t_pass = pass_bytes / p.bandwidth[:, None] * 1e-6
    time = time + passes * (ovh + t_pass - hide * np.minimum(ovh, t_pass))
    moved = moved + passes * pass_bytes
    energy = (work * p.pj_flop[:, None] + moved * p.pj_byte[:, None]) * 1e-9
    return time, energy


#: Up to this many distinct layers the counts are multiplied as a dense matrix (BLAS).
DENSE_MAX_LAYERS = 512


def _combine(per_layer: np.ndarray, table: LayerTable) -> np.ndarray:
    """``m x U`` per-layer values -> ``m x n`` network sums."""
    if table.n_layers <= DENSE_MAX_LAYERS:
        return per_layer @ table.dense_counts.T
    return np.asarray((table.counts @ per_layer.T).T)


def simulate_table(
    models: Models, table: LayerTable, energy: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(latency ms, energy mJ or None)``, each ``m x n``, for a prepared layer table."""
    p = _arrays(models)
    t, e = layer_costs(p, table)
    lat = _combine(t, table) + p.fixed_ms[:, None]
    if not energy:
        return lat, None
    en = _combine(e, table) + p.static_w[:, None] * lat
    return lat, en


def latency_matrix(
    models: Models, space: SearchSpace, archs: np.ndarray, chunk: int = 4096
) -> np.ndarray:
    """``m x n`` float array: latency (ms per batch) of ``archs`` (``n x D``) on each model,
    computed ``chunk`` devices at a time."""
    table = layer_table(space, archs)
    p = _arrays(models)
    out = np.empty((len(p), table.n))
    for s in range(0, len(p), chunk):
        sub = _slice(p, slice(s, s + chunk))
        out[s : s + chunk] = simulate_table(sub, table, energy=False)[0]
    return out


def energy_matrix(
    models: Models, space: SearchSpace, archs: np.ndarray, chunk: int = 4096
) -> np.ndarray:
    """``m x n`` float array: energy (mJ per batch) of ``archs`` on each model."""
    table = layer_table(space, archs)
    p = _arrays(models)
    out = np.empty((len(p), table.n))
    for s in range(0, len(p), chunk):
        sub = _slice(p, slice(s, s + chunk))
        out[s : s + chunk] = simulate_table(sub, table)[1]
    return out


def _slice(p: ModelArrays, s: slice) -> ModelArrays:
    return ModelArrays(**{k: v[s] for k, v in vars(p).items()})
