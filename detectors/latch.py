"""What the tiered detectors share: the tier latch (on-delay, off-delay, one step down per off-delay), the plant
state that gates a point's rules (`active_when`), and the filter that keeps redelivered readings out."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from config.model import Point, Tier
from detectors.finding import Finding


def newer(last_ts: dict[str, float], point: str, ts: np.ndarray, values: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray] | None:
    """The readings after the last one judged (redelivered or late ones: detection has moved past them); records
    the new last. None when nothing is new."""
    last = last_ts.get(point)
    if last is not None and ts[0] <= last:
        keep = ts > last
        ts, values = ts[keep], values[keep]
    if len(ts) == 0:
        return None
    last_ts[point] = float(ts[-1])
    return ts, values


def _since(started: float | None, t: float) -> float:
    return t if started is None else started


@dataclass
class Latch:
    """One (point, rule)'s tier, raised after on_delay and stepped down after off_delay (as in the threshold
    detector): `beyond[tier]` says the tier's condition holds now, `inside[tier]` that it is clearly gone."""

    current: Tier = Tier.NORMAL
    beyond_since: dict[Tier, float] = field(default_factory=dict)
    inside_since: dict[Tier, float] = field(default_factory=dict)
    stepped_down_at: float = float("-inf")

    def step(self, t: float, tiers: list[Tier], beyond: dict[Tier, bool], inside: dict[Tier, bool],
             on_delay_s: float, off_delay_s: float) -> Tier | None:
        """The new tier if it changed, else None."""
        for tier in tiers:
            self.beyond_since[tier] = _since(self.beyond_since.get(tier), t) if beyond[tier] else None
            self.inside_since[tier] = _since(self.inside_since.get(tier), t) if inside[tier] else None
        up = Tier.NORMAL
        for tier in tiers:
            since = self.beyond_since.get(tier)
            if since is not None and t - since >= on_delay_s:
                up = tier
        new = self.current
        while new != Tier.NORMAL:
            since = self.inside_since.get(new)
            if since is None or t - max(since, self.stepped_down_at) < off_delay_s:
                break
            lower = [x for x in tiers if x < new]
            new = lower[-1] if lower else Tier.NORMAL
        new = max(new, up)
        if new == self.current:
            return None
        if new < self.current:
            self.stepped_down_at = t
        self.current = new
        return new

    def reset(self) -> bool:
        """Back to normal at once (the process stopped); True if it was raised."""
        was = self.current != Tier.NORMAL
        self.current = Tier.NORMAL
        self.beyond_since.clear()
        self.inside_since.clear()
        return was

    def state(self) -> dict[str, Any]:
        return {"current": int(self.current), "stepped": self.stepped_down_at,
                "beyond": {int(k): v for k, v in self.beyond_since.items()},
                "inside": {int(k): v for k, v in self.inside_since.items()}}

    def restore(self, s: dict[str, Any]) -> None:
        self.current = Tier(s["current"])
        self.stepped_down_at = s.get("stepped", float("-inf"))
        self.beyond_since = {Tier(int(k)): v for k, v in s["beyond"].items()}
        self.inside_since = {Tier(int(k)): v for k, v in s["inside"].items()}


class ProcessStatus:
    """The 0/1 status points that gate other points' rules (`active_when`), as the threshold detector reads them:
    a status never heard from counts as running."""

    def __init__(self, points: dict[str, Point], gated: list[Point]):
        self.points = points
        self.status_points = {p.active_when for p in gated if p.active_when}
        self._changes: dict[str, tuple[list[float], list[bool]]] = {s: ([], []) for s in self.status_points}
        self._latest: dict[str, float] = {}  # per status, no change recorded later than this (for `throughout`)

    def record(self, point: str, ts: np.ndarray, values: np.ndarray) -> None:
        if point not in self._changes:
            return
        times, states = self._changes[point]
        n = len(times)
        for t, v in zip(ts.tolist(), (values >= 0.5).tolist()):
            if not states or states[-1] != v:
                times.append(t)
                states.append(v)
        if len(times) > n:
            latest = self._latest.get(point, -math.inf)
            for t in times[n:]:
                if not t <= latest:  # later (or a NaN, after which nothing is known without numpy)
                    latest = t if t == t and latest == latest else math.nan
            self._latest[point] = latest
        if len(times) > 1000:
            del times[:-100], states[:-100]

    def throughout(self, p: Point, ts: list[float]) -> bool:
        """True when active(p, ts) is None or all true, known without numpy (False: ask active()). Exact: every
        reading at or after every change recorded reads the last state, since the last change."""
        if not p.active_when:
            return True
        times, states = self._changes.get(p.active_when, _NEVER)
        if not times:
            return True
        if not states[-1]:
            return False
        latest, since, after = self._latest[p.active_when], times[-1], p.active_after_s
        if after > 0:
            for t in ts:
                if not (t >= latest and t - since >= after):  # (a NaN is never known here)
                    return False
        else:
            for t in ts:
                if not t >= latest:
                    return False
        return True

    def steady(self, frame: Any) -> dict[str, tuple[float, float]]:
        """The status points that were running before a batch (a detectors.frame.Frame) and read running in all
        of it, so that recording it changes nothing: {status point: (latest change recorded, since)}. A gated
        point's readings of that batch are all active when none is before `latest` and each is active_after_s
        past `since` (as throughout() would find after the batch is recorded)."""
        out = {}
        for sp, (times, states) in self._changes.items():
            if not times or not states[-1]:
                continue
            i = frame.position(sp)
            if i is not None and not (frame.values is not None and frame.vmin[i] >= 0.5):
                continue
            out[sp] = (self._latest[sp], times[-1])
        return out

    def active(self, p: Point, ts: np.ndarray) -> np.ndarray | None:
        """Per reading, whether the point's process had been running for active_after_s (None: not gated)."""
        if not p.active_when:
            return None
        times, states = self._changes.get(p.active_when, ([], []))
        if not times:
            return np.ones(len(ts), bool)
        idx = np.searchsorted(np.asarray(times), ts, side="right") - 1
        running = np.asarray(states + [True])[idx]
        if p.active_after_s > 0:
            since = np.asarray(times + [-np.inf])[idx]
            running &= ts - since >= p.active_after_s
        return running

    def stopped(self, p: Point, rule: str, t: float, v: float | None) -> Finding:
        s = self.points.get(p.active_when or "")
        zh, en = (s.name, s.name_en or s.id) if s else (p.active_when, p.active_when)
        return Finding(p.id, rule, Tier.NORMAL, t, v, f"{zh}已停止，{p.name}{_RULE_ZH[rule]}不再适用",
                       f"{en} stopped: {p.name_en or p.id} {_RULE_EN[rule]} no longer applies")


_NEVER: tuple[list[float], list[bool]] = ([], [])
_RULE_ZH = {"rate": "变化速率报警", "forecast": "趋势预警", "high": "限值", "low": "限值"}
_RULE_EN = {"rate": "rate alarm", "forecast": "trend forecast", "high": "limit", "low": "limit"}


def active_runs(active: np.ndarray | None, n: int) -> list[tuple[int, int, bool]]:
    """(start, end, running) stretches of a batch."""
    if active is None or bool(active.all()):
        return [(0, n, True)]
    cuts = [0, *(np.flatnonzero(np.diff(active.astype(np.int8))) + 1).tolist(), n]
    return [(a, b, bool(active[a])) for a, b in zip(cuts[:-1], cuts[1:])]
