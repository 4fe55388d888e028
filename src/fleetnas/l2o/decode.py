"""From the optimizer network's distributions to valid designs (paper Remarks 5.3).

"The optimizer network may not always result in the optimal DNN designs ... it can at least help
us narrow down the DNN design to a much smaller space, over which fine tuning the DNN design
becomes much easier." :class:`Decoder` narrows down (argmax per decision, then the space's
canonical form, so the result is always a valid design); :func:`refine` fine-tunes: a bounded
local search that scores every single-decision change of each design, and optionally pairs of
changes among the decisions the network was least sure about, with any batched score (the
predicted objective, or a budget-constrained version of it) in one call per round.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fleetnas.errors import InputError
from fleetnas.spaces import SearchSpace

#: ``score(archs m x D, rows m) -> m`` floats, lower is better; ``rows`` says which query
#: (device, λ, budget) each design belongs to.
RowScore = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Decoder:
    """Vectorized argmax and per-decision probabilities for logits in the space's layout."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        card = np.asarray(space.cardinalities)
        off = np.asarray(space.offsets)
        self.card = card
        self.kmax = int(card.max())
        f = int(off[-1])
        idx = np.full((len(card), self.kmax), f, dtype=np.int64)
        for j, (o, c) in enumerate(zip(off[:-1], card, strict=True)):
            idx[j, :c] = o + np.arange(c)
        self.idx = idx
        self.f = f

    def padded(self, logits: np.ndarray) -> np.ndarray:
        """``... x F`` -> ``... x D x Kmax`` (``-inf`` padding)."""
        lg = np.asarray(logits)
        if lg.shape[-1] != self.f:
            raise InputError(
                f"space {self.space.name!r} decodes {self.f} logits per design, got {lg.shape[-1]}"
            )
        pad = np.full((*lg.shape[:-1], 1), -np.inf, dtype=lg.dtype)
        return np.concatenate([lg, pad], axis=-1)[..., self.idx]

    def argmax(self, logits: np.ndarray) -> np.ndarray:
        """``... x F`` logits -> ``... x D`` canonical designs; a space with constraints
        between decisions (``repair``, e.g. ``apq``) gets its designs made feasible, guided
        by the per-decision log-probabilities."""
        pad = self.padded(logits)
        choice = pad.argmax(axis=-1)
        flat = choice.reshape(-1, choice.shape[-1])
        repair = getattr(self.space, "repair", None)
        if repair is None:
            return self.space.canonicalize(flat).reshape(choice.shape)
        p = pad.reshape(-1, *pad.shape[-2:]).astype(np.float64)
        top = p.max(axis=-1, keepdims=True)
        logp = p - top - np.log(np.exp(p - top).sum(axis=-1, keepdims=True))
        return repair(flat, logp).reshape(choice.shape)

    def probs(self, logits: np.ndarray) -> np.ndarray:
        """``... x D x Kmax`` per-decision probabilities (0 on padding)."""
        p = self.padded(np.asarray(logits, dtype=np.float64))
        p = np.exp(p - p.max(axis=-1, keepdims=True))
        return p / p.sum(axis=-1, keepdims=True)


@dataclass
class RefineResult:
    """Refined designs (``n x D``), their scores, how many candidate designs were scored and
    how many rounds ran."""

    archs: np.ndarray
    scores: np.ndarray
    evaluations: int
    rounds: int


def _single_moves(card: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every single-decision change as (decision, shift) pairs: shift 1..card-1 modulo card."""
    cols, shifts = [], []
    for j, c in enumerate(card):
        for s in range(1, int(c)):
            cols.append(j)
            shifts.append(s)
    return np.asarray(cols, dtype=np.int64), np.asarray(shifts, dtype=np.int64)


def neighbors(
    space: SearchSpace, archs: np.ndarray, second: np.ndarray | None = None, top_k: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate moves of each row: all single-decision changes, plus with ``second``
    (``n x D`` second-choice indices) and ``top_k`` every pair among the ``top_k`` decisions
    listed first in ``second``'s ordering (columns ``order``) set to their second choice.

    Returns ``(candidates c x D, row c)`` (canonical designs; duplicates not removed).
    """
    a = space.check(archs)
    n = a.shape[0]
    card = np.asarray(space.cardinalities)
    cols, shifts = _single_moves(card)
    k = len(cols)
    cand = np.repeat(a, k, axis=0)
    rows = np.repeat(np.arange(n), k)
    jj = np.tile(cols, n)
    cand[np.arange(n * k), jj] = (cand[np.arange(n * k), jj] + np.tile(shifts, n)) % card[jj]
    parts, prow = [cand], [rows]
    if second is not None and top_k >= 2:
        sec_choice, order = second
        top = order[:, :top_k]
        for p in range(top_k):
            for q in range(p + 1, top_k):
                c = a.copy()
                r = np.arange(n)
                c[r, top[:, p]] = sec_choice[r, top[:, p]]
                c[r, top[:, q]] = sec_choice[r, top[:, q]]
                parts.append(c)
                prow.append(r)
    out = np.concatenate(parts)
    return space.canonicalize(out), np.concatenate(prow)


def second_choices(decoder: Decoder, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From ``n x D x Kmax`` probabilities: each decision's second most likely choice and the
    decisions ordered by the margin between their two most likely choices (smallest first)."""
    srt = np.argsort(-probs, axis=-1)
    p_sorted = np.take_along_axis(probs, srt, axis=-1)
    margin = p_sorted[..., 0] - p_sorted[..., 1] if probs.shape[-1] > 1 else p_sorted[..., 0]
    return srt[..., 1], np.argsort(margin, axis=-1, kind="stable")


def refine(
    space: SearchSpace,
    archs: np.ndarray,
    score: RowScore,
    rounds: int = 3,
    probs: np.ndarray | None = None,
    decoder: Decoder | None = None,
    top_k: int = 0,
) -> RefineResult:
    """Bounded local refinement (first improvement per round, best neighbour taken).

    Each round scores all single-decision changes of every still-improving row (plus pairs
    among the ``top_k`` least certain decisions when ``probs``, ``n x D x Kmax``, is given) in
    one call of ``score`` and moves each row to its best candidate if that is strictly better.
    Stops after ``rounds`` rounds or when no row improves.
    """
    if rounds < 0:
        raise InputError(f"refinement rounds must be >= 0, got {rounds}")
    cur = space.check(archs).copy()
    n = len(cur)
    rows_all = np.arange(n)
    cur_s = np.asarray(score(cur, rows_all), dtype=float)
    evals = n
    second = None
    if probs is not None and top_k >= 2:
        second = second_choices(decoder or Decoder(space), probs)
    active = np.ones(n, dtype=bool)
    done_rounds = 0
    for _ in range(rounds):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        sec = None if second is None else (second[0][idx], second[1][idx])
        cand, local = neighbors(space, cur[idx], sec, top_k)
        rows = idx[local]
        s = np.asarray(score(cand, rows), dtype=float)
        evals += len(cand)
        best = np.full(n, np.inf)
        np.minimum.at(best, rows, s)
        hit = (s == best[rows]) & np.isfinite(s)
        first = np.full(n, -1, dtype=np.int64)
        pos = np.flatnonzero(hit)
        first[rows[pos[::-1]]] = pos[::-1]
        improve = (best < cur_s - 1e-12) & (first >= 0)
        moved = np.flatnonzero(improve)
        cur[moved] = cand[first[moved]]
        cur_s[moved] = best[moved]
        active = improve
        done_rounds += 1
    return RefineResult(cur, cur_s, evals, done_rounds)


__all__ = ["Decoder", "RefineResult", "RowScore", "neighbors", "refine", "second_choices"]
