"""NAS-Bench-201: one cell of 4 nodes and 6 edges, 5 operations per edge (15,625 designs).

The macro network follows the public NAS-Bench-201 code (D-X-Y/AutoDL-Projects,
``xautodl/models/cell_infers/tiny_network.py`` and ``cells.py``, ``xautodl/models/
cell_operations.py``; the same ``TinyNetwork`` ships with HW-NAS-Bench): a 3x3 conv stem
with 16 channels and BN; three stages of N=5 identical cells with 16/32/64 channels on 32/16/8
pixels, joined by ResNet basic blocks (ReLU-Conv-BN 3x3 stride 2, ReLU-Conv-BN 3x3, shortcut
2x2 average pool + 1x1 conv); then BN, ReLU, global average pooling and a linear classifier
(10 classes for CIFAR-10). ``nor_conv`` is ReLU-Conv-BN, ``avg_pool_3x3`` excludes padding from
the average and ``none`` multiplies its input by zero, as in the original code.

Cost model (shared by :meth:`NB201Space.layers`, :meth:`~NB201Space.flops` and
:meth:`~NB201Space.params`): batch norms fold into the preceding convolution and activations fuse
into a neighbouring convolution, so neither is listed; every other tensor operation is a
:class:`~fleetnas.spaces.layers.Layer` (the multiplication of a ``none`` edge and each addition
of two edge outputs are ``elementwise`` layers). ``params`` counts the weights and biases of
convolution and linear layers, i.e. the parameters of every ``Conv2d`` and ``Linear`` module of
:meth:`~NB201Space.to_torch` (BatchNorm parameters excluded).
"""

from __future__ import annotations

import csv
import functools
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from fleetnas.errors import DataError, InputError
from fleetnas.spaces._registry import SPACES
from fleetnas.spaces.base import Decision, SearchSpace
from fleetnas.spaces.layers import Layer

if TYPE_CHECKING:
    import torch

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: Edges ``(from_node, to_node)`` in the order of the architecture string.
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
N_CELLS = 5
STAGE_CHANNELS = (16, 32, 64)
STAGE_HW = (32, 16, 8)
NUM_CLASSES = 10
N_ARCHS = len(OPS) ** len(EDGES)


# The builders below are memoized and return shared tuples of (frozen) layers: a design's
# layer list is then concatenated from a few dozen distinct objects instead of building ~150,
# which is what featurizing all 15,625 cells for the simulator costs (sim/features.py).
@functools.cache
def _edge_layers(op: str, c: int, hw: int) -> tuple[Layer, ...]:
    if op == "none":
        return (Layer("elementwise", c, c, hw, hw),)
    if op == "nor_conv_1x1":
        return (Layer("pwconv", c, c, hw, hw),)
    if op == "nor_conv_3x3":
        return (Layer("conv", c, c, hw, hw, kernel=3),)
    if op == "avg_pool_3x3":
        return (Layer("pool", c, c, hw, hw, kernel=3),)
    return ()


@functools.cache
def _sum_layer(c: int, hw: int) -> Layer:
    return Layer("elementwise", c, c, hw, hw)


def _cell_layers(ops: Sequence[str], c: int, hw: int) -> list[Layer]:
    out: list[Layer] = []
    for node in (1, 2, 3):
        for (_, dst), op in zip(EDGES, ops, strict=True):
            if dst == node:
                out += _edge_layers(op, c, hw)
        out += [_sum_layer(c, hw)] * (node - 1)
    return out


@functools.cache
def _stem_layers(channels: int = STAGE_CHANNELS[0]) -> tuple[Layer, ...]:
    return (Layer("conv", 3, channels, 32, 32, kernel=3),)


@functools.cache
def _reduction_layers(c_in: int, c: int, hw_in: int, hw: int) -> tuple[Layer, ...]:
    return (
        Layer("conv", c_in, c, hw_in, hw, kernel=3, stride=2),
        Layer("conv", c, c, hw, hw, kernel=3),
        Layer("pool", c_in, c_in, hw_in, hw, kernel=2, stride=2),
        Layer("pwconv", c_in, c, hw, hw),
        Layer("elementwise", c, c, hw, hw),
    )


@functools.cache
def _head_layers(num_classes: int, channels: int = STAGE_CHANNELS[-1]) -> tuple[Layer, ...]:
    c, hw = channels, STAGE_HW[-1]
    return (Layer("pool", c, c, hw, 1, kernel=hw), Layer("fc", c, num_classes, 1, 1))


@SPACES.register("nb201")
class NB201Space(SearchSpace):
    """The NAS-Bench-201 cell space; decisions are the 6 edges, choices the 5 operations.

    Native string: ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``. :meth:`canonicalize` is the identity:
    every string is a separately trained and measured network in NAS-Bench-201, NATS-Bench and
    HELP, so isomorphic cells keep distinct indices and measurements (they differ in weights,
    initialization and sometimes in run time, e.g. a ``none`` edge still costs a multiply). Use
    :meth:`isomorphism_key` to group designs that compute the same function.
    """

    name = "nb201"
    decisions = tuple(Decision(f"{i}->{j}", OPS) for i, j in EDGES)

    # ---- strings -----------------------------------------------------------------------
    def parse(self, text: str) -> np.ndarray:
        s = str(text).strip()
        expected = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
        nodes = s.split("+")
        if len(nodes) != 3:
            raise InputError(
                f"nb201 string {s!r} has {len(nodes)} node groups separated by '+', "
                f"expected 3 as in {expected}"
            )
        arch: list[int] = []
        for node, group in enumerate(nodes, start=1):
            if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
                raise InputError(
                    f"nb201 string {s!r}: node group {group!r} must start and end with '|' "
                    f"as in {expected}"
                )
            tokens = group[1:-1].split("|")
            if len(tokens) != node:
                raise InputError(
                    f"nb201 string {s!r}: node {node} has {len(tokens)} edges ({group!r}), "
                    f"expected {node}"
                )
            for src, token in enumerate(tokens):
                op, sep, inp = token.partition("~")
                if not sep or inp != str(src):
                    raise InputError(
                        f"nb201 string {s!r}: token {token!r} of node {node} should be '<op>~{src}'"
                    )
                if op not in OPS:
                    raise InputError(
                        f"nb201 string {s!r}: unknown operation {op!r} on edge {src}->{node}; "
                        f"expected one of {', '.join(OPS)}"
                    )
                arch.append(OPS.index(op))
        return np.array(arch, dtype=np.int64)

    def format(self, arch: np.ndarray) -> str:
        a = self.check(arch)[0]
        groups = []
        for node in (1, 2, 3):
            toks = [f"{OPS[a[k]]}~{i}" for k, (i, j) in enumerate(EDGES) if j == node]
            groups.append("|" + "|".join(toks) + "|")
        return "+".join(groups)

    # ---- cost --------------------------------------------------------------------------
    def layers(self, arch: np.ndarray) -> list[Layer]:
        ops = [OPS[i] for i in self.check(arch)[0]]
        out = list(_stem_layers())
        for s, (c, hw) in enumerate(zip(STAGE_CHANNELS, STAGE_HW, strict=True)):
            if s:
                out += _reduction_layers(STAGE_CHANNELS[s - 1], c, STAGE_HW[s - 1], hw)
            out += _cell_layers(ops, c, hw) * N_CELLS
        return out + list(_head_layers(NUM_CLASSES))

    # ---- compression hooks (fleetnas.spaces.compression) -------------------------------
    def compression_blocks(self) -> tuple[str, ...]:
        """The blocks a compression policy sets: one per stage (its cells and the reduction
        block that enters it). The stem convolution and the classifier stay fp32 and follow
        the widths of the first and last stage."""
        return tuple(f"stage{s}" for s in range(len(STAGE_CHANNELS)))

    def block_active(self, archs: np.ndarray) -> np.ndarray:
        """``n x 3`` bool: every stage always runs."""
        return np.ones((self.check(archs).shape[0], len(STAGE_CHANNELS)), dtype=bool)

    def stage_channels(self, widths: Sequence[float] | None = None) -> tuple[int, ...]:
        """Channels per stage after channel pruning by ``widths`` (ratio per stage)."""
        if widths is None:
            return STAGE_CHANNELS
        return tuple(max(1, round(c * w)) for c, w in zip(STAGE_CHANNELS, widths, strict=True))

    def block_macs(self, archs: np.ndarray, widths: np.ndarray) -> np.ndarray:
        """``n x 4`` MACs per stage block and (last column) of the fp32 stem and classifier,
        vectorized; ``widths`` is ``n x 3`` width ratios. Equals summing :meth:`block_layers`."""
        a = self.check(archs)
        w = np.asarray(widths, dtype=float).reshape(len(a), len(STAGE_CHANNELS))
        chans = np.maximum(1, np.rint(np.asarray(STAGE_CHANNELS)[None, :] * w)).astype(np.int64)
        out = np.zeros((len(a), len(STAGE_CHANNELS) + 1))
        for s, hw in enumerate(STAGE_HW):
            c, px = chans[:, s], hw * hw
            per_op = np.stack([c * px, 0 * c, c * c * px, 9 * c * c * px, 9 * c * px], axis=1)
            edges = np.take_along_axis(per_op, a, axis=1).sum(axis=1)
            out[:, s] = N_CELLS * (edges + 3 * c * px)
            if s:
                ci = chans[:, s - 1]
                out[:, s] += 9 * ci * c * px + 9 * c * c * px + 4 * ci * px + ci * c * px + c * px
        last = chans[:, -1]
        out[:, -1] = 27 * chans[:, 0] * STAGE_HW[0] ** 2 + last * STAGE_HW[-1] ** 2 + last * 10
        return out

    def block_layers(
        self, arch: np.ndarray, widths: Sequence[float] | None = None
    ) -> list[tuple[int, Layer]]:
        """(block index, layer) of one design; block -1 for the fp32 stem and classifier."""
        ops = [OPS[i] for i in self.check(arch)[0]]
        chans = self.stage_channels(widths)
        out = [(-1, x) for x in _stem_layers(chans[0])]
        for s, (c, hw) in enumerate(zip(chans, STAGE_HW, strict=True)):
            if s:
                out += [(s, x) for x in _reduction_layers(chans[s - 1], c, STAGE_HW[s - 1], hw)]
            out += [(s, x) for x in _cell_layers(ops, c, hw)] * N_CELLS
        return out + [(-1, x) for x in _head_layers(NUM_CLASSES, chans[-1])]

    def flops(self, archs: np.ndarray) -> np.ndarray:
        """``n`` FLOPs (2 x MACs of :meth:`layers`) from per-operation tables, vectorized."""
        fixed, per_op = _cost_tables("macs")
        return 2.0 * (fixed + per_op[self.check(archs)].sum(axis=1))

    def params(self, archs: np.ndarray) -> np.ndarray:
        fixed, per_op = _cost_tables("params")
        return (fixed + per_op[self.check(archs)].sum(axis=1)).astype(float)

    # ---- identity ----------------------------------------------------------------------
    def codes(self, archs: np.ndarray) -> np.ndarray:
        """``n`` int array: rank of each design in :meth:`enumerate`'s lexicographic order."""
        a = self.check(archs)
        weights = len(OPS) ** np.arange(len(EDGES) - 1, -1, -1)
        return a @ weights

    def isomorphism_key(self, archs: np.ndarray) -> np.ndarray:
        """``n`` int array: equal keys for cells NATS-Bench counts as one (its ``UniqueString``).

        The key follows NAS-Bench-201's ``Structure.to_unique_str(consider_zero=True)``: each
        node is the sorted ``+``-joined list of its incoming terms, where a ``none`` edge or an
        input node that is exactly zero gives ``#``, ``skip_connect`` passes the input's term
        through and other ops give ``(input)@op``; the key is the output node's string. Edges
        that cannot reach the output drop out, and the sum commutes. 15,625 designs form 6,466
        classes.
        """
        return _iso_table()[0][self.codes(archs)]

    def unique_string(self, arch: np.ndarray) -> str:
        """The NATS-Bench ``UniqueString`` of one design (see :meth:`isomorphism_key`)."""
        return _unique_string([OPS[i] for i in self.check(arch)[0]])

    # ---- network -----------------------------------------------------------------------
    def input_shape(self, arch: np.ndarray, batch: int = 1) -> tuple[int, ...]:
        return (batch, 3, 32, 32)

    def to_torch(self, arch: np.ndarray, num_classes: int | None = None) -> torch.nn.Module:
        """The CIFAR macro network of NAS-Bench-201 with random weights (logits output)."""
        from torch import nn

        return nn.Sequential(*[m for _, _, m in self.torch_blocks(arch, num_classes)])

    def torch_blocks(
        self,
        arch: np.ndarray,
        num_classes: int | None = None,
        widths: Sequence[float] | None = None,
    ) -> list[tuple[str, int, torch.nn.Module]]:
        """(name, block index, module) of the network in order; block -1 for stem and head.

        Names are ``stem``, ``s<stage>_red``, ``s<stage>_c<cell>`` and ``head``.
        """
        from torch import nn

        from fleetnas.spaces import _torch_blocks as tb

        ops = [OPS[i] for i in self.check(arch)[0]]
        chans = self.stage_channels(widths)

        def op_module(op: str, c: int) -> nn.Module:
            if op == "none":
                return tb.Zero()
            if op == "skip_connect":
                return nn.Identity()
            if op == "avg_pool_3x3":
                return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
            return tb.conv_bn(c, c, 1 if op == "nor_conv_1x1" else 3, pre_act="relu")

        blocks: list[tuple[str, int, nn.Module]] = [("stem", -1, tb.conv_bn(3, chans[0], 3))]
        for s, c in enumerate(chans):
            if s:
                c_in = chans[s - 1]
                body = nn.Sequential(
                    tb.conv_bn(c_in, c, 3, stride=2, pre_act="relu"),
                    tb.conv_bn(c, c, 3, pre_act="relu"),
                )
                shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c, 1, bias=False))
                blocks.append((f"s{s}_red", s, tb.Residual(body, shortcut)))
            for i in range(N_CELLS):
                cell = tb.DagCell(EDGES, [op_module(op, c) for op in ops])
                blocks.append((f"s{s}_c{i}", s, cell))
        c = chans[-1]
        pre = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
        blocks.append(("head", -1, tb.ClassifierHead(pre, c, num_classes or NUM_CLASSES)))
        return blocks


@functools.cache
def _cost_tables(attr: str) -> tuple[int, np.ndarray]:
    """(fixed cost, ``5`` per-op cost of one edge over all 15 cells) of MACs or params."""

    def total(layers: Sequence[Layer]) -> int:
        return sum(getattr(layer, attr) for layer in layers)

    fixed = total([Layer("conv", 3, STAGE_CHANNELS[0], 32, 32, kernel=3)]) + total(
        _head_layers(NUM_CLASSES)
    )
    per_op = np.zeros(len(OPS), dtype=np.int64)
    for s, (c, hw) in enumerate(zip(STAGE_CHANNELS, STAGE_HW, strict=True)):
        if s:
            fixed += total(_reduction_layers(STAGE_CHANNELS[s - 1], c, STAGE_HW[s - 1], hw))
        fixed += N_CELLS * 3 * total([Layer("elementwise", c, c, hw, hw)])
        per_op += N_CELLS * np.array([total(_edge_layers(op, c, hw)) for op in OPS])
    return fixed, per_op


def _unique_string(ops: Sequence[str]) -> str:
    nodes = ["0"]
    for node in (1, 2, 3):
        terms = []
        for (src, dst), op in zip(EDGES, ops, strict=True):
            if dst != node:
                continue
            if op == "none" or nodes[src] == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(nodes[src])
            else:
                terms.append(f"({nodes[src]})@{op}")
        nodes.append("+".join(sorted(terms)))
    return nodes[-1]


@functools.cache
def _iso_table() -> tuple[np.ndarray, list[str]]:
    """(class id per lexicographic code, unique string per class)."""
    strings = [_unique_string([OPS[i] for i in a]) for a in NB201Space().enumerate()]
    uniq, inverse = np.unique(np.array(strings), return_inverse=True)
    return inverse.astype(np.int64), [str(u) for u in uniq]


class NB201Index:
    """The official NAS-Bench-201 index <-> architecture mapping.

    The official order is not lexicographic; it comes from the benchmark's own list of strings,
    e.g. HELP's ``help/nasbench201/str_arch2idx.pt`` or the ``ArchitectureString`` column of
    NATS-Bench's ``nats_bench.csv`` (row order = index). Build it with :meth:`from_file` or
    directly from the 15,625 strings in index order.
    """

    def __init__(self, arch_strings: Sequence[str], source: str = "architecture list") -> None:
        space = NB201Space()
        if len(arch_strings) != N_ARCHS:
            raise DataError(f"{source}: {len(arch_strings)} architectures, expected {N_ARCHS}")
        try:
            codes = space.codes(space.parse_many(list(arch_strings)))
        except InputError as exc:
            raise DataError(f"{source}: {exc}") from None
        if len(np.unique(codes)) != N_ARCHS:
            raise DataError(f"{source}: architecture strings are not all distinct")
        self._code_of_index = codes
        self._index_of_code = np.empty(N_ARCHS, dtype=np.int64)
        self._index_of_code[codes] = np.arange(N_ARCHS)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> NB201Index:
        """Read HELP's ``str_arch2idx.pt`` (dict string -> index) or a NATS-Bench CSV."""
        p = os.fspath(path)
        if not os.path.exists(p):
            raise DataError(f"NAS-Bench-201 index file {p} does not exist")
        if p.endswith(".csv"):
            with open(p, newline="") as fh:
                reader = csv.DictReader(fh)
                if "ArchitectureString" not in (reader.fieldnames or []):
                    raise DataError(f"{p}: no 'ArchitectureString' column")
                return cls([row["ArchitectureString"] for row in reader], source=p)
        import torch

        mapping = torch.load(p, map_location="cpu", weights_only=False)
        if not isinstance(mapping, dict):
            raise DataError(f"{p}: expected a dict arch_str -> index, got {type(mapping).__name__}")
        idx = np.array([int(v) for v in mapping.values()], dtype=np.int64)
        if sorted(idx.tolist()) != list(range(N_ARCHS)):
            raise DataError(f"{p}: indices are not a permutation of 0..{N_ARCHS - 1}")
        strings = [""] * N_ARCHS
        for s, i in zip(mapping.keys(), idx, strict=True):
            strings[i] = s
        return cls(strings, source=p)

    def __len__(self) -> int:
        return N_ARCHS

    def index_of(self, archs: np.ndarray) -> np.ndarray:
        """``n x 6`` architectures -> ``n`` official indices."""
        return self._index_of_code[NB201Space().codes(archs)]

    def archs_of(self, indices: np.ndarray | Sequence[int]) -> np.ndarray:
        """``n`` official indices -> ``n x 6`` architectures."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= N_ARCHS):
            bad = idx[(idx < 0) | (idx >= N_ARCHS)][0]
            raise InputError(f"NAS-Bench-201 index {bad} is out of range 0..{N_ARCHS - 1}")
        codes = self._code_of_index[idx]
        digits = codes[:, None] // (len(OPS) ** np.arange(len(EDGES) - 1, -1, -1))[None, :]
        return digits % len(OPS)
