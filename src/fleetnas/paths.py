"""Where fleetnas finds public data and its store.

Resolution order for the data folder: explicit argument, ``FLEETNAS_DATA_DIR``, ``../shared/data``
beside a source checkout when that folder exists (the Makefile's default too), the user folder
that ``fleetnas data download`` fills. For the store: explicit URL, ``FLEETNAS_DB``, an
SQLite file in the user data folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "fleetnas"


def user_data_dir() -> Path:
    return Path(os.environ.get("FLEETNAS_HOME") or platformdirs.user_data_dir(APP))


def default_download_dir() -> Path:
    return user_data_dir() / "data"


def checkout_data_dir() -> Path | None:
    """``../shared/data`` beside the source checkout this package runs from, if it exists."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        return None
    shared = root.parent / "shared" / "data"
    return shared if shared.is_dir() else None


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the public data files (same layout as ``../shared/data``)."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("FLEETNAS_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return checkout_data_dir() or default_download_dir()


def db_url(explicit: str | None = None) -> str:
    """SQLAlchemy URL of the store; a plain path is taken as an SQLite file."""
    url = explicit or os.environ.get("FLEETNAS_DB")
    if not url:
        path = user_data_dir() / "fleetnas.db"
        return f"sqlite:///{path}"
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def cache_dir() -> Path:
    return Path(os.environ.get("FLEETNAS_CACHE") or platformdirs.user_cache_dir(APP))
