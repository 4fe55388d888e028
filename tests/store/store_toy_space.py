"""A small search space for the store tests (the real spaces live in fleetnas.spaces)."""

from __future__ import annotations

import numpy as np

from fleetnas.errors import InputError
from fleetnas.spaces import Decision, Layer, SearchSpace

OPS = ("none", "skip", "conv1", "conv3")


class ToySpace(SearchSpace):
    """Two parallel branches (order irrelevant), a tail op, width, depth and kernel:
    4 * 4 * 4 * 4 * 3 * 3 = 2,304 index vectors. Strings look like ``conv3+skip>conv1/w16/d2/k5``.
    """

    name = "toy"
    decisions = (
        Decision("left", OPS),
        Decision("right", OPS),
        Decision("tail", OPS),
        Decision("width", (8, 16, 32, 64)),
        Decision("depth", (1, 2, 3)),
        Decision("kernel", (3, 5, 7)),
    )

    def canonicalize(self, archs: np.ndarray) -> np.ndarray:
        a = np.array(archs, dtype=np.int64, copy=True)
        a[:, :2] = np.sort(a[:, :2], axis=1)
        return a

    def format(self, arch: np.ndarray) -> str:
        a = [int(x) for x in np.asarray(arch).reshape(-1)]
        w, d, k = (self.decisions[i].choices[a[i]] for i in (3, 4, 5))
        return f"{OPS[a[0]]}+{OPS[a[1]]}>{OPS[a[2]]}/w{w}/d{d}/k{k}"

    def parse(self, text: str) -> np.ndarray:
        try:
            ops, w, d, k = text.split("/")
            branches, tail = ops.split(">")
            left, right = branches.split("+")
            return np.array(
                [
                    OPS.index(left),
                    OPS.index(right),
                    OPS.index(tail),
                    self.decisions[3].choices.index(int(w[1:])),
                    self.decisions[4].choices.index(int(d[1:])),
                    self.decisions[5].choices.index(int(k[1:])),
                ],
                dtype=np.int64,
            )
        except ValueError:
            raise InputError(f"not a toy architecture: {text!r}") from None

    def layers(self, arch: np.ndarray) -> list[Layer]:
        a = self.check(arch)[0]
        width, depth, kernel = (self.decisions[i].choices[a[i]] for i in (3, 4, 5))
        return [Layer("conv", width, width, 8, 8, kernel) for _ in range(depth)]


class RenamedChoicesSpace(ToySpace):
    """Same name as :class:`ToySpace` but other widths: must clash with it in a store."""

    decisions = (
        *ToySpace.decisions[:3],
        Decision("width", (8, 16, 32, 128)),
        *ToySpace.decisions[4:],
    )
