"""The operators of a parent space's networks as a space of their own, so real measurers can
time them one by one (``fleetnas predict lut``).

An operator space has two decisions: the input resolution ``r`` of the parent's networks and
the operator slot ``op`` (the subclass's :attr:`OperatorSpace.slots`). A design's native string
is its operator key in the notation of the parent's published latency table. Two (resolution,
slot) pairs with the same key are one design: :meth:`OperatorSpace.canonicalize` maps each to
the lowest resolution (then slot) with that key, so each operator is exported, measured and
stored once. Subclasses name the slots and resolutions and give :meth:`~OperatorSpace.key`,
``layers``, ``input_shape``, ``to_torch`` and :meth:`~OperatorSpace.sample_at`; the
registered name is the parent's plus ``.ops``.
"""

from __future__ import annotations

import functools
from abc import abstractmethod
from collections.abc import Sequence

import numpy as np

from fleetnas.errors import InputError
from fleetnas.spaces.base import Decision, SearchSpace

#: Suffix of an operator space's registered name (``ofa_mbv3.ops``).
OPS_SUFFIX = ".ops"


class OperatorSpace(SearchSpace):
    """Operators of :attr:`parent` at :attr:`resolutions` (see the module docstring)."""

    #: The parent's resolutions an operator can be at.
    resolutions: tuple[int, ...] = ()
    #: Operator slots, each one module of the parent's networks.
    slots: tuple[str, ...] = ()
    parent: SearchSpace

    def __init__(self, parent: SearchSpace) -> None:
        self.parent = parent
        self.name = f"{parent.name}{OPS_SUFFIX}"
        self.decisions = (Decision("r", self.resolutions), Decision("op", self.slots))

    def describe(self) -> dict:
        return {**super().describe(), "parent": self.parent.name}

    @abstractmethod
    def key(self, r: int, slot: str) -> str:
        """The latency-table key of ``slot`` at resolution ``r``."""

    @abstractmethod
    def sample_at(self, n: int, resolutions: Sequence[int], rng: np.random.Generator) -> np.ndarray:
        """``n x D`` random parent designs at ``resolutions`` (each design at one of them)."""

    def check_resolutions(self, resolutions: Sequence[int] | None) -> tuple[int, ...]:
        """``resolutions`` validated, sorted and unique; all of them when ``None`` or empty."""
        if resolutions is None or len(resolutions) == 0:
            return tuple(self.resolutions)
        bad = [r for r in resolutions if r not in self.resolutions]
        if bad:
            have = self.resolutions
            text = (
                f"{have[0]}..{have[-1]} (steps of {have[1] - have[0]})"
                if len(have) > 2
                else " and ".join(map(str, have))
            )
            raise InputError(f"resolution {bad[0]} is not one of {self.parent.name}'s {text}")
        return tuple(sorted(set(int(r) for r in resolutions)))

    # ---- keys -------------------------------------------------------------------------------
    @functools.cached_property
    def _keys(self) -> np.ndarray:
        """``len(resolutions) x len(slots)`` object array of keys."""
        return np.array(
            [[self.key(r, s) for s in self.slots] for r in self.resolutions], dtype=object
        )

    @functools.cached_property
    def _canonical(self) -> dict[str, tuple[int, int]]:
        """Key -> its canonical (resolution index, slot index): the lowest resolution."""
        out: dict[str, tuple[int, int]] = {}
        for ri in range(len(self.resolutions)):
            for si in range(len(self.slots)):
                out.setdefault(self._keys[ri, si], (ri, si))
        return out

    def keys_of(self, archs: np.ndarray) -> list[str]:
        """``n`` operator keys of ``n x 2`` designs."""
        return [str(self._keys[r, s]) for r, s in self.check(archs)]

    def table_keys(self, r: int) -> list[str]:
        """Every key of the table at resolution ``r``, in slot order (duplicates once)."""
        ri = self.resolutions.index(r)
        return list(dict.fromkeys(str(k) for k in self._keys[ri]))

    def operators(self, resolutions: Sequence[int] | None = None) -> np.ndarray:
        """``m x 2`` canonical designs: every distinct operator of the parent's networks at
        ``resolutions`` (default all), in resolution then slot order."""
        res = self.check_resolutions(resolutions) if resolutions is not None else self.resolutions
        seen: set[tuple[int, int]] = set()
        rows = []
        for r in res:
            for key in self._keys[self.resolutions.index(r)]:
                c = self._canonical[key]
                if c not in seen:
                    seen.add(c)
                    rows.append(c)
        return np.array(rows, dtype=np.int64).reshape(-1, 2)

    # ---- SearchSpace ------------------------------------------------------------------------
    def canonicalize(self, archs: np.ndarray) -> np.ndarray:
        raw = np.asarray(archs)
        a = self.check(raw)
        out = np.array([self._canonical[self._keys[r, s]] for r, s in a], dtype=np.int64)
        out = out.reshape(-1, 2)
        return out[0] if raw.ndim == 1 else out

    def parse(self, text: str) -> np.ndarray:
        try:
            return np.array(self._canonical[str(text).strip()], dtype=np.int64)
        except KeyError:
            raise InputError(
                f"{text!r} is not an operator of {self.parent.name} (keys look like "
                f"{self._keys[-1, min(2, len(self.slots) - 1)]!r})"
            ) from None

    def format(self, arch: np.ndarray) -> str:
        r, s = self.check(arch)[0]
        return str(self._keys[r, s])

    def _unpack(self, arch: np.ndarray) -> tuple[int, str]:
        """(resolution, slot) of the canonical form of one design."""
        r, s = self.canonicalize(self.check(arch))[0]
        return self.resolutions[r], self.slots[s]


__all__ = ["OPS_SUFFIX", "OperatorSpace"]
