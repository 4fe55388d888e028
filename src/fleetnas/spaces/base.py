"""The SearchSpace abstraction: a design is one choice index per categorical decision.

A batch of architectures is an ``n x D`` int64 array. Strings exist only at the edges
(:meth:`SearchSpace.parse` / :meth:`SearchSpace.format`). Predictors see :meth:`SearchSpace.encode`,
an ``n x F`` float32 one-hot whose layout is the concatenation of the decisions' choices; the same
method accepts relaxed per-decision probabilities as an ``n x F`` torch tensor (Method 2).
"""

from __future__ import annotations

import functools
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.spaces.layers import Layer

if TYPE_CHECKING:
    import torch

#: Spaces larger than this refuse :meth:`SearchSpace.enumerate`.
MAX_ENUMERABLE = 2_000_000


@dataclass(frozen=True)
class Decision:
    """One categorical design decision and its allowed values."""

    name: str
    choices: tuple[Any, ...]

    @property
    def size(self) -> int:
        return len(self.choices)


class SearchSpace(ABC):
    """A design space over categorical decisions.

    Subclasses define :attr:`name`, :attr:`decisions`, :meth:`parse`, :meth:`format` and
    :meth:`layers`; they may override :meth:`canonicalize` (equal networks, one representation),
    :meth:`to_torch` and the vectorized :meth:`flops` / :meth:`params`.
    """

    name: str = ""
    decisions: tuple[Decision, ...] = ()
    #: Whether :meth:`layers` and :meth:`to_torch` describe a real network.
    has_network: bool = True

    # ---- shape ---------------------------------------------------------------------------
    @property
    def n_decisions(self) -> int:
        return len(self.decisions)

    @functools.cached_property
    def cardinalities(self) -> np.ndarray:
        """``D`` int array (read-only): number of choices per decision."""
        card = np.array([d.size for d in self.decisions], dtype=np.int64)
        card.flags.writeable = False
        return card

    @functools.cached_property
    def offsets(self) -> np.ndarray:
        """``D + 1`` int array (read-only): where each decision's block starts in the encoding."""
        off = np.concatenate([[0], np.cumsum(self.cardinalities)])
        off.flags.writeable = False
        return off

    @property
    def n_features(self) -> int:
        return int(self.cardinalities.sum())

    @property
    def size(self) -> int:
        """Number of distinct index vectors (before canonicalization)."""
        return int(np.prod(self.cardinalities.astype(object)))

    def describe(self) -> dict[str, Any]:
        """A JSON-able description, stored with the space in the store."""
        return {
            "name": self.name,
            "decisions": [{"name": d.name, "choices": list(d.choices)} for d in self.decisions],
        }

    # ---- validation ----------------------------------------------------------------------
    def check(self, archs: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
        """Return ``archs`` as an ``n x D`` int64 array, or raise :class:`InputError`."""
        a = np.asarray(archs)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[1] != self.n_decisions:
            raise InputError(
                f"space {self.name!r} expects architectures of shape (n, {self.n_decisions}), "
                f"got {a.shape}"
            )
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise InputError(f"space {self.name!r} expects integer choice indices, got {a.dtype}")
        a = a.astype(np.int64, copy=False)
        bad = (a < 0) | (a >= self.cardinalities[None, :])
        if bad.any():
            row, col = map(int, np.argwhere(bad)[0])
            raise InputError(
                f"space {self.name!r}: decision {self.decisions[col].name!r} of architecture "
                f"{row} has index {a[row, col]}, expected 0..{self.cardinalities[col] - 1}"
            )
        return a

    # ---- sampling and variation ----------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """``n x D`` uniformly random (canonical) architectures."""
        rng = np.random.default_rng(rng)
        raw = (rng.random((n, self.n_decisions)) * self.cardinalities[None, :]).astype(np.int64)
        return self.canonicalize(raw)

    def enumerate(self) -> np.ndarray:
        """All index vectors in lexicographic order (``size x D``); only for small spaces."""
        if self.size > MAX_ENUMERABLE:
            raise InputError(
                f"space {self.name!r} has {self.size:.3g} designs; enumerate() is limited to "
                f"{MAX_ENUMERABLE:,}"
            )
        grids = np.meshgrid(*[np.arange(c) for c in self.cardinalities], indexing="ij")
        return np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)

    def mutate(
        self, archs: np.ndarray, rng: np.random.Generator | int | None = None, prob: float = 0.1
    ) -> np.ndarray:
        """Resample each decision with probability ``prob`` (per-decision ``D`` array allowed)."""
        rng = np.random.default_rng(rng)
        a = self.check(archs).copy()
        p = np.broadcast_to(np.asarray(prob, dtype=float), (self.n_decisions,))
        hit = rng.random(a.shape) < p[None, :]
        fresh = (rng.random(a.shape) * self.cardinalities[None, :]).astype(np.int64)
        a[hit] = fresh[hit]
        return self.canonicalize(a)

    def crossover(
        self, a: np.ndarray, b: np.ndarray, rng: np.random.Generator | int | None = None
    ) -> np.ndarray:
        """Uniform crossover: each decision is taken from ``a`` or ``b`` with equal chance."""
        rng = np.random.default_rng(rng)
        a, b = self.check(a), self.check(b)
        if a.shape != b.shape:
            raise InputError(f"crossover needs parents of equal shape, got {a.shape} and {b.shape}")
        take_a = rng.random(a.shape) < 0.5
        return self.canonicalize(np.where(take_a, a, b))

    def canonicalize(self, archs: np.ndarray) -> np.ndarray:
        """Map equal networks to one representation. The default is the identity."""
        return np.asarray(archs, dtype=np.int64)

    # ---- encoding ------------------------------------------------------------------------
    def encode(self, archs: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """One-hot encoding for predictors.

        ``n x D`` int array -> ``n x F`` float32 array. An ``n x F`` float torch tensor of
        per-decision probabilities (a relaxed design) is returned through :meth:`relax_encode`,
        differentiably.
        """
        if _is_tensor(archs):
            return self.relax_encode(archs)
        a = self.check(archs)
        out = np.zeros((a.shape[0], self.n_features), dtype=np.float32)
        cols = a + self.offsets[:-1][None, :]
        out[np.arange(a.shape[0])[:, None], cols] = 1.0
        return out

    def relax_encode(self, probs: torch.Tensor) -> torch.Tensor:
        """Encoding of a relaxed design; the default is the probabilities themselves."""
        if probs.ndim != 2 or probs.shape[1] != self.n_features:
            raise InputError(
                f"space {self.name!r} expects relaxed designs of shape (n, {self.n_features}), "
                f"got {tuple(probs.shape)}"
            )
        return probs

    def decode(self, encoding: np.ndarray | torch.Tensor) -> np.ndarray:
        """``n x F`` one-hot or probabilities -> ``n x D`` architectures (argmax per decision)."""
        e = encoding.detach().cpu().numpy() if _is_tensor(encoding) else np.asarray(encoding)
        if e.ndim == 1:
            e = e[None, :]
        if e.shape[1] != self.n_features:
            raise InputError(
                f"space {self.name!r} decodes encodings of width {self.n_features}, "
                f"got {e.shape[1]}"
            )
        o = self.offsets
        archs = np.stack(
            [e[:, o[i] : o[i + 1]].argmax(axis=1) for i in range(self.n_decisions)], axis=1
        )
        return self.canonicalize(archs.astype(np.int64))

    # ---- strings -------------------------------------------------------------------------
    @abstractmethod
    def parse(self, text: str) -> np.ndarray:
        """Native string form -> ``D`` int array; :class:`InputError` naming the problem."""

    @abstractmethod
    def format(self, arch: np.ndarray) -> str:
        """``D`` int array -> native string form."""

    def parse_many(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.n_decisions), dtype=np.int64)
        return np.stack([self.parse(t) for t in texts])

    def format_many(self, archs: np.ndarray) -> list[str]:
        return [self.format(a) for a in self.check(archs)]

    def arch_hash(self, arch: np.ndarray) -> str:
        """Stable identity of a design: SHA-1 of space name and canonical string, 16 hex chars."""
        canon = self.canonicalize(self.check(arch))[0]
        digest = hashlib.sha1(f"{self.name}:{self.format(canon)}".encode())
        return digest.hexdigest()[:16]

    # ---- cost and networks ---------------------------------------------------------------
    @abstractmethod
    def layers(self, arch: np.ndarray) -> list[Layer]:
        """The network of one architecture as a list of layers (batch 1)."""

    def flops(self, archs: np.ndarray) -> np.ndarray:
        """``n`` float array of FLOPs (2 x MACs), batch 1."""
        rows = self.check(archs)
        return np.array([2.0 * sum(layer.macs for layer in self.layers(a)) for a in rows])

    def params(self, archs: np.ndarray) -> np.ndarray:
        """``n`` float array of parameter counts."""
        rows = self.check(archs)
        return np.array([float(sum(layer.params for layer in self.layers(a))) for a in rows])

    def input_shape(self, arch: np.ndarray, batch: int = 1) -> tuple[int, ...]:
        """Shape of the input tensor of :meth:`to_torch`'s network."""
        raise InputError(f"space {self.name!r} has no runnable network (to_torch)")

    def to_torch(self, arch: np.ndarray, num_classes: int | None = None) -> torch.nn.Module:
        """A real ``torch.nn.Module`` (random weights) for one architecture."""
        raise InputError(f"space {self.name!r} has no runnable network (to_torch)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, D={self.n_decisions})"


def _is_tensor(x: object) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")
