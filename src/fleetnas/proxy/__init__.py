"""Approach 1: reuse proxy devices' predictors for many devices (paper Sec. 4).

- :func:`optimize_device` / :class:`Approach1Result`: one target, end to end (probes, proxy
  choice, search, monotonicity check, fallback, budget guarantee);
- :func:`algorithm1`: Algorithm 1 exactly (bisection on ``t`` of eq. 6, ``δ``, ``Max_Iterate``,
  cache of ``x*(t)``); :func:`algorithm1_energy`: eq. (7) over ``(t1, t2)``;
- :func:`front_variant`: bisection along the proxy's Pareto front (reaches non-convex points);
- :func:`verify_candidates`: verified selection over any candidate list ordered by predicted
  latency (the primitive fleet planning and Approach 2's hybrid mode call);
  :func:`verify_by_improvement`: the same guarantee, spending the measurements where a calibrated
  interval expects the largest accuracy gain;
- :class:`ProxyPool`, :class:`ProxyBlend`: proxies with predictors, similarity from probes and
  spec features, registration of new proxies, partial tables (:class:`FilledTable`);
- :class:`TargetModel`: the target's own model, the blend plus a GP residual fitted on
  everything measured on the device (method ``"model"``);
- :mod:`fleetnas.proxy.monotonicity`: Spearman, Kendall, flip share, the paper's Figure 4.
"""

from __future__ import annotations

from fleetnas.proxy.bisection import Algorithm1Result, TCache, algorithm1
from fleetnas.proxy.blend import BlendConfig, ProxyBlend, ProxyScore
from fleetnas.proxy.energy import algorithm1_energy
from fleetnas.proxy.fallback import (
    MonotonicityCheck,
    check_monotonicity,
    spread_designs,
    train_target_predictor,
)
from fleetnas.proxy.front import front_start, front_variant
from fleetnas.proxy.guided import guided_search
from fleetnas.proxy.improve import verify_by_improvement
from fleetnas.proxy.monotonicity import (
    PairStats,
    device_pair_stats,
    discordant_pairs,
    pair_stats,
    plot_figure4,
)
from fleetnas.proxy.optimize import (
    METHODS,
    Approach1Config,
    Approach1Result,
    default_probes,
    optimize_device,
)
from fleetnas.proxy.pool import POOL_KIND, FilledTable, ProxyEntry, ProxyPool
from fleetnas.proxy.problem import ProxyProblem
from fleetnas.proxy.session import (
    LEDGER_KIND,
    MeasurerSession,
    ReplaySession,
    TargetSession,
    design_codes,
)
from fleetnas.proxy.target_model import TargetModel, TargetModelConfig
from fleetnas.proxy.verify import (
    Selection,
    TraceStep,
    check_budgets,
    choose_design,
    verify_candidates,
)
from fleetnas.proxy.workspace import Workspace

__all__ = [
    "LEDGER_KIND",
    "METHODS",
    "POOL_KIND",
    "Algorithm1Result",
    "Approach1Config",
    "Approach1Result",
    "BlendConfig",
    "FilledTable",
    "MeasurerSession",
    "MonotonicityCheck",
    "PairStats",
    "ProxyBlend",
    "ProxyEntry",
    "ProxyPool",
    "ProxyProblem",
    "ProxyScore",
    "ReplaySession",
    "Selection",
    "TCache",
    "TargetModel",
    "TargetModelConfig",
    "TargetSession",
    "TraceStep",
    "Workspace",
    "algorithm1",
    "algorithm1_energy",
    "check_budgets",
    "check_monotonicity",
    "choose_design",
    "default_probes",
    "design_codes",
    "device_pair_stats",
    "discordant_pairs",
    "front_start",
    "front_variant",
    "guided_search",
    "optimize_device",
    "pair_stats",
    "plot_figure4",
    "spread_designs",
    "train_target_predictor",
    "verify_by_improvement",
    "verify_candidates",
]
