"""Which device names are safe: names end up in file names (plans, reports, caches), URLs and
shell commands, so an imported name may not be a path or carry control characters."""

from __future__ import annotations

import re

from fleetnas.errors import InputError

#: Letters, digits and ``. _ + @ -``; starts with a letter or digit; at most 128 characters.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+@\-]{0,127}$")
SAFE_NAME_TEXT = (
    "1 to 128 letters, digits or . _ + @ - starting with a letter or digit, without '..'"
)


def unsafe_device_name(name: str) -> str | None:
    """None when ``name`` is a safe device name, else why not (for a message)."""
    if not SAFE_NAME.match(name):
        bad = sorted({c for c in name if not re.match(r"[A-Za-z0-9._+@\-]", c)})
        if bad:
            return f"contains {''.join(bad)!r}; expected {SAFE_NAME_TEXT}"
        return f"expected {SAFE_NAME_TEXT}"
    if ".." in name:
        return f"contains '..'; expected {SAFE_NAME_TEXT}"
    return None


def check_device_name(name: str) -> str:
    """``name`` if it is safe, else an :class:`InputError` saying what is expected."""
    why = unsafe_device_name(name)
    if why is not None:
        raise InputError(f"device name {name!r} {why}")
    return name


__all__ = ["SAFE_NAME", "check_device_name", "unsafe_device_name"]
