"""Normal life of the dust collector and the ammonia plant, and the three accidents rebuilt on them (Kunshan 2014,
Changzhou 2024, Shanghai 2013): what the instruments show, when, and what the live detectors make of it."""
from __future__ import annotations

import numpy as np
import pytest

from config.load import DEMO, load_plant
from config.model import Plant, Point, Tier
from detectors.stale import StaleDetector
from detectors.threshold import ThresholdDetector
from riskwatch.pipeline import detect_groups
from simulators.scenarios import all_scenarios
from simulators.sectors import ammonia, dust

DAY = 86_400.0
H = 3600.0


@pytest.fixture(scope="module")
def plant() -> Plant:
    return load_plant(DEMO)


@pytest.fixture(scope="module")
def dust_week(plant):
    return dust.normal(plant, "dust1", 7 * DAY, seed=3, start_hour=0.0)


@pytest.fixture(scope="module")
def nh3_week(plant):
    return ammonia.normal(plant, "nh3", 7 * DAY, seed=3, start_hour=0.0)


@pytest.fixture(scope="module")
def scenario_series(plant):
    return {name: all_scenarios()[name].series(plant, seed=1) for name in ("kunshan", "changzhou", "shanghai-ammonia")}


def state_at(status, t: np.ndarray) -> np.ndarray:
    """A polled 0/1 status as the detectors know it at each time: its latest reading."""
    ts, vs = status
    idx = np.searchsorted(ts, t, "right") - 1
    return np.where(idx >= 0, vs[np.maximum(idx, 0)] >= 0.5, True)


def at(series, seconds: float) -> float:
    t, v = series
    return float(v[np.searchsorted(t, seconds)])


def between(series, t0: float, t1: float) -> np.ndarray:
    t, v = series
    return v[(t >= t0) & (t < t1)]


def beyond_any_limit(p: Point, v: np.ndarray) -> np.ndarray:
    out = np.zeros(len(v), bool)
    if p.high:
        out |= v >= min(limit for _, limit in p.high.by_tier())
    if p.low:
        out |= v <= max(limit for _, limit in p.low.by_tier())
    return out


def findings(plant: Plant, series: dict, epoch: float = 1.7e9, batch_s: float = 60.0):
    """The series through the live threshold and stale detectors in time order, a minute per batch."""
    points = plant.point_map()
    detectors = [ThresholdDetector(points), StaleDetector({p: points[p] for p in series}, epoch)]
    end = max(t[-1] for t, _ in series.values()) + 1
    out = []
    for b0 in np.arange(0.0, end, batch_s):
        groups = []
        for pid, (t, v) in series.items():
            i0, i1 = np.searchsorted(t, [b0, b0 + batch_s])
            if i1 > i0:
                groups.append((pid, t[i0:i1] + epoch, t[i0:i1] + epoch, v[i0:i1]))
        out += detect_groups(detectors, groups)
        out += detectors[1].tick(epoch + min(b0 + batch_s, end))
    return [(f.ts - epoch, f) for f in out]


# --- normal life -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sector, area", [(dust, "dust1"), (ammonia, "nh3")])
def test_the_same_seed_gives_the_same_plant_life_and_another_seed_another(plant, sector, area):
    a = sector.normal(plant, area, 6 * H, seed=5, start_hour=7.0)
    b = sector.normal(plant, area, 6 * H, seed=5, start_hour=7.0)
    c = sector.normal(plant, area, 6 * H, seed=6, start_hour=7.0)
    assert set(a) == {p.id for p in plant.points if p.area == area}
    for pid in a:
        assert np.array_equal(a[pid][0], b[pid][0]) and np.array_equal(a[pid][1], b[pid][1])
    assert any(not np.array_equal(a[pid][1], c[pid][1]) for pid in a)


@pytest.mark.parametrize("sector, area", [(dust, "dust1"), (ammonia, "nh3")])
def test_every_point_reports_at_its_interval_inside_its_physical_range(plant, sector, area):
    points = plant.point_map()
    for pid, (t, v) in sector.normal(plant, area, 2 * DAY, seed=2, start_hour=13.5).items():
        p = points[pid]
        assert np.array_equal(t, np.arange(0.0, 2 * DAY, p.interval_s)), pid
        assert p.range[0] <= v.min() and v.max() <= p.range[1], pid


@pytest.mark.parametrize("sector, area, start_hour", [(dust, "dust1", 0.0), (dust, "dust1", 17.25),
                                                      (ammonia, "nh3", 0.0), (ammonia, "nh3", 9.5)])
def test_a_normal_day_touches_no_limit_at_any_tier_while_the_limits_apply(plant, sector, area, start_hour):
    points = plant.point_map()
    for seed in (1, 2, 3):
        series = sector.normal(plant, area, DAY, seed=seed, start_hour=start_hour)
        for pid, (t, v) in series.items():
            p = points[pid]
            applies = state_at(series[p.active_when], t) if p.active_when else np.ones(len(t), bool)
            assert not (beyond_any_limit(p, v) & applies).any(), (pid, seed)


def test_a_normal_week_raises_no_alarm_from_either_area(plant, dust_week, nh3_week):
    assert findings(plant, {**dust_week, **nh3_week}) == []


def test_the_collector_fan_starts_before_production_and_stops_after_it(dust_week):
    prod_t, prod = dust_week["dust1.production"]
    fan_t, fan = dust_week["dust1.fan_on"]
    assert np.array_equal(prod_t, fan_t)
    assert not (prod.astype(bool) & ~fan.astype(bool)).any()  # never production without the collector
    starts = prod_t[1:][np.diff(prod) > 0]
    stops = prod_t[1:][np.diff(prod) < 0]
    fan_starts = fan_t[1:][np.diff(fan) > 0]
    fan_stops = fan_t[1:][np.diff(fan) < 0]
    for f in fan_starts:  # the first production start after each fan start is ~10 min later
        lead = starts[starts > f][0] - f
        assert 6 * 60 <= lead <= 12 * 60
    for f in fan_stops:
        trail = f - stops[stops < f][-1]
        assert 12 * 60 <= trail <= 16 * 60
    assert len(fan_starts) == 6  # Monday to Saturday; Sunday (day 7) stays shut down


def test_production_runs_two_shifts_with_meal_breaks_and_not_at_night(dust_week):
    t, prod = dust_week["dust1.production"]
    hour = (t / H) % 24
    assert prod[(hour >= 23) | (hour < 5)].max() == 0
    monday = prod[t < DAY]
    assert 14.5 * H <= monday.sum() * 5 <= 15.5 * H  # 06:00-22:00 less ~1 h of breaks
    assert np.count_nonzero(np.diff(monday) > 0) == 3


def test_fan_current_follows_the_square_of_the_air_velocity_while_running(dust_week):
    t, v = dust_week["dust1.velocity"]
    _, amps = dust_week["dust1.fan_a"]
    running = state_at(dust_week["dust1.fan_on"], t)
    assert np.corrcoef(v[running] ** 2, amps[running])[0, 1] > 0.9
    assert np.corrcoef(v[running], amps[running])[0, 1] > 0.9
    assert amps[(t >= 1 * H) & (t < 4 * H)].max() == 0.0  # a fan stopped for the night draws nothing


def test_the_fan_running_flag_comes_on_after_the_air_moves_and_drops_before_it_slows(dust_week):
    t, v = dust_week["dust1.velocity"]
    _, dp = dust_week["dust1.dp"]
    ft, flag = dust_week["dust1.fan_on"]
    for on in ft[1:][np.diff(flag) > 0]:
        i = np.searchsorted(t, on)
        assert v[i - 5:i + 1].min() > 19.0 and dp[i - 5:i + 1].min() > 700  # already up to speed
    for off in ft[1:][np.diff(flag) < 0]:
        i = np.searchsorted(t, off)
        running = np.median(v[i - 60:i])
        assert abs(v[i] - running) < 0.5 and v[i:i + 3].min() > 18.5  # the fan still holds its speed
        assert v[i + 120] < 1.0  # ...and has coasted down two minutes later


def test_baghouse_dp_builds_for_90_s_and_drops_at_each_cleaning_pulse(dust_week):
    t, dp = dust_week["dust1.dp"]
    running = state_at(dust_week["dust1.fan_on"], t)
    hour = running & (t >= 9 * H) & (t < 10 * H)  # Monday 09:00-10:00, production on
    assert 850 <= dp[hour].min() and dp[hour].max() <= 1450
    pulses = np.count_nonzero(np.diff(dp[hour]) < -250)
    assert 38 <= pulses <= 42
    assert np.median(dp[~running]) < 10 and dp[(t >= 1 * H) & (t < 4 * H)].max() < 50  # ~0 with the fan off


def test_collector_temperatures_follow_the_day_and_warm_with_production(dust_week):
    t, hopper = dust_week["dust1.hopper_t"]
    hour = (t / H) % 24
    night, working = (hour >= 3) & (hour < 5), (hour >= 14) & (hour < 16)
    for pid in ("dust1.hopper_t", "dust1.inlet_t", "dust1.duct_t"):
        _, v = dust_week[pid]
        assert v[working & (t < 6 * DAY)].mean() > v[night].mean() + 8, pid
    _, rh = dust_week["dust1.humidity"]
    rh_hour = (dust_week["dust1.humidity"][0] / H) % 24
    assert rh[(rh_hour >= 3) & (rh_hour < 5)].mean() > rh[(rh_hour >= 14) & (rh_hour < 16)].mean() + 10


def test_no_sparks_in_a_normal_week(dust_week):
    assert dust_week["dust1.spark"][1].max() == 0


def test_hot_gas_defrost_every_6_to_8_hours_rises_to_a_smooth_plateau_and_back(nh3_week):
    t, flag = nh3_week["nh3.defrost"]
    starts = t[1:][np.diff(flag) > 0]
    ends = t[1:][np.diff(flag) < 0]
    assert len(starts) >= 20
    assert np.all((np.diff(starts) >= 6 * H - 5) & (np.diff(starts) <= 8 * H + 5))
    lengths = ends[: len(starts)] - starts[: len(ends)] if ends[0] > starts[0] else ends[1:] - starts[: len(ends) - 1]
    assert np.all((lengths >= 20 * 60) & (lengths <= 30 * 60))
    pt, p = nh3_week["nh3.evap_p"]
    defrosting = state_at((t, flag), pt)
    assert 0.32 <= np.median(p[~defrosting]) <= 0.38
    for s in starts:
        plateau = between((pt, p), s + 10 * 60, s + 15 * 60)
        assert 0.58 <= plateau.min() and plateau.max() <= 0.73
    assert np.abs(np.diff(p)).max() < 0.03  # no transient anywhere in normal life
    assert p[~defrosting].max() < 0.45


def test_processing_hall_nh3_is_a_few_ppm_and_a_little_higher_in_working_hours(nh3_week):
    t, hall = nh3_week["nh3.hall_ppm"]
    hour = (t / H) % 24
    weekdays = t < 6 * DAY
    assert hall[weekdays & (hour >= 10) & (hour < 12)].mean() > hall[(hour >= 1) & (hour < 5)].mean() + 1.0
    assert hall.max() < 8 and nh3_week["nh3.room_ppm"][1].max() < 25


def test_discharge_pressure_follows_the_afternoon_heat_and_the_load_stages(nh3_week):
    t, p = nh3_week["nh3.discharge_p"]
    hour = (t / H) % 24
    assert p[(hour >= 14) & (hour < 16)].mean() > p[(hour >= 3) & (hour < 5)].mean() + 0.04
    assert 0.9 < p.min() and p.max() < 1.3
    minutes = p[: (len(p) // 60) * 60].reshape(-1, 60).mean(axis=1)
    assert np.percentile(np.abs(np.diff(minutes, 30)), 99) > 0.02  # stages cut in and out


# --- the accidents -----------------------------------------------------------------------------------------------

def test_each_accident_is_deterministic_by_seed_and_inside_every_physical_range(plant, scenario_series):
    for name, series in scenario_series.items():
        again = all_scenarios()[name].series(plant, seed=1)  # series() also checks range and time order
        assert all(np.array_equal(series[p][1], again[p][1]) for p in series), name
        other = all_scenarios()[name].series(plant, seed=2)
        assert any(not np.array_equal(series[p][1], other[p][1]) for p in series), name


def test_kunshan_hopper_heats_with_a_steepening_slope_for_hours_before_the_0710_fan_start(scenario_series):
    sc = all_scenarios()["kunshan"]
    s = scenario_series["kunshan"]
    fan_stop, fan_start = sc.truth.hazard_start_s, sc.truth.danger_s
    assert (fan_stop, fan_start) == (2 * H + 15 * 60, 11 * H + 10 * 60)  # 22:15 and 07:10, from 20:00
    hopper = s["dust1.hopper_t"]
    # fan off all night, on at 07:10 with polishing
    assert between(s["dust1.fan_on"], fan_stop + 60, fan_start).max() == 0
    assert at(s["dust1.fan_on"], fan_start + 60) == 1 and at(s["dust1.production"], fan_start + 60) == 1
    # hourly rise over the last five hours before the fan start: each hour steeper than the one before
    rises = [at(hopper, fan_start - k * H) - at(hopper, fan_start - (k + 1) * H) for k in range(5)][::-1]
    assert all(b > a for a, b in zip(rises, rises[1:])), rises
    assert rises[-1] > 15  # K in the last hour: self-heating, not the weather
    assert at(hopper, fan_stop + 30 * 60) < 45 and at(hopper, fan_start) > 100
    # humid hopper, steaming as it heats
    assert between(s["dust1.humidity"], fan_stop + H, fan_start).min() > 85


def test_kunshan_baghouse_dp_rides_above_its_usual_band_and_keeps_rising(plant, scenario_series):
    s = scenario_series["kunshan"]
    usual = dust.normal(plant, "dust1", DAY, seed=1, start_hour=20.0)["dust1.dp"]
    evening = between(s["dust1.dp"], 0, 1.5 * H)
    morning = between(s["dust1.dp"], 11 * H + 15 * 60, 11 * H + 30 * 60)
    normal_evening = between(usual, 0, 1.5 * H)
    assert np.percentile(evening, 2) > np.percentile(normal_evening, 2) + 250  # the bags no longer clean down
    assert np.percentile(morning, 2) > np.percentile(evening, 2) + 40           # ...and it keeps creeping


def test_kunshan_collector_explodes_at_0734(scenario_series):
    s = scenario_series["kunshan"]
    blast = 11 * H + 34 * 60
    assert between(s["dust1.spark"], blast - 20 * 60, blast).max() == 0  # no spark precedes it
    assert between(s["dust1.dp"], blast, blast + 2).max() == 6000
    assert between(s["dust1.duct_t"], blast, blast + 30).max() > 200
    assert at(s["dust1.fan_a"], blast + 5) == 0


def test_changzhou_deflagration_sparks_and_heats_the_duct_then_work_resumes_amid_embers(scenario_series):
    sc = all_scenarios()["changzhou"]
    s = scenario_series["changzhou"]
    deflagration, restart = sc.truth.hazard_start_s, sc.truth.danger_s
    explosion = 4 * H + 2 * 60 + 7  # 03:32:07, from 23:30
    assert deflagration == 2 * H + 24 * 60  # 01:54
    assert between(s["dust1.spark"], 0, deflagration).max() == 0
    assert between(s["dust1.spark"], deflagration, deflagration + 15).max() >= 5
    assert between(s["dust1.duct_t"], deflagration, deflagration + 15).max() > 150
    assert between(s["dust1.duct_t"], 0, deflagration).max() < 40  # a January night
    # the crew stops to fight the fire, then restarts instead of evacuating
    assert between(s["dust1.production"], deflagration + 60, restart).max() == 0
    assert between(s["dust1.production"], restart, explosion).min() == 1
    assert between(s["dust1.fan_on"], 0, explosion).min() == 1  # the collector never stopped
    embers = np.count_nonzero(np.diff(between(s["dust1.spark"], restart, explosion)) > 0)
    assert embers >= 10  # embers keep passing the detector while grinding goes on
    assert between(s["dust1.dp"], explosion, explosion + 2).max() == 6000
    assert between(s["dust1.fan_a"], explosion + 5, explosion + 50).max() == 0


def test_shanghai_seven_pressure_shocks_in_two_minutes_of_defrost_then_the_end_cap_fails(scenario_series):
    sc = all_scenarios()["shanghai-ammonia"]
    s = scenario_series["shanghai-ammonia"]
    defrost_start, end_cap = sc.truth.hazard_start_s, sc.truth.danger_s
    assert end_cap - defrost_start == 10 * 60  # 10:40 to 10:50
    t, p = s["nh3.evap_p"]
    assert p[t < defrost_start].max() < 0.45
    assert between(s["nh3.defrost"], defrost_start, sc.duration_s).min() == 1
    before = (t >= end_cap - 180) & (t < end_cap)
    spike = p[1:-1] > np.maximum(p[:-2], p[2:]) + 0.04  # a single sample standing out of the plateau
    spike_times = t[1:-1][spike & before[1:-1]]
    assert 6 <= len(spike_times) <= 7  # seven shocks; a 1 Hz transmitter may miss the weakest one's tail
    assert spike_times[-1] - spike_times[0] <= 120
    assert between((t, p), end_cap - 180, end_cap).max() > 1.05  # above the defrost setpoint's orange limit
    assert at((t, p), end_cap + 60) < 0.2  # the header is open
    hall = s["nh3.hall_ppm"]
    assert between(hall, 0, end_cap).max() < 15  # nobody in the hall smells it coming
    assert at(hall, end_cap + 15) > 50 and at(hall, end_cap + 120) > 900


@pytest.mark.parametrize("name, orange_before_s", [("kunshan", 90 * 60), ("changzhou", 25 * 60),
                                                   ("shanghai-ammonia", 60)])
def test_the_live_detectors_warn_at_orange_before_each_danger_point(plant, scenario_series, name, orange_before_s):
    sc = all_scenarios()[name]
    found = [(t, f) for t, f in findings(plant, scenario_series[name])
             if f.point in sc.truth.points and f.rule != "stale"]
    assert all(t >= sc.truth.hazard_start_s for t, _ in found)  # nothing before the hazard begins
    orange = [t for t, f in found if f.tier >= Tier.ORANGE and t < sc.truth.danger_s]
    assert orange and sc.truth.danger_s - orange[0] >= orange_before_s
