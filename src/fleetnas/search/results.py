"""Result dataclasses of the per-device searches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fleetnas.search.objectives import Metrics


@dataclass(frozen=True)
class HistoryPoint:
    """The search's state after one generation / batch (the anytime curve)."""

    step: int
    elapsed_s: float
    evaluations: int
    best_score: float
    best_accuracy: float
    best_feasible: bool


@dataclass
class SearchResult:
    """What a search returns.

    ``best`` is a ``D`` int array; ``metrics`` its raw predicted metrics (``accuracy``,
    ``latency``, ``energy`` as computed); ``front`` an ``m x D`` int array of the Pareto front
    among evaluated designs (feasible ones only under budgets), ordered by latency, with its
    metrics in ``front_metrics``; ``evaluations`` counts designs scored by the accuracy function
    (``calls`` has per-metric counts); ``wall_time_s`` is the search's own time.
    """

    method: str
    best: np.ndarray
    score: float
    metrics: dict[str, float]
    feasible: bool
    evaluations: int
    wall_time_s: float
    front: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    front_metrics: Metrics = field(default_factory=Metrics)
    calls: dict[str, int] = field(default_factory=dict)
    history: list[HistoryPoint] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return float(self.metrics.get("accuracy", np.nan))

    @property
    def latency(self) -> float:
        return float(self.metrics.get("latency", np.nan))

    def time_to_reach(self, accuracy: float) -> float:
        """Seconds until the best feasible accuracy first reached ``accuracy`` (inf if never)."""
        for h in self.history:
            if h.best_feasible and h.best_accuracy >= accuracy:
                return h.elapsed_s
        return float("inf")

    def evaluations_to_reach(self, accuracy: float) -> float:
        """Evaluations until the best feasible accuracy first reached ``accuracy``."""
        for h in self.history:
            if h.best_feasible and h.best_accuracy >= accuracy:
                return float(h.evaluations)
        return float("inf")

    def best_at(self, seconds: float) -> float:
        """Best feasible accuracy reached within ``seconds`` (NaN if none yet)."""
        best = float("nan")
        for h in self.history:
            if h.elapsed_s > seconds:
                break
            if h.best_feasible:
                best = h.best_accuracy
        return best

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (no front designs)."""
        return {
            "method": self.method,
            "best": self.best.tolist(),
            "score": self.score,
            "metrics": self.metrics,
            "feasible": self.feasible,
            "evaluations": self.evaluations,
            "wall_time_s": self.wall_time_s,
            "front_size": len(self.front),
            "calls": dict(self.calls),
            "info": self.info,
        }
