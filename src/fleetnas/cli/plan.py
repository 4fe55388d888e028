"""``fleetnas plan FLEET --space SPACE --out plan.json`` and ``fleetnas fleet generate|check``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from fleetnas.cli.common import (
    EXIT_NOT_OK,
    DbOption,
    JsonOption,
    MarginHelp,
    QuietOption,
    SpaceOption,
    emit,
    emit_doc,
    err_console,
    margin_for,
    progress_bar,
    say,
)
from fleetnas.cli.signals import exit_code, interrupts_raise

if TYPE_CHECKING:
    from fleetnas.fleet import Executor, Fleet, PlanConfig, PlanRun
    from fleetnas.store import Store

fleet_app = typer.Typer(help="Fleet files: generate simulated fleets, check a fleet file.")


def register(app: typer.Typer) -> None:
    """Add ``plan`` and the ``fleet`` group to the main app."""
    app.command("plan")(plan)
    app.add_typer(fleet_app, name="fleet")


def plan(
    fleet_file: Path = typer.Argument(..., help="Fleet file (.yaml or .csv)."),
    space: str = SpaceOption,
    out: Path | None = typer.Option(None, "--out", "-o", help="Where to write plan.json."),
    approach: str = typer.Option(
        "auto",
        help="auto (Approach 1 where a device can be measured, the network alone where it "
        "cannot, the verified hybrid where no proxy device exists) | proxy | l2o | hybrid.",
    ),
    name: str | None = typer.Option(None, help="Plan name in the store (default FLEET-SPACE)."),
    executor: str = typer.Option("local", help="local (process pool) | ray | serial."),
    workers: int | None = typer.Option(None, min=1, help="Workers (default: CPU count)."),
    address: str | None = typer.Option(None, help="Ray cluster address (with --executor ray)."),
    seed: int = typer.Option(0, help="Seed of every random choice in the plan."),
    optimizer: str | None = typer.Option(None, help="Stored optimizer network (Approach 2)."),
    proxy: str | None = typer.Option(None, help="Proxy device for Approach 1 (default: pool)."),
    accuracy: str | None = typer.Option(None, help="Accuracy metric (default per space)."),
    max_measurements: int | None = typer.Option(
        None,
        min=1,
        help="Hard cap on real measurements per entry (default: Approach 1 stops at 10, or "
        "goes on up to 20 while the expected gain stays high; the entry says cap_extended).",
    ),
    margin: float | None = typer.Option(None, min=0.0, help=MarginHelp, show_default=False),
    hybrid_rule: str | None = typer.Option(
        None,
        help="How the hybrid verifies the network's proposals: bisection | improvement "
        "(expected improvement under the calibrated interval) | auto (the default: "
        "improvement where the latency predictor has an interval calibration).",
        show_default=False,
    ),
    chunk_size: int = typer.Option(256, min=1, help="Tasks per chunk (one store run each)."),
    truth: bool = typer.Option(True, help="Check against ground truth where it exists."),
    fresh: bool = typer.Option(
        False,
        help="Recompute everything, replacing a stored plan, and measure again instead of "
        "reusing values stored earlier (the plan equals one made on a clean store).",
    ),
    retry_failed: bool = typer.Option(True, help="Retry entries that failed in an earlier run."),
    accuracy_source: str | None = typer.Option(
        None,
        help="Compressed spaces: accuracy of a design from modelled (default), measured "
        "(imported on the designs' strings), evaluator:pkg.module:function or cmd:COMMAND.",
    ),
    precisions: str | None = typer.Option(
        None, help="Compressed spaces: precisions the plan may choose (e.g. fp32,int8)."
    ),
    widths: str | None = typer.Option(
        None, help="Compressed spaces: width ratios the plan may choose (e.g. 1,0.5)."
    ),
    quiet: bool = QuietOption,
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Plan the best design for every device and budget of a fleet (resumable: run the same
    command again after an interruption to continue where it stopped)."""
    from fleetnas.fleet import PlanConfig, make_executor, not_ok_line, plan_fleet, read_fleet

    fleet = read_fleet(fleet_file)
    config = PlanConfig(
        space=space,
        approach=approach,
        accuracy=accuracy,
        seed=seed,
        optimizer=optimizer,
        proxy=proxy,
        max_measurements=max_measurements,
        margin=margin_for(space, margin),
        hybrid_rule=hybrid_rule,
        truth=truth,
        chunk_size=chunk_size,
        accuracy_source=accuracy_source,
        precisions=precisions,
        widths=widths,
    )
    ex = make_executor(executor, workers, address)
    from fleetnas.fleet.approaches import check_hybrid_config
    from fleetnas.fleet.compression import check_compression_config
    from fleetnas.store import open_store

    with open_store(db) as store, interrupts_raise():
        check_compression_config(config, store, fleet)
        check_hybrid_config(config, store)
        try:
            if quiet or as_json or not err_console.is_terminal:
                result = plan_fleet(
                    fleet, config, store, name=name, out=out, executor=ex, fresh=fresh,
                    retry_failed=retry_failed,
                )  # fmt: skip
            else:
                result = _with_progress(fleet, config, store, name, out, ex, fresh, retry_failed)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the workers are stopped by now
            plan_name = name or f"{fleet.name}-{space}"
            kept = len(store.get_plan(plan_name))
            err_console.print(
                f"interrupted: {kept} entries of plan {plan_name!r} are stored; run the same "
                "command again to continue where it stopped",
                soft_wrap=True,
                markup=False,
            )
            raise SystemExit(exit_code(exc)) from None
    summary = result.summary
    if as_json:
        emit_doc(
            "plan run",
            {
                "plan": result.plan["plan"],
                "out": str(result.path) if result.path else None,
                "computed": result.computed,
                "reused": result.reused,
                "wall_s": result.wall_s,
                "summary": summary,
            },
        )
    elif not quiet:
        _render(result)
    not_ok = not_ok_line(result.entries)
    if not_ok:
        err_console.print(not_ok, highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(EXIT_NOT_OK)


def _render(result: PlanRun) -> None:
    summary = result.summary
    keys = ("devices", "entries", "ok", "infeasible", "failed", "measurements")
    row = {k: summary[k] for k in keys}
    row["device s"] = summary["device_seconds"]
    row["violations"] = summary["violations_known"]
    row["mean regret pp"] = summary["mean_regret_pp"]
    emit([row], False, title=f"plan {result.plan['plan']} ({result.wall_s:.1f} s)")
    emit(summary["by_method"], False, title="by method")
    failed = [e for e in result.entries if e["status"] == "failed"][:10]
    for e in failed:
        err_console.print(f"failed {e['key']}: {e['reason']}", markup=False, soft_wrap=True)
    say(
        f"{result.computed} entries computed, {result.reused} reused from the store"
        + (f"; wrote {result.path}" if result.path else "")
    )


def _with_progress(
    fleet: Fleet,
    config: PlanConfig,
    store: Store,
    name: str | None,
    out: Path | None,
    ex: Executor,
    fresh: bool,
    retry_failed: bool,
) -> PlanRun:
    from fleetnas.fleet import plan_fleet

    with progress_bar(f"planning {fleet.name}", fleet.n_tasks) as progress:
        return plan_fleet(
            fleet, config, store, name=name, out=out, executor=ex, fresh=fresh,
            retry_failed=retry_failed, progress=progress,
        )  # fmt: skip


@fleet_app.command("generate")
def generate(
    sim: int = typer.Option(..., "--sim", min=1, help="Number of simulated devices."),
    out: Path = typer.Option(..., "--out", "-o", help="Fleet file to write (.csv or .yaml)."),
    seed: int = typer.Option(0, help="Seed of the device draws."),
    budgets: str = typer.Option(
        "p25,p50,p75", help="Comma-separated budgets per device: ms values or percentiles pNN."
    ),
    families: str | None = typer.Option(
        None, help="Comma-separated families (default: the simulator's mix)."
    ),
    name: str | None = typer.Option(None, help="Fleet name (default sim-N-seedS)."),
    prefix: str = typer.Option(
        "sim",
        help="Device name prefix (PREFIX-FAMILY-NNNNN). Devices of fleets drawn with other "
        "seeds share names: give each its own prefix to plan them on one store.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Write a fleet of simulated devices (measured through their sim: specs)."""
    from fleetnas.fleet import sim_fleet, write_fleet

    fams = [f.strip() for f in families.split(",") if f.strip()] if families else None
    bs = [b.strip() for b in budgets.split(",") if b.strip()]
    fleet = sim_fleet(sim, seed=seed, budgets=bs, families=fams, prefix=prefix, name=name)
    path = write_fleet(fleet, out)
    rows = _family_rows(fleet)
    if as_json:
        emit_doc(
            "fleet generate",
            {"fleet": fleet.name, "out": str(path), "devices": len(fleet), "families": rows},
        )
        return
    emit(rows, False, title=f"{len(fleet)} devices, {fleet.n_tasks} tasks -> {path}")


@fleet_app.command("check")
def check(
    fleet_file: Path = typer.Argument(..., help="Fleet file (.yaml or .csv)."),
    as_json: bool = JsonOption,
) -> None:
    """Validate a fleet file and count its devices per family and measurer kind."""
    from fleetnas.fleet import read_fleet

    fleet = read_fleet(fleet_file)
    rows = _family_rows(fleet)
    if as_json:
        emit_doc("fleet check", {"fleet": fleet.name, "devices": len(fleet),
                                 "tasks": fleet.n_tasks, "families": rows})  # fmt: skip
        return
    emit(rows, False, title=f"{fleet.name}: {len(fleet)} devices, {fleet.n_tasks} tasks")


def _family_rows(fleet: Fleet) -> list[dict[str, object]]:
    counts: dict[tuple[str, str], list[int]] = {}
    for d in fleet:
        kind = d.device.measurer_kind or "none"
        c = counts.setdefault((d.device.family, kind), [0, 0])
        c[0] += 1
        c[1] += len(d.budgets)
    return [
        {"family": f, "measurer": k, "devices": v[0], "tasks": v[1]}
        for (f, k), v in sorted(counts.items())
    ]
