"""The one error hierarchy of fleetnas.

Every user mistake (bad file, unknown name, malformed value) raises a subclass of
:class:`FleetnasError` whose message names the file, key or value and what was expected. The CLI
turns these into one line and exit code 2.
"""

from __future__ import annotations


class FleetnasError(Exception):
    """Base class of every error fleetnas raises on purpose."""


class InputError(FleetnasError, ValueError):
    """A value, argument or file content is not what is expected."""


class UnknownNameError(InputError, KeyError):
    """A space, device, measurer, predictor or other registered name does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; we want the plain sentence.
        return str(self.args[0]) if self.args else ""


class DataError(FleetnasError):
    """A data file or folder is missing, corrupt or has an unexpected format."""


class StoreError(FleetnasError):
    """The store cannot be opened or a write cannot be completed."""


class MeasurementError(FleetnasError):
    """A measurement could not be taken (runtime failure, agent gone, meter unreadable)."""


class IdentityError(MeasurementError):
    """The store holds values of this device name from another setting (simulator, runtime,
    protocol or source): the two must never be mixed."""


class NotFittedError(FleetnasError):
    """A predictor or optimizer is used before it was fitted or loaded."""


def unknown(kind: str, name: object, known: list[str] | tuple[str, ...]) -> UnknownNameError:
    """Build the standard 'unknown X' error listing what is available."""
    shown = ", ".join(sorted(map(str, known))[:30])
    more = "" if len(known) <= 30 else f", ... ({len(known)} in all)"
    return UnknownNameError(f"unknown {kind} {name!r}; expected one of: {shown}{more}")
