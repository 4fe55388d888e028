"""Approach 2 on APQ's space (``apq``: architecture, pruning and per-layer W/A bits).

What the NAS-Bench-201 / OFA pipeline gets from HELP, APQ's space has to get elsewhere: no
public fleet measures its designs, so

- the training devices are synthetic bit-flexible accelerators
  (:mod:`fleetnas.sim.bitflex`); :func:`bitflex_devices` describes them by their latency and
  energy on :func:`probe_designs`, as a real device would be described;
- Stage 1 (:func:`fit_performance`) fits the library's device-aware latency and energy networks
  (:class:`~fleetnas.predict.DeviceAwarePredictor`, probe features) on their simulated values;
- the objective is eq. (8) with both terms (eq. 7's latency + energy), the accuracy the
  documented *modelled* one (:class:`~fleetnas.predict.compressed_accuracy.ModelledAccuracy`);
- Method 1 labels (:func:`fleetnas.l2o.evolution_labels`) only admit designs the space calls
  feasible, and the decoder repairs the rest (:meth:`fleetnas.spaces.apq.APQSpace.repair`).

A target device (BitFusion) enters only through its measured probe values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fleetnas.errors import InputError
from fleetnas.l2o.features import DeviceSet
from fleetnas.sim.bitflex import BitFlexModel, sample_bitflex, simulate_bitflex
from fleetnas.spaces.apq import (
    BITS,
    D_COLS,
    DW_A,
    DW_W,
    KS,
    KS_COLS,
    MID_COLS,
    PW_A,
    PW_W,
    APQSpace,
)

#: Bit settings of the probe designs on the medium architecture: (pw_w, pw_a, dw_w, dw_a).
_PROBE_BITS = (
    (8, 8, 8, 8),
    (6, 6, 6, 6),
    (4, 4, 4, 4),
    (4, 4, 8, 8),
    (8, 8, 4, 4),
    (4, 8, 4, 8),
    (8, 4, 8, 4),
)


def _with_bits(a: np.ndarray, bits: Sequence[int]) -> np.ndarray:
    out = a.copy()
    for cols, b in zip((PW_W, PW_A, DW_W, DW_A), bits, strict=True):
        out[cols] = BITS.index(int(b))
    return out


def probe_designs(space: APQSpace) -> np.ndarray:
    """``10 x 131`` fixed probe designs that expose a device's bit-width, kernel and size
    behaviour: a medium network (5x5 kernels, middle widths, depth 3) at seven bit settings
    (uniform 8/6/4, point-wise vs depth-wise at 4 bits, 4-bit weights only, 4-bit activations
    only), a small 8-bit one (3x3, narrowest, depth 2) and two large ones (7x7, widest,
    depth 4) at 8 bits and at 4-bit point-wise / 6-bit depth-wise. All are feasible."""
    if not isinstance(space, APQSpace):
        raise InputError(f"probe designs are defined for the 'apq' space, got {space.name!r}")
    card = np.asarray(space.cardinalities)
    base = np.zeros(space.n_decisions, dtype=np.int64)
    base[KS_COLS] = KS.index(5)
    base[MID_COLS] = card[MID_COLS] // 2
    base[D_COLS] = 1
    rows = [_with_bits(base, b) for b in _PROBE_BITS]
    small = np.zeros(space.n_decisions, dtype=np.int64)
    large = np.zeros(space.n_decisions, dtype=np.int64)
    large[KS_COLS] = KS.index(7)
    large[MID_COLS] = card[MID_COLS] - 1
    large[D_COLS] = 2
    rows += [small, large, _with_bits(large, (4, 4, 6, 6))]
    return space.canonicalize(np.stack(rows))


@dataclass
class BitflexFleet:
    """Synthetic accelerators with their description: ``devices`` (probe latencies and
    energies) and the ``models`` that price any design."""

    devices: DeviceSet
    models: list[BitFlexModel]

    def cost(self, space: APQSpace, archs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(latency, energy)``, ``n x m``, of ``archs`` on every accelerator."""
        return simulate_bitflex(self.models, space, archs)


def bitflex_devices(
    space: APQSpace,
    probes: np.ndarray,
    n: int,
    rng: np.random.Generator | int | None = None,
    families: dict[str, float] | None = None,
    prefix: str = "bitflex",
) -> BitflexFleet:
    """``n`` synthetic bit-flexible accelerators (:func:`fleetnas.sim.bitflex.sample_bitflex`)
    described by their latency (``probes``) and energy (``energy_probes``) on ``probes``."""
    models = sample_bitflex(n, rng=rng, families=families, prefix=prefix)
    lat, en = simulate_bitflex(models, space, probes)
    devices = DeviceSet(
        [m.name for m in models],
        probes=lat.T,
        energy_probes=en.T,
        synthetic=np.ones(n, dtype=bool),
    )
    return BitflexFleet(devices, models)


#: Decision groups that share one level in :func:`stage1_designs`.
_GROUPS = (KS_COLS, MID_COLS, D_COLS, PW_W, PW_A, DW_W, DW_A)


def stage1_designs(
    space: APQSpace, n: int, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """``n`` feasible designs for Stage 1: half uniform (``space.sample``), half drawn around
    a random level per decision group (kernels, widths, depths, each bit-width kind), so that
    corners like "all 8 bits, widest, deepest" -- where the optima lie -- are covered too;
    uniform designs alone sit in the middle of every group's range and leave the networks
    extrapolating there."""
    rng = np.random.default_rng(rng)
    n_uni = n // 2
    card = np.asarray(space.cardinalities)
    out = np.zeros((n - n_uni, space.n_decisions), dtype=np.int64)
    for cols in _GROUPS:
        c = card[cols]
        level = rng.uniform(0.0, 1.0, (len(out), 1))
        noisy = level * (c - 1) + rng.normal(0.0, 0.15, (len(out), len(c))) * (c - 1)
        out[:, cols] = np.clip(np.rint(noisy), 0, c - 1)
    return np.concatenate([space.sample(n_uni, rng), space.repair(out)])


def fit_performance(
    space: APQSpace,
    probes: np.ndarray,
    fleet: BitflexFleet,
    n_designs: int = 400,
    seed: int = 0,
    hidden: Sequence[int] = (128, 128),
    n_members: int = 3,
    epochs: int = 30,
    extra: np.ndarray | None = None,
) -> tuple[object, object]:
    """Stage 1: device-aware latency and energy networks fitted on the probes,
    :func:`stage1_designs` (``n_designs``) and ``extra`` designs (e.g. Algorithm 2's
    exploration set), each priced on every accelerator of ``fleet``."""
    from fleetnas.predict import DeviceAwarePredictor

    if len(fleet.models) < 2:
        raise InputError("Stage 1 needs at least 2 training devices")
    parts = [probes, stage1_designs(space, n_designs, seed)]
    if extra is not None and len(extra):
        parts.append(space.repair(extra))
    designs = np.unique(np.concatenate(parts), axis=0)
    lat, en = fleet.cost(space, designs)
    out = []
    for values, feats in ((lat, fleet.devices.probes), (en, fleet.devices.energy_probes)):
        pred = DeviceAwarePredictor(
            space, probes=probes, hidden=hidden, n_members=n_members, epochs=epochs, seed=seed
        )
        out.append(pred.fit(designs, feats, values))
    return out[0], out[1]


__all__ = [
    "BitflexFleet",
    "bitflex_devices",
    "fit_performance",
    "probe_designs",
    "stage1_designs",
]
