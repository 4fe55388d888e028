"""Per-device optimizer: objectives (paper eqs. 1-8), exhaustive and evolutionary search, Pareto.

Everything takes plain metric callables ``f(archs: n x D int array) -> n floats``, so any
predictor (or a lookup table) plugs in without this package knowing its class.
"""

from __future__ import annotations

from fleetnas.search.baselines import OFAEvolutionConfig, ofa_evolution, ofa_mutation_groups
from fleetnas.search.evolution import Domain, EvolutionConfig, evolve, random_search
from fleetnas.search.exhaustive import ExhaustiveSolver, exhaustive_search
from fleetnas.search.objectives import (
    INFEASIBLE_OFFSET,
    ConstrainedObjective,
    MetricFn,
    Metrics,
    Normalization,
    Objective,
    ProxyObjective,
    Scale,
    WeightedObjective,
    lambda_to_t,
    reference_set,
    t_to_lambda,
    weighted_objective_torch,
)
from fleetnas.search.pareto import BudgetIndex, best_under_budgets, pareto_front, pareto_mask
from fleetnas.search.results import HistoryPoint, SearchResult

__all__ = [
    "INFEASIBLE_OFFSET",
    "BudgetIndex",
    "ConstrainedObjective",
    "Domain",
    "EvolutionConfig",
    "ExhaustiveSolver",
    "HistoryPoint",
    "MetricFn",
    "Metrics",
    "Normalization",
    "OFAEvolutionConfig",
    "Objective",
    "ProxyObjective",
    "Scale",
    "SearchResult",
    "WeightedObjective",
    "best_under_budgets",
    "evolve",
    "exhaustive_search",
    "lambda_to_t",
    "ofa_evolution",
    "ofa_mutation_groups",
    "pareto_front",
    "pareto_mask",
    "random_search",
    "reference_set",
    "t_to_lambda",
    "weighted_objective_torch",
]
