"""Chunk leases: two concurrent runs of the same plan never both compute a chunk.

Before a run computes a chunk it takes the chunk's *lease*: a keyed store run (kind
:data:`LEASE_KIND`) committed at once, whose key names the plan, its config digest, the chunk and
the state of the chunk's stored entries (their run ids), so the unique run key lets exactly one
of two concurrent runs take it. The other waits until the holder has stored the chunk's entries
and then reads them: both runs return the same plan. A lease whose holder is gone (same host and
its process has exited, or older than ``ttl_s``) is taken over under the next generation of the
key (``KEY#2``...), so a plan killed with ``kill -9`` resumes at once. A later run of the plan
sees other stored entries (new run ids), hence other keys, and is never blocked by old leases.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fleetnas.errors import StoreError
from fleetnas.fleet.tasks import Task

#: Run kind of a chunk lease in the store.
LEASE_KIND = "plan-lease"
#: Seconds after which a lease whose holder cannot be checked (another host) is taken over.
LEASE_TTL_S = 6 * 3600.0


@dataclass
class Lease:
    """A chunk's lease: its key, and whether this process holds it."""

    chunk: int
    key: str
    mine: bool
    holder: dict[str, Any]


def lease_key(plan: str, digest: str, chunk: int, tasks: Sequence[Task], runs: dict) -> str:
    """The lease key of ``chunk`` of plan ``plan`` for these ``tasks``, whose stored entries
    were written by ``runs`` (task key -> run id, absent when not stored)."""
    state = [(t.key, t.fingerprint, runs.get(t.key)) for t in tasks]
    blob = json.dumps([plan, digest, chunk, state], sort_keys=True, default=str)
    return f"lease:{hashlib.sha256(blob.encode()).hexdigest()[:32]}"


#: Suffix of the key of the run that gives a lease back unfinished.
_RELEASED = ":released"


def _holders(store: Any) -> dict[str, dict[str, Any]]:
    runs = [r for r in store.list_runs(LEASE_KIND) if r.key]
    gone = {r.key.removesuffix(_RELEASED) for r in runs if r.key.endswith(_RELEASED)}
    return {
        r.key: {**dict(r.config), "released": r.key in gone}
        for r in runs
        if not r.key.endswith(_RELEASED)
    }


def _alive(holder: dict[str, Any], ttl_s: float) -> bool:
    if holder.get("released"):
        return False
    if time.time() - float(holder.get("since", 0.0)) > ttl_s:
        return False
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder.get("pid", 0)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def holders(store: Any) -> dict[str, dict[str, Any]]:
    """Every lease recorded in ``store``: key -> its holder (``released`` when given back)."""
    return _holders(store)


def acquire(
    store: Any,
    plan: str,
    chunk: int,
    key: str,
    ttl_s: float = LEASE_TTL_S,
    held: dict[str, dict[str, Any]] | None = None,
) -> Lease:
    """Take the lease ``key`` (or its next free generation, past holders that are gone); a
    lease held by a live holder comes back with ``mine=False``. ``held``: :func:`holders`,
    read once for many chunks."""
    held = _holders(store) if held is None else held
    generation = 1
    while True:
        k = key if generation == 1 else f"{key}#{generation}"
        holder = held.get(k)
        if holder is None:
            me = {
                "plan": plan,
                "chunk": chunk,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "since": time.time(),
            }
            try:
                with store.run(LEASE_KIND, me, key=k):
                    pass
                held[k] = me
                return Lease(chunk, k, True, me)
            except StoreError:
                held.update(_holders(store))
                if k not in held:
                    raise
                continue
        if _alive(holder, ttl_s):
            return Lease(chunk, k, False, holder)
        generation += 1


def still_held(store: Any, lease: Lease, ttl_s: float = LEASE_TTL_S) -> bool:
    """Whether the holder of a lease this process waits on is still alive."""
    holder = _holders(store).get(lease.key, lease.holder)
    return _alive(holder, ttl_s)


def release(store: Any, lease: Lease) -> None:
    """Give back a lease whose chunk this run did not store (it stopped early), so that the
    next run, even in this process, takes it over at once."""
    if lease.mine and not store.has_run(lease.key + _RELEASED):
        try:
            with store.run(LEASE_KIND, {"released": lease.key}, key=lease.key + _RELEASED):
                pass
        except StoreError:
            pass


__all__ = [
    "LEASE_KIND",
    "LEASE_TTL_S",
    "Lease",
    "acquire",
    "holders",
    "lease_key",
    "release",
    "still_held",
]
