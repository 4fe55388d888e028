"""Backends for the one store conformance suite: every test taking ``store`` or ``backend`` runs
on the in-memory store, an SQLite file, and PostgreSQL when ``FLEETNAS_TEST_POSTGRES_URL``
points at a server (each test gets its own schema in a database made for this session)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import URL, Engine, create_engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from fleetnas.store import InMemoryStore, Store, hide_password, open_store

sys.path.insert(0, str(Path(__file__).parent))
from store_toy_space import ToySpace

PG_ENV = "FLEETNAS_TEST_POSTGRES_URL"
BACKENDS = ["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@dataclass
class PgDatabase:
    url: URL
    engine: Engine

    def new_schema_url(self) -> str:
        """A URL whose connections use a fresh, empty schema of the session database."""
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = self.url.update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[PgDatabase]:
    """A uniquely named database on the test server, dropped when the session ends."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(
            f"{PG_ENV} is not set; the PostgreSQL store tests need a server "
            f"(`source .ci/postgres.sh; pg_start` starts a throwaway one)"
        )
    name = f"fleetnas_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except SQLAlchemyError as exc:
        admin.dispose()
        pytest.fail(f"{PG_ENV}={hide_password(base)} is set but unusable: {exc}")
    url = make_url(base).set(database=name)
    engine = create_engine(url)
    try:
        yield PgDatabase(url, engine)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@dataclass
class Backend:
    """One backend under test: its URL and a way to open (more) stores on it."""

    name: str
    url: str
    opened: list[Store] = field(default_factory=list)

    @property
    def persistent(self) -> bool:
        return self.name != "memory"

    def open(self) -> Store:
        """A store on this backend; the in-memory backend always returns the same store."""
        if self.name == "memory":
            if not self.opened:
                self.opened.append(InMemoryStore())
            return self.opened[0]
        store = open_store(self.url)
        self.opened.append(store)
        return store


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        b = Backend("memory", "memory://")
    elif request.param == "sqlite":
        (tmp_path / "sqlite").mkdir()  # open_store makes no folder it is named (issue 18)
        b = Backend("sqlite", f"sqlite:///{tmp_path / 'sqlite' / 'fleetnas.db'}")
    else:
        b = Backend("postgresql", request.getfixturevalue("pg_database").new_schema_url())
    yield b
    for s in b.opened:
        s.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()


@pytest.fixture
def sql_backend(backend: Backend) -> Backend:
    """The SQL backends only (for tests about files, processes and schema versions)."""
    if not backend.persistent:
        pytest.skip("needs a database shared between processes (SQL backends only)")
    return backend


@pytest.fixture(scope="session")
def space() -> ToySpace:
    return ToySpace()
