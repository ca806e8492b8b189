"""A point that stops talking is an alarm, not an absence (MEM order No. 10, article 14).

Silent for more than stale_factor x its interval: offline (blue; red at once for an interlock-grade point);
more than 15 min: at least yellow; more than 2 h: at least orange (domain.md section 4).

A gateway (data collector) that stops is one alarm, not one per point: when none of a gateway's points has
been heard for as long as its quickest point's limit, the silence is raised once on `gateway:<id>` with the
same tier steps, and its points' own silences are not raised while it lasts. When the gateway is heard again
each of its points gets one limit of its own to report before it is judged alone. (The aggregation is judged
on ticks: a silence that starts and ends within one batch, as in a back-fill, is judged per point.)
"""
from __future__ import annotations

from typing import Any

import numpy as np

from config.model import Point, Tier
from detectors.finding import Finding
from detectors.frame import Aligned, Frame

YELLOW_AFTER_S = 15 * 60
ORANGE_AFTER_S = 2 * 3600
_NORMAL = Tier.NORMAL


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

    def __init__(self, points: dict[str, Point], started: float, last_seen: dict[str, float] | None = None,
                 gateways: dict[str, list[str]] | None = None):
        self.points = points
        seen = last_seen or {}
        self._last: dict[str, float] = {p: min(seen.get(p, started), started) for p in points}
        self._order = list(self._last)
        self._tick_limits = np.array([points[p].stale_factor * points[p].interval_s for p in self._order])
        self._tier: dict[str, Tier] = {}
        # a gateway of one point is that point; only gateways of several points are aggregated
        self.gateways = {g: [p for p in pts if p in points] for g, pts in (gateways or {}).items()}
        self.gateways = {g: pts for g, pts in self.gateways.items() if len(pts) > 1}
        self._gateway_of = {p: g for g, pts in self.gateways.items() for p in pts}
        self._gw_tier: dict[str, Tier] = {}
        # a gateway is silent once none of its points has been heard for its quickest point's limit
        self._gw_limit = {g: min(points[p].stale_factor * points[p].interval_s for p in pts)
                          for g, pts in self.gateways.items()}
        self._limits = Aligned(lambda ids: (
            np.array([p in points for p in ids], bool),
            np.array([points[p].stale_factor * points[p].interval_s if p in points else np.nan for p in ids])))

    def settle(self, frame: Frame) -> np.ndarray:
        """feed()'s live case for every point of a batch at once: the points heard again with no step between
        arrivals (from the last one before) longer than their limit, not silent before, their gateway not just
        back. Returns them (a mask), their last arrival recorded."""
        known, limit = self._limits(frame)
        last = frame.gather(self._last)
        ok = known & (frame.a_first > last) & (frame.gaps(last, frame.arrived) <= limit)
        if self._tier:
            ok &= ~frame.membership(self._tier.keys())
        if self._gw_tier:
            back = {p for g, t in self._gw_tier.items() if t != _NORMAL for p in self.gateways.get(g, ())}
            ok &= ~frame.membership(back)
        at = np.flatnonzero(ok)
        self._last.update(zip(map(frame.ids.__getitem__, at.tolist()), frame.a_last[at].tolist()))
        return ok

    def feed(self, point: str, ts: np.ndarray, values: np.ndarray) -> list[Finding]:
        """Silences between readings of one batch count too (a gateway back-filling after an outage, or a
        replay): each gap longer than the limit becomes an offline episode at the times it really happened."""
        p = self.points.get(point)
        if p is None or len(ts) == 0:
            return []
        last = self._last[point]
        if ts[0] <= last:  # a redelivered or late reading says nothing about whether it talks now
            keep = ts > last
            ts, values = ts[keep], values[keep]
            if len(ts) == 0:
                return []
        limit = p.stale_factor * p.interval_s
        gw = self._gateway_of.get(point)
        back = gw is not None and bool(self._gw_tier) and self._gw_tier.get(gw, _NORMAL) != _NORMAL
        if not back and point not in self._tier and len(ts) <= 64:  # the live case: is any gap too long?
            prev = last
            for t in ts.tolist():
                if t - prev > limit:
                    break
                prev = t
            else:
                self._last[point] = prev
                return []
        out: list[Finding] = []
        if back:
            out.append(self._gateway_back(gw, float(ts[0])))
            last = self._last[point]
        starts = np.concatenate(([last], ts[:-1]))
        gaps = np.flatnonzero(ts - starts > limit)
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
        covered: set[str] = set()
        last_of = self._last.__getitem__
        for gw, pts in self.gateways.items():
            last = max(map(last_of, pts))
            if now - last > self._gw_limit[gw]:
                out += self._gateway_silence(gw, pts, last, now)
                covered.update(pts)
        points = self.points
        lasts = np.fromiter(self._last.values(), float, len(self._last))  # (the keys never change after __init__)
        for i in np.flatnonzero(now - lasts > self._tick_limits).tolist():
            point = self._order[i]
            if point not in covered:
                out += self._silence(points[point], float(lasts[i]), now, highest_only=True)
        return out


    def _gateway_silence(self, gw: str, pts: list[str], last: float, now: float) -> list[Finding]:
        limit = self._gw_limit[gw]
        first = Tier.RED if any(self.points[p].interlock for p in pts) else Tier.BLUE
        steps = [(limit, first), (max(limit, YELLOW_AFTER_S), Tier.YELLOW), (max(limit, ORANGE_AFTER_S), Tier.ORANGE)]
        current = self._gw_tier.get(gw, Tier.NORMAL)
        crossed = [(offset, tier) for offset, tier in steps if now - last > offset and tier > current]
        if not crossed:
            return []
        offset, tier = crossed[-1]
        self._gw_tier[gw] = tier
        area = self.points[pts[0]].area
        return [Finding(f"gateway:{gw}", "stale", tier, last + offset, None,
                        f"网关 {gw} 离线：{len(pts)} 个测点超过 {_duration_zh(offset)}无数据",
                        f"Gateway {gw} offline: {len(pts)} points silent for over {_duration_en(offset)}", area)]

    def _gateway_back(self, gw: str, t: float) -> Finding:
        """The gateway is heard again: each of its points gets one limit from now to report on its own."""
        self._gw_tier.pop(gw, None)
        pts = self.gateways[gw]
        for p in pts:
            self._last[p] = max(self._last[p], t)
        return Finding(f"gateway:{gw}", "stale", Tier.NORMAL, t, None, f"网关 {gw} 已恢复通信",
                       f"Gateway {gw} reporting again", self.points[pts[0]].area)

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
        if rule != "stale":
            return
        if point in self.points:
            self._tier[point] = tier
        elif point.startswith("gateway:") and point[8:] in self.gateways:
            self._gw_tier[point[8:]] = tier

    def state(self) -> dict[str, Any]:
        return {"last": dict(self._last), "tier": {k: int(v) for k, v in self._tier.items()},
                "gateway_tier": {k: int(v) for k, v in self._gw_tier.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        self._last.update({k: v for k, v in state.get("last", {}).items() if k in self.points})
        self._tier.update({k: Tier(v) for k, v in state.get("tier", {}).items() if k in self.points})
        self._gw_tier.update({k: Tier(v) for k, v in state.get("gateway_tier", {}).items() if k in self.gateways})


def _duration_zh(s: float) -> str:
    return f"{s / 3600:g} 小时" if s >= 3600 else f"{s / 60:g} 分钟" if s >= 600 else f"{s:g} 秒"


def _duration_en(s: float) -> str:
    return f"{s / 3600:g} h" if s >= 3600 else f"{s / 60:g} min" if s >= 600 else f"{s:g} s"

