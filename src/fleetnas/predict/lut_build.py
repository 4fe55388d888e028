"""An operator look-up table for a user's device, measured for real (``fleetnas predict lut``).

Every distinct operator of the space's networks at the chosen resolutions (the designs of its
operator space, :class:`~fleetnas.spaces.operators.OperatorSpace`: ``ofa_mbv3.ops``,
``proxylessnas.ops``) is timed through the device's own measurer,
so its protocol, identity check, export cache and store apply: each operator's value is stored
under the device like any design's, and an interrupted build measures only what is missing
when it runs again. The table has the format of :func:`fleetnas.data.read_lut` (per resolution
``{key: {count, mean, std}}``: once-for-all's tables, ProxylessNAS's ``mobile_trim.yaml``), so
:class:`~fleetnas.predict.lut.OFALatencyLUT` / :class:`~fleetnas.predict.lut.ProxylessLatencyLUT`,
``fleetnas search --latency lut:NAME`` and the ``lut:NAME`` measurer of a plan read it
unchanged. ``mean`` holds the measurer's
main statistic (the median for real runtimes), ``std`` the IQR / 1.349 (a robust standard
deviation) and ``count`` the timed runs (1 for an operator reused from the store, whose
run count the store does not return).

Its sum is checked against whole-network measurements of ``n_check`` random designs on the same
device: median and p90 of ``|sum - measured| / measured``, the mean signed error (the sum's
bias: per-operator call overhead and fusions across operator borders) and Spearman.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fleetnas.errors import InputError, MeasurementError
from fleetnas.predict.lut import LUT_KIND, lut_class
from fleetnas.predict.metrics import spearman
from fleetnas.spaces import SearchSpace, get_space, space_names
from fleetnas.spaces.operators import OperatorSpace
from fleetnas.store.base import Artifact, Store

#: Operators measured per measurer call (each call is one stored run: the resume unit).
CHUNK = 48
#: Whole-network designs the sum is checked on by default.
N_CHECK = 50


@dataclass
class LUTBuild:
    """A build's outcome: the table (``None`` when the cap stopped it first), its check and
    what it cost."""

    lut: dict[str, Any] | None
    operators: int
    measured: int
    reused: int
    device_seconds: float
    check: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.lut is not None


def operator_space(space: SearchSpace) -> OperatorSpace:
    """The operator space of ``space`` (registered as ``<space>.ops``), or :class:`InputError`
    if it has no decomposition."""
    from fleetnas.spaces.operators import OPS_SUFFIX

    names = space_names()
    if f"{space.name}{OPS_SUFFIX}" not in names:
        have = sorted(n[: -len(OPS_SUFFIX)] for n in names if n.endswith(OPS_SUFFIX))
        raise InputError(
            f"space {space.name!r} has no operator decomposition for a look-up table; "
            f"predict lut supports {', '.join(have)}"
        )
    return get_space(f"{space.name}{OPS_SUFFIX}")


def check_resolutions(
    resolutions: Sequence[int] | None, space: SearchSpace | None = None
) -> tuple[int, ...]:
    """The resolutions of ``space`` (default ofa_mbv3) to tabulate (default all), validated."""
    ops = operator_space(space if space is not None else get_space("ofa_mbv3"))
    return ops.check_resolutions(resolutions)


def build_lut(
    space: SearchSpace,
    measurer: Any,
    resolutions: Sequence[int] | None = None,
    max_measurements: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> LUTBuild:
    """Measure the operators of ``space`` at ``resolutions`` on ``measurer``'s device and
    return the table; stops before taking more than ``max_measurements`` new measurements
    (operators already stored for the device are free), leaving ``lut`` ``None`` if that left
    operators unmeasured."""
    say = progress or (lambda _m: None)
    ops_space = operator_space(space)
    res = ops_space.check_resolutions(resolutions)
    ops = ops_space.operators(res)
    values = np.full(len(ops), np.nan)
    stats = {"n": np.zeros(len(ops)), "iqr": np.full(len(ops), np.nan)}
    measured = reused = 0
    seconds = 0.0
    cap = max_measurements
    i = 0
    while i < len(ops):
        size = CHUNK if cap is None else min(CHUNK, cap - measured)
        if size <= 0:
            break
        sl = slice(i, i + size)
        out = measurer.measure(ops_space, ops[sl], ("latency",))
        if out.failures:
            j, why = next(iter(out.failures.items()))
            raise MeasurementError(
                f"operator {ops_space.format(ops[sl][j])!r} could not be measured on "
                f"{measurer.device.name!r}: {why}"
            )
        values[sl] = out["latency"]
        got = out.stats.get("latency", {})
        for k in stats:
            if k in got:
                stats[k][sl] = got[k]
        measured += out.cost.measurements
        reused += out.cost.reused
        seconds += out.cost.device_seconds
        i = min(i + size, len(ops))
        say(f"operators: {i}/{len(ops)} ({measured} measured, {reused} reused)")
    missing = np.isnan(values[:i]).any() or i < len(ops)
    if np.isnan(stats["iqr"][:i]).any() and not missing:
        _fill_stored_stats(measurer, ops_space, ops, stats)
    lut = None if missing else _table(ops_space, ops, res, values, stats, measurer)
    return LUTBuild(lut, len(ops), measured, reused, seconds)


def _fill_stored_stats(measurer: Any, ops_space: SearchSpace, ops: np.ndarray, stats: dict) -> None:
    """Spread and counts of operators reused from the store (the measurer returns only the
    main value for them)."""
    store = getattr(measurer, "store", None)
    if store is None:
        return
    a, v = store.get_measurements(ops_space, measurer.device.name, "latency", "iqr", archs=ops)
    lookup = {r.tobytes(): float(x) for r, x in zip(a, v, strict=True)}
    for j, r in enumerate(ops):
        if np.isnan(stats["iqr"][j]):
            stats["iqr"][j] = lookup.get(r.tobytes(), 0.0)


def _table(
    ops_space: OperatorSpace,
    ops: np.ndarray,
    resolutions: tuple[int, ...],
    values: np.ndarray,
    stats: dict[str, np.ndarray],
    measurer: Any,
) -> dict[str, Any]:
    entry = {
        ops_space.format(a): {
            "count": int(max(np.nan_to_num(stats["n"][j]), 1)),
            "mean": float(values[j]),
            "std": float(np.nan_to_num(stats["iqr"][j]) / 1.349),
        }
        for j, a in enumerate(ops)
    }
    tables = {int(r): {k: entry[k] for k in ops_space.table_keys(r)} for r in resolutions}
    return {
        "device": measurer.device.name,
        "space": ops_space.parent.name,
        "unit": "ms",
        "statistic": measurer.statistic,
        "identity": measurer.identity_key,
        "tables": tables,
    }


def check_lut(
    space: SearchSpace,
    lut: dict[str, Any],
    measure: Callable[[np.ndarray], np.ndarray],
    n: int = N_CHECK,
    seed: int = 0,
) -> dict[str, Any]:
    """The table's sum against whole-network measurements of ``n`` random designs at the
    table's resolutions (``measure``: ``n x D`` designs -> ``n`` ms)."""
    if n < 3:
        raise InputError(f"the check needs at least 3 designs, got {n}")
    rng = np.random.default_rng(seed)
    res = sorted(int(r) for r in lut["tables"])
    designs = operator_space(space).sample_at(n, res, rng)
    predicted = lut_class(space)(space).from_lut(lut).predict(designs)
    measured = np.asarray(measure(designs), dtype=float)
    return {"designs": space.format_many(designs), **lut_error(predicted, measured)}


def lut_error(predicted: np.ndarray, measured: np.ndarray) -> dict[str, Any]:
    """Relative error of a table's sums: median and p90 of ``|p - m| / m``, mean signed
    ``(p - m) / m`` and Spearman; ``predicted_ms``/``measured_ms`` per design."""
    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    ok = np.isfinite(m) & (m > 0)
    rel = (p[ok] - m[ok]) / m[ok]
    return {
        "n": int(ok.sum()),
        "median_rel_error": float(np.median(np.abs(rel))),
        "p90_rel_error": float(np.percentile(np.abs(rel), 90)),
        "mean_signed_rel_error": float(rel.mean()),
        "spearman": float(spearman(m[ok], p[ok])),
        "predicted_ms": p.tolist(),
        "measured_ms": m.tolist(),
    }


def lut_name(device: str, space: SearchSpace) -> str:
    """Default artifact name of a measured table."""
    return f"{device}/{space.name}/lut"


def save_lut(store: Store, name: str, lut: dict[str, Any], check: dict[str, Any]) -> str:
    """Store the table and its check as the ``latency_lut`` artifact ``name``."""
    summary = {
        k: v for k, v in check.items() if k not in ("designs", "predicted_ms", "measured_ms")
    }
    payload = {**lut, "check": check}
    art = Artifact(
        name=name,
        kind=LUT_KIND,
        payload=json.dumps(payload, sort_keys=True).encode(),
        meta={
            "device": lut["device"],
            "space": lut["space"],
            "unit": "ms",
            "resolutions": sorted(int(r) for r in lut["tables"]),
            "source": f"measured by fleetnas predict lut on {lut['device']}",
            "identity": lut.get("identity"),
            "check": summary,
        },
    )
    with store.run("predict-lut", {"artifact": name, "device": lut["device"]}) as run:
        return run.save_artifact(art)


def write_lut(path: str | Path, lut: dict[str, Any], check: dict[str, Any] | None = None) -> None:
    """Write the table (and its check) as YAML (``.yaml``/``.yml``) or JSON."""
    import yaml

    p = Path(path)
    doc = {**lut, "tables": {int(r): t for r, t in lut["tables"].items()}}
    if check is not None:
        doc["check"] = check
    text = (
        yaml.safe_dump(doc, sort_keys=True)
        if p.suffix in (".yaml", ".yml")
        else json.dumps(doc, sort_keys=True, indent=1)
    )
    try:
        p.write_text(text)
    except OSError as exc:
        raise InputError(f"cannot write --out {p}: {exc.strerror}") from None


__all__ = [
    "LUTBuild",
    "build_lut",
    "check_lut",
    "check_resolutions",
    "lut_error",
    "lut_name",
    "operator_space",
    "save_lut",
    "write_lut",
]
