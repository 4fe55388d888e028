"""Device-aware latency/energy predictor ``f(x; d)`` trained across many devices (Sec. 5.2).

Model. An MLP ensemble (the *trunk*) learns, from the training devices' measurements, the
standardized log-latency profile ``z_j(x)`` of every training device ``j`` and, with
``flops_profile``, the standardized log-FLOPs of the design (a free, device-agnostic profile
that FLOP-bound accelerators follow closely). A new device's standardized log-latency is a
Gaussian process over designs whose kernel is built from those learned profiles and from the
design encoding ``e(x)`` (centered one-hot)::

    k(x, x') = a^2 z(x).z(x') / m  +  c^2 e(x).e(x') / D  +  1

i.e. a Bayesian linear model in which the new device is a weighted mix of the training devices
(first term, the prior learned from the fleet) plus per-choice corrections the fleet has not
seen (second term). A device is described by its latencies on ``K`` fixed probe designs (HELP's
reference architectures by default); adapting to a new device is the closed-form posterior
given those ``K`` values (no gradient steps; about a millisecond per device once a candidate
set's trunk outputs are cached) and the device features *are* the ``K`` probe values, so
``Latency(x; d)`` is one differentiable function of (design encoding, device features), as
Method 2 needs.

Device features (``features``):

- ``"probes"``: the ``K`` measured probe values (ms, or any positive metric), ``G = K``.
- ``"spec"``: catalog spec features only (zero measurements): the profile is the mix of the
  training devices' profiles weighted by spec similarity (softmax of the negative mean squared
  distance between standardized ``sign(s) log(1 + |s|)`` spec vectors), and the log-level and
  log-spread come from a ridge fit on the training devices' specs.
- ``"both"``: ``[probes ; spec]``; the spec-weighted profile is the GP's prior mean and the
  probes correct it.

Members of the trunk ensemble give a spread; the GP gives its posterior variance; both are
combined in :meth:`DeviceAwarePredictor.predict_dist`.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import torch
from torch import nn

from fleetnas.errors import InputError, NotFittedError
from fleetnas.predict._nn import ensemble_from_state, ensemble_state, fit_ensemble
from fleetnas.predict.base import DevicePredictor, fingerprint, to_numpy
from fleetnas.predict.interval import IntervalCalibration, probe_misfit
from fleetnas.spaces import SearchSpace

FEATURE_MODES = ("probes", "spec", "both")
#: Floor on a device's probe log-spread: a device whose probes are all equal predicts flat.
_MIN_SPREAD = 1e-3
#: Design batches whose device-independent terms :meth:`DeviceAwarePredictor._design_terms` keeps.
CACHED_BATCHES = 4


class DeviceAwarePredictor(DevicePredictor):
    """``Latency(x; d)`` / ``Energy(x; d)``: fleet-trained trunk + probe-conditioned GP head.

    ``probes``: the ``K x D`` probe designs (required for ``features`` ``"probes"``/``"both"``;
    with ``"spec"`` they are still used internally and default to none, in which case the
    first ``K=10`` training designs serve). ``trunk_scale``, ``encoding_scale`` and ``noise``
    are the kernel's ``a``, ``c`` and observation noise (standardized log units).
    """

    name = "device-aware"
    #: A device needs this many measured designs to enter training.
    min_per_device = 10

    def __init__(
        self,
        space: SearchSpace | str,
        probes: Sequence[Sequence[int]] | np.ndarray | None = None,
        features: str = "probes",
        hidden: Sequence[int] = (128, 128),
        n_members: int = 5,
        epochs: int = 60,
        batch_size: int = 256,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        trunk_scale: float = 2.0,
        encoding_scale: float = 0.3,
        noise: float = 0.3,
        spec_temperature: float = 1.0,
        flops_profile: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(space)
        if features not in FEATURE_MODES:
            raise InputError(
                f"features must be one of {', '.join(FEATURE_MODES)}, got {features!r}"
            )
        if probes is None and features != "spec":
            raise InputError(f"features={features!r} needs the probe designs (probes=K x D)")
        self.probes = None if probes is None else self.space.check(probes).tolist()
        if self.probes is not None and len(self.probes) < 2:
            raise InputError(f"need at least 2 probe designs, got {len(self.probes)}")
        self.features = features
        self.hidden = [int(h) for h in hidden]
        self.n_members = int(n_members)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.trunk_scale = float(trunk_scale)
        self.encoding_scale = float(encoding_scale)
        self.noise = float(noise)
        self.spec_temperature = float(spec_temperature)
        self.flops_profile = bool(flops_profile)
        self.seed = int(seed)
        if min(self.trunk_scale, self.encoding_scale) < 0 or self.noise <= 0:
            raise InputError("kernel scales must be >= 0 and noise > 0")

    # ---- shapes ---------------------------------------------------------------------------
    @property
    def n_probes(self) -> int:
        return 0 if self.probes is None else len(self.probes)

    @property
    def n_device_features(self) -> int:
        if self.features == "probes":
            return self.n_probes
        if not self._fitted:
            raise NotFittedError(
                f"DeviceAwarePredictor(features={self.features!r}) learns its spec width in fit()"
            )
        return self._width

    # ---- fitting --------------------------------------------------------------------------
    def fit(self, X: np.ndarray, device_feats: np.ndarray, y: np.ndarray) -> Self:
        """Train on all (design, device) values of the training devices.

        ``device_feats``: ``m x G`` with ``y`` ``n x m``, or ``n x G`` with ``y`` ``n``.
        """
        f = np.asarray(device_feats, dtype=float)
        k = self.n_probes if self.features != "spec" else 0
        if self.features == "probes":
            width = k
        elif f.ndim == 2 and f.shape[1] > k:
            width = f.shape[1]
        else:
            raise InputError(
                f"device features for features={self.features!r} must be a 2-D array with "
                f"{k} probe columns followed by at least one spec column, got shape {f.shape}"
            )
        a, feats, Y = self._wide(X, f, y, positive=True, width=width)
        if len(feats) < 2:
            raise InputError(f"device-aware training needs at least 2 devices, got {len(feats)}")
        counts = np.isfinite(Y).sum(axis=0)
        if counts.min() < self.min_per_device:
            j = int(np.argmin(counts))
            raise InputError(
                f"device row {j} has {int(counts[j])} measured designs; each training device "
                f"needs at least {self.min_per_device}"
            )
        self._n_spec = width - k
        self._width = width
        _, spec = self._split_feats(feats)
        logy = np.log(Y)
        mu = np.nanmean(logy, axis=0)
        sd = np.nanstd(logy, axis=0)
        sd = np.where(sd > _MIN_SPREAD, sd, 1.0)
        z = (logy - mu) / sd
        self._n_extra = 0
        if self.flops_profile:
            lf = np.log(np.maximum(self.space.flops(a), 1.0))
            z = np.c_[z, (lf - lf.mean()) / max(lf.std(), _MIN_SPREAD)]
            self._n_extra = 1
        enc = self.space.encode(a)
        self._enc_mean = enc.mean(axis=0).astype(np.float32)
        self._net, history = fit_ensemble(self, enc, z)
        self._probe_archs = (
            self.space.check(self.probes) if self.probes is not None else a[: min(10, len(a))]
        )
        self._prepare_head()
        self._calibration = None
        if spec is not None:
            self._fit_spec(spec, mu, sd)
        self._mark_fitted(
            data_fingerprint=fingerprint(a, feats, np.nan_to_num(Y, nan=-1.0)),
            n_train=int(np.isfinite(Y).sum()),
            n_devices=len(feats),
            n_designs=len(a),
            final_loss=history[-1],
        )
        return self

    def _prepare_head(self) -> None:
        """Cache the probes' trunk outputs and the inverse probe kernel per member."""
        self._cache = None
        enc_p = self.space.encode(self._probe_archs)
        with torch.no_grad():
            zp = self._net(torch.as_tensor(enc_p)).numpy().astype(np.float64)
        self._zp = zp
        self._ep = enc_p.astype(np.float64) - self._enc_mean
        kpp = self._kernel(zp, zp, self._ep, self._ep)
        eye = np.eye(kpp.shape[-1])[None]
        self._kinv = np.linalg.inv(kpp + self.noise**2 * eye)

    def _kernel(self, za: np.ndarray, zb: np.ndarray, ea: np.ndarray, eb: np.ndarray) -> np.ndarray:
        """``M x a x b`` kernel between designs with trunk outputs ``za``/``zb`` (``M x . x m``)
        and centered encodings ``ea``/``eb``."""
        m = za.shape[-1]
        trunk = za @ zb.transpose(0, 2, 1) * (self.trunk_scale**2 / m)
        enc = ea @ eb.T * (self.encoding_scale**2 / self.space.n_decisions)
        return trunk + enc[None] + 1.0

    def _design_terms(self, a: np.ndarray) -> tuple[np.ndarray, ...]:
        """Trunk outputs, centered encodings, kernel to the probes and prior variance of the
        designs ``a``. They do not depend on the device, so the last :data:`CACHED_BATCHES`
        batches are kept: a fleet queries the same few candidate sets (the whole space, a
        front, the measured designs) for every device."""
        key = hashlib.blake2b(a.tobytes(), digest_size=16).hexdigest() + str(a.shape)
        cache = getattr(self, "_cache", None)
        if cache is None:
            cache = self._cache = OrderedDict()
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        enc = self.space.encode(a)
        with torch.no_grad():
            zx = self._net(torch.as_tensor(enc)).numpy().astype(np.float64)
        ex = enc.astype(np.float64) - self._enc_mean
        kxp = self._kernel(zx, self._zp, ex, self._ep)
        prior = self._prior_var(zx, ex)
        post = prior - np.einsum("mnk,mkl,mnl->mn", kxp, self._kinv, kxp)
        terms = (zx, kxp, prior, post)
        cache[key] = terms
        while len(cache) > CACHED_BATCHES:
            cache.popitem(last=False)
        return terms

    def clear_cache(self) -> None:
        """Forget the cached design terms."""
        self._cache = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": None}  # the cache is rebuilt where it is used

    def _prior_var(self, zx: np.ndarray, ex: np.ndarray) -> np.ndarray:
        """``M x n`` prior variance ``k(x, x)``."""
        m = zx.shape[-1]
        enc = (ex**2).sum(axis=-1) * (self.encoding_scale**2 / self.space.n_decisions)
        return (zx**2).sum(axis=-1) * (self.trunk_scale**2 / m) + enc[None] + 1.0

    def _fit_spec(self, spec: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> None:
        s = _log_spec(spec)
        self._spec_center = s.mean(axis=0)
        scale = s.std(axis=0)
        self._spec_scale = np.where(scale > 1e-9, scale, 1.0)
        st = (s - self._spec_center) / self._spec_scale
        self._spec_train = st
        design = np.c_[st, np.ones(len(st))]
        ridge = np.eye(design.shape[1])
        ridge[-1, -1] = 0.0
        rhs = design.T @ np.c_[mu, np.log(sd)]
        self._spec_coef = np.linalg.solve(design.T @ design + ridge, rhs)

    # ---- prediction -----------------------------------------------------------------------
    def _split_feats(self, feats: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        k = self.n_probes if self.features != "spec" else 0
        probes = feats[:, :k] if self.features != "spec" else None
        spec = feats[:, k:] if self.features != "probes" else None
        if probes is not None and (probes <= 0).any():
            r, c = map(int, np.argwhere(probes <= 0)[0])
            raise InputError(
                f"probe value {c} of device row {r} is {probes[r, c]:g}; probe values must be "
                "positive"
            )
        return probes, spec

    def _spec_prior(self, spec: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For ``r`` spec rows: weights over training devices ``r x m``, log-level ``r`` and
        log-spread ``r`` over the design space."""
        st = (_log_spec(spec) - self._spec_center) / self._spec_scale
        d2 = ((st[:, None, :] - self._spec_train[None]) ** 2).mean(axis=-1)
        logits = -d2 / max(self.spec_temperature, 1e-9)
        w = np.exp(logits - logits.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        lvl = np.c_[st, np.ones(len(st))] @ self._spec_coef
        w = np.c_[w, np.zeros((len(w), self._n_extra))]
        return w, lvl[:, 0], np.exp(lvl[:, 1])

    def predict_dist(
        self, X: np.ndarray, device_feats: np.ndarray, paired: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` in the metric's units: ``n x m`` (or ``n`` with ``paired``).

        The mean is the geometric mean of the members' posterior means; the spread combines
        the GP posterior variance and the members' disagreement (log space, delta method).
        """
        self._require_fitted()
        f = self._check_feats(device_feats, width=self._width)
        a = self.space.check(X)
        if paired and len(f) != len(a):
            raise InputError(f"paired prediction needs {len(a)} device rows, got {len(f)}")
        probes, spec = self._split_feats(f)
        zx, kxp, var, post_var = self._design_terms(a)

        # Prior mean (standardized units) at x (M x n x r or M x n) and at the probes (M x K x r).
        if spec is not None:
            w, lvl, spread = self._spec_prior(spec)
            prior_p = np.einsum("mkj,rj->mkr", self._zp, w)
            prior_x = np.einsum("mnj,nj->mn" if paired else "mnj,rj->mnr", zx, w)
        if probes is None:
            mean_std = prior_x
        else:
            lp = np.log(probes).T
            lvl = lp.mean(axis=0)
            spread = np.maximum(lp.std(axis=0), _MIN_SPREAD)
            t = ((lp - lvl) / spread)[None]
            if spec is not None:
                p_mu = prior_p.mean(axis=1, keepdims=True)
                p_sd = np.maximum(prior_p.std(axis=1, keepdims=True), _MIN_SPREAD)
                t = t - (prior_p - p_mu) / p_sd
                if paired:
                    prior_x = (prior_x - p_mu[:, 0, :]) / p_sd[:, 0, :]
                else:
                    prior_x = (prior_x - p_mu) / p_sd
            alpha = self._kinv @ t
            mean_std = np.einsum("mnk,mkn->mn", kxp, alpha) if paired else kxp @ alpha
            if spec is not None:
                mean_std = mean_std + prior_x
            var = post_var
        var = np.maximum(var, 0.0).mean(axis=0)
        if paired:
            log_members = lvl[None] + spread[None] * mean_std
            var_log = var * spread**2
        else:
            log_members = lvl[None, None] + spread[None, None] * mean_std
            var_log = var[:, None] * spread[None] ** 2
        mean = np.exp(log_members.mean(axis=0))
        return mean, mean * np.sqrt(var_log + log_members.var(axis=0))

    # ---- intervals ------------------------------------------------------------------------
    @property
    def calibration(self) -> IntervalCalibration | None:
        """The interval calibration (:mod:`fleetnas.predict.interval`), or ``None``."""
        return getattr(self, "_calibration", None)

    def set_calibration(self, calibration: IntervalCalibration | None) -> Self:
        """Attach an interval calibration (kept with the predictor when it is saved)."""
        self._calibration = calibration
        return self

    def predict_interval(
        self, X: np.ndarray, device_feats: np.ndarray, level: float = 0.9, paired: bool = False
    ) -> dict[str, np.ndarray]:
        """``mean``, ``lower``, ``upper`` (central interval at ``level``) and ``scale`` (the
        score's normalizer ``s(x, d)``, log units) in :meth:`predict_dist`'s shape."""
        cal = self._need_calibration()
        mean, s = self.log_scale(X, device_feats, paired)
        lo, hi = cal.central(level)
        return {"mean": mean, "lower": mean * np.exp(lo * s), "upper": mean * np.exp(hi * s),
                "scale": s}  # fmt: skip

    def log_scale(
        self, X: np.ndarray, device_feats: np.ndarray, paired: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, s)``: the prediction and the calibrated score normalizer
        ``sqrt(σ^2 + (β misfit)^2)`` in log units."""
        cal = self._need_calibration()
        f = self._check_feats(device_feats, width=self._width)
        mean, std = self.predict_dist(X, f, paired)
        mis = probe_misfit(self, f)
        sigma = std / np.maximum(mean, 1e-300)
        return mean, cal.scale(sigma, mis if paired else mis[None, :])

    def exceed_probability(
        self, X: np.ndarray, device_feats: np.ndarray, budget: Any, paired: bool = True
    ) -> np.ndarray:
        """Calibrated probability that the true value exceeds ``budget`` (broadcast to the
        prediction's shape)."""
        mean, s = self.log_scale(X, device_feats, paired)
        b = np.broadcast_to(np.asarray(budget, dtype=float), mean.shape)
        return self._need_calibration().exceed(np.log(b / mean) / s)

    def _need_calibration(self) -> IntervalCalibration:
        self._require_fitted()
        cal = self.calibration
        if cal is None:
            raise NotFittedError(
                "this device-aware predictor has no interval calibration; calibrate it on "
                "held-out devices (fleetnas.predict.interval) first"
            )
        return cal

    # ---- probes ---------------------------------------------------------------------------
    def profile(self, X: np.ndarray) -> np.ndarray:
        """``n`` mean standardized log-latency over the training devices and members: a
        device-agnostic cost score of each design."""
        self._require_fitted()
        enc = torch.as_tensor(self.space.encode(self.space.check(X)))
        with torch.no_grad():
            return self._net(enc).mean(dim=(0, 2)).numpy().astype(float)

    def suggest_probes(self, candidates: np.ndarray, k: int = 10) -> np.ndarray:
        """``k x D`` probe designs from ``candidates``: the designs at the ``(i + 1/2) / k``
        quantiles of :meth:`profile`, so the probes span the fleet's cost range."""
        a = self.space.check(candidates)
        if not 2 <= int(k) <= len(a):
            raise InputError(f"k must be in 2..{len(a)} (number of candidates), got {k}")
        order = np.argsort(self.profile(a), kind="stable")
        pos = ((np.arange(int(k)) + 0.5) / int(k) * len(a)).astype(int)
        return a[order[pos]]

    def with_kernel(
        self,
        trunk_scale: float | None = None,
        encoding_scale: float | None = None,
        noise: float | None = None,
    ) -> DeviceAwarePredictor:
        """A copy with other GP head parameters (``None`` keeps one); the trunk is shared, so
        choosing them on validation devices needs no retraining."""
        self._require_fitted()
        params = self.get_params()
        for key, value in (
            ("trunk_scale", trunk_scale),
            ("encoding_scale", encoding_scale),
            ("noise", noise),
        ):
            if value is not None:
                params[key] = float(value)
        twin = type(self)(self.space, **params)
        twin._set_state(self._get_state())
        twin._meta = self.meta
        twin._calibration = None  # calibrated for other kernel parameters or probes
        twin._fitted = True
        return twin

    def with_probes(self, probes: np.ndarray) -> DeviceAwarePredictor:
        """A copy that describes devices by their values on ``probes`` instead. The trunk does
        not depend on the probes, so nothing is retrained."""
        self._require_fitted()
        if self.features != "probes":
            raise InputError("with_probes() is defined for features='probes'")
        params = {**self.get_params(), "probes": self.space.check(probes).tolist()}
        twin = type(self)(self.space, **params)
        state = self._get_state()
        state["probe_archs"] = np.asarray(params["probes"], dtype=np.int64)
        state["width"] = len(params["probes"])
        twin._set_state(state)
        twin._meta = self.meta
        twin._calibration = None  # calibrated for other kernel parameters or probes
        twin._fitted = True
        return twin

    def torch_module(self) -> nn.Module:
        """``(encoding n x F, device_feats n x G) -> n`` predicted values (paired rows)."""
        self._require_fitted()
        if self.features != "probes":
            raise InputError(
                "the differentiable module is defined for features='probes' (device features "
                "= probe values); spec features enter through predict()"
            )
        return _ProbeGPModule(self)

    # ---- state ----------------------------------------------------------------------------
    def _get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "net": ensemble_state(self._net),
            "enc_mean": self._enc_mean,
            "probe_archs": self._probe_archs,
            "n_spec": int(self._n_spec),
            "n_extra": int(self._n_extra),
            "width": int(self._width),
        }
        if self.calibration is not None:
            c = self.calibration.to_dict()
            state["calibration"] = {**c, "quantiles": np.asarray(c["quantiles"]), "devices": ""}
            state["calibration"]["devices"] = "\n".join(c["devices"])
        if self.features != "probes":
            state["spec"] = {
                "center": self._spec_center,
                "scale": self._spec_scale,
                "train": self._spec_train,
                "coef": self._spec_coef,
            }
        return state

    def _set_state(self, state: dict[str, Any]) -> None:
        self._net = ensemble_from_state(state["net"])
        self._enc_mean = to_numpy(state["enc_mean"]).astype(np.float32)
        self._probe_archs = to_numpy(state["probe_archs"]).astype(np.int64)
        self._n_spec = int(state["n_spec"])
        self._n_extra = int(state.get("n_extra", 0))
        self._width = int(state["width"])
        if "spec" in state:
            s = state["spec"]
            self._spec_center = to_numpy(s["center"])
            self._spec_scale = to_numpy(s["scale"])
            self._spec_train = to_numpy(s["train"])
            self._spec_coef = to_numpy(s["coef"])
        self._calibration = None
        if "calibration" in state:
            c = dict(state["calibration"])
            c["quantiles"] = to_numpy(c["quantiles"])
            c["devices"] = [d for d in str(c["devices"]).split("\n") if d]
            self._calibration = IntervalCalibration.from_dict(c)
        self._prepare_head()


def _log_spec(spec: np.ndarray) -> np.ndarray:
    """Spec features as ``sign(s) log(1 + |s|)``: cores, GHz and GB/s span decades, and 0/1
    indicator features stay distinct."""
    s = np.asarray(spec, dtype=float)
    return np.sign(s) * np.log1p(np.abs(s))


class _ProbeGPModule(nn.Module):
    """Differentiable ``Latency(x; d)``: trunk ensemble + closed-form GP posterior mean."""

    def __init__(self, p: DeviceAwarePredictor) -> None:
        super().__init__()
        self.net = p._net
        self.register_buffer("zp", torch.as_tensor(p._zp, dtype=torch.float32))
        self.register_buffer("ep", torch.as_tensor(p._ep, dtype=torch.float32))
        self.register_buffer("kinv", torch.as_tensor(p._kinv, dtype=torch.float32))
        self.register_buffer("enc_mean", torch.as_tensor(p._enc_mean, dtype=torch.float32))
        self.a2 = p.trunk_scale**2
        self.c2 = p.encoding_scale**2
        self.d = p.space.n_decisions

    def forward(self, encoding: torch.Tensor, device_feats: torch.Tensor) -> torch.Tensor:
        enc = encoding.to(torch.float32)
        feats = device_feats.to(torch.float32)
        if feats.ndim == 1:
            feats = feats.expand(enc.shape[0], -1)
        zx = self.net(enc)
        ex = enc - self.enc_mean
        m = zx.shape[-1]
        kxp = zx @ self.zp.transpose(-1, -2) * (self.a2 / m)
        kxp = kxp + (ex @ self.ep.T * (self.c2 / self.d))[None] + 1.0
        lp = torch.log(feats)
        mu = lp.mean(dim=1, keepdim=True)
        sd = lp.std(dim=1, unbiased=False, keepdim=True).clamp_min(_MIN_SPREAD)
        t = (lp - mu) / sd
        alpha = torch.einsum("mkl,nl->mnk", self.kinv, t)
        z = (kxp * alpha).sum(dim=-1).mean(dim=0)
        return torch.exp(mu[:, 0] + sd[:, 0] * z)


__all__ = ["FEATURE_MODES", "DeviceAwarePredictor"]
