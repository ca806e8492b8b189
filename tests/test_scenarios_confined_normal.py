"""The sewage sump's normal life, the Chengdu 2024 poisoning, the sensor faults that are not hazards, and the
normal week of the whole plant: told as the plant's stories, checked through the live detectors."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from config.load import DEMO, load_plant
from config.model import Plant, Point, Sector, Tier
from detectors.finding import Finding
from detectors.health import HealthDetector
from detectors.stale import StaleDetector
from detectors.threshold import ThresholdDetector
from riskwatch.pipeline import detect_groups
from simulators.scenarios import Scenario, all_scenarios
from simulators.scenarios import chengdu, normal_week, sensor_faults
from simulators.sectors import confined

DAY = 86400.0
SLICE_S = 60.0


@pytest.fixture(scope="module")
def plant() -> Plant:
    return load_plant(DEMO)


@pytest.fixture(scope="module")
def scenarios() -> dict[str, Scenario]:
    """Ours, imported directly: a colleague's scenario half-written must not hide what ours do."""
    return {s.name: s for s in [chengdu.SCENARIO, normal_week.SCENARIO, *sensor_faults.SCENARIOS]}


def test_our_scenarios_are_listed_by_name(scenarios):
    listed = all_scenarios()
    assert all(listed[name] is sc for name, sc in scenarios.items())


def detect(plant: Plant, series: dict, duration_s: float) -> list[Finding]:
    """The scenario's readings through the live detectors in one-minute slices of simulated time, arrival =
    reading time, silence judged at each slice's end: what `riskwatch eval` does."""
    points = {k: p for k, p in plant.point_map().items() if k in series}
    gateways = {g: [p.id for p in pts] for g, pts in plant.gateways().items()}
    detectors = [ThresholdDetector(points), HealthDetector(points), StaleDetector(points, 0.0, gateways=gateways)]
    findings: list[Finding] = []
    edges = np.arange(0.0, duration_s + SLICE_S, SLICE_S)
    for a, b in zip(edges[:-1], edges[1:]):
        groups = []
        for point, (t, v) in series.items():
            i0, i1 = np.searchsorted(t, [a, b])
            if i1 > i0:
                groups.append((point, t[i0:i1], t[i0:i1], v[i0:i1]))
        findings += detect_groups(detectors, groups)
        findings += [f for d in detectors for f in d.tick(b)]
    return sorted(findings, key=lambda f: f.ts)


def raised(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.tier != Tier.NORMAL]


def beyond_first_limit(point: Point, v: np.ndarray) -> np.ndarray:
    """Samples at or beyond the point's lowest tier on either side."""
    out = np.zeros(len(v), bool)
    if point.high:
        out |= v >= point.high.by_tier()[0][1]
    if point.low:
        out |= v <= point.low.by_tier()[0][1]
    return out


def edges(t: np.ndarray, on: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Times a 0/1 signal switches on and off."""
    d = np.diff(np.concatenate(([0], on.astype(int), [0])))
    ups, downs = np.flatnonzero(d > 0), np.flatnonzero(d < 0)
    return t[ups], t[np.minimum(downs, len(t) - 1)]


# --- the sump's normal life -------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_the_sump_is_ventilated_for_half_an_hour_and_tested_before_anyone_goes_in(plant, seed):
    out = confined.normal(plant, "sump1", 30 * DAY, seed, 0.0)
    t, people = out["sump1.people"]
    _, vent = out["sump1.vent_on"]
    _, permit = out["sump1.permit"]
    assert np.all(vent[people > 0] == 1) and np.all(permit[people > 0] == 1)  # nobody inside unventilated
    assert np.all(permit[vent == 1] == 1)  # the fan runs under a permit
    vent_on, vent_off = edges(t, vent == 1)
    first_in, _ = edges(t, people > 0)
    permit_open, permit_closed = edges(t, permit == 1)
    assert len(first_in) == len(vent_on) == len(permit_open) >= 3
    for p_open, v_on, enter, v_off, p_closed in zip(permit_open, vent_on, first_in, vent_off, permit_closed):
        assert p_open < v_on and v_off < p_closed
        assert enter - v_on >= 30 * 60 + 5 * 60  # >= 30 min of ventilation, then the gas test
        stretch = (t >= enter) & (t < v_off)
        assert np.all(vent[stretch] == 1)  # monitoring and ventilation continue while people work
        assert np.all(people[(t >= v_off - 600) & (t < v_off)] == 0)  # fan runs on 10 min after the last one out


def test_entries_are_occasional_with_one_to_three_people_in_the_day_shift(plant):
    plan = confined.normal_plan(60 * DAY, 1, 0.0)
    days_with_entry = {int(a // DAY) for a, _ in plan.permits}
    assert 0.15 * 60 <= len(days_with_entry) <= 0.65 * 60
    assert all(8 * 3600 <= a % DAY <= 14 * 3600 for a, _ in plan.permits)
    assert {n for _, n in plan.crew} <= {0, 1, 2, 3} and max(n for _, n in plan.crew) >= 2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_normal_sump_life_crosses_no_limit_and_raises_nothing(plant, seed):
    out = confined.normal(plant, "sump1", 14 * DAY, seed, 6.0)
    points = plant.point_map()
    for pid, (t, v) in out.items():
        assert not beyond_first_limit(points[pid], v).any(), pid
    assert raised(detect(plant, out, 14 * DAY)) == []
    _, h2s = out["sump1.h2s"]
    _, o2 = out["sump1.o2"]
    _, lel = out["sump1.lel"]
    assert h2s.max() < 3.0 and lel.max() < 1.5 and 20.4 < o2.min() and o2.max() < 21.2


def test_the_unventilated_sump_reads_a_little_less_oxygen_and_people_working_stir_up_a_little_h2s(plant):
    out = confined.normal(plant, "sump1", 30 * DAY, 1, 0.0)
    t, o2 = out["sump1.o2"]
    _, h2s = out["sump1.h2s"]
    vent = np.interp(t, *out["sump1.vent_on"]) == 1
    people = np.interp(t, *out["sump1.people"]) > 0
    assert 20.6 <= o2[~vent].mean() <= 20.8 and o2[people].mean() > 20.85
    assert h2s[people].mean() > h2s[~vent].mean() + 0.3 and h2s[people].max() < 3.0


def test_the_same_seed_gives_the_same_sump_and_a_longer_run_extends_a_shorter_one(plant):
    a = confined.normal(plant, "sump1", 3 * DAY, 5, 0.0)
    b = confined.normal(plant, "sump1", 3 * DAY, 5, 0.0)
    longer = confined.normal(plant, "sump1", 5 * DAY, 5, 0.0)
    other = confined.normal(plant, "sump1", 3 * DAY, 6, 0.0)
    for pid, (t, v) in a.items():
        assert np.array_equal(t, b[pid][0]) and np.array_equal(v, b[pid][1])
        assert np.array_equal(v, longer[pid][1][:len(v)])
    assert not np.array_equal(a["sump1.h2s"][1], other["sump1.h2s"][1])


def test_every_sump_point_reports_at_its_interval_inside_its_range(plant):
    out = confined.normal(plant, "sump1", DAY, 1, 0.0)
    points = plant.point_map()
    assert set(out) == {p.id for p in plant.points if p.area == "sump1"}
    for pid, (t, v) in out.items():
        assert np.array_equal(t, np.arange(0.0, DAY, points[pid].interval_s))
        lo, hi = points[pid].range
        assert lo <= v.min() and v.max() <= hi


# --- Chengdu 2024 -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chengdu_series(plant):
    return chengdu.SCENARIO.series(plant, 1)


def test_chengdu_is_described_for_the_wall_and_the_eval(scenarios):
    sc = scenarios["chengdu"]
    assert sc is chengdu.SCENARIO and sc.sector == Sector.CONFINED_SPACE
    assert datetime.fromisoformat(sc.start_local).utcoffset().total_seconds() == 8 * 3600
    assert sc.truth.hazard_start_s < sc.truth.danger_s < sc.duration_s
    assert set(sc.truth.points) == {"sump1.h2s", "sump1.o2"}


def test_in_chengdu_the_sump_was_ventilated_and_tested_clean_before_the_fatal_entry(chengdu_series):
    truth = chengdu.SCENARIO.truth
    t, vent = chengdu_series["sump1.vent_on"]
    _, people = chengdu_series["sump1.people"]
    _, permit = chengdu_series["sump1.permit"]
    vent_on, vent_off = edges(t, vent == 1)
    first_in, _ = edges(t, people > 0)
    assert first_in[0] - vent_on[0] >= 30 * 60 and np.all(permit[people > 0] == 1)
    assert vent_off[0] < first_in[1] < truth.hazard_start_s  # back in after the fan was switched off
    tg, h2s = chengdu_series["sump1.h2s"]
    _, o2 = chengdu_series["sump1.o2"]
    before = tg < truth.hazard_start_s
    assert h2s[before].max() < 3.0 and o2[before].min() > 20.4  # the air read clean until the sludge was broken up


def test_in_chengdu_the_h2s_goes_from_clean_to_150_ppm_within_a_minute_of_the_agitation_and_the_rescuers_follow(
        chengdu_series):
    truth = chengdu.SCENARIO.truth
    t, h2s = chengdu_series["sump1.h2s"]
    _, o2 = chengdu_series["sump1.o2"]
    minute = (t >= truth.hazard_start_s) & (t <= truth.hazard_start_s + 60)
    assert h2s[t == truth.hazard_start_s][0] < 3.0 and h2s[minute].max() >= 150.0
    assert o2[t == truth.hazard_start_s][0] > 20.5 and o2[minute].min() <= 18.0
    assert h2s.max() <= 300.0 and o2.min() >= 15.0  # a sump full of sludge gas, not an instrument fault
    tp, people = chengdu_series["sump1.people"]
    assert people[tp < truth.danger_s][-1] == 2 and people[tp >= truth.danger_s][0] == 3
    assert people[-1] == 5 and np.all(np.diff(people[tp >= truth.hazard_start_s]) >= 0)  # rescuers, one by one


def test_chengdu_is_orange_within_seconds_of_the_release_and_red_long_before_the_first_rescuer(plant, chengdu_series):
    truth = chengdu.SCENARIO.truth
    alarms = [f for f in raised(detect(plant, chengdu_series, chengdu.SCENARIO.duration_s)) if f.rule != "stale"]
    assert alarms and all(f.point in truth.points for f in alarms)
    assert alarms[0].ts > truth.hazard_start_s  # nothing before the sludge is broken up
    orange = next(f.ts for f in alarms if f.tier >= Tier.ORANGE)
    red = next(f.ts for f in alarms if f.tier == Tier.RED)
    assert orange - truth.hazard_start_s <= 15 and truth.danger_s - red >= 120
    assert {f.point for f in alarms if f.tier == Tier.RED} == {"sump1.h2s", "sump1.o2"}


def test_chengdu_is_the_same_for_the_same_seed(plant):
    a, b = chengdu.SCENARIO.series(plant, 3), chengdu.SCENARIO.series(plant, 3)
    assert all(np.array_equal(a[p][1], b[p][1]) for p in a)


# --- sensor faults that are not hazards ---------------------------------------------------------------------------

FAULTS = ["fault-stuck", "fault-drift", "fault-spikes", "fault-dropout", "fault-gateway-offline",
          "fault-clock-behind"]


@pytest.fixture(scope="module")
def morning(plant):
    return sensor_faults.sump_morning(plant, 1)


@pytest.mark.parametrize("name", FAULTS)
def test_a_sensor_fault_raises_its_own_health_alarm_and_nothing_else(plant, scenarios, name):
    sc = scenarios[name]
    assert sc.truth is None
    series = sc.series(plant, 1)
    findings = raised(detect(plant, series, sc.duration_s))
    # a failed gas detector while people are inside IS a safety event: it must show, as what it is
    assert {f.rule for f in findings} == sc.expected_rules


def test_the_stuck_h2s_reads_the_same_value_through_the_whole_entry(plant, scenarios, morning):
    point, t0, t1 = sensor_faults.STUCK
    t, v = scenarios["fault-stuck"].series(plant, 1)[point]
    inside = (t >= t0) & (t < t1)
    assert np.unique(v[inside]).size == 1 and np.array_equal(v[~inside], morning[point][1][~inside])
    assert t0 < sensor_faults.PEOPLE_IN and sensor_faults.PEOPLE_OUT < t1
    assert np.unique(morning[point][1][inside]).size > 50  # the real H2S kept moving


def test_the_calibration_drift_grows_steadily_and_stays_inside_the_limits(plant, scenarios, morning):
    series = scenarios["fault-drift"].series(plant, 1)
    points = plant.point_map()
    for point, per_hour in sensor_faults.DRIFT.items():
        t, v = series[point]
        offset = v - morning[point][1]
        end = offset[-1]
        assert abs(end - per_hour * (t[-1] - sensor_faults.DRIFT_FROM) / 3600) < 0.02
        assert np.all(np.abs(offset[t <= sensor_faults.DRIFT_FROM]) < 0.011)
        assert not beyond_first_limit(points[point], v).any()


def test_glitches_are_single_samples_shorter_than_every_on_delay(plant, scenarios):
    series = scenarios["fault-spikes"].series(plant, 1)
    clean = sensor_faults.glitch_free(plant, 1)
    points = plant.point_map()
    assert {points[p].area for p in series} == set(sensor_faults.SPIKE_AREAS)
    for point, size in sensor_faults.SPIKES.items():
        t, v = series[point]
        hit = v != clean[point][1]
        assert hit.sum() >= 20  # about one every 5 min over 4 h
        assert not np.any(hit[1:] & hit[:-1])  # never two in a row
        assert np.allclose(v[hit] - clean[point][1][hit], size, atol=0.01)
        assert points[point].interval_s < points[point].on_delay_s
        assert beyond_first_limit(points[point], v).any()  # big enough to cross a limit, too short to count


def test_the_h2s_dropout_is_a_five_minute_hole_with_people_inside(plant, scenarios, morning):
    series = scenarios["fault-dropout"].series(plant, 1)
    point, g0, g1 = sensor_faults.DROPOUT
    t, _ = series[point]
    gaps = np.diff(t)
    assert gaps.max() == g1 - g0 + 1 and np.sum(gaps > 1) == 1
    assert sensor_faults.PEOPLE_IN < g0 and g1 < sensor_faults.PEOPLE_OUT
    assert all(len(series[p][0]) == len(morning[p][0]) for p in series if p != point)


def test_the_gateway_goes_silent_for_ten_minutes_on_every_sump_point(plant, scenarios):
    series = scenarios["fault-gateway-offline"].series(plant, 1)
    g0, g1 = sensor_faults.GATEWAY_OFFLINE
    assert g1 - g0 == 600 and set(series) == {p.id for p in plant.points if p.area == "sump1"}
    for t, _ in series.values():
        assert not np.any((t >= g0) & (t < g1)) and t[t < g0][-1] >= g0 - 5 and t[t >= g1][0] < g1 + 5
    findings = raised(detect(plant, series, sensor_faults.DURATION))
    # one alarm on the gateway, none per point
    assert [(f.point, f.rule, f.tier) for f in findings] == [("gateway:gw-sump1", "stale", Tier.BLUE)]


def test_a_clock_two_minutes_behind_stamps_each_reading_with_the_time_two_minutes_earlier(plant, scenarios, morning):
    series = scenarios["fault-clock-behind"].series(plant, 1)
    point, lag = sensor_faults.CLOCK_POINT, sensor_faults.CLOCK_BEHIND_S
    t, v = series[point]
    t_true, v_true = morning[point]
    assert np.array_equal(t, t_true) and np.all(np.diff(t) > 0)
    assert np.array_equal(v[:-int(lag)], v_true[int(lag):])  # what was measured at T is stamped T - 120 s
    assert all(np.array_equal(series[p][1], morning[p][1]) for p in series if p != point)


# --- the normal week of the whole plant ---------------------------------------------------------------------------

def test_the_normal_week_starts_on_a_monday_at_midnight_and_must_raise_nothing(scenarios):
    sc = scenarios["normal-week"]
    start = datetime.fromisoformat(sc.start_local)
    assert start.weekday() == 0 and start.hour == 0 and start.utcoffset().total_seconds() == 8 * 3600
    assert sc.duration_s == 7 * DAY and sc.truth is None and not sc.allowed_rules


def test_a_normal_week_of_the_whole_plant_covers_every_point_and_raises_no_alarm(plant, scenarios):
    sc = scenarios["normal-week"]
    series = sc.series(plant, 1)
    points = plant.point_map()
    assert set(series) == set(points)
    for pid, (t, _) in series.items():
        assert len(t) == len(np.arange(0.0, sc.duration_s, points[pid].interval_s)), pid
    assert raised(detect(plant, series, sc.duration_s)) == []
