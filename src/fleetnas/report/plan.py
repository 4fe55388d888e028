"""Reading plan.json (``docs/plan-format.md``) for the report, and the plain-data views
of it that every figure and table shares (entry values, method palette, per-group summaries)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleetnas.errors import InputError
from fleetnas.fleet.plan_document import FORMAT as PLAN_FORMAT
from fleetnas.fleet.plan_document import OLD_FORMATS

#: Formats the report reads (format 1 differs only in infeasible entries keeping ``design``).
PLAN_FORMATS = (*OLD_FORMATS, PLAN_FORMAT)
STATUSES = ("ok", "infeasible", "failed")
#: What the report's first screen counts: an ``ok`` entry whose design breaks its budget
#: (true or measured latency or energy) is a ``violation``.
SHOWN_STATUSES = ("ok", "violation", "infeasible", "failed")

#: Fixed colours so a method looks the same in every figure (and in the HTML and the PNGs).
METHOD_COLORS = {
    "proxy": "#1f77b4",
    "proxy-fallback": "#ff7f0e",
    "hybrid": "#2ca02c",
    "l2o": "#9467bd",
}
_EXTRA_COLORS = ("#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#d62728")
STATUS_COLORS = {
    "ok": "#2ca02c",
    "violation": "#d62728",
    "infeasible": "#7f7f7f",
    "failed": "#8c564b",
}


def read_plan(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The plan in ``path``, checked enough that every figure can rely on its shape.

    Raises :class:`InputError` naming the file and what is expected when it is missing, not
    JSON, of another format, or lacks the ``devices`` list of entries with a ``device`` name.
    """
    p = Path(path)
    expected = f"a plan.json written by `fleetnas plan` (format {PLAN_FORMAT})"
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"plan file {p} not found; expected {expected}") from None
    except IsADirectoryError:
        raise InputError(f"plan file {p} is a folder; expected {expected}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read plan file {p} ({exc}); expected {expected}") from None
    try:
        plan = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"plan file {p} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}); expected {expected}"
        ) from None
    return check_plan(plan, where=f"plan file {p}")


def check_plan(plan: Any, where: str = "plan") -> dict[str, Any]:
    """``plan`` itself after checking the keys the report needs (see :func:`read_plan`)."""
    if not isinstance(plan, dict):
        raise InputError(f"{where}: expected a JSON object with 'format' and 'devices'")
    fmt = plan.get("format")
    if fmt is not None and fmt not in PLAN_FORMATS:
        raise InputError(
            f"{where}: format {fmt!r} is not supported; expected one of "
            f"{', '.join(repr(f) for f in PLAN_FORMATS)}"
        )
    devices = plan.get("devices")
    if not isinstance(devices, list):
        raise InputError(f"{where}: key 'devices' must be a list of per-device entries")
    for i, e in enumerate(devices):
        if not isinstance(e, dict) or not isinstance(e.get("device"), str):
            raise InputError(f"{where}: devices[{i}] must be an object with a 'device' name")
        for key in ("budget", "predicted", "measured", "truth"):
            if e.get(key) is not None and not isinstance(e[key], dict):
                raise InputError(f"{where}: devices[{i}].{key} must be an object or null")
        for key in ("trace", "front"):
            if e.get(key) is not None and not isinstance(e[key], list):
                raise InputError(f"{where}: devices[{i}].{key} must be a list or null")
    return plan


def entries(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return list(plan.get("devices") or [])


def num(value: Any) -> float | None:
    """``value`` as a finite float, else None (plan numbers may be null)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def sub(entry: dict[str, Any], block: str, key: str) -> float | None:
    """``entry[block][key]`` as a number, None where any level is absent."""
    b = entry.get(block)
    return num(b.get(key)) if isinstance(b, dict) else None


def budget_ms(entry: dict[str, Any]) -> float | None:
    return sub(entry, "budget", "latency_ms")


def status(entry: dict[str, Any]) -> str:
    return str(entry.get("status") or "ok")


def design(entry: dict[str, Any]) -> str | None:
    """The entry's returned design (native string), ``None`` where it has none (infeasible or
    failed entries; format ``/1`` kept the fastest measured design on infeasible ones)."""
    d = entry.get("design")
    return d if isinstance(d, str) and d and status(entry) == "ok" else None


def is_violation(entry: dict[str, Any]) -> bool:
    """An ``ok`` entry whose design breaks its budget: the truth says so, or the measured
    latency (energy) exceeds it."""
    if status(entry) != "ok":
        return False
    if (entry.get("truth") or {}).get("violation") is True:
        return True
    for key in ("latency_ms", "energy_mj"):
        got, limit = sub(entry, "measured", key), sub(entry, "budget", key)
        if got is not None and limit is not None and got > limit:
            return True
    return False


def shown_status(entry: dict[str, Any]) -> str:
    """One of :data:`SHOWN_STATUSES`."""
    return "violation" if is_violation(entry) else status(entry)


def status_counts(plan: dict[str, Any]) -> dict[str, int]:
    """Entries per :data:`SHOWN_STATUSES` (every entry counted once)."""
    counts = dict.fromkeys(SHOWN_STATUSES, 0)
    for e in entries(plan):
        st = shown_status(e)
        counts[st] = counts.get(st, 0) + 1
    return counts


def plan_wall_s(plan: dict[str, Any]) -> tuple[float | None, str]:
    """The plan's own wall time and what it is: ``plan_wall_s`` (every invocation that
    computed entries, summed) where the planner wrote it; else the last invocation's
    ``wall_s`` when it reused nothing; else the entries' summed compute time."""
    s = plan.get("summary") if isinstance(plan.get("summary"), dict) else {}
    total = num(s.get("plan_wall_s"))
    if total is not None:
        return total, "plan wall s"
    run = s.get("run") if isinstance(s.get("run"), dict) else {}
    if not num(run.get("reused")) and num(s.get("wall_s")) is not None:
        return num(s.get("wall_s")), "plan wall s"
    walls = [w for w in (num(e.get("wall_s")) for e in entries(plan)) if w is not None]
    return (sum(walls), "compute s (entries summed)") if walls else (None, "")


def method(entry: dict[str, Any]) -> str:
    return str(entry.get("method") or "unknown")


def family(entry: dict[str, Any]) -> str:
    return str(entry.get("family") or "unknown")


def entry_label(entry: dict[str, Any]) -> str:
    """The entry's identity in the store: its ``key`` when the planner wrote one, else
    ``device@budget_label`` (or ``device@<budget>ms``)."""
    if isinstance(entry.get("key"), str) and entry["key"]:
        return entry["key"]
    label = entry.get("budget_label")
    if label is None:
        b = budget_ms(entry)
        label = f"{b:g}ms" if b is not None else None
    return f"{entry['device']}@{label}" if label is not None else str(entry["device"])


def reached_accuracy(entry: dict[str, Any]) -> tuple[float | None, bool]:
    """``(accuracy, is_true)``: the true accuracy of the returned design where the plan knows
    it, else the predicted one."""
    true = sub(entry, "truth", "accuracy")
    if true is not None:
        return true, True
    return sub(entry, "predicted", "accuracy"), False


def design_latency(entry: dict[str, Any]) -> float | None:
    """Latency of the returned design on the device: true, else measured, else predicted."""
    for block in ("truth", "measured", "predicted"):
        v = sub(entry, block, "latency_ms")
        if v is not None:
            return v
    return None


def method_colors(methods: Sequence[str]) -> dict[str, str]:
    """Colour per method: fixed for the known ones, then a stable cycle for the others."""
    out: dict[str, str] = {}
    extra = 0
    for m in sorted(set(methods)):
        if m in METHOD_COLORS:
            out[m] = METHOD_COLORS[m]
        else:
            out[m] = _EXTRA_COLORS[extra % len(_EXTRA_COLORS)]
            extra += 1
    return out


SUMMARY_COLUMNS = (
    "entries",
    "devices",
    "ok",
    "infeasible",
    "failed",
    "measurements",
    "per_entry",
    "device_s",
    "violations",
    "mean_accuracy",
    "mean_regret_pp",
    "wall_s",
)


def summarize(plan: dict[str, Any], by: str) -> list[dict[str, Any]]:
    """One row per ``family`` or ``method`` (and a final ``all`` row) computed from the
    entries: counts by status, real measurements (total and per entry), device seconds, known
    violations, mean regret over entries with a truth block, summed wall time."""
    key = {"family": family, "method": method}.get(by)
    if key is None:
        raise InputError(f"summary by {by!r}; expected 'family' or 'method'")
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in entries(plan):
        groups.setdefault(key(e), []).append(e)
    rows = [_summary_row(by, g, groups[g]) for g in sorted(groups)]
    if len(groups) > 1:
        rows.append(_summary_row(by, "all", entries(plan)))
    return rows


def _summary_row(by: str, name: str, es: list[dict[str, Any]]) -> dict[str, Any]:
    meas = [num(e.get("measurements")) or 0.0 for e in es]
    regrets = [r for r in (sub(e, "truth", "regret_pp") for e in es) if r is not None]
    walls = [w for w in (num(e.get("wall_s")) for e in es) if w is not None]
    truth = [e["truth"] for e in es if isinstance(e.get("truth"), dict)]
    accs = [a for a, _ in (reached_accuracy(e) for e in es if status(e) == "ok") if a is not None]
    return {
        by: name,
        "entries": len(es),
        "devices": len({e["device"] for e in es}),
        # ok + violations + infeasible + failed = entries, as in the page's header
        **{s: sum(1 for e in es if shown_status(e) == s) for s in STATUSES},
        "measurements": int(sum(meas)),
        "per_entry": sum(meas) / len(es) if es else None,
        "device_s": sum(num(e.get("device_seconds")) or 0.0 for e in es),
        "violations": sum(is_violation(e) for e in es)
        if truth or any(isinstance(e.get("measured"), dict) for e in es)
        else None,
        "mean_accuracy": sum(accs) / len(accs) if accs else None,
        "mean_regret_pp": sum(regrets) / len(regrets) if regrets else None,
        "wall_s": sum(walls) if walls else None,
    }


#: Columns of the report's compression table.
COMPRESSION_COLUMNS = ("entry", "space", "precision", "widths", "int8", "pruned", "accuracy")


def compression_rows(plan: dict[str, Any]) -> list[dict[str, str]]:
    """One row per entry of a compressed plan (entries with a ``compression`` block): the chosen
    precision(s) and widths, whether int8 / pruning was chosen, and the accuracy with its
    source (``93.5 % (modelled)``); empty for plans without compression."""
    rows = []
    for e in entries(plan):
        c = e.get("compression")
        if not isinstance(c, dict):
            continue
        acc = sub(e, "predicted", "accuracy")
        src = e.get("accuracy_source") or "unknown"
        widths = c.get("widths")
        rows.append(
            {
                "entry": str(e.get("key")),
                "space": str(e.get("space") or plan.get("space")),
                "precision": str(c.get("precision") or "per-layer bits"),
                "widths": ", ".join(f"{w:g}" for w in widths) if widths else "–",
                "int8": "int8" if c.get("int8") else "–",
                "pruned": "pruned" if c.get("pruned") else "–",
                "accuracy": "–" if acc is None else f"{acc:.2f} % ({src})",
            }
        )
    return rows
