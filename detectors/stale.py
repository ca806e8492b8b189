"""A point that stops talking is an alarm, not an absence (MEM order No. 10, article 14).

Silent for more than stale_factor x its interval: offline (blue; red at once for an interlock-grade point);
more than 15 min: at least yellow; more than 2 h: at least orange (domain.md section 4).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from config.model import Point, Tier
from detectors.finding import Finding

YELLOW_AFTER_S = 15 * 60
ORANGE_AFTER_S = 2 * 3600


class StaleDetector:
    """Rule 'stale'. Time passes through tick(now); `now` is handed in by whoever drives the pipeline.

    Liveness is judged on when readings ARRIVE (clock = "arrival": the pipeline feeds arrival times), against
    the same clock as tick(now): a device whose clock lags cannot make this alarm chatter. `last_seen` carries
    over when each point was last heard, so a restart neither forgets a dead sensor nor lowers its tier.

    >>> from config.model import Point
    >>> p = Point(id="h2s", name="硫化氢", name_en="H2S", area="a", unit="ppm", interval_s=1, range=(0, 100))
    >>> d = StaleDetector({"h2s": p}, started=0.0)
    >>> d.feed("h2s", np.array([1.0]), np.array([0.5]))
    []
    >>> [(f.tier.name, f.reason_en) for f in d.tick(5.0)]
    [('BLUE', 'H2S, no data for over 3 s (expected every 1 s)')]
    """

    clock = "arrival"

    def __init__(self, points: dict[str, Point], started: float, last_seen: dict[str, float] | None = None):
        self.points = points
        seen = last_seen or {}
        self._last: dict[str, float] = {p: min(seen.get(p, started), started) for p in points}
        self._tier: dict[str, Tier] = {}

    def feed(self, point: str, ts: np.ndarray, values: np.ndarray) -> list[Finding]:
        """Silences between readings of one batch count too (a gateway back-filling after an outage, or a
        replay): each gap longer than the limit becomes an offline episode at the times it really happened."""
        p = self.points.get(point)
        if p is None or len(ts) == 0:
            return []
        last = self._last[point]
        ts = ts[ts > last]  # a redelivered or late reading says nothing about whether the sensor talks now
        if len(ts) == 0:
            return []
        limit = p.stale_factor * p.interval_s
        starts = np.concatenate(([last], ts[:-1]))
        gaps = np.flatnonzero(ts - starts > limit)
        out: list[Finding] = []
        if self._tier.get(point, Tier.NORMAL) != Tier.NORMAL and (len(gaps) == 0 or gaps[0] != 0):
            gaps = np.concatenate(([0], gaps))  # silent before this batch: its first reading ends that
        for i in gaps:
            out += self._silence(p, float(starts[i]), float(ts[i]))
            out.append(Finding(point, "stale", Tier.NORMAL, float(ts[i]), float(values[i]),
                               f"{p.name} 数据已恢复", f"{p.name_en or p.id} reporting again"))
            self._tier.pop(point, None)
        self._last[point] = float(ts[-1])
        return out

    def tick(self, now: float) -> list[Finding]:
        out = []
        for point, last in self._last.items():
            p = self.points[point]
            if now - last > p.stale_factor * p.interval_s:
                out += self._silence(p, last, now, highest_only=True)
        return out

    def _silence(self, p: Point, last: float, until: float, highest_only: bool = False) -> list[Finding]:
        """The tier rises of a silence that began at `last` and has lasted until `until`, each stamped with the
        moment the silence crossed its limit (whenever it is noticed: each tick, or a slice of a replay)."""
        limit = p.stale_factor * p.interval_s
        steps = [(limit, Tier.RED if p.interlock else Tier.BLUE), (max(limit, YELLOW_AFTER_S), Tier.YELLOW),
                 (max(limit, ORANGE_AFTER_S), Tier.ORANGE)]
        crossed = [(offset, tier) for offset, tier in steps
                   if until - last > offset and tier > self._tier.get(p.id, Tier.NORMAL)]
        if highest_only:
            crossed = crossed[-1:]  # noticed late (after a restart): one alarm at the tier the silence has reached
        out = []
        for offset, tier in crossed:
            if tier <= self._tier.get(p.id, Tier.NORMAL):
                continue
            self._tier[p.id] = tier
            at = last + offset
            silent = offset
            out.append(Finding(p.id, "stale", tier, at, None,
                               f"{p.name} 超过 {_duration_zh(silent)}无数据（应每 {p.interval_s:g} 秒上报）",
                               f"{p.name_en or p.id}, no data for over {_duration_en(silent)} "
                               f"(expected every {p.interval_s:g} s)"))
        return out

    def assume(self, point: str, rule: str, tier: Tier) -> None:
        if rule == "stale" and point in self.points:
            self._tier[point] = tier

    def state(self) -> dict[str, Any]:
        return {"last": dict(self._last), "tier": {k: int(v) for k, v in self._tier.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        self._last.update({k: v for k, v in state.get("last", {}).items() if k in self.points})
        self._tier.update({k: Tier(v) for k, v in state.get("tier", {}).items() if k in self.points})


def _duration_zh(s: float) -> str:
    return f"{s / 3600:g} 小时" if s >= 3600 else f"{s / 60:g} 分钟" if s >= 600 else f"{s:g} 秒"


def _duration_en(s: float) -> str:
    return f"{s / 3600:g} h" if s >= 3600 else f"{s / 60:g} min" if s >= 600 else f"{s:g} s"

