"""What every command shares: the vocabulary of options, output rendering, error printing.

The vocabulary (one spelling and one default per concept, ``docs/cli-json.md`` lists it):
``--space/-s`` (default ``nb201``), ``--device`` (a stored device's name), ``--measurer/-m`` (a
measurer spec), ``--count/-n`` (how many designs), ``--latency-ms`` (a budget), ``--margin``
(the network alone's safety margin, default per space), ``--seed``, ``--db``, ``--json``.
Renamed flags stay as hidden aliases (:func:`deprecated`) that say what to use instead.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

# Pipes and CI logs get a fixed width instead of rich's 80-column fallback.
_WIDTH = None if sys.stdout.isatty() else 140
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)

#: Exit code of a command that ran but whose results are not all ok (``plan``: some entries
#: failed or are infeasible). 0 is all ok, 2 a usage or input error (README, "Exit codes").
EXIT_NOT_OK = 3
#: Version of every ``--json`` document (``"format": "fleetnas-<command>/1"``).
JSON_VERSION = 1
DEFAULT_SPACE = "nb201"

DbOption = typer.Option(
    None, "--db", envvar="FLEETNAS_DB", help="Store URL or SQLite path (default: user data dir)."
)
DataDirOption = typer.Option(
    None,
    "--data-dir",
    envvar="FLEETNAS_DATA_DIR",
    help="Folder with the public data files (default: ../shared/data beside the source "
    "checkout when it exists, else the download cache).",
)
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")
QuietOption = typer.Option(False, "--quiet", "-q", help="No progress, no tables.")
SpaceOption = typer.Option(
    DEFAULT_SPACE, "--space", "-s", help="Design space: a name (nb201, fbnet, ofa_mbv3) or a "
    "YAML space file."
)  # fmt: skip
MeasurerHelp = (
    "Measurer spec: onnxruntime[:threads=1,batch=1,...] | torch[:threads=1] | table:DEVICE | "
    "agent:http://host:port | sim:..."
)
MarginHelp = (
    "Safety margin of the network alone (and of the hybrid's first proposal), in log-standard "
    "deviations of its predicted latency: higher means fewer budget violations and less "
    "accurate designs. Default: the space's calibrated margin (nb201 0.5, ofa_mbv3 2.5, other "
    "spaces 1.0; benchmarks/results/l2o_margin.md)."
)


def warn(message: str) -> None:
    """One verbatim warning line on stderr."""
    err_console.print(Text("warning: ", style="yellow") + Text(message), soft_wrap=True)


def print_error(message: str) -> None:
    """One verbatim error line on stderr (never interpreted as rich markup)."""
    err_console.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)


def say(message: str) -> None:
    """A verbatim line on stdout (paths and names may hold brackets)."""
    console.print(Text(message), soft_wrap=True)


def deprecated(*old: str, use: str, default: Any = None, **kwargs: Any) -> Any:
    """A hidden option under old flag name(s) that still works and says what to use instead."""

    def _warn(ctx: typer.Context, param: Any, value: Any) -> Any:
        if value not in (None, [], (), False):
            warn(f"{'/'.join(old)} is deprecated; use {use}")
        return value

    return typer.Option(default, *old, hidden=True, callback=_warn, **kwargs)


def pick(new: Any, old: Any) -> Any:
    """The deprecated alias's value when it was given, else the new option's."""
    return new if old in (None, [], ()) else old


def margin_for(space: str, margin: float | None) -> float:
    """``--margin`` or the space's calibrated default (:func:`fleetnas.l2o.default_margin`)."""
    from fleetnas.l2o.budget import default_margin

    return default_margin(space) if margin is None else margin


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int, int], None]]:
    """A transient bar on stderr (phase, bar, done/total, elapsed, ETA); yields the
    ``progress(done, total)`` callback the library calls. Only used on a terminal."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA", markup=False),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=total)

        def progress(done: int, of: int) -> None:
            bar.update(task, completed=done, total=of)

        yield progress


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


def json_doc(command: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A versioned ``--json`` document: ``{"format": "fleetnas-<command>/1", **body}``."""
    return {"format": f"fleetnas-{command.replace(' ', '-')}/{JSON_VERSION}", **body}


def emit_doc(command: str, body: Mapping[str, Any]) -> None:
    """Print a versioned ``--json`` document (:func:`json_doc`)."""
    print_json(json_doc(command, body))


def with_aliases(row: Mapping[str, Any], renamed: Mapping[str, str]) -> dict[str, Any]:
    """``row`` with the keys of ``renamed`` (old -> new) under their new names, the old names
    kept beside them for this format version (listed under ``deprecated_keys``)."""
    out = {renamed.get(k, k): v for k, v in row.items()}
    kept = {old: f"use {new}" for old, new in renamed.items() if old in row}
    for old in kept:
        out[old] = row[old]
    if kept:
        out["deprecated_keys"] = kept
    return out


def print_table(
    rows: Sequence[dict[str, Any]], columns: Iterable[str] | None = None, title: str | None = None
) -> None:
    """Render dict rows as a rich table (columns default to the first row's keys); cells are
    printed verbatim."""
    cols = list(columns) if columns is not None else (list(rows[0]) if rows else [])
    table = Table(title=Text(title) if title else None, show_lines=False)
    for c in cols:
        table.add_column(Text(c), overflow="fold")
    for r in rows:
        table.add_row(*[Text(_cell(r.get(c))) for c in cols])
    console.print(table)


def emit(
    rows: Sequence[dict[str, Any]],
    as_json: bool,
    command: str | None = None,
    key: str = "rows",
    **table_kwargs: Any,
) -> None:
    """Print ``rows`` as a versioned JSON document (``{key: rows}``) or as a table."""
    if as_json:
        if command is None:
            raise TypeError("emit(as_json=True) needs the command's name")
        emit_doc(command, {key: list(rows)})
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
