"""Fetch the public data files from their pinned upstream commits, verified by SHA-256.

Each file streams into ``<name>.part`` next to its target; an interrupted download resumes with an
HTTP ``Range`` request (a server that ignores ``Range`` makes it start over), and only a file whose
size and SHA-256 match :mod:`fleetnas.data.manifest` is renamed into place, atomically. Files
already present and verified are skipped, so the download folder is also the cache.

``FLEETNAS_DATA_MIRROR`` (or ``mirror=``) replaces ``https://raw.githubusercontent.com`` with a
static copy of its tree; ``FLEETNAS_DATA_DIR`` (or ``--data-dir``) points at an existing folder
instead of downloading at all (:func:`resolve_data_dir`).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from fleetnas import paths
from fleetnas.data.manifest import DataFile, select
from fleetnas.errors import DataError

MIRROR_ENV = "FLEETNAS_DATA_MIRROR"
HOW_TO_FIX = (
    "set FLEETNAS_DATA_DIR (or --data-dir) to a folder holding the public data, "
    "or run `fleetnas data download`"
)


@dataclass(frozen=True)
class FetchResult:
    """What :func:`download` did for one file: ``cached``, ``downloaded`` or ``resumed``."""

    path: str
    status: str
    bytes_fetched: int


class _Retryable(Exception):
    pass


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def mirror_url(explicit: str | None = None) -> str | None:
    """The mirror to use: ``explicit``, else ``FLEETNAS_DATA_MIRROR``, else none (upstream)."""
    return explicit or os.environ.get(MIRROR_ENV) or None


def download(
    dest: str | os.PathLike[str] | None = None,
    files: Sequence[str] | Sequence[DataFile] | None = None,
    mirror: str | None = None,
    *,
    retries: int = 4,
    backoff: float = 0.5,
    timeout: float = 60.0,
    progress: Callable[[FetchResult], None] | None = None,
) -> list[FetchResult]:
    """Download ``files`` (groups, paths or :class:`DataFile`; default all) into ``dest``.

    ``dest`` defaults to :func:`fleetnas.paths.default_download_dir`. Transport errors and 5xx
    answers are retried ``retries`` times with exponential ``backoff`` (seconds), resuming from
    the bytes already on disk. Raises :class:`DataError` for a missing upstream file, a digest
    mismatch (the partial file is removed) or when retries run out (the partial file is kept so
    that the next call resumes).
    """
    root = Path(dest) if dest is not None else paths.default_download_dir()
    chosen = _chosen(files)
    host = mirror_url(mirror)
    results = []
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        for f in chosen:
            res = _fetch(client, f, root / f.path, f.url(host), retries, backoff)
            results.append(res)
            if progress is not None:
                progress(res)
    return results


def _chosen(files: Sequence[str] | Sequence[DataFile] | None) -> list[DataFile]:
    if files and all(isinstance(f, DataFile) for f in files):
        return list(files)  # type: ignore[arg-type]
    return select([str(f) for f in files] if files else None)


def _fetch(
    client: httpx.Client, f: DataFile, target: Path, url: str, retries: int, backoff: float
) -> FetchResult:
    if target.is_file() and target.stat().st_size == f.size and sha256_file(target) == f.sha256:
        return FetchResult(f.path, "cached", 0)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    tally = _Tally()
    failures = 0
    while True:
        have = part.stat().st_size if part.is_file() else 0
        if have > f.size:
            part.unlink()
            have = 0
        if have == f.size:
            break
        try:
            _stream_into(client, url, part, have, f, tally)
        except (httpx.TransportError, _Retryable) as exc:
            failures += 1
            if failures > retries:
                raise DataError(
                    f"could not download {f.path} from {url} after {failures} attempts ({exc}); "
                    "run the download again to resume it"
                ) from None
            time.sleep(backoff * 2 ** (failures - 1))
    digest = sha256_file(part)
    if digest != f.sha256:
        part.unlink()
        raise DataError(
            f"{f.path} downloaded from {url} has SHA-256 {digest}, expected {f.sha256}; "
            "the download was removed (the mirror or upstream file differs from the pinned one)"
        )
    os.replace(part, target)
    return FetchResult(f.path, "resumed" if tally.resumed else "downloaded", tally.bytes)


@dataclass
class _Tally:
    bytes: int = 0
    resumed: bool = False


def _stream_into(
    client: httpx.Client, url: str, part: Path, have: int, f: DataFile, tally: _Tally
) -> None:
    """One GET (ranged when ``have`` > 0) written into ``part``, counted in ``tally``."""
    headers = {"Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    with client.stream("GET", url, headers=headers) as resp:
        code = resp.status_code
        if code == 416:
            part.unlink(missing_ok=True)
            raise _Retryable(f"server refused range from byte {have}")
        if code >= 500 or code == 429:
            raise _Retryable(f"HTTP {code}")
        if code not in (200, 206):
            raise DataError(f"cannot download {f.path}: {url} answered HTTP {code}")
        append = code == 206 and have > 0 and _range_start(resp) == have
        tally.resumed = tally.resumed or append
        with open(part, "ab" if append else "wb") as fh:
            for chunk in resp.iter_raw():
                fh.write(chunk)
                tally.bytes += len(chunk)
            fh.flush()
            os.fsync(fh.fileno())
    size = part.stat().st_size
    if size < f.size:
        raise _Retryable(f"connection ended at byte {size} of {f.size}")


def _range_start(resp: httpx.Response) -> int:
    value = resp.headers.get("content-range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return -1


def resolve_data_dir(
    explicit: str | os.PathLike[str] | None = None, need: Iterable[str] = ()
) -> Path:
    """The data folder (argument, ``FLEETNAS_DATA_DIR`` or the download folder), checked.

    Raises one :class:`DataError` naming the folder or the first missing file of ``need`` (paths
    relative to the folder) and how to fix it.
    """
    root = paths.data_dir(explicit)
    if not root.is_dir():
        raise DataError(f"public data folder {root} does not exist; {HOW_TO_FIX}")
    for rel in need:
        if not (root / rel).is_file():
            raise DataError(f"public data folder {root} has no {rel}; {HOW_TO_FIX}")
    return root


def verify(data_dir: str | os.PathLike[str], files: Sequence[str] | None = None) -> dict[str, str]:
    """Check files against the manifest: ``{path: problem}`` for each missing or altered one."""
    root = Path(data_dir)
    problems = {}
    for f in select(list(files) if files else None):
        p = root / f.path
        if not p.is_file():
            problems[f.path] = "missing"
        elif p.stat().st_size != f.size or sha256_file(p) != f.sha256:
            problems[f.path] = "SHA-256 differs from the pinned upstream file"
    return problems
