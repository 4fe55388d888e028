"""``fleetnas devices list|show``: devices known to the store."""

from __future__ import annotations

import typer

from fleetnas.cli.common import DbOption, JsonOption, emit, emit_doc, open_store_from, print_table

app = typer.Typer(help="Devices in the store: list them or show one.")


@app.command("list")
def list_devices(
    family: str | None = typer.Option(None, help="Only this family."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """List the devices in the store with their family and how they are measured."""
    with open_store_from(db) as store:
        devices = store.list_devices(family)
    if as_json:
        emit_doc(
            "devices list",
            {
                "devices": [
                    {
                        "device": d.name,
                        "family": d.family,
                        "measurer": d.measurer,
                        "fingerprint": d.fingerprint,
                        "features": dict(sorted(d.features.items())),
                    }
                    for d in devices
                ]
            },
        )
        return
    rows = [
        {
            "device": d.name,
            "family": d.family,
            "measurer": d.measurer or "",
            "features": len(d.features),
        }
        for d in devices
    ]
    emit(rows, False, title=f"{len(rows)} devices")


@app.command()
def show(
    name: str = typer.Argument(..., help="Device name."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Show one device: family, fingerprint, spec features and what is measured on it."""
    with open_store_from(db) as store:
        device = store.get_device(name)
        summary = store.measurement_summary()
    info = device.to_dict()
    mine = summary[summary["device"] == name] if len(summary) else summary
    info["measurements"] = mine.to_dict("records") if len(mine) else []
    if as_json:
        emit_doc("devices show", info)
        return
    print_table(
        [{"key": k, "value": info[k]} for k in ("name", "family", "measurer", "fingerprint")],
        title=f"device {name}",
    )
    print_table([{"feature": k, "value": v} for k, v in sorted(device.features.items())])
    if info["measurements"]:
        print_table(info["measurements"], title="measurements")
