"""Tiered limits with hysteresis (deadband), on-delay and off-delay, one state machine per (point, side).

A tier is raised when the value has stayed beyond its limit for on_delay_s. It falls back when the value has
stayed inside (limit - deadband) for off_delay_s, to the highest tier the value still holds (straight to normal
when it has been clear of every limit that long), and a further step down waits a full off_delay_s again: no
string of tier-downs seconds apart on the wall. A single-sample spike
therefore raises nothing when on_delay_s > 0, and a value hovering at a limit does not chatter.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from config.model import Point, Tier
from detectors.finding import Finding, fmt
from detectors.frame import Aligned, Frame
from detectors.latch import Latch, ProcessStatus, newer

SMALL_BATCH = 64  # readings of one point in a batch up to which plain Python beats numpy
_F64 = np.dtype(np.float64)


@dataclass
class _Side:
    rising: bool
    limits: list[tuple[Tier, float]]  # configured tiers, lowest tier first
    latch: Latch = field(default_factory=Latch)

    @property
    def tiers(self) -> list[Tier]:
        return [t for t, _ in self.limits]


_NO_SIDES: tuple[float, float, tuple[_Side, ...]] = (math.inf, -math.inf, ())


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
        self.status = ProcessStatus(points, list(points.values()))
        self.status_points = self.status.status_points
        # per point: its sides and the band strictly between its lowest low and lowest high limit, inside which a
        # batch cannot start a tier (the fast path of feed)
        self._quiet: dict[str, tuple[float, float, tuple[_Side, ...]]] = {}
        for pt in dict.fromkeys(pt for pt, _ in self._sides):
            high, low = self._sides.get((pt, "high")), self._sides.get((pt, "low"))
            self._quiet[pt] = (high.limits[0][1] if high else math.inf, low.limits[0][1] if low else -math.inf,
                               tuple(s for s in (high, low) if s is not None))
        # settle(): the same band per point of a frame; points whose sides may not be at normal (fed through the
        # slow path, assumed or restored) are left to feed() until they are seen to be at normal again
        self._bands = Aligned(self._band_arrays)
        self._touched: set[str] = set()

    def feed(self, point: str, ts: np.ndarray, values: np.ndarray) -> list[Finding]:
        p = self.points.get(point)
        n = len(ts)
        if p is None or n == 0:
            return []
        last = self._last_ts.get(point)
        if (last is None or ts[0] > last) and len(values) == n:  # nothing redelivered: the fast path may apply
            # every reading strictly inside the lowest limit of each side, every side at normal: no side can move
            # (whether the process runs does not matter then), as _run's own fast path finds side by side
            high, low, sides = self._quiet.get(point, _NO_SIDES)
            if n <= SMALL_BATCH and values.dtype is _F64:  # (numpy compares a float32 batch in float32)
                for v in values.tolist():
                    if not low < v < high:  # (a NaN is never quiet, as in _run)
                        quiet = False
                        break
                else:
                    quiet = True
            else:
                quiet = bool(values.max() < high) and bool(values.min() > low)  # numpy's max/min propagate NaN
            if quiet:
                for side in sides:
                    if side.latch.current:  # raised: it may step down
                        break
                else:
                    self._last_ts[point] = float(ts[-1])
                    if point in self.status_points:
                        self.status.record(point, ts, values)
                    for side in sides:
                        side.latch.beyond_since.clear()
                    return []
        self._touched.add(point)
        fresh = newer(self._last_ts, point, ts, values)
        if fresh is None:
            return []
        ts, values = fresh
        if point in self.status_points:
            self.status.record(point, ts, values)
        active = self.status.active(p, ts)
        out: list[Finding] = []
        for rule in ("high", "low"):
            side = self._sides.get((point, rule))
            if side is not None:
                out.extend(self._run(p, rule, side, ts, values, active))
        out.sort(key=lambda f: f.ts)  # a two-sided point's findings reach the event log in time order
        return out

    def settle(self, frame: Frame) -> np.ndarray:
        """feed()'s fast path for every point of a batch at once: the points with every reading strictly inside the
        lowest limit of each side, every side at normal and nothing redelivered. Returns them (a mask)."""
        if frame.values is None:
            return np.zeros(frame.size, bool)
        touched = self._touched
        if touched:
            sides = self._quiet
            for pt in list(touched):
                if all(not s.latch.current and not s.latch.beyond_since for s in sides.get(pt, _NO_SIDES)[2]):
                    touched.discard(pt)
        high, low, plain = self._bands(frame)
        quiet = plain & frame.f64 & (frame.vmax < high) & (frame.vmin > low) & ~(frame.t_first <= frame.gather(
            self._last_ts))  # (a point never seen has NaN there: fresh)
        if touched:
            quiet &= ~frame.membership(touched)
        at = np.flatnonzero(quiet)
        self._last_ts.update(zip(map(frame.ids.__getitem__, at.tolist()), frame.t_last[at].tolist()))
        return quiet

    def _band_arrays(self, ids: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per point: (lowest high limit, lowest low limit, a point of this detector that is no status point)."""
        bands = [self._quiet.get(pt, _NO_SIDES) for pt in ids]
        plain = [pt in self.points and pt not in self.status_points for pt in ids]
        return (np.array([b[0] for b in bands]), np.array([b[1] for b in bands]), np.array(plain, bool))

    def _run(self, p: Point, rule: str, side: _Side, ts: np.ndarray, values: np.ndarray,
             active: np.ndarray | None) -> list[Finding]:
        latch = side.latch
        first_limit = side.limits[0][1]
        quiet = values < first_limit if side.rising else values > first_limit
        if active is not None:
            quiet = quiet | ~active
        if latch.current == Tier.NORMAL and bool(quiet.all()):
            latch.beyond_since.clear()  # fast path: nothing near any limit in this batch
            return []
        out = []
        sign = 1.0 if side.rising else -1.0
        tiers = side.tiers
        for i, (t, v) in enumerate(zip(ts.tolist(), values.tolist())):
            if active is not None and not active[i]:  # the process is stopped: its limits do not apply
                if latch.reset():
                    out.append(self.status.stopped(p, rule, t, v))
                continue
            beyond = {tier: sign * (v - limit) >= 0 for tier, limit in side.limits}
            inside = {tier: sign * (v - (limit - sign * p.deadband)) < 0 for tier, limit in side.limits}
            new = latch.step(t, tiers, beyond, inside, p.on_delay_s, p.off_delay_s)
            if new is not None:
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

    def tick(self, now: float) -> list[Finding]:
        return []  # delays are judged on reading timestamps; silence is the stale detector's job

    def assume(self, point: str, rule: str, tier: Tier) -> None:
        """After a restart the alert book is the truth about which tier each (point, rule) is at."""
        side = self._sides.get((point, rule))
        if side is not None:
            side.latch.current = tier
            self._touched.add(point)

    def state(self) -> dict[str, Any]:
        return {"last_ts": dict(self._last_ts),
                "sides": {f"{pt}|{rule}": s.latch.state() for (pt, rule), s in self._sides.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        self._last_ts.update(state.get("last_ts", {}))
        for key, s in state.get("sides", {}).items():
            pt, rule = key.split("|")
            side = self._sides.get((pt, rule))
            if side is not None:  # else the point or its limit was removed from the configuration
                side.latch.restore(s)
                self._touched.add(pt)
