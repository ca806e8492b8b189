"""Rate of change: how fast a point rises or falls, from a robust slope over a sliding window (rule 'rate').

Readings are binned (the median of each `step_s` bin, so a single-sample glitch never reaches the fit) and a
Theil-Sen slope (the median of all pairwise slopes, robust to a few bad bins) is fitted on the bins of the last
`window_s`, once per completed bin: a 1 Hz point costs one small fit every few seconds of reading time. The rate
is judged in units per `per_s` (600 = per 10 min) against tiered `rise` and/or `fall` limits, with an on-delay,
a deadband and an off-delay like the threshold detector's, and only while the point's `active_when` process runs.
The window machinery here (bins, slope, status, tier latch) is shared with the forecast detector.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import NormalDist
from typing import Any

import numpy as np

from config.model import Point, RateRule, Tier
from detectors.finding import Finding, fmt
from detectors.latch import Latch, ProcessStatus, active_runs, newer

MIN_BINS = 5
MIN_SPAN = 0.5  # a slope needs bins covering at least half its window (a fresh start, a gap, a process start)
SMALL_BATCH = 64  # readings of one point in a batch up to which plain Python beats numpy
_F64 = np.dtype(np.float64)


# --- the shared window machinery ----------------------------------------------------------------------------

@lru_cache(maxsize=64)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, 1)


def theil_sen(t: np.ndarray, v: np.ndarray, z: float = 1.96) -> tuple[float, float, float]:
    """(slope, lower, upper) per second: the median pairwise slope and Sen's (1968) rank-based interval."""
    i, j = _pairs(len(t))
    s = (v[j] - v[i]) / (t[j] - t[i])
    n, pairs = len(t), len(s)
    c = z * math.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    lo = min(max(int((pairs - c) / 2), 0), pairs - 1)
    hi = min(max(int(math.ceil((pairs + c) / 2)), 0), pairs - 1)
    mid = pairs // 2
    part = np.partition(s, sorted({lo, mid, hi}))
    return float(part[mid]), float(part[lo]), float(part[hi])


def _median(values: list[float]) -> float:
    """A short bin's median: plain sorting beats numpy's call overhead at a few dozen readings."""
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def z_of(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


@dataclass
class Bins:
    """A point's recent readings as bin medians, and the open bin still filling."""

    step_s: float
    keep_s: float
    t: list[float] = field(default_factory=list)  # time of each bin's last reading
    v: list[float] = field(default_factory=list)  # each bin's median
    open_t: list[float] = field(default_factory=list)
    open_v: list[float] = field(default_factory=list)
    # the open bin as _add_small left it (that list, its length) and the key all its readings share
    _open_key: tuple[list[float] | None, int, int] = field(default=(None, 0, 0), repr=False, compare=False)

    def add(self, ts: np.ndarray, values: np.ndarray) -> int:
        """Adds readings; returns how many bins they completed (the newest bins at the end of t, v)."""
        if len(ts) <= SMALL_BATCH and ts.dtype is _F64:
            done = self._add_small(ts.tolist(), values.tolist())
            if done is not None:
                return done
        if self.open_t:
            ts = np.concatenate([self.open_t, ts])
            values = np.concatenate([self.open_v, values])
        keys = np.floor(ts / self.step_s)
        cuts = [0, *(np.flatnonzero(keys[1:] != keys[:-1]) + 1).tolist(), len(ts)]
        if len(cuts) > 2:
            times, vals = ts.tolist(), values.tolist()
            for a, b in zip(cuts[:-2], cuts[1:-1]):
                self.t.append(times[b - 1])
                self.v.append(_median(vals[a:b]))
        self.open_t, self.open_v = ts[cuts[-2]:].tolist(), values[cuts[-2]:].tolist()
        return len(cuts) - 2

    def _add_small(self, ts: list[float], values: list[float]) -> int | None:
        """add() for the live case, a few readings: the same bins in plain Python, cheaper here than numpy's
        per-call overhead (None: a timestamp floor() cannot take, NaN or infinite; add() does it with numpy)."""
        step, open_t = self.step_s, self.open_t
        if not ts:
            return None
        try:
            keys = [math.floor(t / step) for t in ts]  # np.floor(ts / step_s), as whole numbers
            if not open_t:
                times, vals, carried = ts, values, None
            else:
                times, vals = open_t + ts, self.open_v + values
                held, held_n, carried = self._open_key
                if held is not open_t or held_n != len(open_t):  # not the open bin this method left
                    keys = [math.floor(t / step) for t in open_t] + keys
                    carried = None
        except (ValueError, OverflowError):
            return None
        if carried is None:  # the key of every reading from the first on
            cuts, prev, i0 = [0], keys[0], 1
            keys = keys[1:]
        else:  # the open bin's readings share one key (it ends at a key change, or it would not be open)
            cuts, prev, i0 = [0], carried, len(open_t)
        for i, k in enumerate(keys, i0):
            if k != prev:
                cuts.append(i)
                prev = k
        cuts.append(len(times))
        for a, b in zip(cuts[:-2], cuts[1:-1]):
            self.t.append(times[b - 1])
            self.v.append(_median(vals[a:b]))
        self.open_t, self.open_v = times[cuts[-2]:], vals[cuts[-2]:]
        self._open_key = (self.open_t, len(self.open_t), prev)
        return len(cuts) - 2

    def trim(self) -> None:
        """Forgets the bins no window will need again (call once the new bins have been judged)."""
        if self.t and self.t[0] < self.t[-1] - self.keep_s - 2 * self.step_s:
            cut = bisect_right(self.t, self.t[-1] - self.keep_s - self.step_s)
            del self.t[:cut], self.v[:cut]

    def window(self, k: int, window_s: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Bins in the window ending at bin k (an index into t), or None when they are too few to fit."""
        end = self.t[k]
        start = bisect_right(self.t, end - window_s, 0, k + 1)
        if k + 1 - start < MIN_BINS or end - self.t[start] < MIN_SPAN * window_s:
            return None
        return np.asarray(self.t[start:k + 1]) - end, np.asarray(self.v[start:k + 1])

    def clear(self) -> None:
        self.t.clear(), self.v.clear(), self.open_t.clear(), self.open_v.clear()

    def state(self) -> dict[str, Any]:
        return {"t": list(self.t), "v": list(self.v), "open_t": list(self.open_t), "open_v": list(self.open_v)}

    def restore(self, s: dict[str, Any]) -> None:
        self.t, self.v, self.open_t, self.open_v = list(s["t"]), list(s["v"]), list(s["open_t"]), list(s["open_v"])


def period(per_s: float) -> tuple[str, str]:
    """'每10分钟', 'per 10 min' for 600 s."""
    for unit_s, zh, en in ((3600, "小时", "h"), (60, "分钟", "min"), (1, "秒", "s")):
        if per_s >= unit_s and per_s % unit_s == 0:
            k = int(per_s // unit_s)
            return (f"每{zh}", f"per {en}") if k == 1 else (f"每{k}{zh}", f"per {k} {en}")
    return f"每{fmt(per_s)}秒", f"per {fmt(per_s)} s"


def moving(p: Point, rate: float, per_s: float) -> tuple[str, str]:
    """'灰斗温度每10分钟上升6.2℃', 'Ash hopper temperature rising 6.2 ℃ per 10 min'."""
    zh_per, en_per = period(per_s)
    zh_dir, en_dir = ("上升", "rising") if rate >= 0 else ("下降", "falling")
    size = fmt(round(abs(rate), 1) if abs(rate) >= 1 else float(f"{abs(rate):.2g}"))  # a rate is an estimate
    return (f"{p.name}{zh_per}{zh_dir}{size}{p.unit}", f"{p.name_en or p.id} {en_dir} {size} {p.unit} {en_per}")


# --- the rate detector ----------------------------------------------------------------------------------------

class WindowedDetector:
    """What the rate and forecast detectors share: readings binned into a sliding window per watched point,
    judged once per completed bin, gated by the process status, one latch per point. A subclass fills
    `self._watch` (point id -> an object with .bins and .latch) and writes `_judge`."""

    rule = ""
    clock = "reading"  # judged on reading timestamps; silence is the stale detector's job

    def _ready(self, points: dict[str, Point]) -> None:
        self.points = points
        self.status = ProcessStatus(points, [points[k] for k in self._watch])
        self.status_points = self.status.status_points
        self._last_ts: dict[str, float] = {}
        # feed() of any other point does nothing: the pipeline need not call it (both sets are fixed from here on)
        self.fed_points = frozenset(self._watch) | self.status_points

    def feed(self, point: str, ts: np.ndarray, values: np.ndarray) -> list[Finding]:
        if point in self.status_points:
            self.status.record(point, ts, values)  # before the skip below: a status point may be watched too
        w = self._watch.get(point)
        if w is None or len(ts) == 0:
            return []
        fresh = newer(self._last_ts, point, ts, values)
        if fresh is None:
            return []
        ts, values = fresh
        p = self.points[point]
        out: list[Finding] = []
        if len(ts) <= SMALL_BATCH and ts.dtype is _F64 and len(values) == len(ts):  # the live case: numpy only to fit
            tl = ts.tolist()
            if self.status.throughout(p, tl):  # running all along (or not gated): one run, as below
                bins = w.bins
                done = bins._add_small(tl, values.tolist())
                if done is None:
                    done = bins.add(ts, values)
                n = len(bins.t)
                for k in range(n - done, n):
                    f = self._judge(p, w, k)
                    if f is not None:
                        out.append(f)
                bins.trim()
                return out
        for a, b, running in active_runs(self.status.active(p, ts), len(ts)):
            if not running:  # the process is stopped: the window restarts from scratch when it runs again
                w.bins.clear()
                if w.latch.reset():
                    out.append(self.status.stopped(p, self.rule, float(ts[a]), float(values[a])))
                continue
            done = w.bins.add(ts[a:b], values[a:b])
            n = len(w.bins.t)
            for k in range(n - done, n):
                f = self._judge(p, w, k)
                if f is not None:
                    out.append(f)
            w.bins.trim()
        return out

    def _judge(self, p: Point, w: Any, k: int) -> Finding | None:
        raise NotImplementedError

    def tick(self, now: float) -> list[Finding]:
        return []

    def assume(self, point: str, rule: str, tier: Tier) -> None:
        w = self._watch.get(point)
        if w is not None and rule == self.rule:
            w.latch.current = tier

    def state(self) -> dict[str, Any]:
        return {"last_ts": dict(self._last_ts),
                "points": {pt: {"bins": w.bins.state(), "latch": w.latch.state(), **self._extra_state(w)}
                           for pt, w in self._watch.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        self._last_ts.update(state.get("last_ts", {}))
        for pt, s in state.get("points", {}).items():
            w = self._watch.get(pt)
            if w is not None:  # a point or rule removed from the configuration is forgotten
                w.bins.restore(s["bins"])
                w.latch.restore(s["latch"])
                self._restore_extra(w, s)

    def _extra_state(self, w: Any) -> dict[str, Any]:
        return {}

    def _restore_extra(self, w: Any, s: dict[str, Any]) -> None:
        pass


@dataclass
class _Watch:
    rule: RateRule
    bins: Bins
    latch: Latch = field(default_factory=Latch)
    tiers: list[Tier] = field(default_factory=list)


class RateDetector(WindowedDetector):
    """Rule 'rate'. Example: a hopper heating 6 K per 10 min, against a yellow limit of 5 K per 10 min:

    >>> from config.model import Point, Limits, RateRule
    >>> p = Point(id="t", name="灰斗温度", name_en="Ash hopper temperature", area="a", unit="℃", interval_s=1,
    ...           range=(0, 400), rate=RateRule(rise=Limits(yellow=5), window_s=600, on_delay_s=60))
    >>> d = RateDetector({"t": p})
    >>> ts = np.arange(0.0, 1200.0)
    >>> [(f.tier.name, f.reason_en) for f in d.feed("t", ts, 30 + ts * 6 / 600)]
    [('YELLOW', 'Ash hopper temperature rising 6 ℃ per 10 min, above the yellow limit 5 ℃ per 10 min')]
    """

    rule = "rate"

    def __init__(self, points: dict[str, Point]):
        self._watch: dict[str, _Watch] = {}
        for p in points.values():
            if p.rate is not None:
                r = p.rate
                self._watch[p.id] = _Watch(r, Bins(r.step_s or r.window_s / 30, r.window_s),
                                           tiers=sorted({t for lim in (r.rise, r.fall) if lim for t, _ in lim.by_tier()}))
        self._ready(points)

    def _judge(self, p: Point, w: _Watch, k: int) -> Finding | None:
        fit = w.bins.window(k, w.rule.window_s)
        if fit is None:
            return None
        slope, _, _ = theil_sen(*fit)
        r = w.rule
        rate = slope * r.per_s
        beyond, inside = {}, {}
        for tier in w.tiers:
            up = getattr(r.rise, tier.label) if r.rise else None
            down = getattr(r.fall, tier.label) if r.fall else None
            beyond[tier] = (up is not None and rate >= up) or (down is not None and -rate >= down)
            inside[tier] = ((up is None or rate < up - r.deadband) and (down is None or -rate < down - r.deadband))
        t = w.bins.t[k]
        was = w.latch.current
        new = w.latch.step(t, w.tiers, beyond, inside, r.on_delay_s, r.off_delay_s)
        if new is None:
            return None
        zh, en = moving(p, rate, r.per_s)
        level = w.bins.v[k]
        if new == Tier.NORMAL:
            return Finding(p.id, "rate", new, t, level, f"{zh}，变化速率已恢复正常", f"{en}, rate back to normal")
        if new < was:
            return Finding(p.id, "rate", new, t, level, f"{zh}，速率回落，降为{new.zh}", f"{en}, easing: down to {new.label}")
        rising = rate >= 0
        limits = r.rise if rising else r.fall
        limit = getattr(limits, new.label) if limits else None
        if limit is None:  # the tier was reached on the other side and is held there by its off-delay
            return Finding(p.id, "rate", new, t, level, zh, en)
        zh_per, en_per = period(r.per_s)
        side_zh = "上升" if rising else "下降"
        return Finding(p.id, "rate", new, t, level,
                       f"{zh}，超过{new.zh}{side_zh}速率限值{zh_per}{fmt(limit)}{p.unit}",
                       f"{en}, above the {new.label} limit {fmt(limit)} {p.unit} {en_per}")
