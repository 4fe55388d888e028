"""Pieces shared by the importers: safe reading of public files and the import report."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetnas.data.download import resolve_data_dir, sha256_file
from fleetnas.data.manifest import get_file
from fleetnas.errors import DataError
from fleetnas.store.base import Store


@dataclass
class ImportReport:
    """What one importer call did. ``rows`` is 0 and ``skipped`` true when nothing was new;
    ``missing`` counts the blank or NaN values left out on request (``--skip-missing``)."""

    source: str
    space: str
    rows: int = 0
    devices: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    run_id: int | None = None
    skipped: bool = False
    missing: int = 0


def data_path(data_dir: str | os.PathLike[str] | None, rel: str) -> Path:
    """``data_dir / rel`` after checking the folder and file exist (one clear DataError)."""
    return resolve_data_dir(data_dir, need=[rel]) / rel


def load_pickle(path: Path, rel: str) -> Any:
    """Read a public ``torch.save`` file (``.pt``/``.pth``) that must be the pinned upstream one.

    Files of plain Python objects (HELP's lists and dicts) are unpickled from the zip archive by
    an unpickler that only accepts builtins, ``OrderedDict`` and NumPy scalars, without importing
    torch; files with tensors (state_dicts) go through ``torch.load(weights_only=True)``. Either
    way no pickled code can run, and a file whose SHA-256 differs from
    :mod:`fleetnas.data.manifest` is refused before it is read.
    """
    expected = get_file(rel).sha256
    if sha256_file(path) != expected:
        raise DataError(
            f"{path} differs from the pinned upstream file {rel} (SHA-256 mismatch; corrupt or "
            f"replaced); restore it or run `fleetnas data download`"
        )
    try:
        plain = _plain_pickle(path)
        if plain is not None:
            return plain[0]
        import torch

        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None


_ALLOWED = {
    ("collections", "OrderedDict"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise _HasTensors


class _HasTensors(Exception):
    pass


def _plain_pickle(path: Path) -> tuple[Any] | None:
    """``(object,)`` from a tensor-free ``torch.save`` zip archive, or None if it has tensors."""
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(names) != 1:
            return None
        try:
            return (_PlainUnpickler(io.BytesIO(zf.read(names[0]))).load(),)
        except _HasTensors:
            return None


def completed_configs(store: Store, kind: str) -> list[dict[str, Any]]:
    """Configs of the completed runs of ``kind`` (what earlier imports already wrote)."""
    return [r.config for r in store.list_runs(kind) if r.status == "complete"]


def run_key(kind: str, payload: Any) -> str:
    """A stable idempotence key: ``kind:`` + SHA-256 of canonical JSON of ``payload``."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return f"{kind}:{hashlib.sha256(blob.encode()).hexdigest()[:32]}"


__all__ = [
    "ImportReport",
    "completed_configs",
    "data_path",
    "load_pickle",
    "run_key",
]
