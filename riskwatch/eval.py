"""`riskwatch eval`: every scenario through the live detectors and alert book, on a simulated clock.

Readings are fed in one-minute slices of simulated time through `detect_groups` (the function the live
pipeline detects with), silence is judged at each slice's end, and findings go to a real AlertBook. What
comes out is scored: lead time before each accident's danger point, and alarm-system quality on the scenarios
that must raise nothing (ISA-18.2 / EEMUA 191 yardsticks, domain.md section 7).
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from alerting.book import AlertBook, AlertEvent
from alerting.quality import CHATTER_TRANSITIONS, CHATTER_WINDOW_S, TRANSITIONS, WINDOW_S, most_in
from config.expr import references
from config.model import Plant, Tier
from riskwatch.pipeline import LineWatch, default_detectors, detect_groups, tick_all
from simulators.scenarios import Scenario

SLICE_S = 60.0
TEN_MIN_S = WINDOW_S  # the yardsticks are the quality report's (alerting/quality.py): one definition of each
HEALTH_RULES = ("stale", "stuck", "glitch", "range", "disagree")  # the sensor's failure, not the hazard


@dataclass
class Replay:
    scenario: Scenario
    events: list[AlertEvent]
    start: float
    points: set[str]
    readings: int
    wall_s: float
    rule_points: dict[str, set[str]] = field(default_factory=dict)  # "rule:<id>" -> the points its condition reads

    def at(self, ev: AlertEvent) -> float:
        """Seconds since the scenario's start."""
        return ev.ts - self.start


def slices(series: dict[str, tuple[np.ndarray, np.ndarray]], start: float, duration_s: float):
    """A scenario's readings (seconds from its start) as the pipeline would group them, SLICE_S at a time:
    (groups of (point, reading times, arrival times, values), the moment the slice ends)."""
    edges = np.arange(0.0, duration_s + SLICE_S, SLICE_S)
    cuts = {p: np.searchsorted(t, edges) for p, (t, _) in series.items()}
    for k in range(len(edges) - 1):
        groups = []
        for point, (t, v) in series.items():
            i0, i1 = cuts[point][k], cuts[point][k + 1]
            if i1 > i0:
                ts = start + t[i0:i1]
                groups.append((point, ts, ts, v[i0:i1]))  # in simulation a reading arrives when it is taken
        yield groups, start + edges[k + 1]


def replay(plant: Plant, scenario: Scenario, seed: int = 1) -> Replay:
    t0 = time.perf_counter()
    series = scenario.series(plant, seed)
    start = scenario.start_epoch
    points = [p for p in plant.points if p.id in series]
    sub = plant.model_copy(update={"points": points})
    detectors = default_detectors(sub, start)
    book = AlertBook.for_plant(sub)
    lines = LineWatch(sub)
    for groups, now in slices(series, start, scenario.duration_s):
        book.line_state(lines.changes(groups))
        findings = detect_groups(detectors, groups)
        findings += tick_all(detectors, now)
        if findings:
            book.apply(sorted(findings, key=lambda f: f.ts))
        book.tick(now)
    events = book.events_since(0, 10**9)
    book.close()
    rule_points = {f"rule:{r.id}": references(r.condition) for r in plant.rules}
    return Replay(scenario, events, start, set(series), sum(len(t) for t, _ in series.values()),
                  time.perf_counter() - t0, rule_points)


def score_accident(run: Replay) -> dict:
    """Detected = an alert at yellow or above on a point where the hazard shows, or from a composite rule that
    reads one (a dead-sensor alarm is not detection). Lead time = danger point minus that first alert: positive
    is in time, negative is late."""
    truth = run.scenario.truth
    hazard = set(truth.points) | {r for r, pts in run.rule_points.items() if pts & set(truth.points)}
    on_hazard = [e for e in run.events if e.alert.point in hazard and e.alert.rule not in HEALTH_RULES
                 and e.kind in ("raised", "tier_up")]

    def first(min_tier: Tier) -> float | None:
        return next((run.at(e) for e in on_hazard if e.tier >= min_tier), None)

    yellow, orange = first(Tier.YELLOW), first(Tier.ORANGE)
    before = [e.tier for e in on_hazard if run.at(e) <= truth.danger_s]
    return {
        "name": run.scenario.name, "sector": run.scenario.sector.value, "title_zh": run.scenario.title_zh,
        "detected": yellow is not None,
        "lead_time_s": None if yellow is None else round(truth.danger_s - yellow, 1),
        "orange_lead_time_s": None if orange is None else round(truth.danger_s - orange, 1),
        "first_tier": on_hazard[0].tier.label if on_hazard else None,
        "max_tier": max(e.tier for e in on_hazard).label if on_hazard else None,
        "tier_at_danger": max(before).label if before else None,
        "hazard_start_s": truth.hazard_start_s, "danger_s": truth.danger_s,
        "alerts": _alerts(run),
    }


def alarm_quality(runs: list[Replay], plant: Plant) -> dict:
    """Per console (one area's operator): alarms per 10 min on average and at the worst, chattering, reds."""
    areas = {p.id: p.area for p in plant.points}
    hours = sum(r.scenario.duration_s for r in runs) / 3600
    consoles: dict[str, list[float]] = defaultdict(list)
    transitions: dict[tuple, list[float]] = defaultdict(list)
    reds = 0
    for r in runs:
        for e in r.events:
            if e.kind == "raised":
                consoles[areas.get(e.alert.point, "?")].append(r.at(e))
            if e.kind in TRANSITIONS:
                transitions[(r.scenario.name, e.alert.point, e.alert.rule)].append(r.at(e))
            if e.kind in ("raised", "tier_up") and e.tier == Tier.RED:
                reds += 1
    n_consoles = len({areas[p] for r in runs for p in r.points})
    total = sum(len(v) for v in consoles.values())
    return {
        "hours": round(hours, 1),
        "consoles": n_consoles,
        "alarms": total,
        "alarms_per_10min_per_console": round(total / (n_consoles * hours * 6), 4) if n_consoles and hours else 0.0,
        "max_alarms_in_10min": max((most_in(sorted(v), TEN_MIN_S) for v in consoles.values()), default=0),
        "chattering": sum(1 for v in transitions.values() if most_in(sorted(v), CHATTER_WINDOW_S) >= CHATTER_TRANSITIONS),
        "false_red": reds,
        "by_console": {c: len(v) for c, v in sorted(consoles.items())},
    }


def score_quiet(run: Replay) -> dict:
    """Quiet = nothing but the allowed rules; a sensor fault must also raise the rules it expects (a fault not
    found is a blind monitoring device), within its alert budget."""
    sc = run.scenario
    alerts = _alerts(run)
    unexpected = [a for a in alerts if a["rule"] not in sc.allowed_rules]
    missing = sorted(sc.expected_rules - {a["rule"] for a in alerts})
    too_many = sc.max_alerts is not None and len(alerts) > sc.max_alerts
    return {"name": sc.name, "allowed_rules": sorted(sc.allowed_rules), "unexpected": unexpected,
            "expected_rules": sorted(sc.expected_rules), "missing": missing, "alerts": len(alerts),
            "max_alerts": sc.max_alerts, "allowed_alerts": len(alerts) - len(unexpected),
            "ok": not unexpected and not missing and not too_many}


def _alerts(run: Replay) -> list[dict]:
    episodes: dict[int, dict] = {}
    for e in run.events:
        a = episodes.setdefault(e.alert_id, {"point": e.alert.point, "rule": e.alert.rule,
                                             "raised_s": round(run.at(e), 1), "max_tier": e.tier.label})
        if e.kind in ("raised", "tier_up") and Tier.parse(a["max_tier"]) < e.tier:
            a["max_tier"] = e.tier.label
    return list(episodes.values())


def evaluate(plant: Plant, scenarios: list[Scenario], seed: int = 1,
             progress: Callable[[str], None] = lambda s: None) -> dict:
    accidents, quiet, normal_runs = [], [], []
    wall: dict[str, float] = {}
    for i, sc in enumerate(scenarios, 1):
        progress(f"[{i}/{len(scenarios)}] {sc.name}: {sc.duration_s / 3600:.1f} h simulated ...")
        run = replay(plant, sc, seed)
        wall[sc.name] = round(run.wall_s, 2)
        if sc.truth is not None:
            accidents.append(score_accident(run))
        else:
            quiet.append(score_quiet(run))
            if not sc.allowed_rules:
                normal_runs.append(run)
        progress(f"[{i}/{len(scenarios)}] {sc.name}: {run.readings:,} readings, {len(run.events)} alert events, "
                 f"{run.wall_s:.1f} s")
    normal = alarm_quality([r for r in normal_runs if r.scenario.name == "normal-week"] or normal_runs, plant)
    return {"seed": seed, "scenarios": accidents, "normal": normal, "quiet": quiet, "wall_s": wall}


def meets_bar(result: dict) -> list[str]:
    """The bar of the scenario issue, as sentences of what fails (empty = met)."""
    fails = []
    for s in result["scenarios"]:
        if not s["detected"] or (s["lead_time_s"] or 0) <= 0:
            fails.append(f"{s['name']}: not detected at yellow or above before its danger point")
        if s["tier_at_danger"] not in ("orange", "red"):
            fails.append(f"{s['name']}: {s['tier_at_danger'] or 'nothing'} at the danger point, not orange or red")
    n = result["normal"]
    if n["alarms_per_10min_per_console"] > 1:
        fails.append(f"normal: {n['alarms_per_10min_per_console']} alarms per 10 min per console (> 1)")
    if n["max_alarms_in_10min"] > 10:
        fails.append(f"normal: {n['max_alarms_in_10min']} alarms in one 10 min (> 10)")
    if n["chattering"]:
        fails.append(f"normal: {n['chattering']} chattering alarms")
    if n["false_red"]:
        fails.append(f"normal: {n['false_red']} red alarms")
    for q in result["quiet"]:
        if q["unexpected"]:
            fails.append(f"{q['name']}: raised {len(q['unexpected'])} unexpected alarms")
        if q["missing"]:
            fails.append(f"{q['name']}: the fault was not found (no {', '.join(q['missing'])} alarm)")
        if q["max_alerts"] is not None and q["alerts"] > q["max_alerts"]:
            fails.append(f"{q['name']}: {q['alerts']} alarms, at most {q['max_alerts']} expected")
    return fails


def table(result: dict) -> str:
    rows = ["scenario               detected  lead (min)  first   at danger  max",
            "---------------------  --------  ----------  ------  ---------  ------"]
    for s in result["scenarios"]:
        lead = "-" if s["lead_time_s"] is None else f"{s['lead_time_s'] / 60:.1f}"
        rows.append(f"{s['name']:<21}  {'yes' if s['detected'] else 'NO':<8}  {lead:>10}  {s['first_tier'] or '-':<6}  "
                    f"{s['tier_at_danger'] or '-':<9}  {s['max_tier'] or '-'}")
    n = result["normal"]
    rows += ["", f"normal operation: {n['hours']} h over {n['consoles']} consoles: {n['alarms']} alarms, "
                 f"{n['alarms_per_10min_per_console']} per 10 min per console (bar <= 1), worst 10 min "
                 f"{n['max_alarms_in_10min']} (bar <= 10), chattering {n['chattering']}, red {n['false_red']}"]
    for q in result["quiet"]:
        found = f"found by {'/'.join(q['expected_rules'])}, " if q["expected_rules"] and not q["missing"] else ""
        verdict = "ok" if q["ok"] else "MISSED" if q["missing"] else "TOO MANY ALARMS" if not q["unexpected"] \
            else "UNEXPECTED ALARMS"
        rows.append(f"{q['name']:<21}  {verdict}  ({found}{q['alerts']} alarms, {len(q['unexpected'])} unexpected)")
    return "\n".join(rows)
