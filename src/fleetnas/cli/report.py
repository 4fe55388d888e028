"""``fleetnas report PLAN.json --html report.html [--png DIR] [--db URL]``."""

from __future__ import annotations

from pathlib import Path

import typer

from fleetnas.cli.common import DbOption, JsonOption, emit_doc, open_store_from, say
from fleetnas.errors import InputError


def _store_url(db: str | None) -> str | None:
    """``--db`` / ``FLEETNAS_DB`` when given, else the default store if it already exists
    (a report never creates a store)."""
    if db:
        return db
    from fleetnas.paths import user_data_dir

    default = user_data_dir() / "fleetnas.db"
    return str(default) if default.is_file() else None


def report(
    plan: Path = typer.Argument(..., help="plan.json written by `fleetnas plan`."),
    html: Path | None = typer.Option(
        None, "--html", help="Write a self-contained HTML page (opens offline)."
    ),
    png: Path | None = typer.Option(
        None, "--png", help="Write one PNG per figure into this folder (created if needed)."
    ),
    db: str | None = DbOption,
    front_device: list[str] | None = typer.Option(
        None, "--front-device", help="Device whose Pareto front to draw (repeatable)."
    ),
    trace_device: str | None = typer.Option(
        None, "--trace-device", help="Device (or device@budget) whose bisection trace to draw."
    ),
    dpi: int = typer.Option(150, "--dpi", min=50, max=600, help="Resolution of the PNGs."),
    as_json: bool = JsonOption,
) -> None:
    """Render a fleet plan as an HTML page and/or PNG figures: the fleet at a glance, Pareto
    fronts, latency monotonicity, a bisection trace and measurements per device."""
    from fleetnas.report import read_plan, render_report

    if html is None and png is None:
        raise InputError("nothing to write: give --html FILE and/or --png DIR")
    plan_dict = read_plan(plan)
    url = _store_url(db)
    store = open_store_from(url) if url else None
    try:
        result = render_report(
            plan_dict,
            html_path=html,
            png_dir=png,
            store=store,
            front_devices=front_device or None,
            trace_device=trace_device,
            dpi=dpi,
        )
    finally:
        if store is not None:
            store.close()
    if as_json:
        emit_doc(
            "report",
            {
                "plan": str(plan),
                "written": [str(p) for p in result.written],
                "notes": dict(result.notes),
            },
        )
        return
    for path in result.written:
        say(f"wrote {path}")
    for key, note in result.notes.items():
        say(f"{key}: {note}")
