"""The Device record shared by the store, the measurers, the predictors and fleet files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from fleetnas.errors import InputError

#: Device families used for grouping in reports and leave-one-family-out evaluation.
FAMILIES = (
    "desktop_gpu",
    "server_cpu",
    "desktop_cpu",
    "mobile_cpu",
    "mobile_gpu",
    "npu",
    "asic",
    "fpga",
    "embedded_cpu",
    "microcontroller",
    "local_runtime",
    "synthetic",
    "other",
)


@dataclass(frozen=True)
class Device:
    """A device setting (hardware plus runtime settings such as batch size or threads).

    ``features`` holds spec features (numbers or strings, JSON-able) such as ``cores``,
    ``clock_ghz``, ``memory_gb``, ``mem_bandwidth_gbs``, ``peak_gflops``, ``batch_size``,
    ``precision``, ``runtime``. ``measurer`` says how the device can be measured
    (``table:NAME``, ``onnxruntime:...``, ``agent:URL``, ``sim:...`` or ``None``).
    """

    name: str
    family: str = "other"
    features: dict[str, Any] = field(default_factory=dict)
    measurer: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise InputError(f"device name must be a non-empty string, got {self.name!r}")
        if self.family not in FAMILIES:
            raise InputError(
                f"device {self.name!r}: family {self.family!r} is not one of {', '.join(FAMILIES)}"
            )
        try:
            json.dumps(self.features, sort_keys=True)
        except TypeError as exc:
            raise InputError(f"device {self.name!r}: features must be JSON-able ({exc})") from None

    @property
    def measurer_kind(self) -> str:
        """The kind of :attr:`measurer` (``table``, ``onnxruntime``, ``sim``...; ``""`` if none)."""
        return (self.measurer or "").partition(":")[0].strip()

    @property
    def fingerprint(self) -> str:
        """Hash of family and features: two records with one fingerprint are the same setting."""
        blob = json.dumps({"family": self.family, "features": self.features}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "features": dict(self.features),
            "measurer": self.measurer,
            "description": self.description,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Device:
        return cls(
            name=d["name"],
            family=d.get("family", "other"),
            features=dict(d.get("features") or {}),
            measurer=d.get("measurer"),
            description=d.get("description", ""),
        )
