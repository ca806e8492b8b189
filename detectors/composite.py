"""Composite rules: conditions over several points, their alarms and plant state, written by engineers in the
plant file (config/expr.py), each raising its tier once its condition has held for_s (rule 'composite', point
`rule:<id>`), and clearing once it has been false off_delay_s.

Event-driven, on the readings' own clock, in time order across points: a rule is evaluated when one of its
points changes value or returns from silence, when an alarm it watches changes, and when a moment it waits for
comes due (an on- or off-delay, a held() or count() window, a reading going stale). Three-valued: a point never
heard, or silent beyond its stale limit (stale_factor x interval_s), is unknown, and so is a condition on it;
unknown neither raises nor clears a rule (silence is the stale detector's alarm).
"""
from __future__ import annotations

import heapq
import math
import operator
from bisect import bisect_right
from itertools import repeat
from typing import Any, Callable

import numpy as np

from config.expr import STATEFUL, Binary, Bool, Call, Logic, Node, Num, Ref, Status, TierName, Unary, children, walk
from config.model import CompositeRule, Plant, Point, Tier
from detectors.finding import Finding, fmt
from detectors.latch import Latch, newer

RULE = "composite"
MAX_EDGES = 10_000  # count(): transitions remembered per window at most
_INF = float("inf")
_CMP = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq,
        "!=": operator.ne}
Fn = Callable[[float], Any]  # a compiled node: the moment in, a number / True / False / None (unknown) out


class _Rule:
    """One rule at run time: its compiled condition, latch, the memories of its rose/held/count, its next due."""

    __slots__ = ("index", "cfg", "key", "tier", "fn", "latch", "slots", "counts", "shown", "t", "due", "queued",
                 "guards", "false_at", "blocked", "areas", "reads", "stale_due", "wake_due", "reads_alarms",
                 "alarms_seen")

    def __init__(self, index: int, cfg: CompositeRule):
        self.index, self.cfg, self.key = index, cfg, (f"rule:{cfg.id}", RULE)
        self.tier = cfg.level
        self.latch = Latch()
        self.slots: list[list] = []  # rose / held / count memories, in the order compiled (saved by state())
        self.counts: list[tuple[list, float]] = []  # (count slot, window) for the reason
        self.shown: list[str] = []  # points whose values the reason shows
        self.areas: list[tuple[str, int]] = []  # any_alarm() areas and tiers: the reason names their alarms
        self.t = -_INF  # last evaluated: evaluation never goes back in time
        self.due = self.queued = _INF
        # "X and Y": while X was false (and nothing is pending), nothing but a change of X's points can raise
        # the rule, so changes of Y's points are not evaluated; X's points, per operand that can guard
        self.guards: list[frozenset[str] | None] = []
        self.false_at = [-1]  # which operand was false at the last evaluation
        self.blocked: frozenset[str] | None = None
        self.reads: list[str] = []  # the points whose values it reads
        self.stale_due = False  # its due is only the moment a value it read would go stale
        self.wake_due = _INF  # the due it asked for itself (a delay, a window), apart from values going stale
        self.reads_alarms = any(isinstance(n, Call) and n.func in ("alarm", "any_alarm") for n in walk(cfg.condition))
        self.alarms_seen = -1  # CompositeDetector.alarm_changes when it was last evaluated


class CompositeDetector:
    """Rule 'composite', a joint detector: sees every point's readings and the other detectors' findings.

    >>> from config.model import Area, CompositeRule, Plant, Point
    >>> run = dict(area="a", unit="", interval_s=1, range=(0, 1))
    >>> plant = Plant(site="s", name="厂", areas=[Area(id="a", name="车间", sector="dust")],
    ...     points=[Point(id="fan", name="风机运行", name_en="Fan running", **run),
    ...             Point(id="prod", name="生产运行", name_en="Production running", **run)],
    ...     rules=[CompositeRule(id="r", name="风机停机但生产仍在进行", name_en="Fan stopped while producing",
    ...                          area="a", tier="red", when="prod and not fan", for_s=2)])
    >>> d = CompositeDetector(plant)
    >>> ts = np.arange(5.0)
    >>> [(f.tier.name, f.ts, f.reason_en) for f in d.feed_joint(
    ...     [("fan", ts, np.array([1., 1, 0, 0, 0])), ("prod", ts, np.ones(5))], [])]
    [('RED', 4.0, 'Fan stopped while producing (Production running=1, Fan running=0, for 2 s)')]
    """

    clock = "reading"
    joint = True

    def __init__(self, plant: Plant):
        self.points: dict[str, Point] = plant.point_map()
        self._limit = {pid: p.stale_factor * p.interval_s for pid, p in self.points.items()}
        self._area_of = {pid: p.area for pid, p in self.points.items()}
        self._seen: dict[str, float] = {}  # last reading judged, per watched point (redeliveries are ignored)
        self._last: dict[str, tuple[float, float]] = {}  # latest (time, value) per watched point
        self._batch: dict[str, tuple[list, list]] = {}  # while a batch is judged: its readings per watched point
        self._alarms: dict[tuple[str, str], int] = {}  # every active alert (point, rule) -> tier, ours and others'
        self._area_alarms: dict[str, dict[tuple[str, str], int]] = {}
        self._point_alarms: dict[str, dict[str, int]] = {}
        self._heap: list[tuple[float, int, bool]] = []  # (due, rule index, forced)
        self._wake = [_INF]  # the earliest due the evaluation in progress asked for
        self._stale_wake = [_INF]  # the earliest moment a value it read goes stale (apart: see _due)
        self.alarm_changes = 0  # how many times any alarm it knows of has changed (see _due)
        self._own: tuple[str, str] = ("", "")  # the rule being evaluated: its own alert is not "another alarm"
        self._consts: dict[Fn, Any] = {}  # compiled functions that answer the same at every moment, and that answer
        self._rules = [_Rule(i, r) for i, r in enumerate(plant.rules)]
        self._by_key = {r.key[0]: r for r in self._rules}
        watch: dict[str, list[int]] = {}
        self._age_points: set[str] = set()
        self._age_rules: list[int] = []
        self._alarm_points: dict[str, list[int]] = {}
        self._alarm_areas: dict[str, list[int]] = {}
        for rule in self._rules:
            node = rule.cfg.condition
            rule.fn, stateful = self._compile(node, rule)
            if isinstance(node, Logic) and node.op == "and" and not stateful:
                rule.fn = _guarded([self._compile(x, rule)[0] for x in node.operands], rule.false_at)
                rule.guards = [None if any(isinstance(n, Call) for n in walk(x)) else
                               frozenset(n.point for n in walk(x) if isinstance(n, Ref)) for x in node.operands]
            args = {id(c.args[0]): c.func for c in walk(node) if isinstance(c, Call) and c.func in
                    ("alarm", "age", "limit", "low_limit", "any_alarm")}
            for n in walk(node):
                role = args.get(id(n))
                if isinstance(n, Ref) and role in (None, "age") and n.point in self.points:
                    watch.setdefault(n.point, []).append(rule.index)
                    if role is None and n.point not in rule.reads:
                        rule.reads.append(n.point)
                    if role is None and n.point not in rule.shown:
                        rule.shown.append(n.point)
                    if role == "age":
                        self._age_points.add(n.point)
                        self._age_rules.append(rule.index)
                elif isinstance(n, Ref) and role == "alarm":
                    self._alarm_points.setdefault(n.point, []).append(rule.index)
                elif role == "any_alarm":
                    self._alarm_areas.setdefault(n.value, []).append(rule.index)
            rule.areas = list(dict.fromkeys((c.args[0].value, c.args[1].value) for c in walk(node)
                                            if isinstance(c, Call) and c.func == "any_alarm"))
        self._watch = {pid: np.unique(np.asarray(ks, np.int64)) for pid, ks in watch.items()}
        self._age_rules = sorted(set(self._age_rules))
        # a point every rule reads only by comparing it with constants: a reading wakes its rules only when it
        # lands on another side of one of them (a noisy flow far from its limit wakes nothing)
        # (a rule reading alarms sees a later rule's alarm change at its own next evaluation, which every change
        # of its points is: their readings are all kept as changes)
        self._cuts = _cuts([r.cfg.condition for r in self._rules], self.points, set(self._watch)
                           - {pid for r in self._rules if r.reads_alarms for pid in r.reads})

    # --- compiling a condition into closures ----------------------------------------------------------------
    def _compile(self, node: Node, rule: _Rule) -> tuple[Fn, bool]:
        """The node as a function of the moment, and whether it remembers the past (then it is never skipped:
        every operand around it is evaluated, not short-circuited)."""
        if isinstance(node, Call):  # only conditions and values are compiled; ids, names and windows are read
            operands = node.args if node.func in ("abs", "min", "max") else node.args[:1] if node.func in STATEFUL \
                else ()
        else:
            operands = () if isinstance(node, (Ref, Status)) else children(node)
        kids = [self._compile(c, rule) for c in operands]
        stateful = any(s for _, s in kids) or (isinstance(node, Call) and node.func in STATEFUL)
        fs = [f for f, _ in kids]
        consts = self._consts
        if isinstance(node, (Num, Bool, TierName)):
            return self._constant(node.value), False
        if isinstance(node, Ref):
            return self._reader(node.point), False
        if isinstance(node, Status):
            return self._reader(node.ref.point, status=True), False
        if isinstance(node, Unary):
            (g,) = fs
            if g in consts:  # (folded: what the function below would answer at every moment)
                c = consts[g]
                return self._constant(None if c is None else -c if node.op == "-" else not c), False
            if node.op == "-":
                return (lambda t: None if (v := g(t)) is None else -v), stateful
            return (lambda t: None if (v := g(t)) is None else not v), stateful
        if isinstance(node, Logic):
            return _logic(node.op, fs, eager=stateful), stateful
        if isinstance(node, Binary):
            f, g = fs
            if f in consts and g in consts:
                folded = _fold(node.op, consts[f], consts[g])
                if folded is not _NOT_FOLDED:
                    return self._constant(folded[0]), False
            if g in consts:
                return _binary_const(node.op, f, consts[g]), stateful
            return _binary(node.op, f, g, eager=stateful), stateful
        fn = self._call(node, fs, rule)
        if isinstance(node, Call) and node.func in ("limit", "low_limit"):
            consts[fn] = fn(0.0)  # a configured limit: the same at every moment
        return fn, stateful

    def _constant(self, c: Any) -> Fn:
        fn = lambda t: c  # noqa: E731
        self._consts[fn] = c
        return fn

    def _call(self, node: Call, fs: list[Fn], rule: _Rule) -> Fn:
        func, args, wake = node.func, node.args, self._wake
        if func in ("abs", "min", "max"):
            combine = {"abs": lambda vs: abs(vs[0]), "min": min, "max": max}[func]
            return lambda t: None if None in (vs := [f(t) for f in fs]) else combine(vs)
        if func in ("limit", "low_limit"):
            p = self.points.get(args[0].point)
            limits = p and (p.high if func == "limit" else p.low)
            c = getattr(limits, args[1].name) if limits else None
            return lambda t: c
        if func == "age":
            pid = args[0].point
            return lambda t: None if (at := self._reading(pid, t)) is None else t - at[0]
        if func == "alarm":
            pid, which = args[0].point, args[1].value if len(args) > 1 else None
            return lambda t: self._alarm(pid, which)
        if func == "any_alarm":
            area, tier = args[0].value, args[1].value
            return lambda t: self._any_alarm(area, tier)
        g = fs[0]
        slot: list = [None, None, None, []]  # previous value, current value, current moment, count's edges
        rule.slots.append(slot)
        if func == "held":
            window = args[1].value

            def held(t: float) -> bool | None:
                v = g(t)
                if v is not True:
                    slot[2] = None
                    return v
                if slot[2] is None:
                    slot[2] = t
                if t - slot[2] >= window:
                    return True
                wake[0] = min(wake[0], slot[2] + window)
                return False
            return held

        def edge(t: float) -> bool | None:
            """Did the condition turn from (known) false to true at t? Idempotent within one moment."""
            v = g(t)
            if slot[2] != t:
                slot[0], slot[2] = slot[1], t
            slot[1] = v
            return None if v is None else bool(v and slot[0] is False)
        if func == "rose":
            def rose(t: float) -> bool | None:
                rising = edge(t)
                if rising:  # true for this moment only: look again just after it
                    wake[0] = min(wake[0], math.nextafter(t, _INF))
                return rising
            return rose
        window = args[1].value
        rule.counts.append((slot, window))

        def count(t: float) -> int:
            rising, edges = edge(t), slot[3]
            if edges and edges[-1] == t and not rising:
                edges.pop()
            elif rising and (not edges or edges[-1] != t):
                edges.append(t)
            del edges[:bisect_right(edges, t - window)]
            del edges[:-MAX_EDGES]
            if edges:
                wake[0] = min(wake[0], edges[0] + window)
            return len(edges)
        return count

    # --- what a condition reads ---------------------------------------------------------------------------
    def _reading(self, pid: str, t: float) -> tuple[float, float] | None:
        """The point's latest (time, value) at t: from the batch being judged, else from before it."""
        b = self._batch.get(pid)
        if b is not None:
            ts = b[0]
            if t >= ts[-1]:
                return ts[-1], b[1][-1]
            i = bisect_right(ts, t) - 1
            if i >= 0:
                return ts[i], b[1][i]
        return self._last.get(pid)

    def _value(self, pid: str, t: float) -> float | None:
        """The point's latest value at t; None (unknown) if never heard or silent too long. (The hot path:
        _reading inlined.)"""
        b = self._batch.get(pid)
        if b is not None and t >= b[0][0]:
            ts = b[0]
            i = len(ts) - 1 if t >= ts[-1] else bisect_right(ts, t) - 1
            at, v = ts[i], b[1][i]
        else:
            last = self._last.get(pid)
            if last is None:
                return None
            at, v = last
        stale_at = at + self._limit[pid]
        if t > stale_at:  # silent longer than the stale detector allows (same strict >)
            return None
        if stale_at < self._stale_wake[0]:
            self._stale_wake[0] = math.nextafter(stale_at, _INF)  # the first moment this value is unknown
        return v

    def _reader(self, pid: str, status: bool = False) -> Fn:
        """_value(pid, t) as a function of t alone, what a compiled condition reads (the hot path: the same steps,
        with the point's dicts, stale limit and the wake bound once); with status, whether that value is >= 0.5."""
        batch_get, last_get, wake, nextafter = self._batch.get, self._last.get, self._stale_wake, math.nextafter
        limit = self._limit.get(pid)
        if limit is None:  # not a point of the plant: never in the batch nor heard before, so never known
            if status:
                return lambda t: None if (v := self._value(pid, t)) is None else v >= 0.5
            return lambda t: self._value(pid, t)

        def value(t: float) -> float | None:
            b = batch_get(pid)
            if b is not None and t >= b[0][0]:
                ts = b[0]
                i = len(ts) - 1 if t >= ts[-1] else bisect_right(ts, t) - 1
                at, v = ts[i], b[1][i]
            else:
                last = last_get(pid)
                if last is None:
                    return None
                at, v = last
            stale_at = at + limit
            if t > stale_at:
                return None
            if stale_at < wake[0]:
                wake[0] = nextafter(stale_at, _INF)
            return v

        def running(t: float) -> bool | None:
            v = value(t)
            return None if v is None else v >= 0.5
        return running if status else value

    def _alarm(self, pid: str, rule: str | None) -> int:
        tiers = self._point_alarms.get(pid, {})
        return tiers.get(rule, 0) if rule is not None else max(tiers.values(), default=0)

    def _any_alarm(self, area: str, tier: int) -> bool:
        areas = self._area_alarms.values() if area == "*" else [self._area_alarms.get(area, {})]
        return any(v >= tier and k != self._own for alarms in areas for k, v in alarms.items())

    def _alarmed(self, area: str, tier: int, own: tuple[str, str]) -> list[tuple[str, str]]:
        """(name, English name) of the points and rules with an alert at or above the tier in the area."""
        alarms = self._alarms if area == "*" else self._area_alarms.get(area, {})
        names = []
        for point, rule in sorted(k for k, v in alarms.items() if v >= tier and k != own):
            p, r = self.points.get(point), self._by_key.get(point)
            named = (p.name, p.name_en or p.id) if p else (r.cfg.name, r.cfg.name_en or r.cfg.id) if r else (point,) * 2
            if named not in names:
                names.append(named)
        return names

    def _set_alarm(self, point: str, rule: str, area: str, tier: int) -> None:
        key = (point, rule)
        if tier:
            if self._alarms.get(key) != tier:
                self.alarm_changes += 1
            self._alarms[key] = tier
            self._area_alarms.setdefault(area, {})[key] = tier
            self._point_alarms.setdefault(point, {})[rule] = tier
        elif self._alarms.pop(key, None) is not None:
            self.alarm_changes += 1
            self._area_alarms.get(area, {}).pop(key, None)
            self._point_alarms.get(point, {}).pop(rule, None)

    def _apply(self, f: Finding) -> None:
        own = self._by_key.get(f.point)
        area = own.cfg.area if own else self._area_of.get(f.point) or f.area
        self._set_alarm(f.point, f.rule, area, int(f.tier))

    def _watchers(self, point: str, area: str) -> list[int]:
        """The rules that look at this alert: by its point (alarm()), its area or every area (any_alarm())."""
        return [*self._alarm_points.get(point, ()), *self._alarm_areas.get(area, ()), *self._alarm_areas.get("*", ())]

    # --- the detector protocol ----------------------------------------------------------------------------
    def feed(self, point: str, ts: np.ndarray, values: np.ndarray) -> list[Finding]:
        return []  # joint: the pipeline calls feed_joint

    def feed_joint(self, groups: list[tuple[str, np.ndarray, np.ndarray]], findings: list[Finding]
                   ) -> list[Finding]:
        fresh = []
        watch = self._watch
        for pid, ts, values in groups:
            if pid in watch and len(ts) and (new := newer(self._seen, pid, ts, values)) is not None:
                fresh.append((pid, *new))
        # dues are judged up to the latest reading of a watched point (or finding); the tick takes them further
        end = max([self._seen[pid] for pid, _, _ in fresh] + [f.ts for f in findings], default=-_INF)
        times, rules = self._changes(fresh)
        for pid, ts, values in fresh:
            self._batch[pid] = (ts.tolist(), values.tolist())
        try:
            out = self._run(times, rules, findings, end)
        finally:
            for pid, (ts, values) in self._batch.items():
                self._last[pid] = (ts[-1], values[-1])
            self._batch.clear()
        return out

    def _changes(self, fresh: list[tuple[str, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """(moment, rule) to evaluate, in time order: each reading that changes its point's value, or ends a
        silence, wakes the rules watching that point (every reading, for a point whose age() is read)."""
        if not fresh:
            return np.empty(0), np.empty(0, np.int64)
        n_of, t_of, v_of, before_t, before_v, limits, watchers, n_watching = [], [], [], [], [], [], [], []
        last_get, limit_of, watch, never = self._last.get, self._limit, self._watch, (-_INF, np.nan)
        for pid, t, v in fresh:  # (one pass for what each group brings)
            n_of.append(len(t))
            t_of.append(t)
            v_of.append(v)
            b = last_get(pid, never)
            before_t.append(b[0])
            before_v.append(b[1])
            limits.append(limit_of[pid])
            w = watch[pid]
            watchers.append(w)
            n_watching.append(len(w))
        lens = np.array(n_of)
        ts, vs = np.concatenate(t_of), np.concatenate(v_of)
        starts = np.cumsum(lens) - lens
        prev_t, prev_v = np.roll(ts, 1), np.roll(vs, 1)
        prev_t[starts], prev_v[starts] = before_t, before_v
        limit = np.repeat(limits, lens)
        changed = ts - prev_t > limit
        cuts = [self._cuts.get(pid) for pid, _, _ in fresh]
        if any(c is not None for c in cuts):  # (where every cut is +inf, a value's side of it never changes)
            width = max(len(c) for c in cuts if c is not None)
            table = np.full((len(fresh), width), _INF)
            for i, c in enumerate(cuts):
                if c is not None:
                    table[i, :len(c)] = c
            by_reading = np.repeat(table, lens, axis=0)
            side = lambda x: ((by_reading < x[:, None]).sum(1), (by_reading <= x[:, None]).sum(1))  # noqa: E731
            (lo, hi), (lo0, hi0) = side(vs), side(prev_v)
            moved = (lo != lo0) | (hi != hi0) | np.isnan(vs) | np.isnan(prev_v)
            compared = np.repeat(np.array([c is not None for c in cuts]), lens)
            changed |= np.where(compared, moved, vs != prev_v)
        else:
            changed |= vs != prev_v
        if self._age_points:
            changed |= np.repeat([pid in self._age_points for pid, _, _ in fresh], lens)
        at = np.flatnonzero(changed)
        group = np.repeat(np.arange(len(fresh)), lens)[at]
        per_group = np.array(n_watching)
        n = per_group[group]
        first = (np.cumsum(per_group) - per_group)[group]
        index = np.repeat(first - (np.cumsum(n) - n), n) + np.arange(n.sum())
        rules, times = np.concatenate(watchers)[index], np.repeat(ts[at], n)
        order = np.lexsort((rules, times))
        times, rules = times[order], rules[order]
        keep = np.ones(len(times), bool)
        keep[1:] = (times[1:] != times[:-1]) | (rules[1:] != rules[:-1])
        blocked = [r for r in self._rules if r.blocked is not None]
        if blocked:  # a guard stays false until one of its points changes: nothing to evaluate before that
            groups, firsts = np.unique(group, return_index=True)  # each changed group's first changed reading
            first = dict(zip([fresh[g][0] for g in groups.tolist()], ts[at][firsts].tolist()))
            until = [-_INF] * len(self._rules)
            for r in blocked:
                until[r.index] = min(map(first.get, r.blocked, repeat(_INF)), default=_INF)
            keep &= times >= np.array(until)[rules]
        return times[keep], rules[keep]

    def tick(self, now: float, findings: list[Finding] = ()) -> list[Finding]:
        """Time passes: findings of this tick (a point going silent) are applied, rules reading age() are
        evaluated, and delays and windows that come due by `now` are judged."""
        times, rules = [now] * len(self._age_rules), list(self._age_rules)
        return self._run(np.asarray(times, float), np.asarray(rules, np.int64), sorted(findings, key=lambda f: f.ts),
                         now)

    def _run(self, times: np.ndarray, rules: np.ndarray, findings: list[Finding], until: float) -> list[Finding]:
        """Everything in time order: findings applied at their moment (waking the rules that watch them), each
        (moment, rule) evaluated, dues judged at their own moment, up to `until`."""
        pending = list(zip(times.tolist(), rules.tolist()))
        for f in findings:  # rare: merged in by their own moment
            own = self._by_key.get(f.point)
            area = own.cfg.area if own else self._area_of.get(f.point) or f.area
            pending += [(f.ts, k) for k in self._watchers(f.point, area)]
        if findings:
            pending.sort()
        out: list[Finding] = []
        heap, fi, n = self._heap, 0, len(findings)
        evaluate, by_index, pop, push = self._evaluate, self._rules, heapq.heappop, heapq.heappush
        for t, k in pending:
            while heap and heap[0][0] < t:
                entry = pop(heap)
                due, j, forced = entry
                if not forced:  # (_due's first steps, inlined: most dues were superseded or moved later)
                    rule = by_index[j]
                    if due != rule.queued:
                        continue
                    later = rule.due
                    if later > due:  # queued anew at its new due, as _schedule(rule, later) would
                        rule.queued = _INF
                        if later < _INF:
                            rule.queued = later
                            push(heap, (later, j, False))
                        continue
                fi = self._due(entry, findings, fi, out)
            while fi < n and findings[fi].ts <= t:
                self._apply(findings[fi])
                fi += 1
            evaluate(by_index[k], t, out)
        while heap and heap[0][0] <= until:
            fi = self._due(heapq.heappop(heap), findings, fi, out)
        for f in findings[fi:]:
            self._apply(f)
        return out

    def _due(self, entry: tuple[float, int, bool], findings: list[Finding], fi: int, out: list[Finding]) -> int:
        t, k, forced = entry
        rule = self._rules[k]
        if not forced:
            if t != rule.queued:
                return fi  # superseded by an earlier due
            rule.queued = _INF
            if rule.due > t:  # the due moved later since it was queued
                self._schedule(rule, rule.due)
                return fi
        while fi < len(findings) and findings[fi].ts <= t:
            self._apply(findings[fi])
            fi += 1
        if not forced and rule.stale_due and (not rule.reads_alarms or rule.alarms_seen == self.alarm_changes):
            # due only because a value it read would go stale by now: if every value it reads is still fresh
            # (newer readings came, on the same side of every comparison, or they would have woken it), its
            # answer cannot have changed; it is due again when the first of them would go stale
            fresh_until = self._fresh_until(rule, t)
            if fresh_until > t:
                rule.stale_due = fresh_until < rule.wake_due
                self._schedule(rule, min(fresh_until, rule.wake_due))
                return fi
        self._evaluate(rule, t, out)
        return fi

    def _fresh_until(self, rule: _Rule, t: float) -> float:
        """Just after the first moment one of the rule's values goes stale, if all are fresh at t; else -inf.
        Readings of the batch being judged that follow each other within the stale limit keep a value fresh."""
        until = _INF
        for pid in rule.reads:
            limit = self._limit[pid]
            b = self._batch.get(pid)
            if b is not None and t >= b[0][0]:
                ts = b[0]
                i, n = bisect_right(ts, t) - 1, len(ts)
                if t > ts[i] + limit:
                    return -_INF
                while i + 1 < n and ts[i + 1] - ts[i] <= limit:
                    i += 1
                stale_at = ts[i] + limit
            else:
                at = self._last.get(pid)
                if at is None or t > at[0] + limit:
                    return -_INF
                stale_at = at[0] + limit
            until = min(until, stale_at)
        return math.nextafter(until, _INF)

    def _schedule(self, rule: _Rule, due: float) -> None:
        rule.due = due
        if due < rule.queued:
            rule.queued = due
            heapq.heappush(self._heap, (due, rule.index, False))

    def _evaluate(self, rule: _Rule, t: float, out: list[Finding]) -> None:
        if t < rule.t:
            t = rule.t
        rule.t = t
        wake, stale = self._wake, self._stale_wake
        wake[0], stale[0], self._own = _INF, _INF, rule.key
        v = rule.fn(t)
        latch, tier = rule.latch, rule.tier
        if v is True or latch.current or latch.beyond_since.get(tier) is not None:
            self._step(rule, v, t, out)
        rule.wake_due = wake[0] if wake[0] > t else _INF
        rule.stale_due = stale[0] < rule.wake_due
        due = min(rule.wake_due, stale[0])
        due = due if due > t else _INF
        rule.due = due
        if due < rule.queued:
            rule.queued = due
            heapq.heappush(self._heap, (due, rule.index, False))
        rule.alarms_seen = self.alarm_changes
        rule.blocked = None
        if v is False and rule.guards and not latch.current and latch.beyond_since.get(tier) is None:
            rule.blocked = rule.guards[rule.false_at[0]]

    def _step(self, rule: _Rule, v: bool | None, t: float, out: list[Finding]) -> None:
        """The latch: on-delay, off-delay; a finding when the tier changes; the moment the next step comes due."""
        latch, tier, cfg = rule.latch, rule.tier, rule.cfg
        new = latch.step(t, [tier], {tier: v is True}, {tier: v is False}, cfg.for_s, cfg.off_delay_s)
        if new is not None:
            out.append(self._finding(rule, new, t))
            self._set_alarm(rule.key[0], RULE, cfg.area, int(new))
            for k in self._watchers(rule.key[0], cfg.area):
                if k > rule.index:  # a later rule sees this one's alert at the same moment; no cycles
                    heapq.heappush(self._heap, (t, k, True))
        since = latch.beyond_since.get(tier)
        if latch.current == Tier.NORMAL and since is not None:
            self._wake[0] = min(self._wake[0], since + cfg.for_s)
        since = latch.inside_since.get(tier)
        if latch.current != Tier.NORMAL and since is not None:
            self._wake[0] = min(self._wake[0], max(since, latch.stepped_down_at) + cfg.off_delay_s)

    def _finding(self, rule: _Rule, tier: Tier, t: float) -> Finding:
        cfg = rule.cfg
        zh, en = [], []
        for pid in rule.shown:
            v = self._value(pid, t)
            if v is not None:
                p = self.points[pid]
                zh.append(f"{p.name}={fmt(v)}{p.unit}")
                en.append(f"{p.name_en or p.id}={fmt(v)}{' ' + p.unit if p.unit else ''}")
        for slot, window in rule.counts:
            if slot[3]:
                zh.append(f"{_span_zh(window)}内 {len(slot[3])} 次")
                en.append(f"{len(slot[3])} time{'s' * (len(slot[3]) > 1)} in {_span_en(window)}")
        for area, at_least in rule.areas if tier != Tier.NORMAL else ():
            names = self._alarmed(area, at_least, rule.key)
            if names:
                zh.append(f"{Tier(at_least).zh}及以上报警：{'、'.join(n for n, _ in names)}")
                en.append(f"{Tier(at_least).label} or higher alarm: {', '.join(n for _, n in names)}")
        since = rule.latch.beyond_since.get(rule.tier)
        if tier != Tier.NORMAL and cfg.for_s > 0 and since is not None:
            zh.append(f"已持续 {_span_zh(t - since)}")
            en.append(f"for {_span_en(t - since)}")
        name_en = cfg.name_en or cfg.id
        zh_s, en_s = (f"（{'，'.join(zh)}）" if zh else ""), (f" ({', '.join(en)})" if en else "")
        if tier == Tier.NORMAL:
            return Finding(rule.key[0], RULE, tier, t, None, f"{cfg.name}已恢复{zh_s}", f"{name_en} cleared{en_s}",
                           cfg.area)
        return Finding(rule.key[0], RULE, tier, t, None, f"{cfg.name}{zh_s}", f"{name_en}{en_s}", cfg.area)

    def assume(self, point: str, rule: str, tier: Tier) -> None:
        """The alert book's tiers after a restart: which alarms are active, and where our own rules stand."""
        own = self._by_key.get(point) if rule == RULE else None
        if own is not None:
            own.latch.current = tier
        self._apply(Finding(point, rule, tier, 0.0, None, "", ""))

    def state(self) -> dict[str, Any]:
        return {"seen": dict(self._seen), "last": {pid: list(v) for pid, v in self._last.items()},
                "alarms": [[p, r, t] for (p, r), t in self._alarms.items()],
                "rules": {r.cfg.id: {"when": r.cfg.when, "t": r.t, "due": r.due, "latch": r.latch.state(),
                                     "slots": [[*s[:3], list(s[3])] for s in r.slots]} for r in self._rules}}

    def restore(self, state: dict[str, Any]) -> None:
        self._seen.update({k: v for k, v in state.get("seen", {}).items() if k in self._watch})
        self._last.update({k: (v[0], v[1]) for k, v in state.get("last", {}).items() if k in self._watch})
        for p, r, t in state.get("alarms", []):
            self._apply(Finding(p, r, Tier(t), 0.0, None, "", ""))
        rules = {r.cfg.id: r for r in self._rules}
        for rid, s in state.get("rules", {}).items():
            rule = rules.get(rid)
            if rule is None or s.get("when") != rule.cfg.when:
                continue  # removed or rewritten: starts afresh (the alert book still tells its tier)
            rule.latch.restore(s["latch"])
            rule.t = s["t"]
            for slot, saved in zip(rule.slots, s["slots"]):
                slot[:] = [*saved[:3], list(saved[3])]
            rule.queued = _INF
            self._schedule(rule, s["due"])


def _cuts(conditions: list[Node], points: dict[str, Point], watched: set[str]) -> dict[str, tuple[float, ...]]:
    """Per watched point that every condition reads only as `point <op> constant` (or a status: >= 0.5), the
    constants, sorted. Two values on the same side of each of them give every such comparison the same answer,
    so a reading that moves none of them changes no rule (silence and its end are judged apart, on time)."""
    cuts: dict[str, set[float]] = {}
    other: set[str] = set()
    for node in conditions:
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, Status):
                cuts.setdefault(n.ref.point, set()).add(0.5)
                continue
            if isinstance(n, Binary) and n.op in _CMP:
                pair = ((n.left, n.right), (n.right, n.left))
                hit = [(ref, c) for ref, k in pair if isinstance(ref, Ref) and (c := _number(k, points)) is not None]
                if hit:
                    ref, c = hit[0]
                    cuts.setdefault(ref.point, set()).add(c)
                    continue
            if isinstance(n, Ref):
                other.add(n.point)  # read some other way (arithmetic, shown, age, alarm...): every change counts
                continue
            stack.extend(children(n))
    return {pid: tuple(sorted(cs)) for pid, cs in cuts.items() if pid in watched and pid not in other}


def _number(node: Node, points: dict[str, Point]) -> float | None:
    """The node's value when it is the same finite number at every moment (a number, a configured limit, simple
    arithmetic of those), else None."""
    if isinstance(node, Num) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        v = float(node.value)
    elif isinstance(node, Unary) and node.op == "-":
        v = _number(node.operand, points)
        v = None if v is None else -v
    elif isinstance(node, Binary) and node.op in "+-*/":
        a, b = _number(node.left, points), _number(node.right, points)
        v = None if a is None or b is None or (node.op == "/" and b == 0) else _compute(node.op)(a, b)
    elif isinstance(node, Call) and node.func in ("limit", "low_limit"):
        p = points.get(node.args[0].point)
        limits = p and (p.high if node.func == "limit" else p.low)
        v = getattr(limits, node.args[1].name, None) if limits else None
    else:
        return None
    return v if v is not None and math.isfinite(v) else None


def _guarded(fs: list[Fn], false_at: list[int]) -> Fn:
    """A top-level `and` of conditions without memory, noting which operand was false."""
    indexed = list(enumerate(fs))

    def every(t: float) -> bool | None:
        unknown = False
        for i, f in indexed:
            v = f(t)
            if v is False:
                false_at[0] = i
                return False
            if v is None:
                unknown = True
        return None if unknown else True
    return every


def _logic(op: str, fs: list[Fn], eager: bool) -> Fn:
    """Kleene's and/or: false and unknown = false, true or unknown = true; else unknown wins over the rest."""
    stop = op == "or"  # the value that decides at once

    def lazy(t: float) -> bool | None:
        unknown = False
        for f in fs:
            v = f(t)
            if v is stop:
                return stop
            if v is None:
                unknown = True
        return None if unknown else not stop

    def every(t: float) -> bool | None:
        vs = [f(t) for f in fs]  # every operand, each one's memory kept up to date
        for v in vs:
            if v is stop:
                return stop
        return None if None in vs else not stop
    return every if eager else lazy


_NOT_FOLDED = object()


def _compute(op: str) -> Callable[[Any, Any], Any]:
    if op == "/":
        return lambda a, b: None if b == 0 else a / b
    return _CMP.get(op) or {"+": operator.add, "-": operator.sub, "*": operator.mul}[op]


def _fold(op: str, a: Any, b: Any) -> tuple[Any] | object:
    """(what _binary would answer at every moment,) for two constant operands; _NOT_FOLDED if that would raise."""
    try:
        return (None if a is None or b is None else _compute(op)(a, b),)
    except Exception:  # left to raise where it did, at evaluation
        return _NOT_FOLDED


def _binary_const(op: str, f: Fn, c: Any) -> Fn:
    """_binary with a constant right operand (a limit, a number): the same answers, one call fewer."""
    compute = _compute(op)

    def right_const(t: float) -> Any:
        a = f(t)
        if a is None:
            return None
        return None if c is None else compute(a, c)
    return right_const


def _binary(op: str, f: Fn, g: Fn, eager: bool) -> Fn:
    """Arithmetic and comparison on numbers; unknown in, unknown out; dividing by zero is unknown."""
    compute = _compute(op)

    def both(t: float) -> Any:
        a, b = f(t), g(t)
        return None if a is None or b is None else compute(a, b)

    def lazy(t: float) -> Any:
        a = f(t)
        if a is None:
            return None
        b = g(t)
        return None if b is None else compute(a, b)
    return both if eager else lazy


def _span_zh(s: float) -> str:
    return f"{s / 3600:.3g} 小时" if s >= 3600 else f"{s / 60:.3g} 分钟" if s >= 120 else f"{s:.3g} 秒"


def _span_en(s: float) -> str:
    return f"{s / 3600:.3g} h" if s >= 3600 else f"{s / 60:.3g} min" if s >= 120 else f"{s:.3g} s"
