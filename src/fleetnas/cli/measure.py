"""``fleetnas measure --space SPACE --measurer SPEC``: measure designs (or a user's own ONNX
file) and print values and cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from fleetnas.cli.common import (
    DbOption,
    JsonOption,
    MeasurerHelp,
    SpaceOption,
    console,
    deprecated,
    emit,
    emit_doc,
    open_store_from,
    pick,
    warn,
    with_aliases,
)
from fleetnas.errors import InputError

app = typer.Typer(
    help="Measure designs or an ONNX model file on a device (local runtime, agent, table or "
    "simulator).",
    context_settings={"allow_interspersed_args": True},
)


@app.callback(invoke_without_command=True)
def measure(
    space_arg: str | None = typer.Argument(
        None, help="Deprecated: use --space.", show_default=False, hidden=True
    ),
    space: str = SpaceOption,
    measurer: str | None = typer.Option(None, "--measurer", "-m", help=MeasurerHelp),
    device_spec: str | None = deprecated("--device-spec", "-d", use="--measurer (-m)"),
    device: str | None = typer.Option(
        None, "--device", help="Stored device: measured through its own measurer spec."
    ),
    arch: list[str] = typer.Option(None, "--arch", "-a", help="A design in native string form."),
    count: int = typer.Option(0, "--count", "-n", min=0, help="Measure N random designs."),
    sample: int | None = deprecated("--sample", use="--count (-n)"),
    onnx: Path | None = typer.Option(
        None, "--onnx", help="Your own ONNX model file (latency only; onnxruntime or agent)."
    ),
    seed: int = typer.Option(0, help="Seed of --count."),
    metrics: str = typer.Option("latency", help="Comma-separated metrics."),
    token: str | None = typer.Option(
        None, envvar="FLEETNAS_AGENT_TOKEN", help="Token of an agent: spec.", show_default=False
    ),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Measure designs (given with --arch, or --count N random ones) or one ONNX file (--onnx),
    store the designs' values with their run metadata and print them with the call's cost."""
    from fleetnas.cli.optimize import resolve_measurer

    if space_arg is not None:
        warn("the positional SPACE is deprecated; use --space SPACE")
        space = space_arg
    spec = pick(measurer, device_spec)
    count = pick(count, sample)
    if spec is None and device is None:
        raise InputError("give the device with --measurer SPEC or --device NAME")
    if onnx is not None:
        if arch or count:
            raise InputError("give --onnx FILE or designs (--arch / --count), not both")
        with open_store_from(db) as store:
            m = resolve_measurer(store, device, spec, token)
            _measure_file(m, onnx, metrics, as_json)
        return
    from fleetnas.spaces import get_space

    sp = get_space(space)
    if bool(arch) == bool(count):
        raise InputError("give designs with --arch (one or more) or --count N, not both")
    archs = sp.parse_many(arch) if arch else sp.sample(count, seed)
    wanted = [m.strip() for m in metrics.split(",") if m.strip()]
    with open_store_from(db) as store:
        m = resolve_measurer(store, device, spec, token)
        result = m.measure(sp, archs, wanted)
    rows = []
    for i, text in enumerate(sp.format_many(archs)):
        rows.append(_row({"architecture": text}, result, wanted, i))
    cost = result.cost
    if as_json:
        emit_doc(
            "measure",
            {
                "device": m.device.name,
                "fingerprint": m.device.fingerprint,
                "space": sp.name,
                "units": result.units,
                "is_estimate": result.is_estimate,
                "rows": [with_aliases(r, _renamed(wanted, result.units)) for r in rows],
                "cost": {
                    "measurements": cost.measurements,
                    "device_seconds": cost.device_seconds,
                    "reused": cost.reused,
                },
                "run": result.run_id,
            },
        )
        return
    renamed = _renamed(wanted, result.units)
    emit(
        [_new_keys(r, renamed) for r in rows],
        False,
        title=f"{len(rows)} designs on {m.device.name}",
    )
    _print_cost(cost.measurements, cost.device_seconds, cost.reused, result.run_id)


def _row(row: dict[str, Any], result: Any, wanted: list[str], i: int) -> dict[str, Any]:
    """One design's values under the old keys (``latency (ms)``, ``latency p90``)."""
    for m in wanted:
        row[f"{m} ({result.units.get(m, '')})"] = float(result.values[m][i])
        for stat in ("p90", "noisy"):
            if stat in result.stats.get(m, {}):
                row[f"{m} {stat}"] = float(result.stats[m][stat][i])
    return row


def _renamed(wanted: list[str], units: dict[str, str]) -> dict[str, str]:
    """Old key -> unit-suffixed key (``latency (ms)`` -> ``latency_ms``)."""
    out = {}
    for m in wanted:
        unit = units.get(m, "")
        suffix = f"_{unit.lower()}" if unit else ""
        out[f"{m} ({unit})"] = f"{m}{suffix}"
        out[f"{m} p90"] = f"{m}_p90{suffix}"
        out[f"{m} noisy"] = f"{m}_noisy"
    return out


def _new_keys(row: dict[str, Any], renamed: dict[str, str]) -> dict[str, Any]:
    return {renamed.get(k, k): v for k, v in row.items()}


def _measure_file(m: Any, path: Path, metrics: str, as_json: bool) -> None:
    from fleetnas.measure.modelfile import read_onnx_file

    if [x.strip() for x in metrics.split(",") if x.strip()] != ["latency"]:
        raise InputError("an ONNX model file can be measured for latency only")
    data = read_onnx_file(path)
    result = m.measure_onnx(data)
    row = _row({"model": str(path)}, result, ["latency"], 0)
    cost = result.cost
    if as_json:
        emit_doc(
            "measure",
            {
                "device": m.device.name,
                "fingerprint": m.device.fingerprint,
                "model": str(path),
                "units": result.units,
                "is_estimate": result.is_estimate,
                "rows": [with_aliases(row, _renamed(["latency"], result.units))],
                "cost": {
                    "measurements": cost.measurements,
                    "device_seconds": cost.device_seconds,
                    "reused": 0,
                },
                "run": None,
            },
        )
        return
    emit(
        [_new_keys(row, _renamed(["latency"], result.units))],
        False,
        title=f"{path.name} on {m.device.name}",
    )
    _print_cost(cost.measurements, cost.device_seconds, 0, None)


def _print_cost(measurements: int, seconds: float, reused: int, run: int | None) -> None:
    console.print(
        f"cost: {measurements} measurements, {seconds:.3f} device s, {reused} reused"
        + (f"; run {run}" if run else ""),
        highlight=False,
        markup=False,
    )
