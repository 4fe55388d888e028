"""The plan document (``docs/plan-format.md``): assembled from the stored entries, summarized,
written as plan.json and read back (earlier formats upgraded on read)."""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.fileio import atomic_write_text
from fleetnas.fleet.fleetfile import Fleet
from fleetnas.fleet.tasks import PlanConfig, Task, seal_infeasible
from fleetnas.store import Store

FORMAT = "fleetnas-plan/2"
#: Earlier formats :func:`read_plan` still reads (upgraded on read: :func:`seal_infeasible`).
OLD_FORMATS = ("fleetnas-plan/1",)


def assemble_plan(
    store: Store,
    name: str,
    fleet: Fleet,
    config: PlanConfig,
    header: dict[str, Any],
    tasks: Sequence[Task],
    wall_s: float,
) -> dict[str, Any]:
    """The plan document from the stored entries of this fleet's tasks, in fleet order."""
    stored = {e.get("key", e["device"]): e for e in store.get_plan(name)}
    entries = []
    missing = 0
    for t in tasks:
        e = stored.get(t.key)
        if e is None or e.get("task_fingerprint") != t.fingerprint:
            missing += 1
            continue
        entries.append(seal_infeasible(e))
    summary = summarize(entries, wall_s)
    summary["missing"] = missing
    return {
        "format": FORMAT,
        "plan": name,
        "space": config.space,
        "accuracy": config.accuracy,
        "created": header["created"],
        "fleet": header["fleet"],
        "approach": config.approach,
        "config": {**config.to_dict(), "digest": config.digest()},
        "summary": summary,
        "devices": entries,
    }


def _violation(e: dict[str, Any]) -> bool:
    """Known violation of a deployable (``ok``) entry: the true value (where known) or the
    measured one exceeds the budget. Infeasible and failed entries deploy nothing."""
    if e.get("status") != "ok":
        return False
    t = e.get("truth") or {}
    if t.get("violation"):
        return True
    m = e.get("measured") or {}
    b = e.get("budget") or {}
    for mk, bk in (("latency_ms", "latency_ms"), ("energy_mj", "energy_mj")):
        if m.get(mk) is not None and b.get(bk) is not None and m[mk] > b[bk]:
            return True
    return False


def _group(entries: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in entries:
        groups[str(e.get(key))].append(e)
    rows = []
    for k in sorted(groups):
        es = groups[k]
        regrets = [
            e["truth"]["regret_pp"]
            for e in es
            if (e.get("truth") or {}).get("regret_pp") is not None
        ]
        rows.append(
            {
                key: k,
                "devices": len({e["device"] for e in es}),
                "entries": len(es),
                "ok": sum(e["status"] == "ok" for e in es),
                "infeasible": sum(e["status"] == "infeasible" for e in es),
                "failed": sum(e["status"] == "failed" for e in es),
                "measurements": int(sum(e.get("measurements") or 0 for e in es)),
                "violations": sum(_violation(e) for e in es),
                "mean_regret_pp": float(np.mean(regrets)) if regrets else None,
                "wall_s": float(sum(e.get("wall_s") or 0.0 for e in es)),
            }
        )
    return rows


def summarize(entries: Sequence[dict[str, Any]], wall_s: float | None = None) -> dict[str, Any]:
    """The plan summary: counts, measurements, device seconds, known violations, regret (where
    ground truth exists), and the same per family and per method."""
    regrets = [
        e["truth"]["regret_pp"]
        for e in entries
        if (e.get("truth") or {}).get("regret_pp") is not None
    ]
    checked = sum(1 for e in entries if e.get("truth"))
    return {
        "devices": len({e["device"] for e in entries}),
        "entries": len(entries),
        "ok": sum(e["status"] == "ok" for e in entries),
        "infeasible": sum(e["status"] == "infeasible" for e in entries),
        "failed": sum(e["status"] == "failed" for e in entries),
        "measurements": int(sum(e.get("measurements") or 0 for e in entries)),
        "device_seconds": float(sum(e.get("device_seconds") or 0.0 for e in entries)),
        "violations_known": sum(_violation(e) for e in entries),
        "truth_checked": checked,
        "mean_regret_pp": float(np.mean(regrets)) if regrets else None,
        "max_regret_pp": float(np.max(regrets)) if regrets else None,
        "compute_s": float(sum(e.get("wall_s") or 0.0 for e in entries)),
        "wall_s": None if wall_s is None else float(wall_s),
        "by_family": _group(entries, "family"),
        "by_method": _group(entries, "method"),
    }


def not_ok_line(entries: Sequence[dict[str, Any]], shown: int = 2) -> str | None:
    """One line saying how many entries are not ``ok`` and why (the most common reasons
    first), or ``None`` when every entry is ``ok``: what ``fleetnas plan`` prints before it
    exits with code 3."""
    bad = [e for e in entries if e.get("status") != "ok"]
    if not bad:
        return None
    parts = []
    for st in ("failed", "infeasible"):
        es = [e for e in bad if e.get("status") == st]
        if not es:
            continue
        reasons: dict[str, int] = defaultdict(int)
        for e in es:
            reasons[str(e.get("reason") or "no reason given")] += 1
        top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        why = "; ".join(f"{n}x {r[:160]}" for r, n in top[:shown])
        more = f"; {len(top) - shown} other reasons" if len(top) > shown else ""
        parts.append(f"{len(es)} {st} ({why}{more})")
    return f"{len(bad)} of {len(entries)} entries are not ok: " + ", ".join(parts)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def write_plan(doc: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a plan document as JSON, atomically."""
    return atomic_write_text(Path(path), json.dumps(_clean(doc), indent=1) + "\n")


def read_plan(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read plan.json; :class:`InputError` if it is not a fleetnas plan."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"plan file {path}: cannot be read as JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") not in (FORMAT, *OLD_FORMATS):
        raise InputError(f"plan file {path}: not a {FORMAT} document")
    if doc["format"] != FORMAT:
        for e in doc.get("devices") or []:
            if isinstance(e, dict):
                seal_infeasible(e)
        doc["format"] = FORMAT
    return doc


__all__ = [
    "FORMAT",
    "OLD_FORMATS",
    "assemble_plan",
    "not_ok_line",
    "read_plan",
    "summarize",
    "write_plan",
]
