"""Torch building blocks shared by the built-in spaces' :meth:`to_torch` networks.

Imported lazily (only when a network is built) so that importing a space stays cheap. Every
block exports with the legacy ONNX exporter (``torch.onnx.export(..., dynamo=False)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish, "none": nn.Identity}


def conv_bn(
    c_in: int,
    c_out: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
    act: str = "none",
    pre_act: str = "none",
    padding: int | None = None,
    bn: bool = True,
) -> nn.Sequential:
    """``[pre_act] -> Conv2d (no bias) -> [BatchNorm] -> [act]``; padding defaults to ``k // 2``."""
    pad = kernel // 2 if padding is None else padding
    mods: list[nn.Module] = []
    if pre_act != "none":
        mods.append(ACTIVATIONS[pre_act]())
    mods.append(nn.Conv2d(c_in, c_out, kernel, stride, pad, groups=groups, bias=False))
    if bn:
        mods.append(nn.BatchNorm2d(c_out))
    if act != "none":
        mods.append(ACTIVATIONS[act]())
    return nn.Sequential(*mods)


class Residual(nn.Module):
    """``body(x) + shortcut(x)``; the shortcut is the identity when not given."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None = None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class Zero(nn.Module):
    """The 'none' operation: a zero tensor of the input's shape (NAS-Bench-201 multiplies by 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class ChannelShuffle(nn.Module):
    """Interleave channels of ``groups`` groups (ShuffleNet), after a grouped 1x1 convolution."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2)
        return x.reshape(n, c, h, w)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: global mean, 1x1 conv (bias) + ReLU, 1x1 conv (bias) + h-sigmoid."""

    def __init__(self, channels: int, mid: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, mid, 1, bias=True)
        self.expand = nn.Conv2d(mid, channels, 1, bias=True)
        self.act = nn.ReLU()
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean(dim=(2, 3), keepdim=True)
        return x * self.gate(self.expand(self.act(self.reduce(y))))


class DagCell(nn.Module):
    """A cell whose node ``j`` is the sum of ``op(node_i)`` over its incoming edges ``(i, j)``.

    Node 0 is the input; the output is the last node. ``edges`` lists ``(i, j)`` per op.
    """

    def __init__(self, edges: Sequence[tuple[int, int]], ops: Sequence[nn.Module]) -> None:
        super().__init__()
        self.edges = [tuple(e) for e in edges]
        self.ops = nn.ModuleList(ops)
        self.n_nodes = 1 + max(j for _, j in self.edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x] + [None] * (self.n_nodes - 1)
        for (i, j), op in zip(self.edges, self.ops, strict=True):
            y = op(nodes[i])
            nodes[j] = y if nodes[j] is None else nodes[j] + y
        return nodes[-1]


class ClassifierHead(nn.Module):
    """Global average pool, optional 1x1 conv mix (+ act), flatten, linear classifier."""

    def __init__(self, pre: nn.Module, c_in: int, num_classes: int, mix: nn.Module | None = None):
        super().__init__()
        self.pre = pre
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.mix = mix if mix is not None else nn.Identity()
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.mix(self.pool(self.pre(x))), 1))


def count_params(model: nn.Module) -> int:
    """Weights and biases of every Conv2d and Linear module (what ``SearchSpace.params`` counts)."""
    return sum(
        p.numel()
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
        for p in m.parameters(recurse=False)
    )
