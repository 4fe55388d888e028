"""A network as a list of layers: what the simulator prices and FLOPs are summed from."""

from __future__ import annotations

from dataclasses import dataclass

#: Operator classes the simulator has a throughput for.
LAYER_KINDS = ("conv", "dwconv", "pwconv", "pool", "elementwise", "fc")


@dataclass(frozen=True)
class Layer:
    """One operator of a network, with shapes in (channels, height, width) and batch size 1.

    ``kind`` is one of :data:`LAYER_KINDS`. ``groups`` equals ``in_ch`` for depthwise convolution.
    ``bias`` says whether the operator carries a bias vector (counted in :attr:`params`); ``None``
    takes the kind's default: convolutions without, fully connected layers with.
    """

    kind: str
    in_ch: int
    out_ch: int
    in_hw: int
    out_hw: int
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    bias: bool | None = None

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"layer kind {self.kind!r} is not one of {LAYER_KINDS}")

    @property
    def macs(self) -> int:
        """Multiply-accumulates (for pooling and elementwise: one per input element touched)."""
        out_elems = self.out_ch * self.out_hw * self.out_hw
        if self.kind in ("conv", "dwconv", "pwconv"):
            return out_elems * (self.in_ch // self.groups) * self.kernel * self.kernel
        if self.kind == "fc":
            return self.in_ch * self.out_ch
        if self.kind == "pool":
            return out_elems * self.kernel * self.kernel
        return out_elems

    @property
    def has_bias(self) -> bool:
        return self.kind == "fc" if self.bias is None else self.bias

    @property
    def params(self) -> int:
        """Weights plus bias of a convolution or fully connected layer; 0 for other kinds."""
        bias = self.out_ch if self.has_bias else 0
        if self.kind in ("conv", "dwconv", "pwconv"):
            return self.out_ch * (self.in_ch // self.groups) * self.kernel * self.kernel + bias
        if self.kind == "fc":
            return self.in_ch * self.out_ch + bias
        return 0

    @property
    def activation_elems(self) -> int:
        """Elements read and written (input plus output feature maps)."""
        return self.in_ch * self.in_hw * self.in_hw + self.out_ch * self.out_hw * self.out_hw
