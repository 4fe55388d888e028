"""Figures of the report as plain specs, built from the plan dict and the panel data of
:mod:`fleetnas.report.sources`. The HTML (plotly) and PNG (matplotlib) renderers draw the same
specs, so both outputs show the same numbers. A spec whose data is absent carries a ``note``
saying why instead of series."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from fleetnas.report.plan import (
    STATUS_COLORS,
    budget_ms,
    design,
    design_latency,
    entries,
    entry_label,
    method,
    method_colors,
    num,
    reached_accuracy,
    shown_status,
    status,
    sub,
)
from fleetnas.report.sources import FrontData, MonotonicityData

Symbol = Literal["circle", "circle-open", "star", "x", "diamond-open", "square", "triangle-down"]
#: Marker of each method in the fleet figure, where colour says the status.
METHOD_SYMBOLS: dict[str, Symbol] = {
    "proxy": "circle",
    "proxy-fallback": "square",
    "hybrid": "diamond-open",
    "l2o": "circle-open",
}


@dataclass
class Series:
    """One trace: ``x``, ``y`` equal-length float arrays (NaN = gap).

    ``kind``: ``markers``, ``lines``, ``lines+markers`` or ``bar``; ``step`` draws lines as a
    staircase (Pareto fronts); ``y2`` puts the series on the right-hand axis; ``text`` is the
    hover label per point (HTML only)."""

    name: str
    x: np.ndarray
    y: np.ndarray
    kind: str = "markers"
    color: str = "#1f77b4"
    symbol: Symbol = "circle"
    size: float = 7.0
    opacity: float = 1.0
    dash: bool = False
    step: bool = False
    y2: bool = False
    text: list[str] | None = None
    legend: bool = True

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x, dtype=float).reshape(-1)
        self.y = np.asarray(self.y, dtype=float).reshape(-1)
        if self.x.shape != self.y.shape:
            raise ValueError(f"series {self.name!r}: x and y differ in length")


@dataclass
class RefLine:
    """A horizontal (``axis='y'``) or vertical (``axis='x'``) reference line at ``value``."""

    axis: Literal["x", "y"]
    value: float
    label: str
    color: str = "#444444"


@dataclass
class Heatmap:
    """``k x k`` matrix ``z`` with row/column ``labels``; NaN cells are left blank."""

    z: np.ndarray
    labels: list[str]
    zmin: float
    zmax: float
    colorbar: str
    hover: list[list[str]] | None = None
    annotate: bool = False


@dataclass
class FigureSpec:
    """One figure (one plotly div, one PNG). ``note`` set means: not drawn, and why."""

    key: str
    title: str
    caption: str = ""
    x_label: str = ""
    y_label: str = ""
    y2_label: str = ""
    x_log: bool = False
    x_integer: bool = False
    y_range: tuple[float, float] | None = None
    series: list[Series] = field(default_factory=list)
    lines: list[RefLine] = field(default_factory=list)
    heatmap: Heatmap | None = None
    barmode: Literal["stack", "group"] = "stack"
    note: str | None = None

    @property
    def drawn(self) -> bool:
        return self.note is None


def _wide(values: Sequence[float]) -> bool:
    """Whether positive values span more than a factor 20 (then a log axis reads better)."""
    v = [x for x in values if x is not None and x > 0]
    return len(v) > 1 and max(v) / min(v) > 20


def _fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def _hover(e: dict[str, Any]) -> str:
    acc, is_true = reached_accuracy(e)
    parts = [
        f"{entry_label(e)} ({e.get('family') or 'unknown'})",
        f"method {method(e)}, status {status(e)}",
        f"budget {_fmt(budget_ms(e))} ms",
        f"accuracy {_fmt(acc)} ({'true' if is_true else 'predicted'})",
        f"latency {_fmt(design_latency(e))} ms",
        f"measurements {_fmt(num(e.get('measurements')))}",
    ]
    regret = sub(e, "truth", "regret_pp")
    if regret is not None:
        parts.append(f"regret {regret:.3g} pp")
    if e.get("reason"):
        parts.append(f"reason: {e['reason']}")
    d = design(e)
    if d:
        parts.append(d)
    fastest = e.get("fastest_measured")
    if isinstance(fastest, dict) and fastest.get("design"):
        lat = num(fastest.get("latency_ms"))
        parts.append(f"fastest measured: {fastest['design']} ({_fmt(lat)} ms)")
    return "<br>".join(parts)


def _zoom(values: Sequence[float], top: Sequence[float] = ()) -> tuple[float, float]:
    """An accuracy range around where the values live, padded: from the lowest value within
    eight robust deviations (1.4826 MAD) of the median to the top, so that a few poor outliers
    do not squeeze the band where most designs are."""
    v = np.asarray(values, dtype=float)
    if not v.size:
        return 0.0, 100.0
    med = float(np.median(v))
    spread = 1.4826 * float(np.median(np.abs(v - med)))
    lo, hi = float(v[v >= med - 8 * spread].min()), float(np.max([*v, *top]))
    pad = max(0.25, 0.08 * (hi - lo))
    return lo - 2 * pad, hi + pad


def fleet_figure(plan: dict[str, Any]) -> FigureSpec:
    """The fleet at a glance: accuracy reached against each entry's latency budget, coloured
    by status (ok, violation, infeasible, failed; marker by method), with the best accuracy any
    design reaches within that budget (the oracle) where the plan knows it; the vertical gap to
    it is the regret. The accuracy axis zooms to where the designs are; entries without a
    design (infeasible, failed) and the few below the axis sit on its lower edge."""
    es = entries(plan)
    spec = FigureSpec(
        "fleet",
        "The fleet at a glance: accuracy reached vs latency budget",
        x_label="latency budget (ms)",
    )
    budgeted = [e for e in es if budget_ms(e) is not None]
    placed = [e for e in budgeted if status(e) == "ok" and reached_accuracy(e)[0] is not None]
    missing = [e for e in budgeted if status(e) in ("infeasible", "failed")]
    if not placed and not missing:
        spec.note = (
            "no entry has both a latency budget and an accuracy, so there is nothing to plot"
        )
        return spec
    all_true = all(reached_accuracy(e)[1] for e in placed)
    spec.y_label = (
        f"true {plan.get('accuracy') or 'accuracy'} (%)"
        if all_true
        else f"{plan.get('accuracy') or 'accuracy'} (%; true where known, else predicted)"
    )
    oracle = [e for e in placed if sub(e, "truth", "oracle_accuracy") is not None]
    accs = [reached_accuracy(e)[0] for e in placed]
    lo, hi = _zoom(
        [a for a in accs if a is not None], [sub(e, "truth", "oracle_accuracy") for e in oracle]
    )
    spec.y_range = (lo, hi)
    edge = lo + 0.02 * (hi - lo)
    if oracle:
        spec.series.append(
            Series(
                "oracle (best design within budget)",
                [budget_ms(e) for e in oracle],
                [sub(e, "truth", "oracle_accuracy") for e in oracle],
                color="#999999",
                symbol="circle-open",
                size=9,
                text=[f"{entry_label(e)}: oracle" for e in oracle],
            )
        )
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in placed:
        groups.setdefault((shown_status(e), method(e)), []).append(e)
    below = [e for e in placed if (reached_accuracy(e)[0] or 0.0) < edge]
    for (st, m), group in sorted(groups.items()):
        group = [e for e in group if (reached_accuracy(e)[0] or 0.0) >= edge]
        if group:
            spec.series.append(
                Series(
                    f"{st} · {m}",
                    [budget_ms(e) for e in group],
                    [reached_accuracy(e)[0] for e in group],
                    color=STATUS_COLORS[st],
                    symbol=METHOD_SYMBOLS.get(m, "circle"),
                    text=[_hover(e) for e in group],
                )
            )
    for st in sorted({shown_status(e) for e in below}):
        group = [e for e in below if shown_status(e) == st]
        spec.series.append(
            Series(
                f"{st} · accuracy below the axis",
                [budget_ms(e) for e in group],
                [edge] * len(group),
                color=STATUS_COLORS[st],
                symbol="triangle-down",
                size=9,
                text=[_hover(e) for e in group],
            )
        )
    for st in ("infeasible", "failed"):
        group = [e for e in missing if status(e) == st]
        if group:
            spec.series.append(
                Series(
                    f"{st} (no design)",
                    [budget_ms(e) for e in group],
                    [edge] * len(group),
                    color=STATUS_COLORS[st],
                    symbol="x",
                    size=9,
                    text=[_hover(e) for e in group],
                )
            )
    spec.x_log = _wide([budget_ms(e) for e in budgeted])
    counts = {st: sum(1 for e in es if shown_status(e) == st) for st in STATUS_COLORS}
    bits = [f"{len(placed) + len(missing)} of {len(es)} entries drawn"]
    bits += [f"{n} {st}" for st, n in counts.items() if n]
    no_budget = len(es) - len(budgeted)
    if no_budget:
        bits.append(f"{no_budget} without a latency budget")
    if missing or below:
        bits.append(
            f"on the lower edge: {len(missing)} without a design (x)"
            + (f", {len(below)} with accuracy below {edge:.3g} % (triangles)" if below else "")
        )
    spec.caption = "; ".join(bits) + "."
    return spec


def _statuses(es: Sequence[dict[str, Any]], budget: float) -> list[str]:
    return sorted({status(e) for e in es if budget_ms(e) == budget})


def front_figure(plan: dict[str, Any], data: FrontData) -> FigureSpec:
    """Pareto front of one device (accuracy vs latency), the designs the plan returned on it
    (stars, one colour per method), the oracle design per budget and the budgets."""
    es = [e for e in entries(plan) if e["device"] == data.device]
    fam = next((e.get("family") for e in es if e.get("family")), None)
    spec = FigureSpec(
        f"front-{data.device}",
        f"Pareto front on {data.device}" + (f" ({fam})" if fam else ""),
        x_label=f"latency on {data.device} (ms)",
        y_label=f"{plan.get('accuracy') or 'accuracy'} (%)",
    )
    if len(data.cloud_latency):
        spec.series.append(
            Series(
                "all designs" + (" (sample)" if len(data.cloud_latency) < data.n_designs else ""),
                data.cloud_latency,
                data.cloud_accuracy,
                color="#c7c7c7",
                size=3,
                opacity=0.6,
            )
        )
    spec.series.append(
        Series(
            "Pareto front",
            data.front_latency,
            data.front_accuracy,
            kind="lines+markers",
            color="#333333",
            size=4,
            step=True,
        )
    )
    colors = method_colors([method(e) for e in es])
    chosen: dict[str, list[tuple[float, float, str]]] = {}
    for e in es:
        if status(e) != "ok":
            continue
        design = e.get("design")
        point = data.designs.get(design) if isinstance(design, str) else None
        if point is None:
            lat, (acc, _) = design_latency(e), reached_accuracy(e)
            if lat is None or acc is None:
                continue
            point = (lat, acc)
        chosen.setdefault(method(e), []).append((*point, _hover(e)))
    if data.oracles:
        pts = sorted(data.oracles.items())
        spec.series.append(
            Series(
                "oracle within budget",
                [p[1][0] for p in pts],
                [p[1][1] for p in pts],
                color="#000000",
                symbol="diamond-open",
                size=11,
                text=[f"oracle for budget {b:g} ms" for b, _ in pts],
            )
        )
    for m, pts in sorted(chosen.items()):
        spec.series.append(
            Series(
                f"chosen ({m})",
                [p[0] for p in pts],
                [p[1] for p in pts],
                color=colors[m],
                symbol="star",
                size=14,
                text=[p[2] for p in pts],
            )
        )
    budgets: dict[float, bool] = {}
    for e in es:
        b = budget_ms(e)
        if b is not None:
            budgets[b] = budgets.get(b, False) or status(e) == "ok"
    for b, ok in sorted(budgets.items()):
        label = f"budget {b:.3g} ms" + ("" if ok else f" ({'/'.join(_statuses(es, b))})")
        spec.lines.append(RefLine("x", b, label, color="#d62728"))
    xs = np.concatenate([data.front_latency, data.cloud_latency])
    spec.x_log = _wide(xs.tolist())
    spec.caption = (
        f"Front over {data.n_designs} designs with a stored latency on {data.device} and a "
        f"stored accuracy"
        if data.source == "store"
        else f"Front as written in the plan ({data.n_designs} points)"
    ) + f"; {sum(len(v) for v in chosen.values())} chosen design(s) marked."
    return spec


def fronts_note(missing: Sequence[str], any_drawn: bool) -> FigureSpec | None:
    """A note for the devices whose front is unknown (None when there is nothing to say)."""
    if any_drawn and not missing:
        return None
    if missing:
        text = (
            f"no Pareto front for {', '.join(missing)}: the plan has no 'front' for it and the "
            f"store has no latency table of its space with stored accuracies"
        )
    else:
        text = (
            "no Pareto front to draw: no entry carries a 'front' and no store with latency and "
            "accuracy tables of the plan's space was given (use --db)"
        )
    return FigureSpec("fronts", "Pareto fronts of chosen devices", note=text)


def monotonicity_figure(data: MonotonicityData | None) -> FigureSpec:
    """Heatmap of pairwise Spearman rank correlations of latency between devices (ordered by
    family): how well one device's latency ranking carries over to another (paper Fig. 4)."""
    spec = FigureSpec("monotonicity", "Latency monotonicity across devices (Spearman ρ)")
    if data is None:
        spec.note = (
            "no monotonicity data: the plan has no 'monotonicity' block and no store with "
            "latencies of two or more of its devices was given (use --db)"
        )
        return spec
    k = len(data.devices)
    labels = [f"{d} ({f})" for d, f in zip(data.devices, data.families, strict=True)]
    hover = []
    for i in range(k):
        row = []
        for j in range(k):
            bits = [
                f"{data.devices[i]} vs {data.devices[j]}",
                f"Spearman {data.spearman[i, j]:.3f}",
            ]
            if data.kendall is not None:
                bits.append(f"Kendall {data.kendall[i, j]:.3f}")
            if data.flip_share is not None:
                bits.append(f"flipped pairs {100 * data.flip_share[i, j]:.1f}%")
            row.append("<br>".join(bits))
        hover.append(row)
    finite = data.spearman[np.isfinite(data.spearman)]
    lo = float(finite.min()) if finite.size else 0.0
    spec.heatmap = Heatmap(
        data.spearman,
        labels,
        zmin=min(0.0, math.floor(lo * 10) / 10),
        zmax=1.0,
        colorbar="Spearman ρ",
        hover=hover,
        annotate=k <= 12,
    )
    off = data.spearman[~np.eye(k, dtype=bool)]
    off = off[np.isfinite(off)]
    src = (
        f"computed from stored latencies of {data.n_designs} designs measured on every device"
        if data.source == "store"
        else "as written in the plan"
    )
    spec.caption = (
        f"{k} devices, {src}; off-diagonal ρ from {off.min():.3f} to {off.max():.3f} "
        f"(median {np.median(off):.3f})."
        if off.size
        else f"{k} devices, {src}."
    )
    if data.flip_share is not None and k > 1:
        flips = data.flip_share[~np.eye(k, dtype=bool)]
        flips = flips[np.isfinite(flips)]
        if flips.size:
            spec.caption += (
                f" Design pairs whose latency order flips between two devices: median "
                f"{100 * np.median(flips):.1f}%, worst {100 * flips.max():.1f}% (hover for "
                f"each pair's Kendall τ and flip share)."
            )
    return spec


def _is_probe(step: Any) -> bool:
    return isinstance(step, dict) and step.get("phase") == "probe"


def search_steps(e: dict[str, Any]) -> int:
    """Trace steps of ``e`` that search (probe measurements taken to describe the device or
    to choose a proxy left out)."""
    return sum(isinstance(s, dict) and not _is_probe(s) for s in e.get("trace") or [])


def pick_trace_entry(plan: dict[str, Any], device: str | None = None) -> dict[str, Any] | None:
    """The entry whose bisection trace is drawn: ``device`` (a device name or an entry label
    ``device@budget``) when given, else the entry with the most search steps (probes do not
    count; ties: the longer trace, then plan order)."""
    es = [e for e in entries(plan) if e.get("trace")]
    if device is not None:
        es = [e for e in es if device in (e["device"], entry_label(e))]
    return max(es, key=lambda e: (search_steps(e), len(e["trace"])), default=None)


def trace_figure(plan: dict[str, Any], device: str | None = None) -> FigureSpec:
    """Bisection trace of one entry (Approach 1, Sec. 4): the latency measured on the target at
    each step against its budget, and the trade-off weight ``t`` of eq. (6) on the right axis.
    Probe measurements (phase ``probe``: the device's features, the proxy choice) are drawn
    apart, as open grey diamonds off the search line."""
    spec = FigureSpec(
        "trace",
        "Bisection trace",
        x_label="step",
        y_label="measured latency on target (ms)",
        x_integer=True,
    )
    e = pick_trace_entry(plan, device)
    if e is None:
        spec.note = (
            f"no bisection trace for {device!r} in the plan"
            if device is not None
            else "no entry of the plan carries a bisection trace"
        )
        return spec
    b = budget_ms(e)
    spec.title = f"Bisection trace on {entry_label(e)} ({method(e)})"
    steps, lat, t, texts, probe = [], [], [], [], []
    for i, s in enumerate(e["trace"]):
        if not isinstance(s, dict):
            continue
        steps.append(num(s.get("step")) or float(i + 1))
        lat.append(num(s.get("measured_latency_ms")))
        t.append(num(s.get("t")))
        probe.append(_is_probe(s))
        texts.append(
            "<br>".join(
                str(x)
                for x in (
                    f"step {steps[-1]:g}" + (" (probe)" if probe[-1] else ""),
                    f"measured {_fmt(lat[-1])} ms",
                    f"proxy latency {_fmt(num(s.get('proxy_latency')))}",
                    f"t {_fmt(t[-1])}",
                    s.get("decision") or "",
                    s.get("design") or "",
                )
                if x
            )
        )
    x = np.asarray(steps, dtype=float)
    y = np.asarray([np.nan if v is None else v for v in lat], dtype=float)
    pm = np.asarray(probe, dtype=bool)
    sm = ~pm

    def pick(mask: np.ndarray) -> list[str]:
        return [tx for tx, m in zip(texts, mask, strict=True) if m]

    if pm.any():
        spec.series.append(
            Series(
                "probe",
                x[pm],
                y[pm],
                color="#7f7f7f",
                symbol="diamond-open",
                size=9,
                text=pick(pm),
            )
        )
    if b is not None:
        if sm.any():
            spec.series.append(
                Series("measured", x[sm], y[sm], kind="lines", color="#7f7f7f", legend=False)
            )
        under = y <= b
        for name, mask, col in (
            ("within budget", under & sm, "#2ca02c"),
            ("over budget", ~under & sm, "#d62728"),
        ):
            if (mask & np.isfinite(y)).any():
                spec.series.append(
                    Series(name, x[mask], y[mask], color=col, size=9, text=pick(mask))
                )
        spec.lines.append(RefLine("y", b, f"budget {b:.3g} ms", color="#d62728"))
    elif sm.any():
        spec.series.append(
            Series(
                "measured", x[sm], y[sm], kind="lines+markers", color="#1f77b4", size=9,
                text=pick(sm),
            )
        )  # fmt: skip
    if any(v is not None for v in t):
        spec.series.append(
            Series(
                "t (trade-off weight)",
                x,
                [np.nan if v is None else v for v in t],
                kind="lines+markers",
                color="#9467bd",
                size=5,
                dash=True,
                y2=True,
            )
        )
        spec.y2_label = "t"
    final = design_latency(e)
    n_probe = int(pm.sum())
    spec.caption = (
        f"{len(steps)} steps"
        + (
            f" ({n_probe} probes, grey diamonds, then {len(steps) - n_probe} search)"
            if n_probe
            else ""
        )
        + f", {_fmt(num(e.get('measurements')))} real measurements; returned "
        f"design latency {_fmt(final)} ms against a budget of {_fmt(b)} ms."
    )
    return spec


def _bins(values: np.ndarray) -> np.ndarray:
    hi = int(values.max()) if len(values) else 0
    if hi <= 60:
        return np.arange(-0.5, hi + 1.5)
    return np.linspace(-0.5, hi + 0.5, 31)


def measurements_figure(plan: dict[str, Any]) -> FigureSpec:
    """How many real measurements each entry cost, stacked by method (a histogram over entries:
    the paper's claim is about ten per device for Approach 1 and about one for Approach 2)."""
    es = entries(plan)
    spec = FigureSpec(
        "measurements",
        "Real measurements per device",
        x_label="real measurements per entry (device, budget)",
        y_label="entries",
        x_integer=True,
    )
    counted = [e for e in es if num(e.get("measurements")) is not None]
    if not counted:
        spec.note = "no entry reports how many measurements it used"
        return spec
    values = np.array([num(e.get("measurements")) for e in counted], dtype=float)
    edges = _bins(values)
    centers = (edges[:-1] + edges[1:]) / 2
    colors = method_colors([method(e) for e in counted])
    for m in sorted(colors):
        v = values[[method(e) == m for e in counted]]
        hist, _ = np.histogram(v, bins=edges)
        spec.series.append(Series(m, centers, hist, kind="bar", color=colors[m]))
    secs = sum(num(e.get("device_seconds")) or 0.0 for e in counted)
    spec.caption = (
        f"{int(values.sum())} measurements over {len(counted)} entries "
        f"(mean {values.mean():.2f}, median {np.median(values):g}, max {values.max():g}); "
        f"{secs:.3g} s of device time."
    )
    return spec
