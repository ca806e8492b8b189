"""Alarm-system quality: the ISA-18.2 / EEMUA 191 yardsticks per console (one area), per day and shift.

Pure functions over the alert book's event log (domain.md section 7). Definitions, shared with `riskwatch eval`:
- alarm: a `raised` event; a `tier_up` is a further annunciation (it needs its own acknowledgement), counted apart.
- alarm rate: a sliding 10-min window, rate(t) = alarms in (t - 600 s, t]; the peak is its maximum (`most_in`).
- flood: the time the rate is above 10; overlapping windows make one period, from the 11th alarm until the rate
  falls back to 10 (an alarm leaves the window 600 s after it came).
- chattering: 3+ transitions (raised, tier_up, tier_down, cleared) of one (point, rule) within 60 s.
- fleeting: an alarm cleared less than 10 s after it was raised, before anyone could act on it.
- stale (standing): active at the end of the period and raised more than 24 h before it.
- time to acknowledge: per annunciation, to the next acknowledgement of its alert; grouped by the annunciated tier.
- time to clear: per alarm, raised to cleared; grouped by the highest tier the alarm reached.
Alarms raised in the period are followed to their acknowledgement and clearing however late those come.
"""
from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from typing import Iterable

from alerting.book import AlertEvent
from config.alarms import STEPS
from config.model import ALARM_TIERS, Tier

WINDOW_S = 600.0
FLOOD_ABOVE = 10               # more than this many alarms in 10 min is a flood; also the peak's limit
FLOOD_PCT_LIMIT = 1.0          # time in flood below 1 % of the period
RATE_ACCEPTABLE, RATE_MANAGEABLE = 1.0, 2.0  # average alarms per 10 min (EEMUA 191)
CHATTER_WINDOW_S = 60.0
CHATTER_TRANSITIONS = 3
TRANSITIONS = ("raised", "tier_up", "tier_down", "cleared")
FLEETING_S = 10.0
STALE_S = 86400.0
TOP_N = 10
DEFAULT_TZ = timezone(timedelta(hours=8))
LEVELS = ("acceptable", "manageable", "overloaded")
TIER_LABELS = [t.label for t in reversed(ALARM_TIERS)]  # red first
OVERDUE_NOTE = ("overdue_steps: closed-loop handling steps (ack, verify, handle, feedback, close) of orange and red "
                "warnings that went past their time limit in the period, each counted once, by step")
SUPPRESSED_NOTE = ("alarms raised while shelved, out of service or suppressed by design are not annunciated and not "
                   "counted in the rates; they are counted apart as suppressed")


@dataclass(frozen=True, slots=True)
class Shift:
    """A crew's shift in local time; an end at or before the start ends on the next day."""

    name: str
    start: str  # "HH:MM"
    end: str    # "HH:MM"


DEFAULT_SHIFTS = (Shift("day", "08:00", "20:00"), Shift("night", "20:00", "08:00"))


@dataclass(slots=True)
class _Episode:
    """One alert (point, rule episode) as the log tells it, in log order."""

    alert_id: int
    point: str
    rule: str
    area: str
    raised_at: float
    cleared_at: float | None
    max_tier: Tier
    steps: list[tuple[float, str, Tier]] = field(default_factory=list)  # (ts, kind, tier)
    suppressed: bool = False  # raised while suppressed: never annunciated
    overdue: list[tuple[float, str]] = field(default_factory=list)  # (ts, step)


@dataclass(slots=True)
class _Console:
    """One area's alarms in the period, each list sorted by time (`*_ts` are their bisect keys)."""

    alarm_ts: list[float]
    alarms: list[_Episode]
    tier_up_ts: list[float]
    ann_ts: list[float]
    anns: list[tuple[str, float | None]]       # (tier, seconds to acknowledge or None)
    floods: list[tuple[float, float]]
    chatter_ts: list[float]                    # when a (point, rule) was seen chattering
    chatter_keys: list[tuple[str, str]]
    standing: list[_Episode]                   # episodes that stood more than STALE_S (the only ones that can be stale)
    overdue_ts: list[float]                    # closed-loop steps going overdue
    overdue_steps: list[str]
    suppressed_ts: list[float]                 # raises not annunciated (shelved, out of service, by design)


# --- the shared yardsticks ------------------------------------------------------------------------------------

def most_in(times: list[float], width: float) -> int:
    """The most of `times` (sorted) inside any window of `width` seconds: t_last - t_first < width.

    >>> most_in([0, 10, 59, 60, 61], 60)
    4
    """
    best, i = 0, 0
    for j, t in enumerate(times):
        while t - times[i] >= width:
            i += 1
        best = max(best, j - i + 1)
    return best


def flood_periods(alarm_ts: list[float], above: int = FLOOD_ABOVE, width: float = WINDOW_S) -> list[tuple[float, float]]:
    """The periods when the sliding-window rate (alarms in (t - width, t]) is above `above`: [start, end).

    >>> flood_periods([float(i) for i in range(11)])
    [(10.0, 600.0)]
    """
    changes: dict[float, int] = defaultdict(int)
    for t in alarm_ts:
        changes[t] += 1
        changes[t + width] -= 1
    out, n, begin = [], 0, None
    for x in sorted(changes):
        n += changes[x]
        if n > above and begin is None:
            begin = x
        elif n <= above and begin is not None:
            out.append((begin, x))
            begin = None
    return out


def chattering_at(transition_ts: list[float], n: int = CHATTER_TRANSITIONS, width: float = CHATTER_WINDOW_S) -> list[float]:
    """The times (sorted input) at which a (point, rule) has made `n` or more transitions within `width` s."""
    out, i = [], 0
    for j, t in enumerate(transition_ts):
        while t - transition_ts[i] >= width:
            i += 1
        if j - i + 1 >= n:
            out.append(t)
    return out


def verdict(avg_per_10min: float, peak_10min: int, flood_pct: float) -> dict:
    """EEMUA 191 / ISA-18.2 benchmark for one console; the overall level is the worst of the three."""
    rate = LEVELS[0] if avg_per_10min <= RATE_ACCEPTABLE else LEVELS[1] if avg_per_10min <= RATE_MANAGEABLE \
        else LEVELS[2]
    peak = LEVELS[0] if peak_10min <= FLOOD_ABOVE else LEVELS[2]
    flood = LEVELS[0] if flood_pct < FLOOD_PCT_LIMIT else LEVELS[2]
    return {"level": max((rate, peak, flood), key=LEVELS.index),
            "average_per_10min": {"value": avg_per_10min, "acceptable": RATE_ACCEPTABLE,
                                  "manageable": RATE_MANAGEABLE, "level": rate},
            "peak_10min": {"value": peak_10min, "limit": FLOOD_ABOVE, "level": peak},
            "flood_time_pct": {"value": flood_pct, "limit": FLOOD_PCT_LIMIT, "level": flood}}


def percentile(sorted_xs: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default).

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.9)
    3.7
    """
    k = (len(sorted_xs) - 1) * q
    lo = math.floor(k)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (k - lo)


def durations(values: list[float | None], missing: str) -> dict:
    """count, median, p90 and max of the measured durations; `missing` names how many have none."""
    xs = sorted(v for v in values if v is not None)
    return {"count": len(xs), missing: len(values) - len(xs),
            "median_s": round(percentile(xs, 0.5), 1) if xs else None,
            "p90_s": round(percentile(xs, 0.9), 1) if xs else None,
            "max_s": round(xs[-1], 1) if xs else None}


# --- days and shifts ------------------------------------------------------------------------------------------

def shift_slices(start: float, end: float, shifts: Iterable[Shift] = DEFAULT_SHIFTS,
                 tz: timezone = DEFAULT_TZ) -> list[tuple[str, str, float, float]]:
    """(day, shift, from, to) covering [start, end), clipped to it; a shift's day is the date it starts on."""
    out = []
    day = datetime.fromtimestamp(start, tz).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end, tz).date()
    while day <= last:
        for s in shifts:
            t0, t1 = time.fromisoformat(s.start), time.fromisoformat(s.end)
            a = datetime.combine(day, t0, tz).timestamp()
            b = datetime.combine(day + timedelta(days=1 if t1 <= t0 else 0), t1, tz).timestamp()
            a, b = max(a, start), min(b, end)
            if b > a:
                out.append((day.isoformat(), s.name, a, b))
        day += timedelta(days=1)
    return sorted(out, key=lambda x: x[2])


def tz_label(tz: timezone) -> str:
    minutes = int(tz.utcoffset(None).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


# --- the report -----------------------------------------------------------------------------------------------

def report(events: list[AlertEvent], start: float, end: float, areas: Iterable[str] | None = None,
           shifts: Iterable[Shift] = DEFAULT_SHIFTS, tz: timezone = DEFAULT_TZ) -> dict:
    """The alarm-system quality report on [start, end): per area, for the whole period and per day and shift.

    `events` must hold each episode's events from its raise on (the log, or the part of it from the oldest
    episode still active at `start`); later events (acknowledgements, clears after `end`) are used as they come.
    `areas`: the consoles to report, quiet ones included; default: every area with an event.
    """
    shifts = tuple(shifts)
    episodes = _episodes(events)
    wanted = sorted(set(areas) if areas is not None else {ep.area for ep in episodes})
    by_area: dict[str, list[_Episode]] = {a: [] for a in wanted}
    for ep in episodes:
        if ep.area in by_area:
            by_area[ep.area].append(ep)
    slices = shift_slices(start, end, shifts, tz)
    area_reports = [_area_report(area, by_area[area], start, end, slices) for area in wanted]
    top = sorted((n for r in area_reports for n in r["top"]), key=_noisiest)[:TOP_N]
    return {
        "start": start, "end": end, "tz": tz_label(tz),
        "definitions": {
            "rate_window": "sliding", "window_s": WINDOW_S, "flood_above": FLOOD_ABOVE,
            "flood_pct_limit": FLOOD_PCT_LIMIT, "rate_acceptable": RATE_ACCEPTABLE,
            "rate_manageable": RATE_MANAGEABLE, "chatter_transitions": CHATTER_TRANSITIONS,
            "chatter_window_s": CHATTER_WINDOW_S, "fleeting_s": FLEETING_S, "stale_s": STALE_S, "top_n": TOP_N,
            "shifts": [{"name": s.name, "start": s.start, "end": s.end} for s in shifts],
        },
        "areas": area_reports,
        "top": top,
        "notes": {"overdue_steps": OVERDUE_NOTE, "suppressed": SUPPRESSED_NOTE},
    }


def _episodes(events: list[AlertEvent]) -> list[_Episode]:
    eps: dict[int, _Episode] = {}
    for e in sorted(events, key=lambda e: e.seq):
        ep = eps.get(e.alert_id)
        if ep is None:  # from the alert as this event left it: its raise may lie before the events given
            a = e.alert
            ep = eps[e.alert_id] = _Episode(e.alert_id, a.point, a.rule, a.area, a.raised_at, a.cleared_at, a.max_tier)
        if e.kind == "raised" and e.alert.suppressed:
            ep.suppressed = True
        if e.kind == "overdue":
            ep.overdue.append((e.ts, e.note or ""))
        if e.kind == "cleared":
            ep.cleared_at = e.ts
        elif e.kind in ("raised", "tier_up"):
            ep.max_tier = max(ep.max_tier, e.tier)
        ep.steps.append((e.ts, e.kind, e.tier))
    return list(eps.values())


def _console(episodes: list[_Episode], start: float, end: float) -> _Console:
    alarms, tier_ups, anns = [], [], []
    overdue = sorted(o for ep in episodes for o in ep.overdue)
    suppressed = sorted(ep.raised_at for ep in episodes if ep.suppressed)
    transitions: dict[tuple[str, str], list[float]] = defaultdict(list)
    for ep in episodes:
        if ep.suppressed:
            continue
        pending: list[tuple[float, str]] = []
        for ts, kind, tier in ep.steps:
            inside = start <= ts < end
            if kind in TRANSITIONS and inside:
                transitions[(ep.point, ep.rule)].append(ts)
            if kind == "raised" and inside:
                alarms.append((ts, ep))
            if kind == "tier_up" and inside:
                tier_ups.append(ts)
            if kind in ("raised", "tier_up"):
                pending.append((ts, tier.label))
            elif kind == "acked":
                # an acknowledgement carries the wall clock, an annunciation the reading's: never below zero
                anns += [(a, (label, max(0.0, ts - a))) for a, label in pending if start <= a < end]
                pending = []
        anns += [(a, (label, None)) for a, label in pending if start <= a < end]
    alarms.sort(key=lambda x: x[0])
    anns.sort(key=lambda x: x[0])
    chatter = sorted((t, key) for key, ts in transitions.items() for t in chattering_at(sorted(ts)))
    alarm_ts = [t for t, _ in alarms]
    floods = [(a, min(b, end)) for a, b in flood_periods(alarm_ts)]
    standing = [ep for ep in episodes if ep.cleared_at is None or ep.cleared_at - ep.raised_at > STALE_S]
    return _Console(alarm_ts, [ep for _, ep in alarms], sorted(tier_ups), [t for t, _ in anns], [x for _, x in anns],
                    floods, [t for t, _ in chatter], [k for _, k in chatter], standing,
                    [t for t, _ in overdue], [step for _, step in overdue], suppressed)


def _rate_at(alarm_ts: list[float], t: float) -> int:
    return bisect_right(alarm_ts, t) - bisect_right(alarm_ts, t - WINDOW_S)


def _peak(c: _Console, a: float, b: float) -> int:
    """The highest rate on [a, b): the rate only rises when an alarm comes, so look at a and at each alarm."""
    i, j = bisect_left(c.alarm_ts, a), bisect_left(c.alarm_ts, b)
    return max([_rate_at(c.alarm_ts, a)] + [_rate_at(c.alarm_ts, t) for t in c.alarm_ts[i:j]])


def _metrics(c: _Console, a: float, b: float) -> dict:
    """The yardsticks on [a, b) of one console."""
    i, j = bisect_left(c.alarm_ts, a), bisect_left(c.alarm_ts, b)
    alarms = c.alarms[i:j]
    k, m = bisect_left(c.ann_ts, a), bisect_left(c.ann_ts, b)
    anns = c.anns[k:m]
    tier_ups = bisect_left(c.tier_up_ts, b) - bisect_left(c.tier_up_ts, a)
    floods = [(max(f0, a), min(f1, b)) for f0, f1 in c.floods if f0 < b and f1 > a]
    flood_s = sum(f1 - f0 for f0, f1 in floods)
    chattering = {c.chatter_keys[n] for n in range(bisect_left(c.chatter_ts, a), bisect_left(c.chatter_ts, b))}
    span = b - a
    by_tier = {label: 0 for label in TIER_LABELS}
    to_ack: dict[str, list] = {label: [] for label in TIER_LABELS}
    for label, s in anns:
        by_tier[label] += 1
        to_ack[label].append(s)
    to_clear: dict[str, list] = {label: [] for label in TIER_LABELS}
    for ep in alarms:
        to_clear[ep.max_tier.label].append(None if ep.cleared_at is None else ep.cleared_at - ep.raised_at)
    return {
        "start": a, "end": b, "hours": round(span / 3600, 2),
        "alarms": len(alarms), "tier_ups": tier_ups, "annunciations": len(anns), "by_tier": by_tier,
        "per_10min_avg": round(len(alarms) / (span / WINDOW_S), 3) if span > 0 else 0.0,
        "per_10min_peak": _peak(c, a, b),
        "floods": len(floods), "flood_s": round(flood_s, 1),
        "flood_pct": round(100 * flood_s / span, 3) if span > 0 else 0.0,
        "chattering": len(chattering),
        "fleeting": sum(1 for ep in alarms if _fleeting(ep)),
        "stale": len(_stale_at(c.standing, b)),
        "ack": {label: durations(to_ack[label], "never_acked") for label in TIER_LABELS},
        "clear": {label: durations(to_clear[label], "not_cleared") for label in TIER_LABELS},
        "overdue_steps": _overdue(c, a, b),
        "suppressed": bisect_left(c.suppressed_ts, b) - bisect_left(c.suppressed_ts, a),
    }


def _overdue(c: _Console, a: float, b: float) -> dict:
    steps = c.overdue_steps[bisect_left(c.overdue_ts, a):bisect_left(c.overdue_ts, b)]
    return {"total": len(steps), "by_step": {s: steps.count(s) for s in STEPS if s in steps}}


def _fleeting(ep: _Episode) -> bool:
    return ep.cleared_at is not None and ep.cleared_at - ep.raised_at < FLEETING_S


def _stale_at(episodes: list[_Episode], t: float) -> list[_Episode]:
    return [ep for ep in episodes if ep.raised_at < t - STALE_S and (ep.cleared_at is None or ep.cleared_at >= t)]


def _state_at(ep: _Episode, t: float) -> tuple[str, bool]:
    """The tier an episode shows at t, and whether that tier is acknowledged."""
    tier, acked = ep.max_tier.label, False
    for ts, kind, step_tier in ep.steps:
        if ts >= t:
            continue
        if kind in ("raised", "tier_up", "tier_down"):
            tier = step_tier.label
        acked = kind == "acked" or (acked and kind not in ("raised", "tier_up"))
    return tier, acked


def _noisiest(n: dict) -> tuple:
    return (-n["alarms"], -n["tier_ups"], n["area"], n["point"], n["rule"])


def _area_report(area: str, episodes: list[_Episode], start: float, end: float,
                 slices: list[tuple[str, str, float, float]]) -> dict:
    c = _console(episodes, start, end)
    summary = _metrics(c, start, end)
    chatterers = set(c.chatter_keys)
    keys: dict[tuple[str, str], dict] = {}
    for ep in c.alarms:
        n = keys.setdefault((ep.point, ep.rule), {
            "point": ep.point, "rule": ep.rule, "area": area, "alarms": 0, "tier_ups": 0, "fleeting": 0,
            "max_tier": ep.max_tier.label, "chattering": (ep.point, ep.rule) in chatterers})
        n["alarms"] += 1
        n["fleeting"] += _fleeting(ep)
        n["tier_ups"] += sum(1 for ts, kind, _ in ep.steps if kind == "tier_up" and start <= ts < end)
        if ep.max_tier > Tier.parse(n["max_tier"]):
            n["max_tier"] = ep.max_tier.label
    chattering: dict[tuple[str, str], dict] = {}
    for t, key in zip(c.chatter_ts, c.chatter_keys):
        chattering.setdefault(key, {"point": key[0], "rule": key[1], "first_ts": t, "times": 0})["times"] += 1
    stale = []
    for ep in _stale_at(c.standing, end):
        tier, acked = _state_at(ep, end)
        stale.append({"alert_id": ep.alert_id, "point": ep.point, "rule": ep.rule, "tier": tier,
                      "raised_at": ep.raised_at, "active_s": round(end - ep.raised_at, 1), "acked": acked})
    return {
        "area": area,
        "summary": summary,
        "verdict": verdict(summary["per_10min_avg"], summary["per_10min_peak"], summary["flood_pct"]),
        "floods": [{"start": f0, "end": f1, "duration_s": round(f1 - f0, 1),
                    "alarms": bisect_left(c.alarm_ts, f1) - bisect_right(c.alarm_ts, f0 - WINDOW_S),
                    "peak": _peak(c, f0, f1)} for f0, f1 in c.floods],
        "chattering": sorted(chattering.values(), key=lambda x: x["first_ts"]),
        "fleeting": [{"alert_id": ep.alert_id, "point": ep.point, "rule": ep.rule, "raised_at": ep.raised_at,
                      "duration_s": round(ep.cleared_at - ep.raised_at, 2)} for ep in c.alarms if _fleeting(ep)],
        "stale": sorted(stale, key=lambda s: s["raised_at"]),
        "top": sorted(keys.values(), key=_noisiest)[:TOP_N],
        "shifts": [{"day": day, "shift": name, **_metrics(c, a, b)} for day, name, a, b in slices],
    }

