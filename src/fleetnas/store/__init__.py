"""Durable memory of fleetnas: one Store API, an SQL backend and an in-memory backend.

``open_store()`` opens the default SQLite file in the user data folder; ``open_store(url)``
accepts any SQLAlchemy URL (e.g. ``postgresql+psycopg://user@host/db``), a plain file path, or
``memory://``. ``FLEETNAS_DB`` sets the URL for the whole process.
"""

from __future__ import annotations

import os

from fleetnas.paths import db_url
from fleetnas.store.base import (
    MEASUREMENT_COLUMNS,
    SUMMARY_COLUMNS,
    Artifact,
    MeasurementBatch,
    Run,
    RunInfo,
    Store,
)
from fleetnas.store.hostinfo import host_info
from fleetnas.store.memory import InMemoryStore
from fleetnas.store.sql import SQLStore, hide_password

MEMORY_URL = "memory://"


def open_store(url: str | None = None) -> Store:
    """The store at ``url``: explicit argument, else ``FLEETNAS_DB``, else
    ``<user data dir>/fleetnas.db``. ``memory://`` gives a fresh :class:`InMemoryStore`.

    Only the default store's folder is created when missing: a folder named by ``url`` or
    ``FLEETNAS_DB`` that does not exist is a typo until proven otherwise (one clear error)."""
    resolved = db_url(url)
    if resolved.strip().lower() == MEMORY_URL:
        return InMemoryStore()
    return SQLStore(resolved, create_folder=not (url or os.environ.get("FLEETNAS_DB")))


__all__ = [
    "MEASUREMENT_COLUMNS",
    "MEMORY_URL",
    "SUMMARY_COLUMNS",
    "Artifact",
    "InMemoryStore",
    "MeasurementBatch",
    "Run",
    "RunInfo",
    "SQLStore",
    "Store",
    "hide_password",
    "host_info",
    "open_store",
]
