"""fleetnas: the best DNN design for every device of a diverse edge fleet.

Approach 1 (``fleetnas.proxy``) reuses a proxy device's predictors and bisects on the trade-off
weight with a handful of real measurements; Approach 2 (``fleetnas.l2o``) learns an optimizer
network that maps device features and trade-off weights to a design in one forward pass.
"""

from __future__ import annotations

from fleetnas.errors import FleetnasError

__version__ = "0.1.0"
__all__ = ["FleetnasError", "__version__"]
