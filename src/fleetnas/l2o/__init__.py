"""Approach 2: learning to optimize (paper Sec. 5).

An optimizer network ``x̂_Θ(d, λ)`` maps device features and trade-off weights straight to a
design, trained once over many (real and synthetic) devices against the predicted objective of
eq. (8) built from device-aware performance networks:

- :class:`PredictedObjective` (eq. 8 with per-device normalization), :class:`DeviceSet`,
  :class:`FeatureSpec` (probe embedding and/or spec features);
- :class:`OptimizerNet` (an ensemble of MLPs), :class:`Decoder` and :func:`refine` (argmax to a
  valid design, then a bounded local refinement);
- :func:`train_method1` with :func:`exhaustive_labels` / :func:`evolution_labels` /
  :func:`pooled_labels` (eq. 9; the last for large spaces such as ``apq``) and
  :func:`train_method2` (eq. 10; softmax, Gumbel, straight-through or score-function);
- :mod:`fleetnas.l2o.synthetic` (synthetic devices), :func:`explore` and :func:`algorithm2`
  (Algorithm 2); :mod:`fleetnas.l2o.bitwidth` (APQ's space: probe designs, synthetic
  bit-flexible accelerators, Stage 1);
- :func:`generate` (batched queries), :func:`for_budget` (λ by bisection, no measurement) and
  :func:`for_budget_verified` (hybrid: Approach 1's verified bisection, <= 3 measurements);
- :func:`save_optimizer` / :func:`load_optimizer` (store artifact), :func:`train_optimizer`
  (``fleetnas l2o train``), :func:`answer` (``fleetnas l2o generate``).
"""

from __future__ import annotations

from fleetnas.l2o.artifact import ARTIFACT_KIND, load_optimizer, save_optimizer
from fleetnas.l2o.budget import BudgetResult, for_budget, for_budget_verified
from fleetnas.l2o.decode import Decoder, RefineResult, refine
from fleetnas.l2o.embed import embed_devices
from fleetnas.l2o.explore import STRATEGIES, ExploreConfig, ExploreResult, algorithm2, explore
from fleetnas.l2o.features import DeviceSet, FeatureSpec, spec_features
from fleetnas.l2o.generate import Generated, L2OOptimizer, generate, grid
from fleetnas.l2o.method1 import (
    Method1Config,
    evolution_labels,
    exhaustive_labels,
    label_metrics,
    pooled_labels,
    train_method1,
)
from fleetnas.l2o.method2 import RELAXATIONS, Method2Config, train_method2
from fleetnas.l2o.network import OptimizerNet
from fleetnas.l2o.objective import DeviceScales, PredictedObjective
from fleetnas.l2o.query import Query, answer
from fleetnas.l2o.train import TrainConfig, lambda_grid, train_optimizer

__all__ = [
    "ARTIFACT_KIND",
    "RELAXATIONS",
    "STRATEGIES",
    "BudgetResult",
    "Decoder",
    "DeviceScales",
    "DeviceSet",
    "ExploreConfig",
    "ExploreResult",
    "FeatureSpec",
    "Generated",
    "L2OOptimizer",
    "Method1Config",
    "Method2Config",
    "OptimizerNet",
    "PredictedObjective",
    "Query",
    "RefineResult",
    "TrainConfig",
    "algorithm2",
    "answer",
    "embed_devices",
    "evolution_labels",
    "exhaustive_labels",
    "explore",
    "for_budget",
    "for_budget_verified",
    "generate",
    "grid",
    "label_metrics",
    "lambda_grid",
    "load_optimizer",
    "pooled_labels",
    "refine",
    "save_optimizer",
    "spec_features",
    "train_method1",
    "train_method2",
    "train_optimizer",
]
