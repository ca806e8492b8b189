"""A label-free anomaly score for one series, strictly causal: each row's score uses only rows up to it.

Two families of causal statistics, each asking its own question of the newest reading:

- records (record.py): does the reading, or the mean of the last 5, lie beyond the whole range seen so far?
  Scored by the margin: 0.5 at 0.5 % of the range for a reading (2 % for the 5-mean), +0.1 per factor 10.
- tails (spot.py): how rare is its median-MAD z-score against the last ``window`` readings (spike), its step
  from the previous reading (jump), a two-sided CUSUM of the z-scores (a slow shift) and the mean |z| of the
  last ``persist`` readings (a sustained departure)? Each statistic has its own SPOT tail model, calibrated
  on the series itself (the first ``n_init`` rows), so none needs a scale from us; the surprise ``-log10 P``
  of the rarest, less log10(4) for asking four questions, scores ``surprise / 14``: 0.5 is P = 1e-7.

The row's score is the larger of the two, in [0, 1]. FIRE_SCORE = 0.5 is the fixed, label-free alarm level.
After a row reaches it the scorer rests: the next ``rest`` rows score 0 (one alert per episode, not one per
reading) and the CUSUM restarts.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> x = 10 + rng.uniform(-1, 1, 2000)
>>> x[1500] = 25.0
>>> s = score(x)
>>> bool(s[1500] >= FIRE_SCORE), bool(s[1501:1651].max() == 0)  # fires, then rests
(True, True)
"""
from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from detectors.anomaly.cusum import Cusum
from detectors.anomaly.mad import RollingMad
from detectors.anomaly.record import RunningRange
from detectors.anomaly.spot import Spot

FIRE_SCORE = 0.5          # fixed in advance: the alarm level, and where the rest period starts
TAIL_SURPRISE = 14.0      # surprise (-log10 P) that scores 1.0; 0.5 is P = 1e-7
TAILS = ("spike", "jump", "shift")


def _record_score(excess: float, margin: float) -> float:
    return 0.5 + 0.1 * math.log10(excess / margin) if excess > 0 else 0.0


class AnomalyScorer:
    """Streaming scorer of one series: ``score_one(x)`` scores the reading from the past, then learns it."""

    def __init__(self, window: int = 700, n_init: int = 300, rest: int = 150, cusum_k: float = 1.0,
                 warmup: int = 20, learn_below: float = 1e-3, margin: float = 0.005, margin_mean: float = 0.02,
                 smooth: int = 5, persist: int = 10):
        self.params = dict(window=window, n_init=n_init, rest=rest, cusum_k=cusum_k, warmup=warmup,
                           learn_below=learn_below, margin=margin, margin_mean=margin_mean, smooth=smooth,
                           persist=persist)
        self.rest, self.warmup, self.margin, self.margin_mean = rest, warmup, margin, margin_mean
        self.mad = RollingMad(window)
        self.cusum = Cusum(cusum_k)
        self.tails = TAILS + (("persist",) if persist else ())
        self.zs: deque[float] = deque(maxlen=max(persist, 1))
        self.spots = {f: Spot(n_init=n_init, learn_below=learn_below) for f in self.tails}
        self.range = RunningRange()
        self.range_mean = RunningRange()
        self.last: deque[float] = deque(maxlen=smooth)
        self.seen = 0
        self.resting = 0

    @property
    def calibrated(self) -> bool:
        return all(s.ready for s in self.spots.values())

    def score_one(self, x: float) -> float:
        x = float(x)
        if not math.isfinite(x):
            return 0.0  # a missing reading is the stale detector's business, not an anomaly
        self.seen += 1
        self.last.append(x)
        mean = sum(self.last) / len(self.last)
        out = 0.0
        if self.seen > self.warmup:
            z = self.mad.z(x)
            tails = {"spike": abs(z), "jump": abs(x - self.prev),
                     "shift": self.cusum.update(max(-3.0, min(3.0, z)))}
            if "persist" in self.spots:
                self.zs.append(min(abs(z), 10.0))
                tails["persist"] = sum(self.zs) / len(self.zs)
            surprise = max(self.spots[f].surprise(v) for f, v in tails.items()) - math.log10(len(self.tails))
            out = max(surprise / TAIL_SURPRISE,
                      _record_score(self.range.excess(x), self.margin),
                      _record_score(self.range_mean.excess(mean), self.margin_mean))
            out = min(max(out, 0.0), 1.0)
            if self.resting > 0:
                self.resting -= 1
                out = 0.0
            elif out >= FIRE_SCORE:
                self.resting = self.rest
                self.cusum.reset()
        self.mad.learn(x)
        self.range.learn(x)
        if len(self.last) == self.last.maxlen:
            self.range_mean.learn(mean)
        self.prev = x
        return out

    def state(self) -> dict[str, Any]:
        return {"params": dict(self.params), "mad": self.mad.state(), "cusum": self.cusum.state(),
                "spots": {f: s.state() for f, s in self.spots.items()}, "range": self.range.state(),
                "range_mean": self.range_mean.state(), "last": list(self.last), "seen": self.seen,
                "resting": self.resting, "prev": getattr(self, "prev", math.nan), "zs": list(self.zs)}

    @classmethod
    def from_state(cls, st: dict[str, Any]) -> "AnomalyScorer":
        s = cls(**st["params"])
        s.mad.restore(st["mad"])
        s.cusum.restore(st["cusum"])
        for f, sp in st["spots"].items():
            s.spots[f].restore(sp)
        s.range.restore(st["range"])
        s.range_mean.restore(st["range_mean"])
        s.last.extend(st["last"])
        s.zs.extend(st["zs"])
        s.seen, s.resting, s.prev = int(st["seen"]), int(st["resting"]), float(st["prev"])
        return s


def score(values: np.ndarray, timestamps: np.ndarray | None = None, **params: Any) -> np.ndarray:
    """Scores in [0, 1], one per row, each from the rows up to it only. Timestamps are accepted for the
    benchmark's signature; the statistics count readings, so they are not needed."""
    scorer = AnomalyScorer(**params)
    return np.fromiter((scorer.score_one(v) for v in np.asarray(values, float)), float, count=len(values))
