"""SQL plumbing shared by :class:`~fleetnas.store.sql.SQLStore` and its runs: engines with the
right per-database settings, error text, and the fast bulk-insert path."""

from __future__ import annotations

import errno
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, create_engine, event, insert, inspect, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from fleetnas.devices import Device
from fleetnas.errors import StoreError
from fleetnas.store import schema as t
from fleetnas.store.common import as_utc, dumps

#: How long a writer waits for another writer's run to finish before giving up (seconds).
BUSY_TIMEOUT_S = 120.0


def hide_password(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe for messages and logs)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"(//[^:/@]*):[^@/]*@", r"\1:***@", url)


def reason(exc: BaseException) -> str:
    """The driver's first line, plus what to do for the failures a user can fix."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    first = text[0] if text else type(orig).__name__
    low = first.lower()
    if "disk is full" in low or getattr(orig, "errno", None) == errno.ENOSPC:
        return f"{first} (the disk holding the store is full: free space and retry)"
    if "readonly database" in low or "read-only file system" in low:
        return f"{first} (the database file or its folder is read-only: check its permissions)"
    return first


def make_engine(url: str, safe: str, create_folder: bool = True) -> Engine:
    """An engine for ``url``; an SQLite file's missing folder is created only with
    ``create_folder`` (the default store's folder), else refused with one clear line."""
    try:
        u = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"store URL {safe!r} is not a database URL; expected a file path, "
            f"sqlite:///path/to/fleetnas.db or postgresql+psycopg://user@host/dbname"
        ) from None
    kw: dict[str, Any] = {"json_serializer": dumps}
    backend = u.get_backend_name()
    if backend == "sqlite":
        db = u.database or ""
        if db and db != ":memory:" and not db.startswith("file:"):
            path = Path(db).expanduser()
            if path.is_dir():
                raise StoreError(
                    f"cannot open the store at {safe}: {path} is a folder; expected "
                    f"an SQLite database file"
                )
            if not create_folder and not path.parent.is_dir():
                raise StoreError(
                    f"cannot open the store at {safe}: folder {path.parent} does not exist; "
                    f"create it first (mkdir -p {path.parent}) or choose another --db"
                )
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot open the store at {safe}: cannot create folder {path.parent} ({exc})"
                ) from None
        else:
            kw["poolclass"] = StaticPool
        kw["connect_args"] = {"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}
    elif backend == "postgresql":
        kw["pool_pre_ping"] = True
        if "connect_timeout" not in u.query:
            kw["connect_args"] = {"connect_timeout": 10}
    try:
        engine = create_engine(u, **kw)
    except (ImportError, NoSuchModuleError, ArgumentError) as exc:
        raise StoreError(
            f"cannot open the store at {safe}: {exc}; install the database driver "
            f"(for PostgreSQL: pip install 'fleetnas[postgres]', URL postgresql+psycopg://...)"
        ) from None
    if backend == "sqlite":
        sqlite_setup(engine)
    return engine


def sqlite_setup(engine: Engine) -> None:
    """Pragmas on every connection, and explicit BEGIN (IMMEDIATE for runs) instead of the
    driver's implicit transactions, so a run's reads and writes are one transaction."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.execute("PRAGMA cache_size=-65536")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("fleetnas_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def is_db_error(exc: BaseException, engine: Engine) -> bool:
    dbapi = getattr(engine.dialect, "dbapi", None)
    dbapi_error = getattr(dbapi, "Error", None)
    if isinstance(exc, SQLAlchemyError | OSError):
        return True
    return dbapi_error is not None and isinstance(exc, dbapi_error)


def schema_version(conn: Connection) -> int | None:
    if not inspect(conn).has_table(t.meta.name):
        return None
    value = conn.execute(select(t.meta.c.value).where(t.meta.c.key == "schema_version")).scalar()
    return None if value is None else int(value)


def insert_ignore(conn: Connection, table: Any) -> Any:
    """INSERT that skips rows a concurrent writer already added (SQLite and PostgreSQL)."""
    if conn.dialect.name == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing()
    if conn.dialect.name == "postgresql":
        return pg_insert(table).on_conflict_do_nothing()
    return insert(table)


def bulk_insert(conn: Connection, table: Any, cols: dict[str, list[Any]]) -> None:
    """Insert many rows given column-wise: COPY on psycopg, a plain driver executemany on
    SQLite, Core executemany elsewhere (a 470k-row import would spend seconds in Core's
    per-row parameter handling)."""
    names = list(cols)
    rows = zip(*cols.values(), strict=True)
    dialect = conn.dialect
    target = f"{table.name} ({', '.join(names)})"
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {target} FROM STDIN") as copy:
            if all(plain_numbers(c) for c in cols.values()):
                copy.write("".join("\t".join(map(repr, row)) + "\n" for row in rows))
            else:
                for row in rows:
                    copy.write_row(row)
    elif dialect.name == "sqlite":
        marks = ", ".join("?" * len(names))
        conn.exec_driver_sql(f"INSERT INTO {target} VALUES ({marks})", list(rows))
    else:
        conn.execute(insert(table), [dict(zip(names, r, strict=True)) for r in rows])


def plain_numbers(values: list[Any]) -> bool:
    """Whether COPY's text format can take ``repr`` of every value (ints and finite floats)."""
    return all(type(v) is int or type(v) is float for v in values)


def rows_frame(rows: Sequence[Any], names: list[str]) -> pd.DataFrame:
    """DataFrame from result rows, built column-wise (pandas is slow on SQLAlchemy rows)."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    return pd.DataFrame({n: list(c) for n, c in zip(names, columns, strict=True)})


def device_from_row(row: Any) -> Device:
    return Device(
        name=row.name,
        family=row.family,
        features=dict(row.features or {}),
        measurer=row.measurer,
        description=row.description,
    )


def db_time(value: Any) -> Any:
    if isinstance(value, str):  # SQLite returns MAX() of a DateTime column as text
        value = pd.Timestamp(value).to_pydatetime()
    return as_utc(value)
