"""The anomaly detector (rule "anomaly"): one causal AnomalyScorer per point, its score mapped to a tier.

No limits to configure: each point's scorer calibrates itself on the point's own first readings (no findings
until then, as NAB's probation), then raises
blue at score 0.5, yellow at 0.6, orange at 0.7 and red at 0.8 (for the tail statistics: one reading in 1e7,
1e8.4, 1e9.8, 1e11.2 - rare enough that a point with hundreds of thousands of readings stays quiet when
nothing changes; records of the range seen so far count only on a smoothly moving series, or when they clear
it by a wide margin, since white noise breaks records by chance). Readings are scored with their timestamps,
which the time-of-day baseline needs. After firing the scorer rests; the tier holds through the rest and falls back to normal on
the first reading after it that scores below 0.5. The live suite runs it on the points with an `anomaly:` block
(its `max_tier` caps the tier: the detector knows unusual, not dangerous).

>>> import numpy as np
>>> from config.model import Point
>>> p = Point(id="t", name="灰斗温度", name_en="Ash hopper temperature", area="a", unit="℃", interval_s=1,
...           range=(0, 200))
>>> d = AnomalyDetector({"t": p})
>>> x = 60 + np.random.default_rng(3).uniform(-1, 1, 500)
>>> x[400] = 90.0
>>> f = d.feed("t", np.arange(500.0), x)
>>> f[0].tier.name, f[0].ts, f[0].reason_en
('RED', 400.0, 'Ash hopper temperature unusual (score 0.85)')
"""
from __future__ import annotations

from typing import Any

import numpy as np

from config.model import Point, Tier
from detectors.anomaly.score import FIRE_SCORE, AnomalyScorer
from detectors.finding import Finding

RULE = "anomaly"
TIER_AT = ((0.8, Tier.RED), (0.7, Tier.ORANGE), (0.6, Tier.YELLOW), (FIRE_SCORE, Tier.BLUE))


def tier_for(score: float) -> Tier:
    return next((t for at, t in TIER_AT if score >= at), Tier.NORMAL)


class AnomalyDetector:
    clock = "reading"  # the scorer counts readings; time comes with them

    def __init__(self, points: dict[str, Point], **params: Any):
        self.points = points
        self.fed_points = frozenset(points)  # feed() of any other point does nothing: the pipeline skips it
        self.params = params
        self._scorers: dict[str, AnomalyScorer] = {}
        self._current: dict[str, Tier] = {}
        self._last_ts: dict[str, float] = {}

    def feed(self, point: str, ts: np.ndarray, values: np.ndarray) -> list[Finding]:
        p = self.points.get(point)
        if p is None or len(ts) == 0:
            return []
        last = self._last_ts.get(point)
        if last is not None and ts[0] <= last:  # redelivered readings were scored already
            keep = ts > last
            ts, values = ts[keep], values[keep]
            if len(ts) == 0:
                return []
        self._last_ts[point] = float(ts[-1])
        scorer = self._scorers.setdefault(point, AnomalyScorer(**self.params))
        out = []
        for t, v in zip(ts.tolist(), np.asarray(values, float).tolist()):
            s = scorer.score_one(v, t)
            current = self._current.get(point, Tier.NORMAL)
            if not scorer.calibrated:
                continue  # still learning what normal looks like for this point
            if s >= FIRE_SCORE:
                new = min(tier_for(s), p.anomaly.cap) if p.anomaly else tier_for(s)
            elif scorer.resting > 0:
                new = current  # the episode is still on: hold the tier through the rest period
            else:
                new = Tier.NORMAL
            if new != current:
                self._current[point] = new
                out.append(self._finding(p, new, t, v, s))
        return out

    def _finding(self, p: Point, tier: Tier, t: float, v: float, s: float) -> Finding:
        name_en = p.name_en or p.id
        if tier == Tier.NORMAL:
            return Finding(p.id, RULE, tier, t, v, f"{p.name} 已恢复正常（异常评分 {s:.2f}）",
                           f"{name_en} back to normal (score {s:.2f})")
        return Finding(p.id, RULE, tier, t, v, f"{p.name} 偏离正常范围（异常评分 {s:.2f}）",
                       f"{name_en} unusual (score {s:.2f})")

    def tick(self, now: float) -> list[Finding]:
        return []  # silence is the stale detector's business

    def assume(self, point: str, rule: str, tier: Tier) -> None:
        if rule == RULE:
            self._current[point] = tier

    def state(self) -> dict[str, Any]:
        return {"last_ts": dict(self._last_ts), "current": {k: int(v) for k, v in self._current.items()},
                "scorers": {k: s.state() for k, s in self._scorers.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        self._last_ts.update(state.get("last_ts", {}))
        self._current.update({k: Tier(v) for k, v in state.get("current", {}).items()})
        for k, st in state.get("scorers", {}).items():
            if k in self.points:
                self._scorers[k] = AnomalyScorer.from_state(st)
