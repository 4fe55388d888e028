"""``fleetnas predict``: latency of designs on a stored device with an interval, ``fleetnas
predict fit``: measure a device, fit and store its own latency predictor
(:mod:`fleetnas.predict.own_device`), and ``fleetnas predict lut``: measure a device's operator
look-up table (:mod:`fleetnas.predict.lut_build`)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.text import Text

from fleetnas.cli.common import (
    DbOption,
    JsonOption,
    SpaceOption,
    console,
    deprecated,
    emit,
    emit_doc,
    open_store_from,
    pick,
)
from fleetnas.errors import InputError

app = typer.Typer(
    help="Latency of designs on a device, with an interval; `predict fit` builds a device's "
    "own predictor from measurements, `predict lut` its operator look-up table.",
    invoke_without_command=True,
)

LevelOption = typer.Option(0.9, "--level", help="Coverage of the central interval (0..1).")


def _designs(space: Any, designs: Path | None, sample: int, all_: bool, seed: int) -> np.ndarray:
    given = sum([designs is not None, sample > 0, all_])
    if given != 1:
        raise InputError("give exactly one of --designs FILE, --count N or --all")
    if designs is not None:
        try:
            lines = designs.read_text().splitlines()
        except OSError as exc:
            raise InputError(f"cannot read --designs {designs}: {exc.strerror}") from None
        texts = [t.strip() for t in lines if t.strip() and not t.lstrip().startswith("#")]
        if texts and texts[0].lower() in ("architecture", "arch", "design"):
            texts = texts[1:]
        if not texts:
            raise InputError(f"--designs {designs} holds no design")
        try:
            return space.parse_many(texts)
        except InputError as exc:
            raise InputError(f"--designs {designs}: {exc}") from None
    if all_:
        if space.size > 200_000:
            raise InputError(
                f"space {space.name!r} has {space.size:.3g} designs; --all is for spaces up to "
                "200,000 (use --count N)"
            )
        return space.enumerate()
    return space.sample(sample, seed)


@app.callback()
def predict(
    ctx: typer.Context,
    device: str | None = typer.Option(None, "--device", help="Stored device name."),
    device_old: str | None = deprecated("-d", use="--device"),
    space: str = SpaceOption,
    designs: Path | None = typer.Option(
        None, "--designs", help="Text file, one design (native string) per line."
    ),
    count: int = typer.Option(0, "--count", "-n", min=0, help="N random designs."),
    sample: int | None = deprecated("--sample", use="--count (-n)"),
    all_: bool = typer.Option(False, "--all", help="Every design of the space."),
    seed: int = typer.Option(0, help="Seed of --count."),
    level: float = LevelOption,
    csv_path: Path | None = typer.Option(None, "--csv", help="Also write the rows to this CSV."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Predicted latency (ms) of designs on a device, with a central interval: from the
    device's own model (`predict fit`) when it has one, else from the fleet predictor adapted
    to its probe latencies."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"db": db}  # `predict --db X fit ...` means the same store
        return
    from fleetnas.predict.own_device import device_view, predict_device
    from fleetnas.spaces import get_space

    device, count = pick(device, device_old), pick(count, sample)
    if not device:
        raise InputError("give --device NAME (or a sub-command: predict fit)")
    _check_level(level)
    sp = get_space(space)
    archs = _designs(sp, designs, count, all_, seed)
    with open_store_from(db) as store:
        view = device_view(store, sp, device)
        out = predict_device(store, sp, view, archs, level)
    rows = []
    for i, text in enumerate(sp.format_many(archs)):
        m = out["measured"][i]
        rows.append(
            {
                "architecture": text,
                "latency_ms": float(out["mean"][i]),
                "lower_ms": float(out["lower"][i]),
                "upper_ms": float(out["upper"][i]),
                "measured_ms": float(m) if np.isfinite(m) else None,
            }
        )
    if csv_path is not None:
        _write_csv(csv_path, rows)
    if as_json:
        emit_doc(
            "predict",
            {"device": device, "space": sp.name, "source": out["source"],
             "in_pool": out["in_pool"], "level": level, "rows": rows},
        )  # fmt: skip
        return
    emit(
        rows,
        False,
        title=f"{len(rows)} designs on {device} ({out['source']} model, "
        f"{100 * level:g} % interval)",
    )
    if out["in_pool"]:
        console.print(
            f"note: {device} is one of the fleet predictor's training devices; these are not "
            "held-out estimates",
            highlight=False,
        )


@app.command("fit")
def fit(
    ctx: typer.Context,
    device: str | None = typer.Option(None, "--device", help="Stored device with a measurer."),
    device_old: str | None = deprecated("-d", use="--device"),
    space: str = SpaceOption,
    budget: int = typer.Option(
        ..., "--budget-measurements", "-N", help="New measurements to take on the device."
    ),
    name: str | None = typer.Option(
        None, "--name", help="Name of the stored predictor (default DEVICE/SPACE/latency)."
    ),
    level: float = LevelOption,
    seed: int = typer.Option(0, help="Seed of the candidates and of the held-out draw."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Measure the designs it chooses on the device (missing probes, a few random held-out
    designs, then the most informative ones), fit the device's own latency model, store it and
    print its accuracy on the held-out designs."""
    from fleetnas.measure import measurer_for
    from fleetnas.predict.own_device import check_budget, device_view, fit_device
    from fleetnas.spaces import get_space

    device = pick(device, device_old)
    if not device:
        raise InputError("give --device NAME: a stored device with a measurer")
    _check_level(level)
    if db is None and isinstance(ctx.obj, dict):
        db = ctx.obj.get("db")
    sp = get_space(space)
    say = None if as_json else (lambda msg: console.print(Text(msg), highlight=False))
    with open_store_from(db) as store:
        view = device_view(store, sp, device)
        check_budget(view, budget)
        meter = measurer_for(view.device, store)

        def measure(a: np.ndarray) -> np.ndarray:
            return np.asarray(meter.measure(sp, a, ("latency",))["latency"], dtype=float)

        report = fit_device(
            store, sp, view, budget, measure, name=name, level=level, seed=seed, progress=say
        )
    if as_json:
        emit_doc("predict fit", report)
        return
    h = report["heldout"]
    console.print(
        f"stored predictor {report['predictor']!r}: {report['measurements']} measurements, "
        f"{report['designs_fitted']} designs fitted",
        highlight=False,
    )
    emit(
        [
            {
                "held-out designs": h["n"],
                "Spearman": h["spearman"],
                "MAPE %": h["mape"],
                "within ±10 %": h["within10"],
                f"{100 * level:g} % interval coverage": h["coverage"],
            }
        ],
        False,
        title=f"accuracy on {h['n']} held-out measured designs of {device}",
    )


@app.command("lut")
def lut(
    ctx: typer.Context,
    device: str = typer.Option(..., "--device", help="Stored device with a measurer."),
    space: str = typer.Option(
        ..., "--space", "-s", help="Space with operators: ofa_mbv3, ofa_mbv3_w1.0, proxylessnas."
    ),
    resolutions: str | None = typer.Option(
        None,
        help="Comma-separated input resolutions to tabulate (default all: ofa_mbv3's 25, "
        "128..224; proxylessnas has 224 only).",
    ),
    max_measurements: int | None = typer.Option(
        None,
        "--max-measurements",
        min=1,
        help="Cap on new operator measurements; stored operators are free, so a capped build "
        "goes on where it stopped when run again.",
    ),
    check: int = typer.Option(
        50, "--check", min=3, help="Whole-network designs the table's sum is checked on."
    ),
    name: str | None = typer.Option(
        None, "--name", help="Name of the stored table (default DEVICE/SPACE/lut)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Also write the table here (.yaml/.yml: YAML, else JSON)."
    ),
    seed: int = typer.Option(0, help="Seed of the check designs."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Measure every distinct operator of the space's networks on the device, store the
    table in the format of the published tables (OFA's, ProxylessNAS's mobile_trim.yaml;
    `search --latency lut:NAME` and a plan device's `measurer: lut:NAME` read it) and check
    its sum against whole-network measurements."""
    from fleetnas.measure import measurer_for
    from fleetnas.predict import lut_build as lb
    from fleetnas.spaces import get_space

    if db is None and isinstance(ctx.obj, dict):
        db = ctx.obj.get("db")
    sp = get_space(space)
    ops = lb.operator_space(sp)
    res = ops.check_resolutions(_int_list(resolutions, "--resolutions"))
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        raise InputError(f"--out {out}: not a file in an existing folder")
    say = None if as_json else (lambda msg: console.print(msg, highlight=False))
    with open_store_from(db) as store:
        meter = measurer_for(store.get_device(device), store)
        built = lb.build_lut(sp, meter, res, max_measurements, progress=say)
        doc: dict[str, Any] = {
            "device": device,
            "space": sp.name,
            "resolutions": list(res),
            "operators": built.operators,
            "measured": built.measured,
            "reused": built.reused,
            "device_seconds": built.device_seconds,
            "complete": built.complete,
        }
        if built.lut is not None:

            def measure(a: np.ndarray) -> np.ndarray:
                return np.asarray(meter.measure(sp, a, ("latency",))["latency"], dtype=float)

            result = lb.check_lut(sp, built.lut, measure, n=check, seed=seed)
            art = name or lb.lut_name(device, sp)
            lb.save_lut(store, art, built.lut, result)
            if out is not None:
                lb.write_lut(out, built.lut, result)
            doc.update(
                table=art,
                out=str(out) if out is not None else None,
                check={k: v for k, v in result.items() if k != "designs"},
            )
    if as_json:
        emit_doc("predict lut", doc)
        return
    if not built.complete:
        console.print(
            f"stopped at the cap: {built.measured} operators measured, "
            f"{built.operators - built.measured - built.reused} of {built.operators} still "
            "missing; run again to go on (measured operators are stored). Nothing stored as "
            "a table yet.",
            highlight=False,
        )
        return
    c = doc["check"]
    console.print(
        f"stored latency table {doc['table']!r} ({ops.name}: {built.operators} operators at "
        f"{len(res)} resolution(s); {built.measured} measured, {built.reused} reused)",
        highlight=False,
    )
    emit(
        [
            {
                "designs": c["n"],
                "median |error| %": round(100 * c["median_rel_error"], 2),
                "p90 |error| %": round(100 * c["p90_rel_error"], 2),
                "mean signed error %": round(100 * c["mean_signed_rel_error"], 2),
                "Spearman": round(c["spearman"], 4),
            }
        ],
        False,
        title=f"table sum vs whole-network latency on {device}",
    )
    if out is not None:
        console.print(f"wrote {out}", highlight=False)


def _int_list(text: str | None, flag: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{flag} must be comma-separated integers, got {text!r}") from None


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise InputError(f"--level must be between 0 and 1, got {level}")


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    try:
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
    except OSError as exc:
        raise InputError(f"cannot write --csv {path}: {exc.strerror}") from None
