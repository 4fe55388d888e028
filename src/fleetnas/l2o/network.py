"""The optimizer network ``x̂_Θ(d, λ)`` (paper Sec. 5.2) and its ensemble.

A fully connected network maps ``[device features ; λ features]`` (:class:`FeatureSpec`) to one
logit per choice of every design decision (``n x F``, the layout of
:meth:`~fleetnas.spaces.SearchSpace.encode`); a per-decision softmax gives one categorical
distribution per decision. ``M`` members (an ensemble, paper Remarks 5.3) are trained and
evaluated as one batched network (``M x n x F``). Inference runs on NumPy float32 matmuls with
the weights cached after training, so a query is a plain batched MLP forward.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from fleetnas.errors import InputError
from fleetnas.l2o.features import DeviceSet, FeatureSpec
from fleetnas.predict._nn import EnsembleMLP, ensemble_state, torch_threads
from fleetnas.spaces import SearchSpace


class Members(EnsembleMLP):
    """``M`` ReLU MLPs evaluated together: ``n x in`` (or ``M x n x in``) -> ``M x n x out``.

    The last layer starts small (``out_scale``), so every member starts near the uniform
    distribution over choices.
    """

    def __init__(
        self,
        n_in: int,
        hidden: Sequence[int],
        n_out: int,
        n_members: int,
        seed: int = 0,
        out_scale: float = 0.01,
    ) -> None:
        super().__init__(n_in, hidden, n_out, n_members, seed, out_scale)

    def l2(self) -> torch.Tensor:
        """Sum of squared weights (the ``μ ||Θ||`` regularizer of eqs. 9-10, biases excluded)."""
        return sum((w**2).sum() for w in self.weights)  # type: ignore[return-value]


class SegmentSoftmax(nn.Module):
    """Per-decision softmax of ``n x F`` logits laid out like the space's encoding."""

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        card = np.asarray(space.cardinalities)
        off = np.asarray(space.offsets)
        kmax = int(card.max())
        f = int(off[-1])
        idx = np.full((len(card), kmax), f, dtype=np.int64)
        for j, (o, c) in enumerate(zip(off[:-1], card, strict=True)):
            idx[j, :c] = o + np.arange(c)
        self.register_buffer("idx", torch.as_tensor(idx))
        valid = idx < f
        self.register_buffer("valid", torch.as_tensor(valid))
        self.register_buffer("flat", torch.as_tensor(np.flatnonzero(valid.reshape(-1))))
        self.d, self.kmax, self.f = len(card), kmax, f

    def padded(self, logits: torch.Tensor) -> torch.Tensor:
        """``... x F`` -> ``... x D x Kmax`` with ``-inf`` where a decision has fewer choices."""
        pad = torch.full((*logits.shape[:-1], 1), -math.inf, dtype=logits.dtype)
        full = torch.cat([logits, pad], dim=-1)
        return full[..., self.idx]

    def unpad(self, padded: torch.Tensor) -> torch.Tensor:
        """Inverse layout: ``... x D x Kmax`` -> ``... x F``."""
        flat = padded.reshape(*padded.shape[:-2], self.d * self.kmax)
        return flat[..., self.flat]

    def forward(self, logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        return self.unpad(torch.softmax(self.padded(logits) / temperature, dim=-1))


class OptimizerNet:
    """``x̂_Θ(d, λ)``: a :class:`FeatureSpec` plus ``n_members`` MLPs producing logits.

    ``hidden``: widths of the hidden layers. Train with :mod:`fleetnas.l2o.method1` or
    :mod:`fleetnas.l2o.method2`; call :meth:`freeze` afterwards to refresh the NumPy weights.
    """

    def __init__(
        self,
        space: SearchSpace,
        spec: FeatureSpec,
        hidden: Sequence[int] = (256, 256),
        n_members: int = 1,
        seed: int = 0,
    ) -> None:
        if int(n_members) < 1:
            raise InputError(f"an optimizer ensemble needs at least 1 member, got {n_members}")
        self.space = space
        self.spec = spec
        self.hidden = [int(h) for h in hidden]
        self.n_members = int(n_members)
        self.seed = int(seed)
        self.module = Members(spec.n_inputs, self.hidden, space.n_features, self.n_members, seed)
        self.softmax = SegmentSoftmax(space)
        self.info: dict[str, Any] = {}
        self.freeze()

    # ---- inference -------------------------------------------------------------------------
    def freeze(self) -> None:
        """Cache the weights as NumPy float32 arrays (after training or loading)."""
        self.module.eval()
        self._np = [
            (w.detach().numpy().astype(np.float32), b.detach().numpy().astype(np.float32))
            for w, b in zip(self.module.weights, self.module.biases, strict=True)
        ]

    def inputs(self, devices: DeviceSet, lam: np.ndarray) -> np.ndarray:
        """Network input for paired device and ``n x 2`` λ rows."""
        return self.spec.inputs(devices, lam)

    def logits(self, x: np.ndarray, members: Sequence[int] | None = None) -> np.ndarray:
        """``M' x n x F`` logits of the ``members`` (default all) for inputs ``x`` (NumPy)."""
        x = np.asarray(x, dtype=np.float32)
        layers = self._np
        if members is not None:
            sel = list(members)
            layers = [(w[sel], b[sel]) for w, b in layers]
        last = len(layers) - 1
        h: np.ndarray = x
        for i, (w, b) in enumerate(layers):
            h = np.matmul(h, w) + b
            if i < last:
                np.maximum(h, 0.0, out=h)
        return h if h.ndim == 3 else np.broadcast_to(h, (layers[0][0].shape[0], *h.shape))

    # ---- state -----------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "n_members": self.n_members, "seed": self.seed}

    def state(self) -> dict[str, Any]:
        return ensemble_state(self.module)

    def load_state(self, state: dict[str, Any]) -> OptimizerNet:
        with torch.no_grad():
            for p, w in zip(self.module.weights, state["weights"], strict=True):
                if tuple(p.shape) != tuple(w.shape):
                    raise InputError(
                        f"optimizer state has a layer of shape {tuple(w.shape)}, the network "
                        f"expects {tuple(p.shape)}"
                    )
                p.copy_(torch.as_tensor(w))
            for p, b in zip(self.module.biases, state["biases"], strict=True):
                p.copy_(torch.as_tensor(b))
        self.freeze()
        return self

    def subset(self, members: Sequence[int]) -> OptimizerNet:
        """A network made of some of the members (e.g. an ensemble of 1 out of 5)."""
        sel = list(members)
        twin = OptimizerNet(self.space, self.spec, self.hidden, len(sel), self.seed)
        st = self.state()
        twin.load_state(
            {"weights": [w[sel] for w in st["weights"]], "biases": [b[sel] for b in st["biases"]]}
        )
        twin.info = dict(self.info)
        return twin


def check_training(method: str, length: str, n: int, batch_size: int, lr: float, mu: float) -> None:
    """Refuse a training setting no run can use: ``n`` (``length``: epochs or steps) < 0,
    ``batch_size`` < 1, ``lr`` <= 0 or a negative weight penalty ``mu``."""
    if n < 0 or batch_size < 1 or not lr > 0 or mu < 0:
        raise InputError(
            f"{method} needs {length} >= 0, batch_size >= 1, lr > 0 and mu >= 0, got "
            f"{n}, {batch_size}, {lr}, {mu}"
        )


#: Below this many rows, BLAS and torch run on one thread: small products on a shared 2-core
#: machine were measured >10x slower with two threads (hand-off stalls under load).
SMALL_BATCH = 8192
_controller: Any = None


@contextmanager
def compute_threads(n_rows: int) -> Iterator[None]:
    """One BLAS and torch thread for small batches (see :data:`SMALL_BATCH`), else as set."""
    global _controller
    if n_rows >= SMALL_BATCH:
        yield
        return
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    with _controller.limit(limits=1), torch_threads(1):
        yield


__all__ = [
    "SMALL_BATCH",
    "Members",
    "OptimizerNet",
    "SegmentSoftmax",
    "check_training",
    "compute_threads",
    "torch_threads",
]
