"""``fleetnas measure SPACE --device-spec SPEC``: measure designs and print values and cost."""

from __future__ import annotations

import typer

from fleetnas.cli.common import DbOption, JsonOption, console, emit, open_store_from, print_json
from fleetnas.errors import InputError

app = typer.Typer(
    help="Measure designs on a device (local runtime, agent, table or simulator).",
    context_settings={"allow_interspersed_args": True},
)


@app.callback(invoke_without_command=True)
def measure(
    space: str = typer.Argument(..., help="Space name (e.g. nb201)."),
    device_spec: str = typer.Option(
        ...,
        "--device-spec",
        "-d",
        help="Measurer spec: onnxruntime:threads=1,batch=1 | torch:threads=1 | table:DEVICE | "
        "agent:http://host:port | sim:...",
    ),
    arch: list[str] = typer.Option(None, "--arch", "-a", help="A design in native string form."),
    sample: int = typer.Option(0, "--sample", "-n", min=0, help="Measure N random designs."),
    seed: int = typer.Option(0, help="Seed of --sample."),
    metrics: str = typer.Option("latency", help="Comma-separated metrics."),
    token: str | None = typer.Option(
        None, envvar="FLEETNAS_AGENT_TOKEN", help="Token of an agent: spec.", show_default=False
    ),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Measure designs (given with --arch, or --sample N random ones), store the values with
    their run metadata and print them with the call's cost."""
    from fleetnas.measure import get_measurer
    from fleetnas.spaces import get_space

    sp = get_space(space)
    if bool(arch) == bool(sample):
        raise InputError("give designs with --arch (one or more) or --sample N, not both")
    archs = sp.parse_many(arch) if arch else sp.sample(sample, seed)
    wanted = [m.strip() for m in metrics.split(",") if m.strip()]
    options = {"token": token} if device_spec.startswith("agent:") and token else {}
    with open_store_from(db) as store:
        measurer = get_measurer(device_spec, store=store, **options)
        result = measurer.measure(sp, archs, wanted)
    rows = []
    for i, text in enumerate(sp.format_many(archs)):
        row: dict[str, object] = {"architecture": text}
        for m in wanted:
            row[f"{m} ({result.units.get(m, '')})"] = float(result.values[m][i])
            for stat in ("p90", "noisy"):
                if stat in result.stats.get(m, {}):
                    row[f"{m} {stat}"] = float(result.stats[m][stat][i])
        rows.append(row)
    cost = result.cost
    if as_json:
        print_json(
            {
                "device": measurer.device.name,
                "fingerprint": measurer.device.fingerprint,
                "space": sp.name,
                "units": result.units,
                "is_estimate": result.is_estimate,
                "rows": rows,
                "cost": {
                    "measurements": cost.measurements,
                    "device_seconds": cost.device_seconds,
                    "reused": cost.reused,
                },
                "run": result.run_id,
            }
        )
        return
    emit(rows, False, title=f"{len(rows)} designs on {measurer.device.name}")
    console.print(
        f"cost: {cost.measurements} measurements, {cost.device_seconds:.3f} device s, "
        f"{cost.reused} reused" + (f"; run {result.run_id}" if result.run_id else "")
    )
