"""The calibrated blend of proxies for one target (:class:`ProxyBlend`).

For each proxy ``j`` the target's log value is modelled as a calibrated copy of the proxy's
prediction, ``log y(x) = a_j + b_j log p_j(x) + ε`` with ``ε ~ N(0, noise²)`` and
``b_j ~ N(1, slope_sd²)``. The posterior weights of the proxies (their evidence on the measured
designs, times a prior) give a Bayesian model average: a calibrated prediction of the target's
latency in its own units with a spread, refitted after every measurement. It starts the
bisection near the right ``L'`` and tells the guided search how likely a candidate is to meet
the budget. :class:`~fleetnas.proxy.pool.ProxyPool` builds blends over its proxies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fleetnas.errors import InputError
from fleetnas.predict.metrics import kendall_tau_b


def mixture_moments(
    weights: np.ndarray, means: np.ndarray, variances: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (per column) of the mixture whose ``k`` components have
    ``k x n`` ``means`` and ``variances`` and (unnormalized) ``weights``."""
    w = np.asarray(weights, dtype=float) / np.sum(weights)
    mu = w @ means
    v = w @ (variances + means**2) - mu**2
    return mu, np.sqrt(np.maximum(v, 1e-12))


@dataclass
class ProxyScore:
    """How well one proxy explains the target's measured designs (see the module docstring)."""

    name: str
    weight: float
    log_evidence: float
    spec_log_prior: float
    kendall: float
    slope: float
    intercept: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BlendConfig:
    """Parameters of the calibrated model (log units): candidate observation ``noise`` levels
    (each proxy is paired with every level and the evidence weighs them, so a proxy that fits
    badly widens its own predictive spread instead of staying confidently wrong), prior spread
    of the slope ``slope_sd`` around 1, of the intercept ``intercept_sd`` around 0 (vague), and
    the ``spec_temperature`` of the spec prior (``0`` turns it off); ``stack_bonus``: prior log
    weight added to proxies measured with the target's own runtime stack
    (:func:`fleetnas.proxy.pool.stack_of`), so a same-stack peer wins over a public device that
    fits the probes about as well."""

    noise: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)
    slope_sd: float = 0.35
    intercept_sd: float = 100.0
    spec_temperature: float = 3.0
    stack_bonus: float = 2.0

    def __post_init__(self) -> None:
        levels = np.atleast_1d(np.asarray(self.noise, dtype=float))
        self.noise = tuple(float(x) for x in levels)
        if (
            not len(levels)
            or np.any(levels <= 0)
            or min(self.slope_sd, self.intercept_sd) <= 0
            or self.spec_temperature < 0
            or self.stack_bonus < 0
        ):
            raise InputError(
                "blend parameters need noise levels, slope_sd, intercept_sd > 0 and "
                "spec_temperature, stack_bonus >= 0"
            )


class ProxyBlend:
    """Bayesian model average of ``log y = a_j + b_j log p_j(x) + ε`` over proxies ``j`` and
    noise levels.

    ``log_pred(archs) -> p x n`` log predictions of the ``p`` proxies; ``log_prior``: ``p``
    prior log weights (spec similarity). :meth:`fit` conditions on measured designs,
    :meth:`predict_log` gives the mixture's mean and standard deviation of ``log y``.
    """

    def __init__(
        self,
        names: Sequence[str],
        log_pred: Callable[[np.ndarray], np.ndarray],
        log_prior: np.ndarray | None = None,
        config: BlendConfig | None = None,
    ) -> None:
        self.names = list(names)
        if not self.names:
            raise InputError("a proxy blend needs at least one proxy")
        self.log_pred = log_pred
        p = len(self.names)
        self.log_prior = np.zeros(p) if log_prior is None else np.asarray(log_prior, float)
        if self.log_prior.shape != (p,):
            raise InputError(f"{p} proxies but {self.log_prior.shape} prior log weights")
        self.config = config or BlendConfig()
        c = self.config
        self._k = len(c.noise)
        self._s2 = np.tile(np.asarray(c.noise, dtype=float) ** 2, p)
        self._p0 = np.diag([1.0 / c.intercept_sd**2, 1.0 / c.slope_sd**2])
        self._m0 = np.array([0.0, 1.0])
        m = p * self._k
        self._mean = np.tile(self._m0, (m, 1))
        self._cov = np.tile(np.linalg.inv(self._p0), (m, 1, 1))
        self._lev = np.zeros(m)
        self._wm = np.repeat(np.exp(self.log_prior - self.log_prior.max()), self._k)
        self._wm /= self._wm.sum()
        self.n_obs = 0
        self._u = np.zeros((p, 0))
        self._y = np.zeros(0)

    @property
    def weights(self) -> np.ndarray:
        """``p`` posterior weights of the proxies (summed over noise levels)."""
        return self._wm.reshape(-1, self._k).sum(axis=1)

    @property
    def log_evidence(self) -> np.ndarray:
        """``p`` log marginal likelihoods of the proxies (averaged over noise levels)."""
        lev = self._lev.reshape(-1, self._k)
        top = lev.max(axis=1, keepdims=True)
        return (top + np.log(np.exp(lev - top).mean(axis=1, keepdims=True)))[:, 0]

    def _per_proxy(self, arr: np.ndarray) -> np.ndarray:
        """Model-level array -> the value of each proxy's most probable noise level."""
        best = self._wm.reshape(-1, self._k).argmax(axis=1)
        return arr.reshape(-1, self._k, *arr.shape[1:])[np.arange(len(best)), best]

    def fit(self, archs: np.ndarray, values: np.ndarray, u: np.ndarray | None = None) -> ProxyBlend:
        """Condition on ``n`` measured designs (``values`` > 0 in the target's units); ``u``:
        their ``p x n`` log predictions if already known."""
        y = np.log(np.asarray(values, dtype=float).reshape(-1))
        u = self.log_pred(archs) if u is None else np.asarray(u, dtype=float)
        self._u, self._y, self.n_obs = u, y, len(y)
        p, n = u.shape
        if n == 0:
            return self
        s2 = self._s2
        X = np.repeat(np.stack([np.ones((p, n)), u], axis=-1), self._k, axis=0)
        prec = self._p0[None] + np.einsum("mni,mnj->mij", X, X) / s2[:, None, None]
        self._cov = np.linalg.inv(prec)
        rhs = (self._p0 @ self._m0)[None] + np.einsum("mni,n->mi", X, y) / s2[:, None]
        self._mean = np.einsum("mij,mj->mi", self._cov, rhs)
        c0 = np.linalg.inv(self._p0)
        cy = s2[:, None, None] * np.eye(n)[None] + np.einsum("mni,ij,mkj->mnk", X, c0, X)
        r = y[None] - X @ self._m0
        _, logdet = np.linalg.slogdet(cy)
        quad = np.einsum("mn,mn->m", r, np.linalg.solve(cy, r[..., None])[..., 0])
        self._lev = -0.5 * (quad + logdet + n * np.log(2 * np.pi))
        lw = self._lev + np.repeat(self.log_prior, self._k)
        w = np.exp(lw - lw.max())
        self._wm = w / w.sum()
        return self

    def predict_log(
        self, archs: np.ndarray | None = None, u: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` of the target's log value at ``archs`` (or at designs with ``p x n``
        log predictions ``u``)."""
        u = self.log_pred(archs) if u is None else np.asarray(u, dtype=float)
        keep = self._wm > 1e-9 * self._wm.max()
        um = np.repeat(u, self._k, axis=0)[keep]
        a, b = self._mean[keep, 0:1], self._mean[keep, 1:2]
        mus = a + b * um
        cv = self._cov[keep]
        var = cv[:, 0, 0][:, None] + 2 * cv[:, 0, 1][:, None] * um + cv[:, 1, 1][:, None] * um**2
        var = var + self._s2[keep][:, None]
        return mixture_moments(self._wm[keep], mus, var)

    def predict(self, archs: np.ndarray) -> np.ndarray:
        """Calibrated prediction in the target's units (``exp`` of the mean log)."""
        return np.exp(self.predict_log(archs)[0])

    @property
    def top(self) -> int:
        """Index of the proxy with the largest weight."""
        return int(np.argmax(self.weights))

    def scores(self) -> list[ProxyScore]:
        """One :class:`ProxyScore` per proxy, by weight descending."""
        out = []
        coef = self._per_proxy(self._mean)
        weights, lev = self.weights, self.log_evidence
        for j, name in enumerate(self.names):
            tau = float("nan")
            if self.n_obs >= 2:
                tau = kendall_tau_b(self._u[j], self._y)
            out.append(
                ProxyScore(
                    name=name,
                    weight=float(weights[j]),
                    log_evidence=float(lev[j]),
                    spec_log_prior=float(self.log_prior[j]),
                    kendall=tau,
                    slope=float(coef[j, 1]),
                    intercept=float(coef[j, 0]),
                )
            )
        return sorted(out, key=lambda s: -s.weight)


__all__ = ["BlendConfig", "ProxyBlend", "ProxyScore", "mixture_moments"]
