"""What every command shares: the store and data options, output rendering, error handling."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

# Pipes and CI logs get a fixed width instead of rich's 80-column fallback.
_WIDTH = None if sys.stdout.isatty() else 140
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)

#: Exit code of a command that ran but whose results are not all ok (``plan``: some entries
#: failed or are infeasible). 0 is all ok, 2 a usage or input error (README, "Exit codes").
EXIT_NOT_OK = 3

DbOption = typer.Option(
    None, "--db", envvar="FLEETNAS_DB", help="Store URL or SQLite path (default: user data dir)."
)
DataDirOption = typer.Option(
    None,
    "--data-dir",
    envvar="FLEETNAS_DATA_DIR",
    help="Folder with the public data files (default: the download cache).",
)
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")


def open_store_from(db: str | None):
    """Open the store named by ``--db`` (or its defaults)."""
    from fleetnas.store import open_store

    return open_store(db)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(_jsonable(payload), indent=2, default=str) + "\n")


def print_table(
    rows: Sequence[dict[str, Any]], columns: Iterable[str] | None = None, title: str | None = None
) -> None:
    """Render dict rows as a rich table (columns default to the first row's keys)."""
    cols = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    table = Table(title=title, show_lines=False)
    for c in cols:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*[_cell(r.get(c)) for c in cols])
    console.print(table)


def emit(rows: Sequence[dict[str, Any]], as_json: bool, **table_kwargs: Any) -> None:
    """Print ``rows`` as JSON or as a table."""
    if as_json:
        print_json(list(rows))
    else:
        print_table(rows, **table_kwargs)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
