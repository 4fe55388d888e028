"""APQ's BitFusion cost table (``apq/BitFusion_new.b1.dict``, mit-han-lab/apq ``lut/``).

A JSON dict of 6,569 entries: per convolution shape and bit-width setting the latency and energy
of one layer on the BitFusion bit-flexible accelerator at batch 1, in the units APQ uses (its
``utils/latency_predictor.py`` sums them as they are), plus ``head`` and ``tail`` for the fixed
stem and classifier. Keys are ``"(c_in, c_out, hw_in, kernel, stride, padding, groups)-W<w>A<a>"``.

:func:`read_bitfusion` checks the pinned SHA-256 and every entry, and returns
``{key: (latency, energy)}``; :func:`bitfusion_key` builds a key.
"""

from __future__ import annotations

import json
import os
import re

from fleetnas.data.common import data_path
from fleetnas.data.download import sha256_file
from fleetnas.data.manifest import get_file
from fleetnas.errors import DataError

BITFUSION_TABLE = "apq/BitFusion_new.b1.dict"
#: Device name of the table in fleetnas (latency and energy, batch 1).
BITFUSION_DEVICE = "bitfusion"
_KEY = re.compile(r"^\((\d+), (\d+), (\d+), (\d+), (\d+), (\d+), (\d+)\)-W(\d+)A(\d+)$")


def bitfusion_key(
    c_in: int,
    c_out: int,
    hw: int,
    kernel: int,
    stride: int,
    padding: int,
    groups: int,
    w: int,
    a: int,
) -> str:
    """The table key of one convolution at ``w``-bit weights and ``a``-bit activations."""
    return f"({c_in}, {c_out}, {hw}, {kernel}, {stride}, {padding}, {groups})-W{w}A{a}"


def read_bitfusion(
    data_dir: str | os.PathLike[str] | None = None,
) -> dict[str, tuple[float, float]]:
    """``{key: (latency, energy)}`` of the pinned BitFusion table (``head``, ``tail`` too)."""
    path = data_path(data_dir, BITFUSION_TABLE)
    if sha256_file(path) != get_file(BITFUSION_TABLE).sha256:
        raise DataError(
            f"{path} differs from the pinned upstream file {BITFUSION_TABLE} (SHA-256 mismatch; "
            "corrupt or replaced); restore it or run `fleetnas data download`"
        )
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    return parse_bitfusion(raw, str(path))


def parse_bitfusion(raw: object, where: str = BITFUSION_TABLE) -> dict[str, tuple[float, float]]:
    """Validate a decoded table: every key well formed, every entry two finite non-negative
    numbers ``latency`` and ``energy``; ``head`` and ``tail`` present."""
    if not isinstance(raw, dict):
        raise DataError(f"{where}: expected a JSON object key -> {{latency, energy}}")
    out: dict[str, tuple[float, float]] = {}
    for key, entry in raw.items():
        if key not in ("head", "tail") and not _KEY.match(key):
            raise DataError(
                f"{where}: key {key!r} is not '(c_in, c_out, hw, kernel, stride, padding, "
                "groups)-W<w>A<a>', 'head' or 'tail'"
            )
        try:
            lat, energy = float(entry["latency"]), float(entry["energy"])
        except (KeyError, TypeError, ValueError):
            raise DataError(
                f"{where}: entry {key!r} needs numbers 'latency' and 'energy'"
            ) from None
        if not (lat >= 0 and energy >= 0) or lat == float("inf") or energy == float("inf"):
            raise DataError(f"{where}: entry {key!r} has latency {lat}, energy {energy}")
        out[key] = (lat, energy)
    for fixed in ("head", "tail"):
        if fixed not in out:
            raise DataError(f"{where}: no {fixed!r} entry (the fixed stem and classifier)")
    return out


__all__ = [
    "BITFUSION_DEVICE",
    "BITFUSION_TABLE",
    "bitfusion_key",
    "parse_bitfusion",
    "read_bitfusion",
]
