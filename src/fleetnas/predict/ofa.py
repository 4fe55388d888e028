"""Once-for-All's released ImageNet accuracy predictor for OFA-MobileNetV3 (``Acc(x)``).

The released weights (``ofa/acc_predictor.pth``) are an MLP 128-400-400-400-1 with ReLUs, the
model of once-for-all's tutorial (``ofa/tutorial/accuracy_predictor.py``); its last layer keeps
its bias, so there is no separate ``base_acc`` offset as in ``ofa/nas/accuracy_predictor`` (that
class's checkpoints store ``base_acc`` and a bias-free last layer; this file has neither). Input:
:func:`fleetnas.spaces.ofa_mbv3.ofa_accuracy_features`; output: top-1 accuracy as a fraction.
"""

from __future__ import annotations

import io
import itertools
import os
from collections import OrderedDict
from typing import Any, Self

import numpy as np
import torch
from torch import nn

from fleetnas.errors import DataError, InputError
from fleetnas.predict.base import Predictor, fingerprint
from fleetnas.spaces import SearchSpace

LAYERS = (128, 400, 400, 400, 1)
#: Store artifact (kind, name) written by :func:`fleetnas.data.import_ofa_assets`.
ARTIFACT = ("accuracy_predictor", "ofa_mbv3")


def _mlp() -> nn.Sequential:
    mods: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(LAYERS)):
        mods.append(nn.Linear(a, b))
        if i < len(LAYERS) - 2:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


class _OFAFeatures(nn.Module):
    """Space encoding ``n x 160`` (one-hot or relaxed) -> OFA's ``n x 128`` features: kernel
    and expansion blocks as they are, the 25 resolution choices pooled into 8 slots."""

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        from fleetnas.spaces import ofa_mbv3

        res = np.asarray(ofa_mbv3.RESOLUTIONS)
        pool = np.zeros((len(res), 8), dtype=np.float32)
        pool[np.arange(len(res)), (res - 112) // 16] = 1.0
        self.n_blocks = 6 * ofa_mbv3.N_LAYERS
        self.register_buffer("pool", torch.as_tensor(pool))

    def forward(self, enc: torch.Tensor) -> torch.Tensor:
        r = enc[:, -self.pool.shape[0] :] @ self.pool
        return torch.cat([enc[:, : self.n_blocks], r], dim=1)


class _OFAModule(nn.Module):
    def __init__(self, space: SearchSpace, mlp: nn.Sequential, scale: float) -> None:
        super().__init__()
        self.features = _OFAFeatures(space)
        self.mlp = mlp
        self.scale = float(scale)

    def forward(self, encoding: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.features(encoding.to(torch.float32)))[:, 0] * self.scale


class OFAAccuracyPredictor(Predictor):
    """OFA's accuracy predictor on the ``ofa_mbv3`` space (width 1.2).

    Build it with :meth:`from_data` (data folder) or :meth:`from_store` (imported artifact).
    ``percent=True`` reports percent instead of a fraction. :meth:`fit` fine-tunes the loaded
    weights on (design, accuracy-fraction) pairs.
    """

    name = "ofa-accuracy"

    def __init__(
        self,
        space: SearchSpace | str = "ofa_mbv3",
        percent: bool = False,
        epochs: int = 50,
        lr: float = 1e-4,
        seed: int = 0,
    ) -> None:
        super().__init__(space)
        if self.space.name != "ofa_mbv3":
            raise InputError(
                f"OFA's accuracy predictor is defined on space 'ofa_mbv3' (width 1.2), "
                f"got {self.space.name!r}"
            )
        self.percent = bool(percent)
        self.epochs = int(epochs)
        self.lr = float(lr)
        self.seed = int(seed)

    @property
    def _scale(self) -> float:
        return 100.0 if self.percent else 1.0

    # ---- construction ---------------------------------------------------------------------
    def load_state_dict(self, state: dict[str, Any], source: str = "state_dict") -> Self:
        """Take OFA's state_dict (keys ``0.weight`` .. ``6.bias``)."""
        mlp = _mlp()
        try:
            mlp.load_state_dict(OrderedDict((k, torch.as_tensor(v)) for k, v in state.items()))
        except (RuntimeError, KeyError, TypeError) as exc:
            raise DataError(f"{source}: not OFA's 128-400-400-400-1 predictor ({exc})") from None
        self._mlp = mlp.eval()
        self._mark_fitted(source=source, data_fingerprint=_state_fingerprint(mlp))
        return self

    @classmethod
    def from_data(cls, data_dir: str | os.PathLike[str] | None = None, **params: Any) -> Self:
        """From ``ofa/acc_predictor.pth`` in the public data folder."""
        from fleetnas.data import read_acc_predictor

        return cls(**params).load_state_dict(read_acc_predictor(data_dir), "ofa/acc_predictor.pth")

    @classmethod
    def from_store(cls, store: Any, **params: Any) -> Self:
        """From the ``accuracy_predictor/ofa_mbv3`` artifact of ``fleetnas data import``."""
        kind, name = ARTIFACT
        art = store.load_artifact(name, kind)
        try:
            state = torch.load(io.BytesIO(art.payload), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise DataError(f"artifact {kind}/{name} is not a torch state_dict ({exc})") from None
        return cls(**params).load_state_dict(state, f"artifact {kind}/{name}")

    # ---- contract -------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Fine-tune the loaded weights on accuracies (in this predictor's unit)."""
        self._require_fitted()
        a, t = self._check_fit(X, y, positive=False, min_samples=8, what="accuracies")
        x = torch.as_tensor(self._features(a))
        yt = torch.as_tensor(t / self._scale, dtype=torch.float32)
        g = torch.Generator().manual_seed(self.seed)
        opt = torch.optim.Adam(self._mlp.parameters(), lr=self.lr)
        self._mlp.train()
        for _ in range(self.epochs):
            perm = torch.randperm(len(x), generator=g)
            for s in range(0, len(x), 128):
                idx = perm[s : s + 128]
                loss = ((self._mlp(x[idx])[:, 0] - yt[idx]) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        self._mlp.eval()
        meta = self.meta
        self._mark_fitted(
            source=meta.get("source"),
            fine_tuned_on=fingerprint(a, t),
            data_fingerprint=_state_fingerprint(self._mlp),
            n_train=len(a),
        )
        return self

    def _features(self, a: np.ndarray) -> np.ndarray:
        from fleetnas.spaces.ofa_mbv3 import ofa_accuracy_features

        return np.asarray(ofa_accuracy_features(a, self.space), dtype=np.float32)

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._require_fitted()
        x = torch.as_tensor(self._features(self._check_X(X)))
        with torch.no_grad():
            return self._mlp(x)[:, 0].numpy().astype(float) * self._scale

    def torch_module(self) -> nn.Module:
        """Encoding ``n x 160`` (``space.encode`` of designs or relaxed designs) -> ``n``."""
        self._require_fitted()
        return _OFAModule(self.space, self._mlp, self._scale)

    def _get_state(self) -> dict[str, Any]:
        return {"mlp": {k: v.detach().clone() for k, v in self._mlp.state_dict().items()}}

    def _set_state(self, state: dict[str, Any]) -> None:
        mlp = _mlp()
        mlp.load_state_dict(OrderedDict(state["mlp"]))
        self._mlp = mlp.eval()


def _state_fingerprint(mlp: nn.Module) -> str:
    return fingerprint(*(v.detach().numpy() for v in mlp.state_dict().values()))


__all__ = ["OFAAccuracyPredictor"]
