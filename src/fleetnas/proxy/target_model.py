"""Approach 1's model of one target device, fitted on everything measured there.

The proxy blend (:class:`~fleetnas.proxy.pool.ProxyBlend`) calibrates each pool proxy to the
target with two numbers, ``log y = a_j + b_j log p_j(x) + ε``: right where the target ranks
designs like some proxy, wrong where no proxy of the pool does (another runtime stack, another
family). :class:`TargetModel` adds what the target itself has shown: a Gaussian-process residual
over the design's encoding (and its pool-mean latency), so measured designs correct the
prediction of designs like them,

    log y(x) = a_j + b_j log p_j(x) + g(x) + ε,   g ~ GP(0, s² k(x, x')),   ε ~ N(0, σ²),

with ``(a_j, b_j)`` integrated out under the blend's prior (a GP with an explicit linear basis,
Rasmussen & Williams 2006, sec. 2.7). Every ``(proxy j, noise σ, residual scale s)`` is one model
weighed by its evidence on all measured designs (times the spec prior and a bonus for proxies of
the target's own runtime stack); ``s = 0`` is the blend itself. When the pool fits the target's
measurements poorly the evidence moves to a larger ``σ`` or ``s``, so the predictive spread
widens by itself, and the GP's correction grows with every measurement near the budget.

``log_pred(archs)`` returns the model's inputs of the designs (the pool's log predictions, the
encoding, the pool-mean log latency, one column per design), so a search can compute them once
for its candidates and pass slices to :meth:`predict_log` (the interface of ``ProxyBlend`` that
:func:`~fleetnas.proxy.guided.guided_search` uses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from fleetnas.errors import InputError
from fleetnas.proxy.blend import ProxyScore, mixture_moments

if TYPE_CHECKING:
    from fleetnas.devices import Device
    from fleetnas.proxy.pool import ProxyPool
    from fleetnas.spaces import SearchSpace


@dataclass
class TargetModelConfig:
    """Parameters (log units). ``noise``: observation noise levels σ; ``residual``: GP residual
    scales s (``0`` = the blend alone); ``length``: the kernel's length scale over the share of
    decisions two designs differ in; ``latency_scale``: how many pool-mean standard deviations of
    log latency count as one such unit; ``slope_sd``/``intercept_sd``: prior of ``(a_j, b_j)``
    around ``(0, 1)``; ``spec_temperature``: the spec prior (``0``: off); ``stack_bonus``: prior
    log weight added to proxies measured on the target's own runtime stack."""

    noise: tuple[float, ...] = (0.03, 0.1, 0.2, 0.4)
    residual: tuple[float, ...] = (0.0, 0.1, 0.3)
    length: float = 0.5
    latency_scale: float = 1.0
    slope_sd: float = 0.35
    intercept_sd: float = 100.0
    spec_temperature: float = 3.0
    stack_bonus: float = 2.0

    def __post_init__(self) -> None:
        self.noise = tuple(float(x) for x in np.atleast_1d(self.noise))
        self.residual = tuple(float(x) for x in np.atleast_1d(self.residual))
        if (
            not self.noise
            or min(self.noise) <= 0
            or not self.residual
            or min(self.residual) < 0
            or min(self.length, self.latency_scale, self.slope_sd, self.intercept_sd) <= 0
            or self.spec_temperature < 0
            or self.stack_bonus < 0
        ):
            raise InputError(
                "target model parameters need noise > 0, residual >= 0, length, latency_scale, "
                "slope_sd, intercept_sd > 0 and spec_temperature, stack_bonus >= 0"
            )


class TargetModel:
    """See the module docstring. ``pool``: the proxies (target left out); ``space``: encodes the
    designs; ``target``: the target's record (spec and stack priors); ``reference``: ``n x D``
    designs over which the pool-mean latency is standardized (default: the first batch seen)."""

    def __init__(
        self,
        pool: ProxyPool,
        space: SearchSpace,
        target: Device | None = None,
        config: TargetModelConfig | None = None,
        metric: str = "latency",
        reference: np.ndarray | None = None,
    ) -> None:
        if len(pool) == 0:
            raise InputError("the target model needs at least one proxy")
        self.pool, self.space, self.metric = pool, space, metric
        self.config = c = config or TargetModelConfig()
        self.names = pool.names
        prior = pool.spec_log_prior(target, c.spec_temperature)
        self.log_prior = prior + pool.stack_log_prior(target, c.stack_bonus)
        self._p = len(self.names)
        self._f = int(space.n_decisions)
        self._pairs = [(sg, s) for s in c.residual for sg in c.noise]
        self._p0 = np.diag([1.0 / c.intercept_sd**2, 1.0 / c.slope_sd**2])
        self._m0 = np.array([0.0, 1.0])
        self._z: tuple[float, float] | None = None
        self.n_obs = 0
        self._fitted = False
        # model-level weights over (proxy, pair), flattened proxy-major
        lw = np.repeat(self.log_prior, len(self._pairs))
        self._wm = np.exp(lw - lw.max())
        self._wm /= self._wm.sum()
        self._lev = np.zeros(self._p * len(self._pairs))
        if reference is not None and len(reference):
            m = pool.log_predictions(space.check(reference), metric).mean(axis=0)
            self._z = (float(m.mean()), float(m.std()) or 1.0)

    # ---- inputs --------------------------------------------------------------------------------
    def log_pred(self, archs: np.ndarray) -> np.ndarray:
        """``(p + F + 1) x n`` model inputs: the pool's log predictions, the encoding, the
        pool-mean log prediction standardized (over the first batch seen)."""
        a = self.space.check(archs)
        u = self.pool.log_predictions(a, self.metric)
        e = np.asarray(self.space.encode(a), dtype=float).T
        m = u.mean(axis=0)
        if self._z is None:
            self._z = (float(m.mean()), float(m.std()) or 1.0)
        z = (m - self._z[0]) / (self._z[1] * self.config.latency_scale)
        return np.vstack([u, e, z[None]])

    def _split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = self._p
        return x[:p], x[p:-1], x[-1]

    def _kernel(self, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
        _, ea, za = self._split(xa)
        _, eb, zb = self._split(xb)
        ham = ((ea * ea).sum(0)[:, None] + (eb * eb).sum(0)[None] - 2 * ea.T @ eb) / (2.0 * self._f)
        d2 = np.maximum(ham, 0.0) + (za[:, None] - zb[None]) ** 2
        return np.exp(-0.5 * d2 / self.config.length**2)

    # ---- fit -----------------------------------------------------------------------------------
    def fit(
        self, archs: np.ndarray, values: np.ndarray, u: np.ndarray | None = None
    ) -> TargetModel:
        """Condition on ``n`` measured designs (``values`` > 0, the target's units)."""
        y = np.log(np.asarray(values, dtype=float).reshape(-1))
        x = self.log_pred(archs) if u is None else np.asarray(u, dtype=float)
        n = len(y)
        self._x, self._y, self.n_obs = x, y, n
        if n == 0:
            return self
        up = x[: self._p]
        K = self._kernel(x, x)
        H = np.stack([np.ones((self._p, n)), up], axis=-1)  # p x n x 2
        p0i = np.linalg.inv(self._p0)
        self._fit = []
        lev = np.zeros((self._p, len(self._pairs)))
        for c, (sg, s) in enumerate(self._pairs):
            Ky = sg**2 * np.eye(n) + s**2 * K
            Ki = np.linalg.inv(Ky)
            _, ld_ky = np.linalg.slogdet(Ky)
            KiH = np.einsum("ab,pbk->pak", Ki, H)  # p x n x 2
            A = self._p0[None] + np.einsum("pak,pal->pkl", H, KiH)
            Ai = np.linalg.inv(A)
            rhs = np.einsum("pak,a->pk", KiH, y) + (self._p0 @ self._m0)[None]
            beta = np.einsum("pkl,pl->pk", Ai, rhs)
            r0 = y[None] - H @ self._m0  # p x n
            Kir0 = r0 @ Ki  # p x n
            t = np.einsum("pak,pa->pk", KiH, r0)
            quad = np.einsum("pa,pa->p", r0, Kir0) - np.einsum("pk,pkl,pl->p", t, Ai, t)
            _, ld_a = np.linalg.slogdet(A)
            logdet = ld_ky + np.linalg.slogdet(p0i)[1] + ld_a
            lev[:, c] = -0.5 * (quad + logdet + n * np.log(2 * np.pi))
            resid = y[None] - np.einsum("pak,pk->pa", H, beta)
            alpha = resid @ Ki  # p x n
            self._fit.append((sg, s, Ki, Ai, beta, alpha))
        self._lev = lev.reshape(-1)
        lw = self._lev + np.repeat(self.log_prior, len(self._pairs))
        w = np.exp(lw - lw.max())
        self._wm = w / w.sum()
        self._fitted = True
        return self

    # ---- predict -------------------------------------------------------------------------------
    def predict_log(
        self, archs: np.ndarray | None = None, u: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` of the target's log value at ``archs`` (or at model inputs ``u``)."""
        x = self.log_pred(archs) if u is None else np.asarray(u, dtype=float)
        up = x[: self._p]
        n_c = x.shape[1]
        P = len(self._pairs)
        wm = self._wm.reshape(self._p, P)
        keep = wm > 1e-6 * wm.max()
        mus, vars_, ws = [], [], []
        if not self._fitted:
            c = self.config
            for j in range(self._p):
                for k, (sg, s) in enumerate(self._pairs):
                    if not keep[j, k]:
                        continue
                    mus.append(up[j])
                    vars_.append(c.intercept_sd**2 + (c.slope_sd * up[j]) ** 2 + sg**2 + s**2)
                    ws.append(wm[j, k])
        else:
            Ks = self._kernel(x, self._x)  # n_c x n
            Hx = self._x[: self._p]
            for k, (sg, s, Ki, Ai, beta, alpha) in enumerate(self._fit):
                js = np.flatnonzero(keep[:, k])
                if not len(js):
                    continue
                ks = s**2 * Ks
                V = Ki @ ks.T  # n x n_c
                kvk = np.einsum("ca,ac->c", ks, V)
                for j in js:
                    hs = np.stack([np.ones(n_c), up[j]])  # 2 x n_c
                    Hj = np.stack([np.ones(self.n_obs), Hx[j]], axis=1)  # n x 2
                    mu = beta[j] @ hs + ks @ alpha[j]
                    R = hs - Hj.T @ V
                    var = s**2 + sg**2 - kvk + np.einsum("kc,kl,lc->c", R, Ai[j], R)
                    mus.append(mu)
                    vars_.append(np.maximum(var, sg**2))
                    ws.append(wm[j, k])
        return mixture_moments(np.asarray(ws), np.stack(mus), np.stack(vars_))

    def predict(self, archs: np.ndarray) -> np.ndarray:
        """Prediction in the target's units (``exp`` of the mean log)."""
        return np.exp(self.predict_log(archs)[0])

    # ---- reporting -----------------------------------------------------------------------------
    @property
    def weights(self) -> np.ndarray:
        """``p`` posterior weights of the proxies."""
        return self._wm.reshape(self._p, -1).sum(axis=1)

    @property
    def residual_weight(self) -> float:
        """Posterior weight of the models with a GP residual (how much the pool needed help)."""
        s = np.array([s for _, s in self._pairs])
        return float(self._wm.reshape(self._p, -1)[:, s > 0].sum())

    @property
    def noise(self) -> float:
        """Posterior mean observation noise σ (log units): large when the pool fits poorly."""
        sg = np.array([sg for sg, _ in self._pairs])
        return float((self._wm.reshape(self._p, -1) * sg[None]).sum())

    @property
    def top(self) -> int:
        return int(np.argmax(self.weights))

    def scores(self) -> list[ProxyScore]:
        """One :class:`~fleetnas.proxy.pool.ProxyScore` per proxy, by weight descending."""
        out = []
        w = self.weights
        lev = self._lev.reshape(self._p, -1)
        top = lev.max(axis=1, keepdims=True)
        lev_m = (top + np.log(np.exp(lev - top).mean(axis=1, keepdims=True)))[:, 0]
        wm = self._wm.reshape(self._p, -1)
        for j, name in enumerate(self.names):
            tau = slope = icpt = float("nan")
            if self._fitted and self.n_obs >= 2:
                tau = float(stats.kendalltau(self._x[j], self._y)[0])
            if self._fitted:
                k = int(np.argmax(wm[j]))
                icpt, slope = (float(v) for v in self._fit[k][4][j])
            out.append(
                ProxyScore(
                    name=name,
                    weight=float(w[j]),
                    log_evidence=float(lev_m[j]),
                    spec_log_prior=float(self.log_prior[j]),
                    kendall=tau,
                    slope=slope,
                    intercept=icpt,
                )
            )
        return sorted(out, key=lambda s: -s.weight)


__all__ = ["TargetModel", "TargetModelConfig"]
