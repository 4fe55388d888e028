"""Replay per-precision tables of one runtime as one device of a compressed space.

``ptable:fp32=DEV_A,int8=DEV_B`` answers designs of a compressed space (``nb201+q``) from
the stored *base-space* values of one device per precision: a design whose every block runs at
precision ``p`` with no pruning (width 1) is the base design measured on ``DEV_p`` (this
machine's runtime stacks store fp32 and int8 as two devices, ``benchmarks/results/stacks/``).
Any other design (mixed precisions, a pruned block, a precision without a table, a base design
the table lacks) is *unmeasurable* on the device: its value is NaN with the reason, and the
call goes on, so a planner skips it. ``ptable:fp32=pixel2`` makes a HELP device an fp32-only
device of the compressed space (HELP measured architectures only).

Charged like ``table:DEVICE`` (:mod:`fleetnas.measure.table`): one measurement per distinct
design looked up in the session, its latency as device seconds; nothing is written back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.measure.base import MEASURERS, MeasurementCost, Measurer, MeasureResult
from fleetnas.measure.spec import parse_options
from fleetnas.measure.table import TableMeasurer

if TYPE_CHECKING:
    from fleetnas.devices import Device
    from fleetnas.spaces import SearchSpace
    from fleetnas.store import Store


class PrecisionTableMeasurer(Measurer):
    """One device of a compressed space over per-precision base tables (module docstring)."""

    method = "table"
    metrics = ("latency", "energy")
    writes_to_store = False

    def __init__(self, device: Device, store: Store, tables: dict[str, str]) -> None:
        super().__init__(device, store=store, reuse=False)
        if not tables:
            raise InputError("ptable needs at least one precision=DEVICE pair, e.g. fp32=pixel2")
        self.tables = dict(tables)
        self._replays = {p: TableMeasurer(store.get_device(d), store) for p, d in tables.items()}
        self._seen: set[bytes] = set()

    @property
    def precisions(self) -> tuple[str, ...]:
        """The precisions this device runs (one base table each)."""
        return tuple(self.tables)

    def base_designs(self, space: SearchSpace) -> np.ndarray:
        """``n x D`` base designs (of ``space.base``) that every table of this device holds."""
        base = space.base  # type: ignore[attr-defined]
        keys: set[bytes] | None = None
        for replay in self._replays.values():
            have = set(replay._table(base, "latency").values)
            keys = have if keys is None else keys & have
        rows = sorted(keys or ())
        if not rows:
            return np.zeros((0, base.n_decisions), dtype=np.int64)
        return np.stack([np.frombuffer(r, dtype=np.int64) for r in rows])

    def stored(
        self, space: SearchSpace, precision: str, archs: np.ndarray, metric: str = "latency"
    ) -> np.ndarray:
        """``n`` stored values of ``archs`` (base designs of ``space``'s base) in this device's
        ``precision`` table, NaN where it has none. Uncharged: this reads what was measured
        before, e.g. to use this device as a proxy of another one."""
        out = np.full(len(archs), np.nan)
        replay = self._replays.get(precision)
        if replay is None:
            return out
        values = replay._table(space.base, metric).values  # type: ignore[attr-defined]
        for i, a in enumerate(np.asarray(archs, dtype=np.int64)):
            v = values.get(a.tobytes())
            if v is not None:
                out[i] = v
        return out

    def admissible(self, space: SearchSpace, archs: np.ndarray) -> np.ndarray:
        """``n`` bool: designs with one tabled precision in every block and width 1."""
        prec, width = _uniform(space, archs)
        return np.isin(prec, list(self.tables)) & (width == 1.0)

    def check_identity(self) -> None:
        for r in self._replays.values():
            r.check_identity()
        self._identity_checked = True

    def _measure(
        self, space: SearchSpace, archs: np.ndarray, metrics: Sequence[str]
    ) -> MeasureResult:
        n = len(archs)
        base_space = getattr(space, "base", None)
        if base_space is None:
            raise InputError(f"ptable measures designs of a compressed space, not {space.name!r}")
        prec, width = _uniform(space, archs)
        base = space.split(space.canonicalize(archs))[0]  # type: ignore[attr-defined]
        values = {m: np.full(n, np.nan) for m in metrics}
        units: dict[str, str] = {}
        failures: dict[int, str] = {}
        for i in range(n):
            p = prec[i]
            if width[i] != 1.0 or p not in self._replays:
                what = "a pruned block" if width[i] != 1.0 else f"precision {p or 'mixed'}"
                failures[i] = (
                    f"{self.device.name} runs whole networks at {', '.join(self.tables)} "
                    f"without pruning; this design has {what}"
                )
        for p, replay in self._replays.items():
            rows = [i for i in range(n) if i not in failures and prec[i] == p]
            if not rows:
                continue
            for m in metrics:
                table = replay._table(base_space, m)
                units[m] = table.unit
                for i in rows:
                    v = table.values.get(base[i].tobytes())
                    if v is None:
                        failures[i] = f"{self.tables[p]} has no stored {m} for this design"
                    else:
                        values[m][i] = v
        ok = [i for i in range(n) if i not in failures]
        new = [k for k in dict.fromkeys(archs[i].tobytes() for i in ok) if k not in self._seen]
        self._seen.update(new)
        seconds = 0.0
        if "latency" in values and ok:
            scale = {"ms": 1e-3, "s": 1.0, "us": 1e-6}.get(units.get("latency", "ms"), 0.0)
            firsts = {archs[i].tobytes(): values["latency"][i] for i in ok}
            seconds = float(sum(firsts[k] for k in new)) * scale
        cost = MeasurementCost(measurements=len(new), device_seconds=seconds, reused=n - len(new))
        return MeasureResult(
            archs=archs,
            values=values,
            units=units or {m: self.default_units.get(m, "") for m in metrics},
            cost=cost,
            is_estimate=dict.fromkeys(metrics, False),
            stats={m: {"n": np.ones(n, dtype=np.int64)} for m in metrics},
            failures=failures,
        )

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "replay_of": dict(sorted(self.tables.items()))}

    def info(self) -> dict[str, Any]:
        return {**super().info(), "replay_of": dict(self.tables)}


def _uniform(space: SearchSpace, archs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per design its one precision (``""`` when the active blocks mix them) and its smallest
    width ratio of an active block."""
    a = space.canonicalize(space.check(archs))  # type: ignore[attr-defined]
    _, prec, width = space.split(a)  # type: ignore[attr-defined]
    active = space.block_active(a)  # type: ignore[attr-defined]
    names = np.asarray(space.precisions)  # type: ignore[attr-defined]
    ratios = np.asarray(space.widths)[width]  # type: ignore[attr-defined]
    out = np.empty(len(a), dtype=object)
    for i in range(len(a)):
        ps = set(names[prec[i][active[i]]])
        out[i] = ps.pop() if len(ps) == 1 else ""
    mins = np.where(active, ratios, 1.0).min(axis=1)
    return out.astype(str), mins


@MEASURERS.register("ptable")
def _ptable_factory(
    arg: str = "",
    store: Store | None = None,
    device: Device | None = None,
    **options: Any,
) -> PrecisionTableMeasurer:
    if options:
        raise InputError(f"ptable measurer takes no options {', '.join(sorted(options))}")
    if store is None:
        raise InputError("ptable:fp32=DEVICE,... replays stored values and needs a store")
    from fleetnas.spaces.compression import PRECISIONS

    tables = parse_options(arg, "ptable measurer spec")
    bad = sorted(set(tables) - set(PRECISIONS))
    if bad:
        raise InputError(
            f"ptable: unknown precision(s) {', '.join(bad)}; expected {', '.join(PRECISIONS)}"
        )
    if device is None:
        from fleetnas.devices import Device as _Device

        device = _Device(f"ptable-{'+'.join(tables.values())}", "other", measurer=f"ptable:{arg}")
    return PrecisionTableMeasurer(device, store, tables)
