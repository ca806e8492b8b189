"""Time to threshold: when will a point reach its limit at the pace it is going (rule 'forecast').

A Theil-Sen line is fitted on the bin medians of the last `window_s` (the rate detector's window machinery) and
extrapolated from the latest bin to the point's `target` limit (red by default) at the conservative end of the
slope's confidence interval: the lower bound when rising, the upper bound when falling. Noise alone gives an
interval around zero and forecasts nothing; a real trend forecasts a time, and the tier follows how soon
(`within_min`, default yellow within 60 min, orange within 20 min). A tier is raised after on_delay_s and clears
once the forecast has been beyond its horizon by a quarter (or gone) for off_delay_s. Once the value is at or past
the target limit the forecast stands down at once: the threshold detector speaks then.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from config.model import ForecastRule, Point, Tier
from detectors.finding import Finding, fmt
from detectors.latch import Latch
from detectors.rate import Bins, WindowedDetector, moving, theil_sen, z_of

CLEAR_MARGIN = 1.25  # a tier clears only once the forecast is this many times its horizon away


@dataclass
class _Target:
    rising: bool
    tier: Tier
    limit: float


@dataclass
class _Watch:
    rule: ForecastRule
    bins: Bins
    targets: list[_Target]
    z: float
    tiers: list[Tier]
    latch: Latch = field(default_factory=Latch)
    reached: bool = False  # at or past a target: the limit alarm speaks until the value is back inside


def _targets(p: Point, rule: ForecastRule) -> list[_Target]:
    """Per side, the point's limit at the target tier, or its highest limit below that tier."""
    out = []
    want = Tier.parse(rule.target)
    for limits, rising in ((p.high, True), (p.low, False)):
        below = [(t, v) for t, v in (limits.by_tier() if limits else []) if t <= want]
        if below:
            out.append(_Target(rising, *below[-1]))
    return out


class ForecastDetector(WindowedDetector):
    """Rule 'forecast'. Example: a hopper warming 6 K per 10 min from 50 ℃ towards its red limit of 80 ℃:

    >>> from config.model import Point, Limits, ForecastRule
    >>> p = Point(id="t", name="灰斗温度", name_en="Ash hopper temperature", area="a", unit="℃", interval_s=1,
    ...           range=(0, 400), high=Limits(yellow=60, red=80), forecast=ForecastRule(window_s=600, on_delay_s=0))
    >>> import numpy as np
    >>> d = ForecastDetector({"t": p})
    >>> ts = np.arange(0.0, 900.0)
    >>> [f.reason_en for f in d.feed("t", ts, 50 - 9 + ts * 6 / 600)][:1]
    ['Ash hopper temperature rising 6 ℃ per 10 min, will reach the red limit 80 ℃ in 60 min']
    """

    rule = "forecast"

    def __init__(self, points: dict[str, Point]):
        self._watch: dict[str, _Watch] = {}
        for p in points.values():
            rule = p.forecast
            targets = _targets(p, rule) if rule is not None else []
            if targets:
                self._watch[p.id] = _Watch(rule, Bins(rule.step_s or rule.window_s / 30, rule.window_s), targets,
                                           z_of(rule.confidence), [t for t, _ in rule.within_min.by_tier()])
        self._ready(points)

    def _judge(self, p: Point, w: _Watch, k: int) -> Finding | None:
        t, level = w.bins.t[k], w.bins.v[k]
        past = next((g for g in w.targets if (level >= g.limit if g.rising else level <= g.limit)), None)
        near = any(abs(level - g.limit) <= p.deadband for g in w.targets)
        if past is not None or (w.reached and near):  # the limit alarm has the floor
            w.reached = True
            if w.latch.reset():
                g = past or w.targets[0]
                return Finding(p.id, "forecast", Tier.NORMAL, t, level,
                               f"{p.name}已达到{g.tier.zh}阈值{fmt(g.limit)}{p.unit}，由阈值报警接管",
                               f"{p.name_en or p.id} at its {g.tier.label} limit {fmt(g.limit)} {p.unit}: "
                               f"the limit alarm takes over")
            return None
        w.reached = False
        fit = w.bins.window(k, w.rule.window_s)
        if fit is None:
            return None
        slope, lo, hi = theil_sen(*fit, z=w.z)
        eta, target = math.inf, None
        for g in w.targets:
            pace = lo if g.rising else -hi  # the conservative end of the interval, towards the limit
            if pace > 0 and abs(g.limit - level) / pace < eta:
                eta, target = abs(g.limit - level) / pace, g
        horizons = dict(w.rule.within_min.by_tier())
        beyond = {tier: eta <= horizons[tier] * 60 for tier in w.tiers}
        inside = {tier: eta > horizons[tier] * 60 * CLEAR_MARGIN for tier in w.tiers}
        r = w.rule
        was = w.latch.current
        new = w.latch.step(t, w.tiers, beyond, inside, r.on_delay_s, r.off_delay_s)
        if new is None:
            return None
        per_s = p.rate.per_s if p.rate else 600.0
        zh, en = moving(p, slope * per_s, per_s)
        if new == Tier.NORMAL:
            return Finding(p.id, "forecast", new, t, level, f"{zh}，趋势预警解除", f"{en}, trend forecast cleared")
        if new < was or target is None:
            return Finding(p.id, "forecast", new, t, level, f"{zh}，趋势放缓，降为{new.zh}",
                           f"{en}, trend easing: down to {new.label}")
        best = abs(target.limit - level) / abs(slope) if slope else eta
        minutes = max(1, round(min(best, eta) / 60))
        return Finding(p.id, "forecast", new, t, level,
                       f"{zh}，预计{minutes}分钟后达到{target.tier.zh}阈值{fmt(target.limit)}{p.unit}",
                       f"{en}, will reach the {target.tier.label} limit {fmt(target.limit)} {p.unit} in {minutes} min")

    def _extra_state(self, w: _Watch) -> dict[str, Any]:
        return {"reached": w.reached}

    def _restore_extra(self, w: _Watch, s: dict[str, Any]) -> None:
        w.reached = bool(s.get("reached", False))
