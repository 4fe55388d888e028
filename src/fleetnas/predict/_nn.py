"""A deep ensemble of small MLPs evaluated and trained as one batched network.

``M`` members share nothing but the batch: each has its own initialization and its own
Bayesian-bootstrap sample weights (exponential weights per sample), so their spread reflects
both initialization and data uncertainty. Batching the members (``baddbmm``) makes training
``M`` networks about as fast as training one on a 2-core CPU.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import numpy as np
import torch
from torch import nn


class EnsembleMLP(nn.Module):
    """``M`` ReLU MLPs in one module: ``n x F`` (or ``M x n x F``) -> ``M x n x out``.

    He initialization; the last layer's gain is ``out_scale`` (a small value starts every
    member near a constant output).
    """

    def __init__(
        self,
        n_in: int,
        hidden: Sequence[int],
        n_out: int,
        n_members: int,
        seed: int = 0,
        out_scale: float = 1.0,
    ) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(int(seed))
        dims = [int(n_in), *(int(h) for h in hidden), int(n_out)]
        self.n_members = int(n_members)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i, (a, b) in enumerate(itertools.pairwise(dims)):
            gain = math.sqrt(2.0) if i < len(dims) - 2 else float(out_scale)
            w = torch.randn(self.n_members, a, b, generator=g) * (gain / math.sqrt(a))
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(self.n_members, 1, b)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.unsqueeze(0).expand(self.n_members, -1, -1) if x.ndim == 2 else x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = torch.relu_(h)
        return h


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` intra-op threads, then restore the previous setting.

    Small-batch training is dominated by per-step overhead; on a shared 2-core machine one
    thread was measured >10x faster than two (thread hand-off stalls under contention).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class NetworkParams(Protocol):
    """The network parameters an MLP-based estimator keeps (set in its ``__init__``)."""

    hidden: list[int]
    n_members: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int


def fit_ensemble(
    params: NetworkParams, x: np.ndarray, y: np.ndarray
) -> tuple[EnsembleMLP, list[float]]:
    """A new :class:`EnsembleMLP` (``n x F`` -> ``k`` outputs for ``n x k`` targets ``y``)
    built and trained with an estimator's ``params``; returns it and the loss per epoch."""
    net = EnsembleMLP(x.shape[1], params.hidden, y.shape[1], params.n_members, seed=params.seed)
    history = train_ensemble(
        net,
        x,
        y,
        epochs=params.epochs,
        batch_size=params.batch_size,
        lr=params.lr,
        weight_decay=params.weight_decay,
        seed=params.seed,
    )
    return net, history


def cosine_schedule(opt: torch.optim.Optimizer, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate decayed from ``lr`` to 0 along a half cosine over ``total`` steps."""
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total))
    )


def optimizer_step(
    loss: torch.Tensor, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler
) -> None:
    """One gradient step on ``loss`` and one step of the schedule."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()


def train_ensemble(
    net: EnsembleMLP,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    bootstrap: bool = True,
) -> list[float]:
    """Fit ``net`` to ``y`` (``n x k``; NaN = not observed) by weighted MSE with AdamW and a
    cosine schedule; returns the loss per epoch."""
    g = torch.Generator().manual_seed(int(seed) + 1)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32)
    if yt.ndim == 1:
        yt = yt[:, None]
    observed = torch.isfinite(yt)
    yt = torch.where(observed, yt, torch.zeros_like(yt))
    n = xt.shape[0]
    m = net.n_members
    if bootstrap:
        u = torch.rand(m, n, generator=g).clamp_min(1e-12)
        sample_w = -torch.log(u)
    else:
        sample_w = torch.ones(m, n)
    bs = max(1, min(int(batch_size), n))
    steps_per_epoch = math.ceil(n / bs)
    total = max(1, int(epochs) * steps_per_epoch)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = cosine_schedule(opt, total)
    history: list[float] = []
    net.train()
    with torch_threads(1):
        _run_epochs(net, xt, yt, observed, sample_w, opt, sched, g, int(epochs), bs, history)
    net.eval()
    return history


def _run_epochs(
    net: EnsembleMLP,
    xt: torch.Tensor,
    yt: torch.Tensor,
    observed: torch.Tensor,
    sample_w: torch.Tensor,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    g: torch.Generator,
    epochs: int,
    bs: int,
    history: list[float],
) -> None:
    n = xt.shape[0]
    steps_per_epoch = math.ceil(n / bs)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        running = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * bs : (s + 1) * bs]
            pred = net(xt[idx])
            w = sample_w[:, idx, None] * observed[idx][None].float()
            loss = (w * (pred - yt[idx][None]) ** 2).sum() / w.sum().clamp_min(1e-12)
            optimizer_step(loss, opt, sched)
            running += float(loss.detach())
        history.append(running / steps_per_epoch)


def ensemble_state(net: EnsembleMLP) -> dict[str, list[torch.Tensor]]:
    return {
        "weights": [w.detach().clone() for w in net.weights],
        "biases": [b.detach().clone() for b in net.biases],
    }


def ensemble_from_state(state: dict[str, list[torch.Tensor]]) -> EnsembleMLP:
    ws = [torch.as_tensor(w, dtype=torch.float32) for w in state["weights"]]
    bs = [torch.as_tensor(b, dtype=torch.float32) for b in state["biases"]]
    hidden = [w.shape[2] for w in ws[:-1]]
    net = EnsembleMLP(ws[0].shape[1], hidden, ws[-1].shape[2], ws[0].shape[0])
    with torch.no_grad():
        for p, w in zip(net.weights, ws, strict=True):
            p.copy_(w)
        for p, b in zip(net.biases, bs, strict=True):
            p.copy_(b)
    net.eval()
    return net
