"""One self-contained HTML page: plotly.js embedded once in the head, every figure as JSON
drawn by one loader script, plan metadata and summary tables. The page references nothing
outside itself, so it opens offline and can be mailed or archived as one file.

Each figure div gets ``data-rendered="1"`` once plotly has drawn it (``"error"`` if drawing
failed, with the error on the console), which lets a headless browser check the page."""

from __future__ import annotations

import functools
import html
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import jinja2
import numpy as np

from fleetnas.report.figures import FigureSpec
from fleetnas.report.plan import (
    COMPRESSION_COLUMNS,
    STATUS_COLORS,
    SUMMARY_COLUMNS,
    compression_rows,
    entries,
    num,
    plan_wall_s,
    status_counts,
    summarize,
)

_SYMBOLS = {
    "circle": "circle",
    "circle-open": "circle-open",
    "star": "star",
    "x": "x",
    "diamond-open": "diamond-open",
    "square": "square",
    "triangle-down": "triangle-down",
}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #222; background: #fafafa; }
header { background: #1f2d3d; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 6px 0; font-size: 1.6em; }
header .meta { font-size: 0.9em; opacity: 0.9; display: flex; flex-wrap: wrap; gap: 2px 18px; }
header .meta span { white-space: nowrap; }
header .status { display: flex; flex-wrap: wrap; gap: 8px; align-items: center;
                 margin: 4px 0 8px 0; }
.badge { background: var(--c); color: #fff; border-radius: 4px; padding: 3px 10px;
         font-size: 0.95em; }
.badge.zero { background: transparent; color: #b8c2cc; border: 1px solid #4a5a6a; }
.answer { font-size: 0.95em; margin-left: 6px; }
td.st { color: var(--c); font-weight: 600; }
main { padding: 12px 32px 40px 32px; max-width: 1280px; }
section { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; margin: 18px 0;
          padding: 12px 18px; }
section h2 { font-size: 1.15em; margin: 4px 0 8px 0; }
.fn-figure { width: 100%; min-height: 200px; }
.caption { color: #555; font-size: 0.9em; margin: 6px 0 0 0; }
.fn-note { color: #8a6d3b; background: #fcf8e3; border: 1px solid #faebcc; padding: 8px 12px;
           border-radius: 4px; font-size: 0.92em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 4px 0 8px 0; }
th, td { border-bottom: 1px solid #e6e6e6; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f5f7; }
tr.all td { font-weight: 600; }
dl.kv { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; margin: 0; }
dl.kv dt { color: #555; } dl.kv dd { margin: 0; font-family: ui-monospace, monospace;
           word-break: break-all; }
"""

_LOADER = """
(function () {
  var figs = document.querySelectorAll("div.fn-figure");
  figs.forEach(function (el) {
    el.dataset.rendered = "pending";
    try {
      var spec = JSON.parse(document.getElementById(el.id + "-json").textContent);
      Plotly.newPlot(el, spec.data, spec.layout, spec.config).then(
        function () { el.dataset.rendered = "1"; },
        function (err) { el.dataset.rendered = "error"; console.error("figure " + el.id, err); }
      );
    } catch (err) {
      el.dataset.rendered = "error";
      console.error("figure " + el.id, err);
    }
  });
})();
"""

_CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "toImageButtonOptions": {"format": "png", "scale": 2},
}


def _nan_none(values: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(v) else float(v) for v in values.tolist()]


def _span(spec: FigureSpec) -> float:
    xs = np.concatenate([s.x for s in spec.series]) if spec.series else np.zeros(0)
    xs = xs[np.isfinite(xs)]
    return float(xs.max() - xs.min()) if xs.size else 0.0


def to_plotly(spec: FigureSpec) -> dict[str, Any]:
    """The plotly figure (``{"data", "layout", "config"}``, plain JSON types) of ``spec``."""
    data: list[dict[str, Any]] = []
    for s in spec.series:
        if s.kind == "bar":
            trace: dict[str, Any] = {
                "type": "bar",
                "x": _nan_none(s.x),
                "y": _nan_none(s.y),
                "name": s.name,
                "marker": {"color": s.color, "opacity": s.opacity},
            }
        else:
            trace = {
                "type": "scatter",
                "mode": s.kind,
                "x": _nan_none(s.x),
                "y": _nan_none(s.y),
                "name": s.name,
                "showlegend": s.legend,
                "marker": {
                    "color": s.color,
                    "symbol": _SYMBOLS[s.symbol],
                    "size": s.size,
                    "opacity": s.opacity,
                },
                "line": {
                    "color": s.color,
                    "dash": "dot" if s.dash else "solid",
                    "shape": "hv" if s.step else "linear",
                },
            }
            if s.kind != "markers":
                trace["connectgaps"] = True
        if s.text is not None:
            trace["text"] = list(s.text)
            trace["hovertemplate"] = "%{text}<extra></extra>"
        if s.y2:
            trace["yaxis"] = "y2"
        data.append(trace)
    layout: dict[str, Any] = {
        "template": "plotly_white",
        "height": 470,
        "margin": {"l": 70, "r": 40, "t": 30, "b": 60},
        "hovermode": "closest",
        "legend": {"orientation": "v"},
        "xaxis": {"title": {"text": spec.x_label}, "type": "log" if spec.x_log else "linear"},
        "meta": {"title": spec.title},
        "yaxis": {"title": {"text": spec.y_label}}
        | ({"range": list(spec.y_range)} if spec.y_range is not None else {}),
        "barmode": spec.barmode,
        "shapes": [],
        "annotations": [],
    }
    if spec.x_integer:
        layout["xaxis"]["tickformat"] = "d"
        if _span(spec) <= 20:
            layout["xaxis"]["dtick"] = 1
    if any(s.y2 for s in spec.series):
        layout["yaxis2"] = {
            "title": {"text": spec.y2_label},
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "tickformat": ".2f",
        }
        layout["margin"]["r"] = 70
        layout["legend"].update({"x": 1.08})
    for ln in spec.lines:
        if ln.axis == "x":
            pos = math.log10(ln.value) if spec.x_log and ln.value > 0 else ln.value
            shape = {"xref": "x", "yref": "paper", "x0": ln.value, "x1": ln.value, "y0": 0, "y1": 1}
            # at the foot of the line: the chosen designs (stars) sit near its top
            note = {"x": pos, "xref": "x", "y": 0.0, "yref": "paper", "yanchor": "bottom"}
            note.update(xanchor="right", textangle=-90, xshift=-2)
        else:
            shape = {"xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": ln.value, "y1": ln.value}
            note = {"x": 1.0, "xref": "paper", "xanchor": "right", "y": ln.value, "yref": "y"}
            note["yanchor"] = "bottom"
        layout["shapes"].append(
            {"type": "line", **shape, "line": {"color": ln.color, "dash": "dash", "width": 1.5}}
        )
        layout["annotations"].append(
            {
                **note,
                "text": html.escape(ln.label),
                "showarrow": False,
                "font": {"color": ln.color, "size": 11},
            }
        )
    if spec.heatmap is not None:
        hm = spec.heatmap
        k = len(hm.labels)
        trace = {
            "type": "heatmap",
            "z": [_nan_none(row) for row in np.asarray(hm.z, dtype=float)],
            "x": hm.labels,
            "y": hm.labels,
            "zmin": hm.zmin,
            "zmax": hm.zmax,
            "colorscale": "Viridis",
            "colorbar": {"title": {"text": hm.colorbar}},
        }
        if hm.hover is not None:
            trace["text"] = hm.hover
            trace["hovertemplate"] = "%{text}<extra></extra>"
        if hm.annotate:
            trace["texttemplate"] = "%{z:.2f}"
        data.append(trace)
        side = min(1200, max(480, 50 * k + 220))
        layout.update(
            height=side,
            xaxis={"tickangle": -45, "automargin": True},
            yaxis={"autorange": "reversed", "automargin": True},
        )
        layout["margin"].update({"l": 40, "b": 40})
    return {"data": data, "layout": layout, "config": _CONFIG}


def _script_json(payload: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>`` or ``<!--`` can appear)."""
    text = json.dumps(payload, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def _columns(first: str) -> list[str]:
    return [first, *SUMMARY_COLUMNS]


def _answer(counts: dict[str, int]) -> dict[str, str]:
    """The first screen's one-line answer: did every entry get a design within budget."""
    total = sum(counts.values())
    good = counts.get("ok", 0)
    if total == 0:
        return {"key": "empty", "text": "the plan has no entries"}
    if good == total:
        return {"key": "all", "text": f"every entry ({total}) has a design within its budget"}
    rest = ", ".join(f"{n} {s}" for s, n in counts.items() if s != "ok" and n)
    return {"key": "some", "text": f"{good} of {total} entries have a design within budget; {rest}"}


def _facts(plan: dict[str, Any]) -> list[tuple[str, str]]:
    summary = plan.get("summary") if isinstance(plan.get("summary"), dict) else {}
    es = entries(plan)
    meas = summary.get("measurements")
    if meas is None:
        meas = sum(num(e.get("measurements")) or 0 for e in es)
    wall, wall_label = plan_wall_s(plan)
    facts: dict[str, Any] = {
        "space": plan.get("space"),
        "accuracy": plan.get("accuracy"),
        "approach": plan.get("approach"),
        "fleet": plan.get("fleet"),
        "created": plan.get("created"),
        "devices": summary.get("devices", len({e["device"] for e in es})),
        "entries": len(es),
        "measurements": meas,
        "per entry": (meas / len(es)) if es and meas is not None else None,
        "mean regret pp": summary.get("mean_regret_pp"),
    }
    if wall_label:
        facts[wall_label] = wall
    return [(k, _cell(v)) for k, v in facts.items() if v is not None]


def _plan_rows(plan: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [
        (key, _cell(plan[key]))
        for key in ("format", "plan", "space", "accuracy", "fleet", "approach", "created")
        if plan.get(key) is not None
    ]
    cfg = plan.get("config")
    if isinstance(cfg, dict):
        for key in sorted(cfg):
            rows.append((f"config.{key}", json.dumps(cfg[key], default=str, sort_keys=True)))
    rows.append(("report generated", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")))
    return rows


@functools.cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("fleetnas.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template("page.html.j2")


def render_html(plan: dict[str, Any], figures: Sequence[FigureSpec]) -> str:
    """The whole page as a string (see the module docstring): the header answers whether
    every entry got a design within budget (status counts), at what accuracy and measurement
    cost (per family, first), then the figures, the summary by method and the plan's
    config. Page layout: ``templates/page.html.j2``."""
    import plotly
    from plotly.offline import get_plotlyjs

    figs = []
    for spec in figures:
        fid = "fig-" + "".join(c if c.isalnum() or c in "-_" else "_" for c in spec.key)
        figs.append(
            {
                "id": fid,
                "key": spec.key,
                "title": spec.title,
                "drawn": spec.drawn,
                "note": spec.note or "",
                "caption": spec.caption,
                "payload": _script_json(to_plotly(spec)) if spec.drawn else "",
            }
        )
    counts = status_counts(plan)
    page = _template().render(
        name=str(plan.get("plan") or "plan"),
        plotly_version=plotly.__version__,
        plotly_js=get_plotlyjs(),
        css=_CSS,
        loader=_LOADER,
        statuses=[{"name": s, "count": counts[s], "color": STATUS_COLORS[s]} for s in counts],
        answer=_answer(counts),
        facts=_facts(plan),
        family_rows=summarize(plan, "family"),
        method_rows=summarize(plan, "method"),
        figures=figs,
        plan_rows=_plan_rows(plan),
        compression_rows=compression_rows(plan),
        compression_columns=COMPRESSION_COLUMNS,
        columns=_columns,
        cell=_cell,
        status_colors={**STATUS_COLORS, "violations": STATUS_COLORS["violation"]},
    )
    return page if page.endswith("\n") else page + "\n"
