"""Tiered limits with hysteresis (deadband), on-delay and off-delay, one state machine per (point, side).

A tier is raised when the value has stayed beyond its limit for on_delay_s. It falls back when the value has
stayed inside (limit - deadband) for off_delay_s, to the highest tier the value still holds (straight to normal
when it has been clear of every limit that long), and a further step down waits a full off_delay_s again: no
string of tier-downs seconds apart on the wall. A single-sample spike
therefore raises nothing when on_delay_s > 0, and a value hovering at a limit does not chatter.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from config.model import ALARM_TIERS, Point, Tier
from detectors.finding import Finding, fmt



@dataclass
class _Side:
    rising: bool
    limits: list[tuple[Tier, float]]  # configured tiers, lowest tier first
    current: Tier = Tier.NORMAL
    beyond_since: dict[Tier, float | None] = field(default_factory=dict)
    inside_since: dict[Tier, float | None] = field(default_factory=dict)
    stepped_down_at: float = float("-inf")  # each step down needs a full off-delay of its own after the last


class ThresholdDetector:
    """Rules 'high' and 'low'. Example:

    >>> from config.model import Point, Limits
    >>> p = Point(id="t", name="灰斗温度", area="a", unit="℃", interval_s=1, range=(0, 200),
    ...           high=Limits(yellow=60, red=80), deadband=2, on_delay_s=2)
    >>> d = ThresholdDetector({"t": p})
    >>> [f.tier.name for f in d.feed("t", np.array([0., 1, 2, 3]), np.array([50., 81, 82, 83]))]
    ['RED']
    """

    clock = "reading"  # delays are judged on the readings' own timestamps

    def __init__(self, points: dict[str, Point]):
        self.points = points
        self._sides: dict[tuple[str, str], _Side] = {}
        self._last_ts: dict[str, float] = {}
        for p in points.values():
            for rule, limits, rising in (("high", p.high, True), ("low", p.low, False)):
                if limits is not None:
                    self._sides[(p.id, rule)] = _Side(rising, limits.by_tier())
        # plant state: a point whose limits apply only while a status point reads 1 (casting, fan running)
        self.status_points = {p.active_when for p in points.values() if p.active_when}
        self._status: dict[str, tuple[list[float], list[float]]] = {s: ([], []) for s in self.status_points}

    def feed(self, point: str, ts: np.ndarray, values: np.ndarray) -> list[Finding]:
        p = self.points.get(point)
        if p is None or len(ts) == 0:
            return []
        last = self._last_ts.get(point)
        if last is not None and ts[0] <= last:  # redelivered or late readings: detection has moved past them
            keep = ts > last
            ts, values = ts[keep], values[keep]
            if len(ts) == 0:
                return []
        self._last_ts[point] = float(ts[-1])
        if point in self._status:
            self._record_status(point, ts, values)
        active = self._active(p.active_when, ts, p.active_after_s) if p.active_when else None
        out: list[Finding] = []
        for rule in ("high", "low"):
            side = self._sides.get((point, rule))
            if side is not None:
                out.extend(self._run(p, rule, side, ts, values, active))
        out.sort(key=lambda f: f.ts)  # a two-sided point's findings reach the event log in time order
        return out

    def _run(self, p: Point, rule: str, side: _Side, ts: np.ndarray, values: np.ndarray,
             active: np.ndarray | None) -> list[Finding]:
        first_limit = side.limits[0][1]
        quiet = values < first_limit if side.rising else values > first_limit
        if active is not None:
            quiet = quiet | ~active
        if side.current == Tier.NORMAL and bool(quiet.all()):
            side.beyond_since.clear()  # fast path: nothing near any limit in this batch
            return []
        out = []
        sign = 1.0 if side.rising else -1.0
        for i, (t, v) in enumerate(zip(ts.tolist(), values.tolist())):
            if active is not None and not active[i]:  # the process is stopped: its limits do not apply
                side.beyond_since.clear()
                side.inside_since.clear()
                if side.current != Tier.NORMAL:
                    side.current = Tier.NORMAL
                    out.append(self._stopped(p, rule, t, v))
                continue
            for tier, limit in side.limits:
                beyond = sign * (v - limit) >= 0
                inside = sign * (v - (limit - sign * p.deadband)) < 0
                side.beyond_since[tier] = _since(side.beyond_since.get(tier), t) if beyond else None
                side.inside_since[tier] = _since(side.inside_since.get(tier), t) if inside else None
            up = Tier.NORMAL
            for tier, _ in side.limits:
                since = side.beyond_since.get(tier)
                if since is not None and t - since >= p.on_delay_s:
                    up = tier
            new = side.current
            while new != Tier.NORMAL:
                since = side.inside_since.get(new)
                if since is None or t - max(since, side.stepped_down_at) < p.off_delay_s:
                    break
                new = _tier_below(side, new)
            new = max(new, up)
            if new != side.current:
                if new < side.current:
                    side.stepped_down_at = t
                side.current = new
                out.append(self._finding(p, rule, side, new, t, v))
        return out

    def _finding(self, p: Point, rule: str, side: _Side, tier: Tier, t: float, v: float) -> Finding:
        name_en = p.name_en or p.id
        if tier == Tier.NORMAL:
            return Finding(p.id, rule, tier, t, v, f"{p.name} 已恢复正常（{fmt(v)}{p.unit}）",
                           f"{name_en} back to normal ({fmt(v)} {p.unit})")
        limit = dict(side.limits)[tier]
        zh_dir, en_dir = ("高于", "above") if side.rising else ("低于", "below")
        return Finding(p.id, rule, tier, t, v,
                       f"{p.name} {fmt(v)}{p.unit}，{zh_dir}{tier.zh}阈值 {fmt(limit)}{p.unit}",
                       f"{name_en} {fmt(v)} {p.unit}, {en_dir} {tier.label} limit {fmt(limit)} {p.unit}")

    def _stopped(self, p: Point, rule: str, t: float, v: float) -> Finding:
        s = self.points.get(p.active_when)
        zh, en = (s.name, s.name_en or s.id) if s else (p.active_when, p.active_when)
        return Finding(p.id, rule, Tier.NORMAL, t, v, f"{zh}已停止，{p.name}限值不再适用",
                       f"{en} stopped: {p.name_en or p.id} limits no longer apply")

    def _record_status(self, point: str, ts: np.ndarray, values: np.ndarray) -> None:
        times, states = self._status[point]
        for t, v in zip(ts.tolist(), (values >= 0.5).tolist()):
            if not states or states[-1] != v:
                times.append(t)
                states.append(v)
        if len(times) > 1000:  # only the recent changes matter; readings older than these are not fed again
            del times[:-100], states[:-100]

    def _active(self, status: str, ts: np.ndarray, after_s: float) -> np.ndarray:
        """Whether the status point had read 1 for at least after_s at each time; a status never heard from
        counts as running (the limits apply)."""
        times, states = self._status.get(status, ([], []))
        if not times:
            return np.ones(len(ts), bool)
        idx = np.searchsorted(np.asarray(times), ts, side="right") - 1
        running = np.asarray(states + [True])[idx]  # index -1 (before the first known change): running
        if after_s > 0:
            since = np.asarray(times + [-np.inf])[idx]
            running &= ts - since >= after_s
        return running

    def tick(self, now: float) -> list[Finding]:
        return []  # delays are judged on reading timestamps; silence is the stale detector's job

    def assume(self, point: str, rule: str, tier: Tier) -> None:
        """After a restart the alert book is the truth about which tier each (point, rule) is at."""
        side = self._sides.get((point, rule))
        if side is not None:
            side.current = tier

    def state(self) -> dict[str, Any]:
        return {"last_ts": dict(self._last_ts),
                "sides": {f"{pt}|{rule}": {"current": int(s.current), "stepped": s.stepped_down_at,
                                           "beyond": {int(k): v for k, v in s.beyond_since.items()},
                                           "inside": {int(k): v for k, v in s.inside_since.items()}}
                          for (pt, rule), s in self._sides.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        self._last_ts.update(state.get("last_ts", {}))
        for key, s in state.get("sides", {}).items():
            pt, rule = key.split("|")
            side = self._sides.get((pt, rule))
            if side is None:
                continue  # the point or its limit was removed from the configuration
            side.current = Tier(s["current"])
            side.stepped_down_at = s.get("stepped", float("-inf"))
            side.beyond_since = {Tier(int(k)): v for k, v in s["beyond"].items()}
            side.inside_since = {Tier(int(k)): v for k, v in s["inside"].items()}


def _since(started: float | None, t: float) -> float:
    return t if started is None else started


def _tier_below(side: _Side, tier: Tier) -> Tier:
    lower = [t for t, _ in side.limits if t < tier]
    return lower[-1] if lower else Tier.NORMAL


assert [t for t in ALARM_TIERS] == sorted(ALARM_TIERS)
