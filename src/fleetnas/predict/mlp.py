"""MLP ensemble on the space encoding: ``Acc(x)`` or one device's ``latency_d0(x)`` (Sec. 4.1).

Latency and energy are positive and heavy-tailed, so ``target="log"`` trains on the logarithm
(standardized) and reports the geometric mean of the members in the original units; accuracy
uses ``target="identity"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import torch
from torch import nn

from fleetnas.predict._nn import EnsembleMLP, ensemble_from_state, ensemble_state, fit_ensemble
from fleetnas.predict.base import TARGETS, Predictor, TargetEnsemble, fingerprint
from fleetnas.spaces import SearchSpace


class _EnsembleMean(nn.Module):
    """Encoding ``n x F`` -> ``n``: members averaged in the training space, then un-logged."""

    def __init__(self, net: EnsembleMLP, mean: float, std: float, log: bool) -> None:
        super().__init__()
        self.net = net
        self.mean = float(mean)
        self.std = float(std)
        self.log = bool(log)

    def forward(self, encoding: torch.Tensor) -> torch.Tensor:
        z = self.net(encoding.to(torch.float32))[..., 0].mean(dim=0)
        out = self.mean + self.std * z
        return torch.exp(out) if self.log else out


class MLPEnsemble(TargetEnsemble, Predictor):
    """Deep ensemble of ReLU MLPs on the one-hot encoding.

    ``target``: ``"identity"`` (accuracy) or ``"log"`` (latency, energy: values must be > 0).
    """

    name = "mlp"

    def __init__(
        self,
        space: SearchSpace | str,
        target: str = "identity",
        hidden: Sequence[int] = (256, 256),
        n_members: int = 5,
        epochs: int = 200,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        seed: int = 0,
    ) -> None:
        super().__init__(space)
        self._check_ensemble(target, n_members)
        self.target = target
        self.hidden = [int(h) for h in hidden]
        self.n_members = int(n_members)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.seed = int(seed)

    #: Fewer samples than this cannot train (or validate) an ensemble meaningfully.
    min_samples = 8

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        a, t = self._check_fit(
            X, y, positive=self.target == "log", min_samples=self.min_samples, what="targets"
        )
        z = np.log(t) if self.target == "log" else t
        mean, std = float(z.mean()), float(z.std())
        std = std if std > 1e-12 else 1.0
        net, history = fit_ensemble(self, self.space.encode(a), ((z - mean) / std)[:, None])
        self._net, self._mean, self._std = net, mean, std
        self._mark_fitted(
            data_fingerprint=fingerprint(a, t), n_train=len(a), final_loss=history[-1]
        )
        return self

    def _members(self, X: np.ndarray) -> np.ndarray:
        self._require_fitted()
        enc = torch.as_tensor(self.space.encode(self._check_X(X)))
        with torch.no_grad():
            z = self._net(enc)[..., 0].numpy().astype(float)
        return self._mean + self._std * z

    def torch_module(self) -> nn.Module:
        self._require_fitted()
        return _EnsembleMean(self._net, self._mean, self._std, self.target == "log")

    def _get_state(self) -> dict[str, Any]:
        return {"net": ensemble_state(self._net), "mean": self._mean, "std": self._std}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._net = ensemble_from_state(state["net"])
        self._mean = float(state["mean"])
        self._std = float(state["std"])


__all__ = ["TARGETS", "MLPEnsemble"]
