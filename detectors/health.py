"""Sensor health: a monitoring device that fails is a major hazard in itself (MEM order No. 10, article 14), so a
sensor that lies is an alarm just as one that stops talking is (that one is detectors/stale.py).

- rule 'stuck': every reading within `stuck.band` for `stuck.after_s` (a frozen transmitter, a blocked sensor
  head). Runs at or below `stuck.ignore_below` do not count (a gas detector reading 0 in clean air).
- rule 'glitch': single-sample glitches, each one reading far from both neighbours while the neighbours agree
  (a loose wire, interference). `glitch.count` of them within `glitch.window_s` raise blue. A real step stays
  where it went, so it is not a glitch: it is the threshold, rate and anomaly rules' business.
- rule 'range': readings the ingest rejected as outside the sensor's physical range (the pipeline reports them
  through `rejected`); clears once the sensor has sent only valid readings for RANGE_CLEAR_S.
- rule 'disagree' (RedundancyDetector): two sensors on the same quantity that differ by more than a tolerance.

Every health alarm is blue, or red at once for an interlock-grade point: an interlock that cannot trust its
sensor is an interlock that is not there.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from config.model import Point, Tier
from detectors.finding import Finding, fmt
from detectors.frame import Aligned, Frame
from detectors.latch import Latch, ProcessStatus, newer

RANGE_CLEAR_S = 300.0
SMALL_BATCH = 64  # readings of one point in a batch up to which plain Python beats numpy
_NORMAL = Tier.NORMAL
_NO_TAIL: tuple[list[float], list[float]] = ([], [])  # (read, never written)


def _tier(p: Point) -> Tier:
    return Tier.RED if p.interlock else Tier.BLUE


def _name(p: Point) -> tuple[str, str]:
    return p.name, p.name_en or p.id


def _dur_zh(s: float) -> str:
    return f"{s / 3600:g} 小时" if s >= 3600 else f"{s / 60:g} 分钟" if s >= 60 else f"{s:g} 秒"


def _dur_en(s: float) -> str:
    return f"{s / 3600:g} h" if s >= 3600 else f"{s / 60:g} min" if s >= 60 else f"{s:g} s"


class HealthDetector:
    """Rules 'stuck', 'glitch' and 'range' for every point that configures them (range: every point).

    >>> from config.model import Point, StuckRule
    >>> p = Point(id="t", name="铸井水温", name_en="Pit water temperature", area="a", unit="℃", interval_s=1,
    ...           range=(0, 100), stuck=StuckRule(after_s=600, band=0.05))
    >>> d = HealthDetector({"t": p})
    >>> x = 30 + np.sin(np.arange(1200.0) / 5)
    >>> x[300:] = x[300]  # frozen from t = 300 s
    >>> [(f.tier.name, f.ts, f.reason_en) for f in d.feed("t", np.arange(1200.0), x)]
    [('BLUE', 900.0, 'Pit water temperature stuck at 29.7 for over 10 min (changed less than 0.05 ℃)')]
    """

    clock = "reading"

    def __init__(self, points: dict[str, Point]):
        self.points = points
        self.status = ProcessStatus(points, [p for p in points.values() if p.stuck])
        self.status_points = self.status.status_points
        self._last_ts: dict[str, float] = {}
        # stuck: the current flat run (start, min, max) and whether it is raised
        self._run: dict[str, tuple[float, float, float]] = {}
        self._tier: dict[tuple[str, str], Tier] = {}
        # glitch: the last two readings (for the next batch's first verdicts) and recent glitch times
        self._tail: dict[str, tuple[list[float], list[float]]] = {}
        self._glitches: dict[str, list[float]] = {}
        self._bad_range_at: dict[str, float] = {}
        self._consts = Aligned(self._const_arrays)

    # -- readings ------------------------------------------------------------------------------------------------

    def feed(self, point: str, ts: np.ndarray, values: np.ndarray) -> list[Finding]:
        p = self.points.get(point)
        if p is None or len(ts) == 0:
            return []
        if point in self.status_points:  # (record's own test, without the call)
            self.status.record(point, ts, values)
        stuck, glitch = p.stuck, p.glitch
        tiers = self._tier  # (empty, mostly: no health alarm anywhere)
        if stuck is None and glitch is None and not (tiers and (point, "range") in tiers):
            return []
        last = self._last_ts.get(point)
        if last is not None and ts[0] <= last:
            fresh = newer(self._last_ts, point, ts, values)
            if fresh is None:
                return []
            ts, values = fresh
        else:  # (newer, inlined: nothing to drop)
            self._last_ts[point] = float(ts[-1])
        if not stuck:
            out: list[Finding] = []
        elif len(ts) <= SMALL_BATCH and not p.active_when:  # _stuck's live case for a point not gated, inlined
            out = self._stuck_small(p, ts.tolist(), values.tolist(), self._run.get(p.id))
        else:
            out = self._stuck(p, ts, values)  # (each returns a list of its own)
        if glitch:
            out += self._glitch(p, ts, values)
        if tiers and (point, "range") in tiers and ts[-1] - self._bad_range_at[point] >= RANGE_CLEAR_S:
            out.append(self._set(p, "range", Tier.NORMAL, float(ts[-1]), float(values[-1]),
                                 f"{p.name} 读数已回到量程内", f"{p.name_en or p.id} reading within its range again"))
        return out

    def settle(self, frame: Frame) -> np.ndarray:
        """feed()'s live case for every point of a batch at once (a mask of the points taken). Taken: points with
        nothing to judge; and points with no health alarm raised, nothing redelivered, whose stuck run (if judged)
        is too short to be raised by the end of the batch and breaks at its last reading, and whose glitch rule (if
        judged) sees no step beyond its jump, the last two readings of the batch before it included."""
        idle, judged, stuck, band, after, glitch, jump, gate, gate_after = self._consts(frame)
        ok = idle.copy()
        bad = frame.membership({pt for pt, _ in self._tier}) if self._tier else None
        if bad is not None:
            ok &= ~bad
        if frame.values is None or not judged.any():
            return ok
        take = judged & frame.f64 & (frame.lens >= 2) & ~(frame.t_first <= frame.gather(self._last_ts))
        if bad is not None:
            take &= ~bad
        if stuck.any():  # no run can reach after_s within the batch, and the last reading starts a new one
            none = (np.nan,)
            start = np.array([self._run.get(pt, none)[0] for pt in frame.ids])
            start = np.where(np.isnan(start), frame.t_first, start)
            take &= ~stuck | ((frame.last_step() > band) & (frame.t_last - start < after))
            gated = np.flatnonzero(take & (gate != None))  # noqa: E711 (an object array)
            if len(gated):  # gated: only while its process runs throughout the batch, as _stuck would find
                steady = self.status.steady(frame)
                t_min = frame.t_min
                for i in gated.tolist():
                    run = steady.get(gate[i])
                    take[i] = run is not None and t_min[i] >= run[0] and (
                        gate_after[i] <= 0 or t_min[i] - run[1] >= gate_after[i])
        if glitch.any():
            step = np.empty(len(frame.values))
            step[0] = 0.0
            np.abs(np.diff(frame.values), out=step[1:])
            step[frame.starts] = 0.0
            take &= ~glitch | (np.maximum.reduceat(step, frame.starts) <= jump)  # (NaN: not taken)
            first = frame.values[frame.starts]
            tail = self._tail.get
            for i in np.flatnonzero(take & glitch).tolist():  # the steps from the last batch's last two readings
                prev = tail(frame.ids[i], _NO_TAIL)[1]
                j = jump[i]
                if prev and not (abs(first[i] - prev[-1]) <= j and (len(prev) < 2 or abs(prev[1] - prev[0]) <= j)):
                    take[i] = False
        at = np.flatnonzero(take)
        if len(at):
            ids = [frame.ids[i] for i in at.tolist()]
            t1, v1 = frame.t_last[at].tolist(), frame.v_last[at].tolist()
            self._last_ts.update(zip(ids, t1))
            for pt, on, t, v in zip(ids, stuck[at].tolist(), t1, v1):
                if on:
                    self._run[pt] = (t, v, v)
            ends = frame.ends[at]
            t0, v0 = frame.ts[ends - 2].tolist(), frame.values[ends - 2].tolist()
            for pt, on, ta, va, tb, vb in zip(ids, glitch[at].tolist(), t0, v0, t1, v1):
                if on:
                    self._tail[pt] = ([ta, tb], [va, vb])
        return ok | take

    def _const_arrays(self, ids: list[str]) -> tuple[np.ndarray, ...]:
        """Per point: nothing to judge here; stuck or glitch judged; stuck judged, its band and after_s; glitch
        judged, its jump; the status point gating it and active_after_s (stuck is judged only while it runs)."""
        pts = [self.points.get(pt) for pt in ids]
        status = self.status_points
        idle = [p is None or (p.stuck is None and p.glitch is None and p.id not in status) for p in pts]
        stuck = [p is not None and p.stuck is not None and p.id not in status for p in pts]
        glitch = [p is not None and p.glitch is not None and p.id not in status for p in pts]
        nan = math.nan
        return (np.array(idle, bool), np.array([s or g for s, g in zip(stuck, glitch)], bool), np.array(stuck, bool),
                np.array([p.stuck.band if s else nan for p, s in zip(pts, stuck)]),
                np.array([p.stuck.after_s if s else nan for p, s in zip(pts, stuck)]), np.array(glitch, bool),
                np.array([p.glitch.jump if g else nan for p, g in zip(pts, glitch)]),
                np.array([p.active_when if s and p.active_when else None for p, s in zip(pts, stuck)], object),
                np.array([p.active_after_s if s else 0.0 for p, s in zip(pts, stuck)]))

    def _stuck(self, p: Point, ts: np.ndarray, values: np.ndarray) -> list[Finding]:
        rule = p.stuck
        if len(ts) > SMALL_BATCH:
            known = ~np.isnan(values)
            if not known.all():  # (the small path skips NaN readings one by one)
                ts, values = ts[known], values[known]
                if len(ts) == 0:
                    return []
        if len(ts) <= SMALL_BATCH:
            tl = ts.tolist()
            if not p.active_when or self.status.throughout(p, tl):  # the live case: running all along, or not gated
                return self._stuck_small(p, tl, values.tolist(), self._run.get(p.id))
        active = self.status.active(p, ts)
        if active is not None and not active.all():  # a stopped process's flat signal is not a stuck sensor
            cut = int(np.flatnonzero(~active)[-1]) + 1
            self._run.pop(p.id, None)
            out = self._stuck_clear(p, float(ts[cut - 1]), float(values[cut - 1]))
            ts, values = ts[cut:], values[cut:]
            if len(ts) == 0:
                return out
        else:
            out = []
        carried = self._run.get(p.id)
        if len(ts) <= SMALL_BATCH:
            return out + self._stuck_small(p, ts.tolist(), values.tolist(), carried)
        runs = _flat_runs(ts, values, rule.band, rule.after_s, carried)
        if carried is not None and runs[0][0] != carried[0]:  # the first reading already moved
            out += self._stuck_clear(p, float(ts[0]), float(values[0]))
        for k, (start, i0, i1, lo, hi) in enumerate(runs):
            out += self._stuck_raise(p, start, hi, float(ts[i1 - 1]), float(values[i1 - 1]))
            if k + 1 < len(runs) or i1 < len(ts):  # the run ended: the reading after it moved
                out += self._stuck_clear(p, float(ts[i1]), float(values[i1]))
        start, _, _, lo, hi = runs[-1]
        self._run[p.id] = (start, lo, hi)
        return out

    def _stuck_small(self, p: Point, ts: list[float], values: list[float],
                     carried: tuple[float, float, float] | None) -> list[Finding]:
        """The live case, a few readings per point per batch: reading by reading in plain Python, which is
        cheaper here than numpy's per-call overhead (tests hold both ways to the same verdicts)."""
        rule, pid = p.stuck, p.id
        band, after_s, ignore_below = rule.band, rule.after_s, rule.ignore_below
        floor = ignore_below if ignore_below is not None else -math.inf
        if carried is None:
            first = next((i for i, x in enumerate(values) if x == x), None)
            if first is None:
                return []
            carried = (ts[first], values[first], values[first])
        start, lo, hi = carried
        raised = bool(self._tier) and self._tier.get((pid, "stuck"), _NORMAL) != _NORMAL
        out: list[Finding] = []
        for t, x in zip(ts, values):
            if x != x:  # a NaN says nothing about whether the sensor moves: it neither extends nor breaks a run
                continue
            new_lo, new_hi = (x if x < lo else lo), (x if x > hi else hi)
            if new_hi - new_lo > band:
                if raised:
                    out += self._stuck_clear(p, t, x)
                    raised = False
                start, lo, hi = t, x, x
                continue
            lo, hi = new_lo, new_hi
            if not raised and t - start >= after_s and hi > floor:
                out += self._stuck_raise(p, start, hi, t, x)
                raised = True
        self._run[pid] = (start, lo, hi)
        return out

    def _stuck_raise(self, p: Point, start: float, hi: float, until: float, value: float) -> list[Finding]:
        rule = p.stuck
        if until - start < rule.after_s or (rule.ignore_below is not None and hi <= rule.ignore_below):
            return []
        if self._tier.get((p.id, "stuck"), Tier.NORMAL) != Tier.NORMAL:
            return []
        zh, en = _name(p)
        return [self._set(p, "stuck", _tier(p), start + rule.after_s, float(value),
                          f"{zh} 读数卡在 {fmt(value)} 超过 {_dur_zh(rule.after_s)}（变化小于 {rule.band:g} {p.unit}），"
                          f"请检查传感器",
                          f"{en} stuck at {fmt(value)} for over {_dur_en(rule.after_s)} "
                          f"(changed less than {rule.band:g} {p.unit})")]

    def _stuck_clear(self, p: Point, t: float, value: float) -> list[Finding]:
        if self._tier.get((p.id, "stuck"), Tier.NORMAL) == Tier.NORMAL:
            return []
        return [self._set(p, "stuck", Tier.NORMAL, t, value, f"{p.name} 读数已恢复变化",
                          f"{p.name_en or p.id} reading moves again")]

    def _glitch(self, p: Point, ts: np.ndarray, values: np.ndarray) -> list[Finding]:
        rule = p.glitch
        prev_t, prev_v = self._tail.get(p.id, _NO_TAIL)
        if len(ts) <= SMALL_BATCH and (p.id, "glitch") not in self._tier:  # the live case: no jump at all?
            vl = prev_v + values.tolist()
            jump, pairs = rule.jump, iter(vl)
            x = next(pairs)
            for y in pairs:  # (all() over the pairs, in a plain loop)
                if not abs(y - x) <= jump:
                    break
                x = y
            else:
                self._tail[p.id] = ((prev_t + ts.tolist())[-2:], vl[-2:])
                return []
        t = np.concatenate((prev_t, ts))
        v = np.concatenate((prev_v, values))
        self._tail[p.id] = (t[-2:].tolist(), v[-2:].tolist())
        out: list[Finding] = []
        if len(v) >= 3:
            a, b, c = v[:-2], v[1:-1], v[2:]
            lone = ((np.abs(b - a) > rule.jump) & (np.abs(b - c) > rule.jump) & (np.abs(c - a) <= rule.jump / 2)
                    & (np.sign(b - a) == np.sign(b - c)))
            # judged one reading late: the glitch's verdict needs the reading after it
            hits = t[1:-1][lone]
            known = self._glitches.setdefault(p.id, [])
            for g, judged in zip(hits.tolist(), t[2:][lone].tolist()):
                known.append(g)
                del known[:-max(rule.count * 4, 16)]
                recent = [x for x in known if x > g - rule.window_s]
                if len(recent) >= rule.count and self._tier.get((p.id, "glitch"), Tier.NORMAL) == Tier.NORMAL:
                    zh, en = _name(p)
                    out.append(self._set(
                        p, "glitch", Tier.BLUE, judged, None,
                        f"{zh} 信号毛刺频繁：{_dur_zh(rule.window_s)}内 {len(recent)} 次单点跳变（超过 {rule.jump:g} "
                        f"{p.unit} 后立即返回），请检查接线与屏蔽",
                        f"{en} glitching: {len(recent)} single-sample jumps (over {rule.jump:g} {p.unit}, straight "
                        f"back) within {_dur_en(rule.window_s)}; check wiring and shielding"))
        known = self._glitches.get(p.id, [])
        if self._tier.get((p.id, "glitch"), Tier.NORMAL) != Tier.NORMAL and known \
                and ts[-1] - known[-1] >= rule.window_s:
            out.append(self._set(p, "glitch", Tier.NORMAL, known[-1] + rule.window_s, float(values[-1]),
                                 f"{p.name} 信号毛刺已消失", f"{p.name_en or p.id} glitches gone"))
        return out

    # -- rejected readings ---------------------------------------------------------------------------------------

    def rejected(self, point: str, t: float, value: float | None, detail: str) -> list[Finding]:
        """The ingest rejected one of this point's readings as outside its physical range (at arrival time t)."""
        p = self.points.get(point)
        if p is None:
            return []
        self._bad_range_at[point] = max(t, self._bad_range_at.get(point, t))
        if (point, "range") in self._tier:
            return []
        zh, en = _name(p)
        lo, hi = p.range
        shown = "" if value is None else f" {fmt(value)}"
        return [self._set(p, "range", _tier(p), t, value,
                          f"{zh} 读数{shown} 超出量程 [{lo:g}, {hi:g}] {p.unit}，传感器可能故障",
                          f"{en} reading{shown} outside its range [{lo:g}, {hi:g}] {p.unit}: sensor fault?")]

    # -- shared --------------------------------------------------------------------------------------------------

    def _set(self, p: Point, rule: str, tier: Tier, t: float, value: float | None, zh: str, en: str) -> Finding:
        if tier == Tier.NORMAL:
            self._tier.pop((p.id, rule), None)
        else:
            self._tier[(p.id, rule)] = tier
        return Finding(p.id, rule, tier, t, value, zh, en)

    def tick(self, now: float) -> list[Finding]:
        return []  # a silent sensor is the stale detector's; a stuck one keeps sending

    def assume(self, point: str, rule: str, tier: Tier) -> None:
        if rule in ("stuck", "glitch", "range") and point in self.points:
            if tier == Tier.NORMAL:
                self._tier.pop((point, rule), None)
            else:
                self._tier[(point, rule)] = tier
                if rule == "range":
                    self._bad_range_at.setdefault(point, float("-inf"))

    def state(self) -> dict[str, Any]:
        return {"last_ts": dict(self._last_ts), "run": {k: list(v) for k, v in self._run.items()},
                "tier": [[p, r, int(t)] for (p, r), t in self._tier.items()],
                "tail": {k: [list(a), list(b)] for k, (a, b) in self._tail.items()},
                "glitches": {k: list(v) for k, v in self._glitches.items()},
                "bad_range_at": dict(self._bad_range_at)}

    def restore(self, state: dict[str, Any]) -> None:
        ok = self.points.__contains__
        self._last_ts.update({k: v for k, v in state.get("last_ts", {}).items() if ok(k)})
        self._run.update({k: tuple(v) for k, v in state.get("run", {}).items() if ok(k)})
        self._tier.update({(p, r): Tier(t) for p, r, t in state.get("tier", []) if ok(p)})
        self._tail.update({k: (a, b) for k, (a, b) in state.get("tail", {}).items() if ok(k)})
        self._glitches.update({k: v for k, v in state.get("glitches", {}).items() if ok(k)})
        self._bad_range_at.update({k: v for k, v in state.get("bad_range_at", {}).items() if ok(k)})


def _flat_runs(ts: np.ndarray, values: np.ndarray, band: float, after_s: float,
               carried: tuple[float, float, float] | None) -> list[tuple[float, int, int, float, float]]:
    """The stretches of a batch whose readings stay within `band` of each other that can matter for 'stuck':
    (start time, first index, end index, min, max) for the first (which may continue the run `carried` in as
    (start, min, max)), every one lasting after_s or more, and the last (carried on). Vectorised: only the
    stretches no single step breaks are scanned reading by reading (and only when band > 0)."""
    n = len(values)
    steps = np.abs(np.diff(values))
    cuts = np.flatnonzero(steps > band if band > 0 else steps != 0) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [n]))
    keep = np.flatnonzero(ts[ends - 1] - ts[starts] >= after_s)
    keep = sorted({0, len(starts) - 1, *keep.tolist()})
    out: list[tuple[float, int, int, float, float]] = []
    for k in keep:
        a, b = int(starts[k]), int(ends[k])
        start, lo, hi = float(ts[a]), float(values[a]), float(values[a])
        if a == 0 and carried is not None:
            c_start, c_lo, c_hi = carried
            if max(c_hi, hi) - min(c_lo, lo) <= band:
                start, lo, hi = c_start, min(c_lo, lo), max(c_hi, hi)
        seg = values[a:b]
        if band > 0 and max(hi, float(seg.max())) - min(lo, float(seg.min())) > band:
            for i in range(a + 1, b):  # a slow drift in small steps: split where the spread passes band
                x = float(values[i])
                if max(hi, x) - min(lo, x) > band:
                    out.append((start, a, i, lo, hi))
                    a, start, lo, hi = i, float(ts[i]), x, x
                else:
                    lo, hi = min(lo, x), max(hi, x)
        else:
            lo, hi = min(lo, float(seg.min())), max(hi, float(seg.max()))
        out.append((start, a, b, lo, hi))
    return out


class RedundancyDetector:
    """Rule 'disagree': two sensors on the same quantity (`redundant`) whose readings, each held until the next,
    differ by more than the tolerance for `for_s`; judged at every reading of either. A reading of one is
    compared only with a partner reading no older than 3 of the partner's intervals (a silent partner is the
    stale rule's)."""

    clock = "reading"
    joint = True

    def __init__(self, points: dict[str, Point]):
        self.points = points
        self.pairs = {p.id: p for p in points.values() if p.redundant and p.redundant.point in points}
        self._last: dict[str, tuple[float, float]] = {}  # point -> last (ts, value)
        self._latch: dict[str, Latch] = {a: Latch() for a in self.pairs}

    def feed(self, point: str, ts: np.ndarray, values: np.ndarray) -> list[Finding]:
        return []

    def feed_joint(self, groups: list[tuple[str, np.ndarray, np.ndarray]], findings: list[Finding]
                   ) -> list[Finding]:
        if not self.pairs:
            return []
        mine = {pt for a, p in self.pairs.items() for pt in (a, p.redundant.point)}
        batch = {pt: (ts, v) for pt, ts, v in groups if pt in mine}
        out: list[Finding] = []
        for a, p in self.pairs.items():
            b = p.redundant.point
            if a in batch or b in batch:
                out += self._judge(p, self.points[b], batch.get(a), batch.get(b))
        for pt, (ts, v) in batch.items():
            last = self._last.get(pt)
            if last is None or ts[-1] > last[0]:
                self._last[pt] = (float(ts[-1]), float(v[-1]))
        return out

    def _series(self, pt: str, new: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
        last = self._last.get(pt)
        ts = np.array([last[0]]) if last else np.empty(0)
        vs = np.array([last[1]]) if last else np.empty(0)
        if new is not None:
            keep = new[0] > (last[0] if last else -np.inf)
            ts, vs = np.concatenate((ts, new[0][keep])), np.concatenate((vs, new[1][keep]))
        return ts, vs

    def _judge(self, pa: Point, pb: Point, new_a, new_b) -> list[Finding]:
        rule = pa.redundant
        ta, va = self._series(pa.id, new_a)
        tb, vb = self._series(pb.id, new_b)
        if len(ta) == 0 or len(tb) == 0:
            return []
        since = min(self._last[pa.id][0] if pa.id in self._last else -np.inf,
                    self._last[pb.id][0] if pb.id in self._last else -np.inf)
        times = np.union1d(ta, tb)
        times = times[times > since]
        if len(times) == 0:
            return []
        ia = np.searchsorted(ta, times, side="right") - 1
        ib = np.searchsorted(tb, times, side="right") - 1
        ok = (ia >= 0) & (ib >= 0)
        ia, ib = np.maximum(ia, 0), np.maximum(ib, 0)
        ok &= (times - ta[ia] <= 3 * pa.interval_s) & (times - tb[ib] <= 3 * pb.interval_s)
        diff = np.abs(va[ia] - vb[ib])
        latch = self._latch[pa.id]
        tier = _tier(pa) if not pb.interlock else Tier.RED
        out = []
        for k in np.flatnonzero(ok).tolist():
            t, d = float(times[k]), float(diff[k])
            new = latch.step(t, [tier], {tier: d > rule.tolerance}, {tier: d <= rule.tolerance},
                             rule.for_s, rule.for_s)
            if new is None:
                continue
            a, b = float(va[ia[k]]), float(vb[ib[k]])
            if new == Tier.NORMAL:
                out.append(Finding(pa.id, "disagree", new, t, a, f"{pa.name} 与 {pb.name} 读数已一致",
                                   f"{pa.name_en or pa.id} and {pb.name_en or pb.id} agree again"))
            else:
                out.append(Finding(
                    pa.id, "disagree", new, t, a,
                    f"{pa.name}（{fmt(a)}）与冗余传感器 {pb.name}（{fmt(b)}）相差 {fmt(abs(a - b))} {pa.unit}，"
                    f"超过 {rule.tolerance:g} {pa.unit} 已 {_dur_zh(rule.for_s)}，其中一台可能故障",
                    f"{pa.name_en or pa.id} ({fmt(a)}) and its redundant {pb.name_en or pb.id} ({fmt(b)}) differ by "
                    f"{fmt(abs(a - b))} {pa.unit}, over {rule.tolerance:g} for {_dur_en(rule.for_s)}: one may be failing"))
        return out

    def tick(self, now: float, findings: list[Finding] = ()) -> list[Finding]:
        return []

    def assume(self, point: str, rule: str, tier: Tier) -> None:
        if rule == "disagree" and point in self._latch:
            self._latch[point].current = tier

    def state(self) -> dict[str, Any]:
        return {"last": {k: list(v) for k, v in self._last.items()},
                "latch": {k: v.state() for k, v in self._latch.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        self._last.update({k: tuple(v) for k, v in state.get("last", {}).items() if k in self.points})
        for k, s in state.get("latch", {}).items():
            if k in self._latch:
                self._latch[k].restore(s)
