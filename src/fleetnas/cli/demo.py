"""``fleetnas demo``: the main job on embedded defaults (what ``make demo`` runs)."""

from __future__ import annotations

from pathlib import Path

import typer

from fleetnas.cli.common import (
    DataDirOption,
    DbOption,
    JsonOption,
    QuietOption,
    emit,
    emit_doc,
    err_console,
    progress_bar,
    say,
)


def demo(
    out_dir: Path = typer.Option(
        Path("."), "--out-dir", help="Where plan.json and report.html go."
    ),
    sim: int = typer.Option(1000, "--sim", min=0, help="Simulated devices in the fleet."),
    local: bool = typer.Option(True, help="Measure this machine's ONNX Runtime settings for real."),
    seed: int = typer.Option(0, help="Seed of the fleet and the plan."),
    executor: str = typer.Option("local", help="local (process pool) | ray | serial."),
    db: str | None = DbOption,
    data_dir: str | None = DataDirOption,
    quiet: bool = QuietOption,
    as_json: bool = JsonOption,
) -> None:
    """Plan a whole fleet (27 HELP devices, this machine, simulated devices) on NAS-Bench-201,
    print a summary per family, and write plan.json and report.html."""
    from fleetnas.demo import DemoConfig, run_demo
    from fleetnas.store import open_store

    config = DemoConfig(out_dir, sim, local, seed, executor, data_dir=data_dir)
    silent = quiet or as_json
    phase = (lambda _m: None) if silent else say
    live = progress_bar if not silent and err_console.is_terminal else None
    with open_store(db) as store:
        phase(f"store: {store.safe_url}")
        result = run_demo(config, store, phase, progress=live)
    summary = result.plan["summary"]
    if as_json:
        emit_doc(
            "demo",
            {
                "summary": summary,
                "steps_s": result.steps,
                "steps": result.steps,
                "deprecated_keys": {"steps": "use steps_s"},
                "plan": str(result.plan_path),
                "report": str(result.report_path),
                "fleet": str(result.fleet_path),
            },
        )
        return
    if quiet:
        return
    from fleetnas.demo import summary_by_source

    rows = summary_by_source(result.plan)
    emit(
        rows, False, title="plan per source and family (regret and violations against ground truth)"
    )
    emit(summary["by_method"], False, columns=("method", "entries", "measurements", "violations",
                                               "mean_regret_pp"), title="per method")  # fmt: skip
    total = sum(result.steps.values())
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in result.steps.items())
    say(
        f"{summary['entries']} entries ({result.computed} computed, {result.reused} reused), "
        f"{summary['measurements']} measurements, {summary['violations_known']} known violations; "
        f"{timing}; total {total:.1f} s"
    )
    say(f"wrote {result.plan_path}, {result.report_path} and {result.fleet_path}")
