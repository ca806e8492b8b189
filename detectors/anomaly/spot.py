"""SPOT: label-free extreme-value thresholds (Siffer et al., KDD 2017, "Anomaly detection in streams with
extreme value theory").

A calibration window sets an initial threshold t at a high quantile; the excesses over t (the peaks) are fitted
with a Generalized Pareto distribution; the probability of exceeding a value z is then
``(N_t / n) * GPD.sf(z - t)``, and the threshold for a risk q is ``z_q = t + σ/γ ((q n / N_t)^-γ - 1)``.
New peaks update the fit; values beyond the current alarm risk are not learned (an anomaly is not normal tail).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> s = Spot(n_init=500)
>>> for x in rng.exponential(1.0, 3000):
...     _ = s.surprise(float(x))
>>> 5.0 < s.threshold(1e-3) < 9.5   # exp(1): the 1e-3 quantile is ln(1000) = 6.9
True
>>> s.surprise(20.0) > 6          # far beyond: a tail probability below 1e-6
True
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

MAX_SURPRISE = 12.0  # -log10 of the smallest probability we report; beyond a bounded tail is "impossible"
GAMMA_CAP = 0.8   # a heavier fitted tail would make nothing surprising
GAMMA_FLOOR = 0.0  # no lighter than exponential: a short-tailed fit would call anything past its endpoint impossible


_NEG = np.geomspace(1e-3, 0.999, 24)  # theta grid below 0 (gamma < 0), as fractions of -1 / max(peak)
_POS = np.geomspace(1e-3, 1e3, 40)    # and above, in units of 1 / mean(peak)


class Spot:
    """Streaming peaks-over-threshold. ``surprise(x)`` returns -log10 P(X >= x) and learns x."""

    def __init__(self, n_init: int = 400, level: float = 0.95, learn_below: float = 1e-3, max_peaks: int = 2000):
        self.n_init = n_init
        self.level = level            # quantile of the calibration window giving the initial threshold t
        self.learn_below = learn_below  # values rarer than this are not learned as tail (0: learn every peak)
        self.max_peaks = max_peaks    # the tail follows the series: only the latest peaks are kept
        self.init: list[float] = []
        self.t = math.nan
        self.n = 0                    # observations since calibration began
        self.peaks: list[float] = []
        self.gamma = 0.0
        self.sigma = 1.0
        self._fitted_at = 0

    @property
    def ready(self) -> bool:
        return not math.isnan(self.t)

    def surprise(self, x: float) -> float:
        if not self.ready:
            self.init.append(x)
            if len(self.init) >= self.n_init:
                self._calibrate()
            return 0.0
        self.n += 1
        rate = max(len(self.peaks), 1) / self.n
        if x <= self.t:
            return -math.log10(rate) * (x / self.t if self.t > 0 else 0.0) if x > 0 else 0.0
        s = -math.log10(rate) - self._log10_sf(x - self.t)
        if self.learn_below <= 0 or s < -math.log10(self.learn_below):
            self.peaks.append(x - self.t)
            if len(self.peaks) > self.max_peaks:
                del self.peaks[: len(self.peaks) - self.max_peaks]
                self.n = int(len(self.peaks) / (1 - self.level))  # keep the exceedance rate of the kept peaks
            if len(self.peaks) >= max(self._fitted_at * 1.25, self._fitted_at + 8):
                self._fit()
        return min(s, MAX_SURPRISE)

    def threshold(self, q: float) -> float:
        """z_q: the value exceeded with probability q."""
        r = q * self.n / max(len(self.peaks), 1)
        if abs(self.gamma) < 1e-6:
            return self.t - self.sigma * math.log(r)
        return self.t + self.sigma / self.gamma * (r ** -self.gamma - 1)

    def _log10_sf(self, y: float) -> float:
        g, s = self.gamma, self.sigma
        if abs(g) < 1e-6:
            return -y / s / math.log(10)
        z = 1 + g * y / s
        if z <= 0:
            return -MAX_SURPRISE
        return -math.log10(z) / g

    def _calibrate(self) -> None:
        x = np.asarray(self.init)
        self.t = float(np.quantile(x, self.level))
        self.peaks = (x[x > self.t] - self.t).tolist()
        self.n = len(x)
        self.init = []
        self._fit()

    def _fit(self) -> None:
        """Maximum likelihood by the profile likelihood over theta = gamma / sigma (Grimshaw 1993): for a given
        theta the best gamma is mean(log(1 + theta y)), so one vectorised pass over a grid of theta finds it.
        Cheap and, unlike a general optimiser, never collapses on quantised data (many equal peaks)."""
        self._fitted_at = len(self.peaks)
        y = np.asarray(self.peaks)
        mean = float(y.mean()) if len(y) else 0.0
        floor = max(abs(self.t) * 0.05, 1e-9)
        top = float(y.max()) if len(y) else 0.0
        if len(y) < 8 or top <= float(y.min()) or mean <= 0:  # too few distinct peaks: an exponential tail
            self.gamma, self.sigma = 0.0, max(mean, floor)
            return
        theta = np.concatenate([-(1.0 - _NEG) / top, _POS / mean])
        g = np.log1p(np.outer(theta, y)).mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ll = np.log(theta / g) - 1.0 - g
        ll = np.where(np.isfinite(ll), ll, -np.inf)
        i = int(np.argmax(ll))
        if ll[i] > -math.log(mean) - 1.0:  # beats the exponential (theta -> 0)
            gamma, sigma = float(g[i]), float(g[i] / theta[i])
        else:
            gamma, sigma = 0.0, mean
        # a short tail (gamma < 0) is read as exponential with the fitted scale: it errs towards less surprise
        self.gamma, self.sigma = min(max(gamma, GAMMA_FLOOR), GAMMA_CAP), max(sigma, floor)

    def state(self) -> dict[str, Any]:
        return {"init": list(self.init), "t": self.t, "n": self.n, "peaks": list(self.peaks),
                "gamma": self.gamma, "sigma": self.sigma, "fitted_at": self._fitted_at}

    def restore(self, st: dict[str, Any]) -> None:
        self.init, self.t, self.n = list(st["init"]), float(st["t"]), int(st["n"])
        self.peaks, self.gamma, self.sigma = list(st["peaks"]), float(st["gamma"]), float(st["sigma"])
        self._fitted_at = int(st["fitted_at"])
