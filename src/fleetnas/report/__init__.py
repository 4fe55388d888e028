"""Reports of a fleet plan: one self-contained HTML page (plotly, opens offline) and the same
figures as PNG files (matplotlib) for papers.

Figures: the fleet at a glance (accuracy reached vs budget, per method), Pareto fronts of chosen
devices with the chosen designs marked, the latency monotonicity heatmap across devices, the
bisection trace of a device, and real measurements per device; plus summary tables per family
and per method. Panels that need more than plan.json (fronts, monotonicity) read the plan's
optional ``front`` / ``monotonicity`` keys or the store; where neither has the data the page
shows a short note instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetnas.errors import InputError
from fleetnas.fileio import atomic_write_bytes
from fleetnas.report.figures import (
    FigureSpec,
    fleet_figure,
    front_figure,
    fronts_note,
    measurements_figure,
    monotonicity_figure,
    trace_figure,
)
from fleetnas.report.html import render_html, to_plotly
from fleetnas.report.plan import PLAN_FORMAT, check_plan, read_plan, summarize
from fleetnas.report.png import write_pngs
from fleetnas.report.sources import fronts, monotonicity
from fleetnas.store.base import Store


@dataclass
class ReportResult:
    """What :func:`render_report` wrote: the HTML file, the PNG files, the keys of the figures
    drawn, and for every panel left out the note saying why."""

    html: Path | None = None
    pngs: list[Path] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def written(self) -> list[Path]:
        return ([self.html] if self.html is not None else []) + list(self.pngs)


def build_figures(
    plan: dict[str, Any],
    store: Store | None = None,
    front_devices: Sequence[str] | None = None,
    max_fronts: int = 4,
    trace_device: str | None = None,
    max_heatmap_devices: int = 30,
) -> list[FigureSpec]:
    """Every figure of the report in page order (drawn ones and notes)."""
    check_plan(plan)
    figs = [fleet_figure(plan)]
    found, missing = fronts(plan, store, front_devices, max_devices=max_fronts)
    figs += [front_figure(plan, d) for d in found]
    note = fronts_note(missing, bool(found))
    if note is not None:
        figs.append(note)
    figs.append(monotonicity_figure(monotonicity(plan, store, max_devices=max_heatmap_devices)))
    figs.append(trace_figure(plan, trace_device))
    figs.append(measurements_figure(plan))
    return figs


def render_report(
    plan: dict[str, Any] | str | os.PathLike[str],
    html_path: str | os.PathLike[str] | None = None,
    png_dir: str | os.PathLike[str] | None = None,
    store: Store | None = None,
    *,
    front_devices: Sequence[str] | None = None,
    trace_device: str | None = None,
    dpi: int = 150,
) -> ReportResult:
    """Render ``plan`` (a dict or a plan.json path) as an HTML page and/or PNG files.

    ``store`` (optional) supplies the Pareto fronts and the monotonicity heatmap when the plan
    does not carry them; ``front_devices`` picks the devices whose fronts are drawn (default: up
    to four, one per family), ``trace_device`` the device (or ``device@budget`` entry) whose
    bisection trace is drawn (default: the longest trace). Everything is computed before the
    first file is written; each file is written atomically.
    """
    if html_path is None and png_dir is None:
        raise InputError("nothing to write: give an HTML path and/or a PNG folder")
    plan_dict = read_plan(plan) if isinstance(plan, str | os.PathLike) else check_plan(plan)
    figs = build_figures(plan_dict, store, front_devices=front_devices, trace_device=trace_device)
    page = render_html(plan_dict, figs) if html_path is not None else None
    result = ReportResult(
        figures=[f.key for f in figs if f.drawn],
        notes={f.key: f.note for f in figs if f.note is not None},
    )
    if html_path is not None:
        hp = Path(html_path)
        if hp.is_dir():
            raise InputError(
                f"HTML path {hp} is a folder; expected a file name such as report.html"
            )
        if not hp.parent.is_dir():
            raise InputError(f"folder {hp.parent} of the HTML path does not exist")
    if png_dir is not None:
        result.pngs = write_pngs(figs, png_dir, dpi=dpi)
    if html_path is not None and page is not None:
        result.html = atomic_write_bytes(html_path, page.encode("utf-8"))
    return result


__all__ = [
    "PLAN_FORMAT",
    "FigureSpec",
    "ReportResult",
    "build_figures",
    "check_plan",
    "read_plan",
    "render_html",
    "render_report",
    "summarize",
    "to_plotly",
]
