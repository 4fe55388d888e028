"""``fleetnas data download|verify|import|export|list``."""

from __future__ import annotations

from pathlib import Path

import typer

from fleetnas.cli.common import (
    DataDirOption,
    DbOption,
    JsonOption,
    emit,
    emit_doc,
    open_store_from,
    say,
)

app = typer.Typer(help="Public datasets and your own measurements: fetch, import, export, list.")


@app.command()
def download(
    dest: Path | None = typer.Option(None, help="Target folder (default: the download cache)."),
    mirror: str | None = typer.Option(
        None, envvar="FLEETNAS_DATA_MIRROR", help="Base URL replacing the upstream host."
    ),
    only: list[str] | None = typer.Option(None, "--only", help="Groups or paths to fetch."),
    as_json: bool = JsonOption,
) -> None:
    """Fetch the public files from their pinned upstream commits, verified by SHA-256."""
    from fleetnas import data

    results = data.download(dest, only or None, mirror)
    rows = [{"file": r.path, "status": r.status, "bytes": r.bytes_fetched} for r in results]
    emit(rows, as_json, "data download", "files", title=f"{len(rows)} files")


@app.command()
def verify(
    data_dir: str | None = DataDirOption,
    db: str | None = typer.Option(
        None,
        "--db",
        envvar="FLEETNAS_DB",
        help="Also check this store: devices whose values come from more than one setting.",
    ),
    store_only: bool = typer.Option(False, "--store-only", help="Check the store (--db) only."),
    as_json: bool = JsonOption,
) -> None:
    """Check the data folder against the pinned SHA-256 digests and, with --db, the store for
    devices whose stored values come from more than one measurer identity (exit 1 if any)."""
    from fleetnas import data
    from fleetnas.errors import InputError

    rows: list[dict[str, object]] = []
    titles = []
    root = None
    if not store_only:
        root = data.resolve_data_dir(data_dir)
        problems = data.verify(root)
        rows += [{"file": k, "problem": v} for k, v in sorted(problems.items())]
        titles.append(
            f"{root}: {len(problems)} files missing or altered"
            if problems
            else f"{root}: every file matches its pinned digest"
        )
    if db is not None:
        from fleetnas.store.verify import mixed_devices

        with open_store_from(db) as store:
            mixed = mixed_devices(store)
            where = store.safe_url
        rows += [
            {"file": where, "problem": f"device {m['device']!r}: {m['rows']} values from "
             f"{m['identities']} settings ({m['detail']})"}
            for m in mixed
        ]  # fmt: skip
        titles.append(
            f"{where}: {len(mixed)} devices hold values of more than one setting"
            if mixed
            else f"{where}: every device's values come from one setting"
        )
    elif store_only:
        raise InputError("--store-only needs a store: give --db (or set FLEETNAS_DB)")
    if as_json:
        emit_doc("data verify", {"data_dir": root and str(root), "problems": rows})
    elif rows:
        emit(rows, False, title="; ".join(titles))
    else:
        say("; ".join(titles))
    if rows:
        raise typer.Exit(1)


@app.command("import")
def import_(
    parts: list[str] | None = typer.Argument(
        None, help="Public parts (help-nasbench201, help-fbnet, help-ofa, nats, ofa); default all."
    ),
    file: Path | None = typer.Option(None, "--file", help="Your own CSV/Parquet exchange file."),
    shape: str | None = typer.Option(None, help="long or wide (default: detected)."),
    space: str | None = typer.Option(
        None, "--space", "-s", help="Space of a file without a space column."
    ),
    metric: str = typer.Option("latency", help="Metric of a wide file."),
    unit: str = typer.Option("ms", help="Unit of a wide file."),
    skip_missing: bool = typer.Option(
        False,
        "--skip-missing",
        help="Leave blank and NaN values of --file out (and count them) instead of refusing "
        "the file.",
    ),
    db: str | None = DbOption,
    data_dir: str | None = DataDirOption,
    as_json: bool = JsonOption,
) -> None:
    """Import public datasets, or your own measurements from an exchange file (idempotent)."""
    from fleetnas import data

    with open_store_from(db) as store:
        if file is not None:
            reports = {
                str(file): data.import_table(
                    store,
                    file,
                    shape,
                    space=space,
                    metric=metric,
                    unit=unit,
                    skip_missing=skip_missing,
                )
            }
        else:
            reports = data.import_all(store, data_dir, parts or None)
    rows = [
        {
            "part": part,
            "space": r.space,
            "rows": r.rows,
            "devices": len(r.devices),
            "artifacts": len(r.artifacts),
            "status": "already imported" if r.skipped else "imported",
        }
        for part, r in reports.items()
    ]
    if file is not None:
        rows[0]["missing_skipped"] = reports[str(file)].missing
    emit(rows, as_json, "data import", "parts", title="import")


@app.command()
def export(
    path: Path = typer.Argument(..., help="Output .csv or .parquet file."),
    shape: str = typer.Option("long", help="long or wide."),
    space: str | None = typer.Option(None, "--space", "-s", help="Only this space."),
    device: list[str] | None = typer.Option(None, "--device", help="Only these devices."),
    metric: list[str] | None = typer.Option(None, "--metric", help="Only these metrics."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Export measurements in the open exchange format (newest value per architecture)."""
    from fleetnas import data

    with open_store_from(db) as store:
        rows = data.export_table(store, path, shape, space, device or None, metric or None)
    if as_json:
        emit_doc("data export", {"out": str(path), "shape": shape, "rows": rows})
        return
    say(f"wrote {rows} rows to {path}")


@app.command("list")
def list_(db: str | None = DbOption, as_json: bool = JsonOption) -> None:
    """What the store holds: per space and metric, devices and rows; and the artifacts."""
    from fleetnas import data

    with open_store_from(db) as store:
        listing = data.datasets(store)
    series = listing.series.to_dict("records")
    artifacts = listing.artifacts.drop(columns=["sha256"]).to_dict("records")
    if as_json:
        emit_doc("data list", {"series": series, "artifacts": artifacts})
        return
    emit(series, False, title="measurements")
    if artifacts:
        emit(artifacts, False, title="artifacts")
