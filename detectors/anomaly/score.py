"""A label-free anomaly score for one series, strictly causal: each row's score uses only rows up to it.

Three families of causal statistics, each asking its own question of the newest reading:

- records (record.py): does the reading, or the mean of the last 5, lie beyond the whole range seen so far?
  Scored by the margin: 0.5 at 0.5 % of the range for a reading (2 % for the 5-mean), +0.1 per factor 10.
  Under white noise (i.i.d. readings) reading n is a record with probability 1/n, so in a long-running quiet
  series bare records are just noise. The scorer tracks how rough the series is - the mean step between
  readings against the mean deviation from the level, ~1 for white noise, far below 1 for a series that
  moves smoothly - and while it looks like noise (ratio >= ``rough``) a record counts only when it clears
  the range by ``wide`` robust sigmas (sigma / sqrt(5) for the 5-mean).
- tails (spot.py): how rare is its median-MAD z-score against the last ``window`` readings (spike), its step
  from the previous reading (jump), a two-sided CUSUM of the z-scores (a slow shift) and the mean |z| of the
  last ``persist`` readings (a sustained departure)? Each statistic has its own SPOT tail model, calibrated
  on the series itself (the first ``n_init`` rows), so none needs a scale from us; the surprise ``-log10 P``
  of the rarest, less log10 of the number of questions asked, scores ``surprise / 14``.
- time of day (seasonal.py), when readings carry timestamps: how far is the reading, and the mean over the
  last ``persist`` readings, from what this series read at this time of day on the previous days? Two more
  tail questions, asked once three days of history exist.

The row's score is the largest, in [0, 1]. FIRE_SCORE = 0.5 is the fixed, label-free alarm level. After a
row reaches it the scorer rests: the next ``rest`` rows score 0 (one alert per episode, not one per reading)
and the CUSUM restarts.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> x = 10 + rng.uniform(-1, 1, 2000)
>>> x[1500] = 25.0
>>> s = score(x)
>>> bool(s[1500] >= FIRE_SCORE), bool(s[1501:1621].max() == 0)  # fires, then rests
(True, True)
"""
from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from detectors.anomaly.cusum import Cusum
from detectors.anomaly.mad import RollingMad
from detectors.anomaly.record import Record
from detectors.anomaly.seasonal import Seasonal
from detectors.anomaly.spot import Spot

FIRE_SCORE = 0.5          # fixed in advance: the alarm level, and where the rest period starts
TAIL_SURPRISE = 14.0      # surprise (-log10 P) that scores 1.0; 0.5 is P = 1e-7
TAILS = ("spike", "jump", "shift")
SEASON_TAILS = ("season", "season_persist")
Z_CAP = 10.0              # |z| is capped at this in the running means, so one wild reading cannot carry them
SEASON_CAP = 30.0
SQRT2 = math.sqrt(2.0)
MAX_STREAK = 12.0


def _record_score(excess: float, margin: float) -> float:
    return 0.5 + 0.1 * math.log10(excess / margin) if excess > 0 else 0.0


class AnomalyScorer:
    """Streaming scorer of one series: ``score_one(x)`` scores the reading from the past, then learns it."""

    def __init__(self, window: int = 700, n_init: int = 300, rest: int = 120, cusum_k: float = 1.0,
                 warmup: int = 20, learn_below: float = 1e-3, margin: float = 0.005, margin_mean: float = 0.02,
                 smooth: int = 5, persist: int = 10, rough: float = 0.6, rough_span: int = 300,
                 wide: float = 1.25, season: bool = True, season_days: int = 7, streak: int = 1000):
        self.params = dict(window=window, n_init=n_init, rest=rest, cusum_k=cusum_k, warmup=warmup,
                           learn_below=learn_below, margin=margin, margin_mean=margin_mean, smooth=smooth,
                           persist=persist, rough=rough, rough_span=rough_span, wide=wide, season=season,
                           season_days=season_days, streak=streak)
        self.streak = streak  # window (readings) over which records are counted; 0: off
        self.rec_times: tuple[deque[int], deque[int]] = (deque(), deque())
        self.rough, self.rough_a, self.wide = rough, 1.0 / rough_span, wide
        self.ew_step = self.ew_dev = 0.0  # exponentially weighted mean |step| and mean |deviation from level|
        self.rest, self.warmup, self.margin, self.margin_mean = rest, warmup, margin, margin_mean
        self.mad = RollingMad(window)
        self.cusum = Cusum(cusum_k)
        self.tails = TAILS + (("persist",) if persist else ())
        self.zs: deque[float] = deque(maxlen=max(persist, 1))
        self.spots = {f: Spot(n_init=n_init, learn_below=learn_below) for f in self.tails}
        self.season = Seasonal(days=season_days) if season else None
        self.season_mad = RollingMad(window)
        self.season_zs: deque[float] = deque(maxlen=max(persist, 1))
        if season:
            self.spots.update({f: Spot(n_init=n_init, learn_below=learn_below) for f in SEASON_TAILS})
        self.n_questions = len(self.tails) + (len(SEASON_TAILS) if season else 0)
        self.record = Record()
        self.record_mean = Record()
        self.last: deque[float] = deque(maxlen=smooth)
        self.seen = 0
        self.resting = 0

    @property
    def calibrated(self) -> bool:
        return all(self.spots[f].ready for f in self.tails)

    def score_one(self, x: float, t: float | None = None) -> float:
        x = float(x)
        if not math.isfinite(x):
            return 0.0  # a missing reading is the stale detector's business, not an anomaly
        self.seen += 1
        self.last.append(x)
        mean = sum(self.last) / len(self.last)
        full = len(self.last) == self.last.maxlen
        out = 0.0
        if self.seen > self.warmup:
            z = self.mad.z(x)
            tails = {"spike": abs(z), "jump": abs(x - self.prev),
                     "shift": self.cusum.update(max(-3.0, min(3.0, z)))}
            if "persist" in self.spots:
                self.zs.append(min(abs(z), Z_CAP))
                tails["persist"] = sum(self.zs) / len(self.zs)
            ref = self.season.reference(t) if self.season is not None and t is not None else math.nan
            if not math.isnan(ref):
                zs = self.season_mad.z(x - ref)
                self.season_mad.learn(x - ref)
                self.season_zs.append(min(abs(zs), SEASON_CAP))
                tails["season"] = abs(zs)
                tails["season_persist"] = sum(self.season_zs) / len(self.season_zs)
            surprise = max(self.spots[f].surprise(v) for f, v in tails.items()) - math.log10(self.n_questions)
            a = self.rough_a
            self.ew_step += a * (abs(x - self.prev) - self.ew_step)
            self.ew_dev += a * (abs(x - self.mad.median) - self.ew_dev)
            # white noise steps as far as it deviates (E|x - x'| = sqrt 2 E|x - median| for a gaussian)
            noisy = self.ew_step >= self.rough * SQRT2 * self.ew_dev
            if self.streak:
                surprise = max(surprise, self._streak_surprise(x) - math.log10(self.n_questions))
            wide = self.wide * self.mad.scale
            rec = _record_score(self.record.update(x, wide, noisy), self.margin)
            recm = (_record_score(self.record_mean.update(mean, wide / math.sqrt(len(self.last)), noisy),
                                  self.margin_mean) if full else 0.0)
            out = max(surprise / TAIL_SURPRISE, rec, recm)
            out = min(max(out, 0.0), 1.0)
            if self.resting > 0:
                self.resting -= 1
                out = 0.0
            elif out >= FIRE_SCORE:
                self.resting = self.rest
                self.cusum.reset()
        self.mad.learn(x)
        if self.season is not None and t is not None:
            self.season.learn(t, x)
        if self.seen <= self.warmup:
            self.record.update(x)
            if full:
                self.record_mean.update(mean)
        self.prev = x
        return out

    def _streak_surprise(self, x: float) -> float:
        """How unlikely the count of records on one side over the last ``streak`` readings is under i.i.d.
        readings, where reading k is a record with probability 1/k, independently: a drift breaks records far
        more often than noise does."""
        r = self.record.range
        n = self.record.n
        best = 0.0
        for side, broke in enumerate((x > r.hi, x < r.lo)):
            q = self.rec_times[side]
            if broke:
                q.append(n)
            while q and q[0] <= n - self.streak:
                q.popleft()
            if broke and len(q) >= 2 and n > self.streak:
                lam = math.log(n / (n - self.streak))
                term = math.exp(-lam)
                cdf = 0.0
                for j in range(len(q)):
                    cdf += term
                    term *= lam / (j + 1)
                best = max(best, -math.log10(max(1.0 - cdf, 1e-300)) - math.log10(2.0))
        return min(best, MAX_STREAK)

    def state(self) -> dict[str, Any]:
        return {"params": dict(self.params), "mad": self.mad.state(), "cusum": self.cusum.state(),
                "spots": {f: s.state() for f, s in self.spots.items()}, "record": self.record.state(),
                "record_mean": self.record_mean.state(), "last": list(self.last), "seen": self.seen,
                "resting": self.resting, "prev": getattr(self, "prev", math.nan), "zs": list(self.zs),
                "season": self.season.state() if self.season is not None else None,
                "season_mad": self.season_mad.state(), "season_zs": list(self.season_zs),
                "ew": [self.ew_step, self.ew_dev], "rec_times": [list(q) for q in self.rec_times]}

    @classmethod
    def from_state(cls, st: dict[str, Any]) -> "AnomalyScorer":
        s = cls(**st["params"])
        s.mad.restore(st["mad"])
        s.cusum.restore(st["cusum"])
        for f, sp in st["spots"].items():
            s.spots[f].restore(sp)
        s.record.restore(st["record"])
        s.record_mean.restore(st["record_mean"])
        s.last.extend(st["last"])
        s.zs.extend(st["zs"])
        if s.season is not None:
            s.season.restore(st["season"])
        s.season_mad.restore(st["season_mad"])
        s.season_zs.extend(st["season_zs"])
        s.ew_step, s.ew_dev = (float(v) for v in st["ew"])
        for q, times in zip(s.rec_times, st["rec_times"]):
            q.extend(int(v) for v in times)
        s.seen, s.resting, s.prev = int(st["seen"]), int(st["resting"]), float(st["prev"])
        return s


def score(values: np.ndarray, timestamps: np.ndarray | None = None, **params: Any) -> np.ndarray:
    """Scores in [0, 1], one per row, each from the rows up to it only. Timestamps are accepted for the
    benchmark's signature; the statistics count readings, so they are not needed."""
    scorer = AnomalyScorer(**params)
    values = np.asarray(values, float)
    if timestamps is None:
        return np.fromiter((scorer.score_one(v) for v in values), float, count=len(values))
    ts = np.asarray(timestamps, float).tolist()
    return np.fromiter((scorer.score_one(v, t) for v, t in zip(values.tolist(), ts)), float, count=len(values))
