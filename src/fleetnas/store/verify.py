"""Store-level checks: devices whose stored values come from more than one measurer identity.

A device name is one setting: every measurement stored under it must come from one identity
(:attr:`fleetnas.measure.Measurer.identity_key`, written with each batch). Values written without
an identity (imported, or stored before identities were recorded) count as one identity of their
own, so a device holding imported values and measured ones is reported too.
"""

from __future__ import annotations

from typing import Any

from fleetnas.store.base import Store


def mixed_devices(store: Store) -> list[dict[str, Any]]:
    """One row per device whose values come from several identities: ``device``,
    ``identities`` (how many), ``rows`` (measurement rows in all) and ``detail`` (rows per
    identity key, ``none`` for rows without one)."""
    out = []
    for device in store.list_devices():
        found = store.device_identities(device.name)
        if len(found) < 2:
            continue
        parts = sorted(found.items(), key=lambda kv: (-kv[1], str(kv[0])))
        out.append(
            {
                "device": device.name,
                "identities": len(found),
                "rows": sum(found.values()),
                "detail": ", ".join(f"{k or 'none'}: {n}" for k, n in parts),
            }
        )
    return out


__all__ = ["mixed_devices"]
