"""Settling a batch in bulk (detectors/frame.py) and the composite rules' skipped evaluations are speed-ups only:
the findings and every detector's state must be exactly what feeding point by point, and evaluating every rule
at every change, give. Held to it on recorded accident and sensor-fault scenarios and on a plant pushed around
at random (NaN, float32, redelivered and out-of-order readings, silences, spikes, stuck runs, stopped lines)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from config.load import DEMO, load_plant
from riskwatch.eval import slices
from riskwatch.pipeline import default_detectors, detect_groups, tick_all
from simulators.demo_plant import DemoPlant
from simulators.scenarios import all_scenarios


def _state(detectors) -> str:
    """Every detector's saved state; of a composite rule, not when it was last evaluated, next due, and when and
    what its rose()/count() memories saw the time before (a skipped evaluation, which would have seen the same
    answer again, is exactly what moves those; the answer itself and the counted edges are compared)."""
    states = [d.state() for d in detectors]
    for s in states:
        if "glitches" in s:  # (an empty list of glitch times is no glitch times)
            s["glitches"] = {k: v for k, v in s["glitches"].items() if v}
        for r in s.get("rules", {}).values():
            r.pop("t"), r.pop("due")
            for slot in r["slots"]:
                slot[0] = slot[2] = None
    return json.dumps(states, sort_keys=True, default=str)


def _reference(detectors) -> None:
    """The composite detector as it was before it skipped anything: every change of a watched point wakes its
    rules, and every due is evaluated."""
    for d in detectors:
        if hasattr(d, "_cuts"):
            d._cuts = {}
            d._fresh_until = lambda rule, t: -math.inf


def _pair(plant, started):
    fast, slow = default_detectors(plant, started), default_detectors(plant, started)
    _reference(slow)
    return fast, slow


def _step(fast, slow, groups, now) -> list:
    got = detect_groups(fast, groups, bulk=True) + tick_all(fast, now)
    want = detect_groups(slow, groups, bulk=False) + tick_all(slow, now)
    assert repr(got) == repr(want)  # (repr: a NaN reading is the same NaN)
    return got


@pytest.mark.parametrize("name", ["fault-stuck", "fault-spikes", "fault-dropout", "fault-gateway-offline",
                                  "changzhou", "chengdu", "guangxi", "shanghai-ammonia"])
def test_a_recorded_scenario_gives_the_same_findings_and_states_settled_in_bulk_as_fed_point_by_point(name):
    plant = load_plant(DEMO)
    scenario = all_scenarios()[name]
    series = scenario.series(plant, 1)
    start = scenario.start_epoch
    sub = plant.model_copy(update={"points": [p for p in plant.points if p.id in series]})
    fast, slow = _pair(sub, start)
    found = 0
    for k, (groups, now) in enumerate(slices(series, start, scenario.duration_s)):
        found += len(_step(fast, slow, groups, now))
        if k % 30 == 0:
            assert _state(fast) == _state(slow)
    assert _state(fast) == _state(slow)
    assert found > 0  # (the scenario does raise something: the comparison is not between two silences)


def test_a_plant_pushed_around_at_random_gives_the_same_findings_and_states_settled_in_bulk():
    base = load_plant(DEMO)
    plant = base.scaled(2)
    model = DemoPlant(plant, seed=3, incident_at=None)
    ids = model.point_ids
    points = plant.point_map()
    rng = np.random.default_rng(7)
    t0 = 1_800_000_000.0
    fast, slow = _pair(plant, t0)
    kinds: dict[str, int] = {}
    frozen: dict[str, float] = {}
    stopped: set[str] = set()
    found = 0
    for b in range(400):
        n = int(rng.choice([1, 2, 10, 10, 10, 70]))
        times = t0 + b * 10 + np.sort(rng.uniform(0, 10, n)) if rng.random() < 0.2 else \
            t0 + b * 10 + np.arange(n) * (10 / n)
        rows = np.stack([model.sample_array(t - t0) for t in times], axis=1)
        groups = []
        for i, pid in enumerate(ids):
            p = points[pid]
            ts, v = times.copy(), rows[i].copy()
            roll = rng.random()
            if roll < 0.03:  # silent this batch (and now and then for long)
                kinds["silent"] = kinds.get("silent", 0) + 1
                continue
            if pid in frozen or roll < 0.04:  # a stuck transmitter, for a while
                frozen.setdefault(pid, float(v[0]))
                v[:] = frozen[pid]
                if rng.random() < 0.05:
                    frozen.pop(pid)
            elif roll < 0.07 and p.high is not None:  # over a limit (one reading, or the whole batch)
                lim = p.high.by_tier()[-1][1]
                v[rng.integers(len(v)):] = lim + abs(lim) * 0.1 + 1
                kinds["high"] = kinds.get("high", 0) + 1
            elif roll < 0.09 and len(v) >= 3:  # a single-sample spike straight back
                j = int(rng.integers(1, len(v) - 1))
                v[j] += (p.range[1] - p.range[0]) * 0.3
            elif roll < 0.10:
                v[int(rng.integers(len(v)))] = np.nan
            elif roll < 0.11:  # a float32 gateway
                v = v.astype(np.float32)
            if roll > 0.985 and b > 0:  # redelivered: part of the last batch again
                ts = np.concatenate(([ts[0] - 10.0], ts))
                v = np.concatenate(([v[0]], v))
            if p.id in {q.active_when for q in plant.points if q.active_when}:
                if rng.random() < 0.02:
                    stopped ^= {pid}
                v[:] = 0.0 if pid in stopped else 1.0
            arrived = ts + rng.uniform(0, 0.5, len(ts)) if rng.random() < 0.5 else ts
            groups.append((pid, ts, arrived, v))
        found += len(_step(fast, slow, groups, times[-1] + 1))
        if b % 50 == 0:
            assert _state(fast) == _state(slow)
    assert _state(fast) == _state(slow)
    assert found > 100 and kinds["high"] > 100


def test_a_value_sitting_exactly_on_a_rules_constant_wakes_the_rule_as_a_change_would():
    """`nh3.evap_p > 0.85`: 0.85 itself is on the false side, just above it on the true side; NaN is unknown."""
    plant = load_plant(DEMO)
    fast, slow = _pair(plant, 0.0)
    ids = [p.id for p in plant.points]
    base = {p.id: (p.range[0] + p.range[1]) / 2 for p in plant.points}
    base.update({"nh3.defrost": 1.0, "dust1.production": 1.0, "dust1.fan_on": 1.0})
    seq = [0.85, 0.85, 0.8500001, 0.85, 0.9, np.nan, 0.85, 0.86, 0.85, 0.95, 0.85, 0.9, 0.85]
    found = []
    for b, x in enumerate(seq * 4):
        ts = np.array([b * 5.0, b * 5.0 + 2.5])
        groups = [(pid, ts, ts, np.full(2, x if pid == "nh3.evap_p" else base[pid])) for pid in ids]
        found += _step(fast, slow, groups, b * 5.0 + 3)
    assert any(f.point == "rule:nh3.defrost_pressure_shocks" for f in found)
    assert _state(fast) == _state(slow)
