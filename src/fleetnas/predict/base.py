"""The predictor contract (scikit-learn style) and how predictors are saved.

Two kinds of performance networks (paper Sec. 4.1 and 5.2):

- :class:`Predictor` maps designs of one space to one metric: ``Acc(x)``, or ``latency_d0(x)`` /
  ``energy_d0(x)`` on one device. ``fit(X, y)``, ``predict(X)``.
- :class:`DevicePredictor` maps (design, device features) to a metric: ``Latency(x; d)``,
  ``Energy(x; d)``. ``fit(X, device_feats, y)``, ``predict(X, device_feats)``.

``X`` is always an ``n x D`` int array of the predictor's space; predictors encode it themselves
with :meth:`SearchSpace.encode`. Parameters live in ``__init__`` only; what ``fit`` learns lives
in the state. A predictor serializes to bytes (``torch.save`` of plain tensors and a JSON
parameter string, loaded with ``weights_only=True``) and to the store as an
:class:`~fleetnas.store.base.Artifact` of kind ``predictor`` whose metadata records the class,
parameters, space, a fingerprint of the training data and the fleetnas version and git commit.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import json
import subprocess
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import torch

from fleetnas.errors import DataError, InputError, NotFittedError, UnknownNameError, unknown
from fleetnas.spaces import SearchSpace, get_space

if TYPE_CHECKING:
    from fleetnas.store.base import Store

#: Format tag written into every serialized predictor.
FORMAT = "fleetnas-predictor/1"
#: Artifact kind used in the store.
ARTIFACT_KIND = "predictor"

_CLASSES: dict[str, type[Persistable]] = {}


def fingerprint(*arrays: Any) -> str:
    """SHA-1 (16 hex chars) of the dtypes, shapes and bytes of ``arrays``: the training data id."""
    h = hashlib.sha1()
    for a in arrays:
        arr = np.ascontiguousarray(np.asarray(a))
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()[:16]


@functools.cache
def git_commit() -> str | None:
    """The commit of the fleetnas source tree when it is a git checkout, else ``None``."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def check_targets(y: Any, n: int | None = None, *, positive: bool, what: str) -> np.ndarray:
    """``y`` as a float64 array; :class:`InputError` for NaN/inf, wrong length or (with
    ``positive``) values <= 0, which log-space training cannot take."""
    arr = np.asarray(y, dtype=float)
    if n is not None and arr.shape[0] != n:
        raise InputError(f"{what}: got {arr.shape[0]} values for {n} architectures")
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{what} contain NaN or infinite values (first at index {where})")
    if positive and (arr <= 0).any():
        where = tuple(int(i) for i in np.argwhere(arr <= 0)[0])
        raise InputError(
            f"{what} must be positive (they are modelled in log space); value "
            f"{arr[where]:g} at index {where}"
        )
    return arr


def _to_safe(obj: Any) -> Any:
    """Nested containers with NumPy arrays -> the same with tensors (``weights_only`` safe)."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {str(k): _to_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_to_safe(v) for v in obj]
    return obj


def dump_payload(blob: dict[str, Any]) -> bytes:
    """``torch.save`` of a dict of plain tensors, numbers and strings, as bytes."""
    buf = io.BytesIO()
    torch.save(blob, buf)
    return buf.getvalue()


def load_payload(data: bytes, what: str, fmt: str) -> dict[str, Any]:
    """The dict :func:`dump_payload` wrote, loaded with ``weights_only`` (no code runs);
    :class:`DataError` naming ``what`` unless it is one in format ``fmt``."""
    try:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(f"not a fleetnas {what} payload ({exc})") from None
    if not isinstance(blob, dict) or blob.get("format") != fmt:
        raise DataError(f"not a fleetnas {what} payload (expected format {fmt!r})")
    return blob


def to_numpy(t: Any) -> np.ndarray:
    """A tensor or array from a loaded state as a NumPy array."""
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


class Persistable(ABC):
    """Parameters, fitted state, bytes and store round trips shared by every predictor."""

    #: Short registered name (``get_predictor``); also the class's label in artifacts.
    name: ClassVar[str] = ""

    space: SearchSpace
    _fitted: bool = False
    _meta: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _CLASSES[cls.__name__] = cls

    # ---- parameters -----------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p not in ("self", "space")]

    def get_params(self) -> dict[str, Any]:
        """The ``__init__`` parameters (without the space), JSON-able."""
        return {k: getattr(self, k) for k in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}(space={self.space.name!r}, {args})"

    # ---- state ----------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return self._fitted

    def _require_fitted(self) -> None:
        if not self._fitted:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted yet; call fit() or load() first"
            )

    def _mark_fitted(self, **meta: Any) -> None:
        self._meta = {k: v for k, v in meta.items() if v is not None}
        self._fitted = True

    @property
    def meta(self) -> dict[str, Any]:
        """What the predictor was trained on (data fingerprint, sizes, devices)."""
        return dict(getattr(self, "_meta", {}))

    @abstractmethod
    def _get_state(self) -> dict[str, Any]:
        """Everything ``fit`` learned: arrays, tensors, numbers, strings."""

    @abstractmethod
    def _set_state(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`_get_state` (arrays arrive as tensors)."""

    # ---- bytes ----------------------------------------------------------------------------
    def artifact_meta(self) -> dict[str, Any]:
        """Metadata stored next to the payload."""
        from fleetnas import __version__

        return {
            "format": FORMAT,
            "class": type(self).__name__,
            "params": self.get_params(),
            "space": self.space.name,
            "n_features": self.space.n_features,
            "fleetnas_version": __version__,
            "git_commit": git_commit(),
            **self.meta,
        }

    def to_bytes(self) -> bytes:
        """The fitted predictor as bytes (see :meth:`from_bytes`)."""
        self._require_fitted()
        blob = {
            "format": FORMAT,
            "class": type(self).__name__,
            "space": self.space.name,
            "n_features": self.space.n_features,
            "params": json.dumps(self.get_params(), sort_keys=True),
            "meta": json.dumps(self.artifact_meta(), sort_keys=True, default=str),
            "state": _to_safe(self._get_state()),
        }
        return dump_payload(blob)

    @classmethod
    def from_bytes(cls, data: bytes, space: SearchSpace | str | None = None) -> Self:
        """Rebuild a predictor from :meth:`to_bytes` output; ``space`` overrides the stored
        space name (needed for spaces that are not registered, e.g. YAML spaces)."""
        blob = load_payload(data, "predictor", FORMAT)
        name = blob["class"]
        klass = _CLASSES.get(name)
        if klass is None:
            raise unknown("predictor class", name, list(_CLASSES))
        if not issubclass(klass, cls):
            raise InputError(f"payload holds a {name}, not a {cls.__name__}")
        sp = _resolve_space(space if space is not None else blob["space"])
        if sp.name != blob["space"] or sp.n_features != blob["n_features"]:
            raise InputError(
                f"predictor was trained on space {blob['space']!r} with {blob['n_features']} "
                f"encoding features; got space {sp.name!r} with {sp.n_features}"
            )
        obj = klass(sp, **json.loads(blob["params"]))
        obj._set_state(blob["state"])
        meta = json.loads(blob["meta"])
        obj._meta = {k: v for k, v in meta.items() if k not in _BASE_META}
        obj._fitted = True
        return obj

    # ---- store ----------------------------------------------------------------------------
    def save(self, store: Store, name: str) -> str:
        """Store the fitted predictor as artifact ``name`` (kind ``predictor``) in one run;
        returns its SHA-256. Nothing is written when the predictor is not fitted."""
        from fleetnas.store.base import Artifact

        if not name or not isinstance(name, str):
            raise InputError(f"artifact name must be a non-empty string, got {name!r}")
        payload = self.to_bytes()
        meta = self.artifact_meta()
        artifact = Artifact(name=name, kind=ARTIFACT_KIND, payload=payload, meta=meta)
        with store.run("predictor", {"name": name, "class": type(self).__name__}) as run:
            return run.save_artifact(artifact)

    @classmethod
    def load(cls, store: Store, name: str, space: SearchSpace | str | None = None) -> Self:
        """The newest predictor artifact ``name`` from ``store``."""
        art = store.load_artifact(name, ARTIFACT_KIND)
        return cls.from_bytes(art.payload, space)


_BASE_META = (
    "format",
    "class",
    "params",
    "space",
    "n_features",
    "fleetnas_version",
    "git_commit",
)


def _resolve_space(space: SearchSpace | str) -> SearchSpace:
    if isinstance(space, SearchSpace):
        return space
    if not isinstance(space, str):
        raise InputError(f"space must be a SearchSpace or a space name, got {space!r}")
    try:
        return get_space(space)
    except UnknownNameError:
        raise
    except Exception as exc:
        raise InputError(f"cannot load space {space!r}: {exc}") from None


class Predictor(Persistable):
    """A performance network ``f(x)`` on one space: accuracy, or one device's latency/energy.

    Subclasses implement :meth:`fit`, :meth:`predict` and the state hooks; neural predictors
    also :meth:`torch_module`.
    """

    def __init__(self, space: SearchSpace | str) -> None:
        self.space = _resolve_space(space)

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Learn from ``n x D`` architectures ``X`` and ``n`` values ``y``; returns ``self``."""

    @abstractmethod
    def predict(self, X: np.ndarray) -> np.ndarray:
        """``n`` predicted values for ``n x D`` architectures."""

    def torch_module(self) -> torch.nn.Module:
        """An ``nn.Module`` mapping an ``n x F`` encoding (one-hot or relaxed) to ``n`` values,
        differentiable in its input; ensembles average their members."""
        raise InputError(f"{type(self).__name__} has no differentiable torch module")

    def _check_X(self, X: Any) -> np.ndarray:
        return self.space.check(X)

    def _check_fit(
        self, X: Any, y: Any, *, positive: bool, min_samples: int, what: str = "targets"
    ) -> tuple[np.ndarray, np.ndarray]:
        a = self._check_X(X)
        t = check_targets(y, len(a), positive=positive, what=what).reshape(-1)
        if len(a) < min_samples:
            raise InputError(
                f"{type(self).__name__} needs at least {min_samples} training samples, got {len(a)}"
            )
        return a, t


class EnsembleMixin:
    """Ensembles report mean and spread, so later work can choose what to measure next."""

    n_members: int

    @abstractmethod
    def predict_dist(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)``, two ``n`` arrays in the target's units."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_dist(X)[0]


#: What :class:`TargetEnsemble` members learn: the values as given, or their logarithm.
TARGETS = ("identity", "log")


class TargetEnsemble(EnsembleMixin):
    """Members trained on the target (``"identity"``, e.g. accuracy) or on its logarithm
    (``"log"``: latency and energy are positive and heavy-tailed), reported as the members'
    mean and spread in the original units (the geometric mean for ``"log"``)."""

    target: str

    @staticmethod
    def _check_ensemble(target: str, n_members: int) -> None:
        if target not in TARGETS:
            raise InputError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
        if int(n_members) < 1:
            raise InputError(f"n_members must be >= 1, got {n_members}")

    @abstractmethod
    def _members(self, X: np.ndarray) -> np.ndarray:
        """``M x n`` member predictions in the training space (log for ``target="log"``)."""

    def predict_dist(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = self._members(X)
        if self.target == "log":
            return np.exp(z.mean(axis=0)), np.exp(z).std(axis=0)
        return z.mean(axis=0), z.std(axis=0)


class DevicePredictor(Persistable):
    """A device-aware performance network ``f(x; d)`` (paper Sec. 5.2): latency or energy of
    design ``x`` on the device with feature vector ``d``, trained across many devices at once.

    Device features are a ``G`` float vector per device; what they hold (probe latencies, spec
    features or both) is the predictor's parameter. ``fit`` takes ``n x D`` designs and either
    ``m x G`` device features with an ``n x m`` value matrix, or ``n x G`` per-row features with
    ``n`` values. ``predict(X, feats)`` gives ``n x m`` for ``m x G`` features, or ``n`` with
    ``paired=True`` and ``n x G`` features (row ``i`` of ``X`` on device row ``i``).
    """

    def __init__(self, space: SearchSpace | str) -> None:
        self.space = _resolve_space(space)

    @property
    @abstractmethod
    def n_device_features(self) -> int:
        """``G``, the width of a device feature vector."""

    @abstractmethod
    def fit(self, X: np.ndarray, device_feats: np.ndarray, y: np.ndarray) -> Self: ...

    @abstractmethod
    def predict_dist(
        self, X: np.ndarray, device_feats: np.ndarray, paired: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` of :meth:`predict`'s shape."""

    def predict(self, X: np.ndarray, device_feats: np.ndarray, paired: bool = False) -> np.ndarray:
        return self.predict_dist(X, device_feats, paired)[0]

    def torch_module(self) -> torch.nn.Module:
        """An ``nn.Module`` ``(encoding n x F, device_feats n x G) -> n`` values."""
        raise InputError(f"{type(self).__name__} has no differentiable torch module")

    def _check_feats(
        self, feats: Any, what: str = "device features", width: int | None = None
    ) -> np.ndarray:
        """``feats`` as an ``m x G`` float array; :class:`InputError` for a wrong width, no
        rows, or a missing value (a device with no features)."""
        g = self.n_device_features if width is None else int(width)
        f = np.asarray(feats, dtype=float)
        if f.ndim == 1:
            f = f[None, :]
        if f.ndim != 2 or f.shape[1] != g:
            raise InputError(
                f"{type(self).__name__}: {what} must have {g} columns per device, got shape "
                f"{np.asarray(feats).shape}"
            )
        if f.shape[0] == 0:
            raise InputError(f"{type(self).__name__}: no {what} given (a device has no features)")
        bad = ~np.isfinite(f)
        if bad.any():
            r, c = map(int, np.argwhere(bad)[0])
            raise InputError(
                f"{type(self).__name__}: {what} of device row {r} has a missing or infinite "
                f"value in column {c}"
            )
        return f

    def _wide(
        self, X: Any, device_feats: Any, y: Any, *, positive: bool, width: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normalize fit inputs to ``(X n' x D, feats m x G, Y n' x m)`` with NaN where a
        design was not measured on a device (long input) and nothing missing otherwise."""
        a = self.space.check(X)
        f = self._check_feats(device_feats, width=width)
        yy = np.asarray(y, dtype=float)
        if yy.ndim == 2:
            if yy.shape != (len(a), len(f)):
                raise InputError(
                    f"values must be n x m = {len(a)} x {len(f)} for {len(a)} designs and "
                    f"{len(f)} devices, got {yy.shape}"
                )
            return a, f, check_targets(yy, positive=positive, what="values")
        if yy.ndim != 1 or len(yy) != len(a) or len(f) != len(a):
            raise InputError(
                "per-row fitting needs n designs, n x G device features and n values; got "
                f"{len(a)}, {len(f)} and shape {yy.shape}"
            )
        yy = check_targets(yy, positive=positive, what="values")
        devs, dev_idx = np.unique(f, axis=0, return_inverse=True)
        archs, arch_idx = np.unique(a, axis=0, return_inverse=True)
        wide = np.full((len(archs), len(devs)), np.nan)
        wide[arch_idx.reshape(-1), dev_idx.reshape(-1)] = yy
        return archs, devs, wide


def predictor_classes() -> dict[str, type[Persistable]]:
    """Every predictor class known to :meth:`Persistable.from_bytes`, by class name."""
    return dict(_CLASSES)


__all__ = [
    "ARTIFACT_KIND",
    "FORMAT",
    "DevicePredictor",
    "EnsembleMixin",
    "Persistable",
    "Predictor",
    "TargetEnsemble",
    "check_targets",
    "dump_payload",
    "fingerprint",
    "git_commit",
    "load_payload",
    "predictor_classes",
    "to_numpy",
]
