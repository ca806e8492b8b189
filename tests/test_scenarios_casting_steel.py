"""Deep-well casting and steel gas: normal life that raises nothing, and four accidents rebuilt from their reports
that the shipped limits catch before the danger point."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from config.load import DEMO, load_plant
from config.model import Plant, Sector, Tier
from detectors.stale import StaleDetector
from detectors.threshold import ThresholdDetector
from riskwatch.pipeline import detect_groups
from simulators.scenarios import guangxi, nantong, qingyuan, wenshui
from simulators.sectors import casting, steel
from simulators.sectors import normal_area

DAY = 86_400.0
ACCIDENTS = [qingyuan.SCENARIO, guangxi.SCENARIO, nantong.SCENARIO, wenshui.SCENARIO]
AREAS = ["cast1", "cast2", "steel1"]


@pytest.fixture(scope="module")
def plant() -> Plant:
    return load_plant(DEMO)


@pytest.fixture(scope="module")
def day(plant) -> dict:
    """One simulated day of the casting shop and the gas area, seed 5, starting at 06:00."""
    out = {}
    for area in AREAS:
        out.update(normal_area(plant, area, DAY, 5, 6.0))
    return out


@pytest.fixture(scope="module")
def runs(plant) -> dict:
    return {sc.name: (sc, sc.series(plant, 1)) for sc in ACCIDENTS}


def detect(plant: Plant, series: dict, chunk_s: float = 60.0) -> list:
    """The live detectors on a simulated clock: every point's readings in time-ordered chunks."""
    points = {k: v for k, v in plant.point_map().items() if k in series}
    detectors = [ThresholdDetector(points), StaleDetector(points, started=0.0)]
    last = max(float(t[-1]) for t, _ in series.values())
    findings = []
    for a in np.arange(0.0, last + chunk_s, chunk_s):
        groups = []
        for point, (t, v) in series.items():
            i, j = np.searchsorted(t, [a, a + chunk_s])
            if j > i:
                groups.append((point, t[i:j], t[i:j], v[i:j]))
        findings += detect_groups(detectors, groups)
        findings += [f for d in detectors for f in d.tick(min(a + chunk_s, last))]
    return findings


def at(series, when: float) -> float:
    t, v = series
    return float(v[np.searchsorted(t, when, side="right") - 1])


def mean_between(series, a: float, b: float) -> float:
    t, v = series
    return float(v[(t >= a) & (t < b)].mean())


def active(day: dict, plant: Plant, point: str) -> np.ndarray:
    """Whether the point's limits apply at each of its readings (its status point reads 1)."""
    status = plant.point_map()[point].active_when
    t = day[point][0]
    if status is None:
        return np.ones(len(t), bool)
    st, sv = day[status]
    return sv[np.searchsorted(st, t, side="right") - 1] >= 0.5


def flag_edges(series) -> tuple[np.ndarray, np.ndarray]:
    t, v = series
    change = np.diff(v)
    return t[1:][change > 0], t[1:][change < 0]


# --- normal life --------------------------------------------------------------------------------------------

def test_normal_life_is_the_same_for_the_same_seed_and_differs_for_another(plant):
    one = casting.normal(plant, "cast1", 6 * 3600.0, 3, 8.0)
    again = casting.normal(plant, "cast1", 6 * 3600.0, 3, 8.0)
    other = casting.normal(plant, "cast1", 6 * 3600.0, 4, 8.0)
    assert all(np.array_equal(one[p][1], again[p][1]) for p in one)
    assert not np.array_equal(one["cast1.water_p"][1], other["cast1.water_p"][1])
    gas, gas_again = steel.normal(plant, "steel1", 3600.0, 3, 8.0), steel.normal(plant, "steel1", 3600.0, 3, 8.0)
    assert all(np.array_equal(gas[p][1], gas_again[p][1]) for p in gas)


def test_every_point_of_each_area_reports_at_its_interval_inside_its_range(plant, day):
    points = plant.point_map()
    assert set(day) == {p.id for p in plant.points if p.area in AREAS}
    for pid, (t, v) in day.items():
        p = points[pid]
        assert np.array_equal(t, np.arange(0.0, DAY, p.interval_s)), pid
        assert p.range[0] <= v.min() and v.max() <= p.range[1], pid


@pytest.mark.parametrize("seed, start_hour", [(1, 0.0), (2, 7.5), (9, 20.0)])
def test_a_normal_day_crosses_no_limit_at_any_tier_while_the_process_runs(plant, seed, start_hour):
    series = {}
    for area in AREAS:
        series.update(normal_area(plant, area, DAY, seed, start_hour))
    for pid, (t, v) in series.items():
        p = plant.point_map()[pid]
        on = v[active(series, plant, pid)]
        if p.high:
            assert on.max() < min(x for _, x in p.high.by_tier()), pid
        if p.low:
            assert on.min() > max(x for _, x in p.low.by_tier()), pid
    assert [f for f in detect(plant, series, 600.0) if f.tier > Tier.NORMAL] == []


def test_casts_last_one_to_two_hours_a_few_per_shift_on_different_schedules(day):
    for pit in ("cast1", "cast2"):
        rises, falls = flag_edges(day[f"{pit}.casting"])
        lengths = [(falls[falls > r][0] - r) / 60.0 for r in rises if (falls > r).any()]
        assert 60 <= min(lengths) and max(lengths) <= 120, pit
        assert 5 <= len(rises) <= 10, pit  # 2-3 a shift: each cast needs its preheat, water and turnaround
    assert not np.array_equal(flag_edges(day["cast1.casting"])[0], flag_edges(day["cast2.casting"])[0])


def test_a_normal_week_raises_nothing_from_the_casting_shop_or_the_gas_area(plant):
    week = {}
    for area in AREAS:
        week.update(normal_area(plant, area, 7 * DAY, 8, 5.0))
    assert [f for f in detect(plant, week, 3600.0) if f.tier > Tier.NORMAL] == []


def test_the_casting_flag_rises_after_water_and_level_are_set_and_falls_before_the_water_is_shut(day):
    for pit in ("cast1", "cast2"):
        water, level = day[f"{pit}.water_p"], day[f"{pit}.level"]
        rises, falls = flag_edges(day[f"{pit}.casting"])
        for r in rises:
            assert mean_between(water, r - 120, r) > 0.29, (pit, r)           # water on for minutes already
            assert mean_between(level, r - 30, r) > 110, (pit, r)             # the table is full
            assert at(water, r - 400) < 0.01 and at(level, r - 400) < 1       # ...and it was not before
        for f in falls:
            if f + 700 < DAY:
                assert at(level, f) > 100 and at(level, f + 150) < 5, (pit, f)  # drains after the flag falls
                assert mean_between(water, f, f + 500) > 0.28, (pit, f)         # water stays on for the butt
                assert at(water, f + 700) < 0.01, (pit, f)                      # ...and is shut afterwards


def test_casting_readings_look_like_a_cast_while_the_flag_is_on_and_idle_between(plant, day):
    on = active(day, plant, "cast1.metal_t")
    metal, dev = day["cast1.metal_t"][1], day["cast1.block_dev"][1]
    assert 700 <= metal[on].min() and metal[on].max() <= 740
    assert metal[~on].min() < 100                                              # an empty launder cools down
    assert dev[on].max() <= 6 and np.median(dev[~on]) < 0.5
    water_t = day["cast1.pit_water_t"][1]
    assert 24 <= water_t.min() and water_t.max() <= 36
    rises, _ = flag_edges(day["cast1.casting"])
    first = rises[0]
    assert at(day["cast1.pit_water_t"], first + 3600) > at(day["cast1.pit_water_t"], first) + 1.5  # a cast warms it


def test_pit_2_opening_its_water_dips_pit_1_a_few_percent_within_limits(plant):
    shop = casting.normal_shop(plant, 2 * DAY, 5, 6.0)
    t = np.arange(0.0, 2 * DAY)
    p1, q1, casting1 = shop.water_p("cast1", t), shop.water_q("cast1", t), shop.casting("cast1", t)
    dips = []
    for cast in shop.pits["cast2"].casts[1:]:
        s = int(cast.water_on)
        if 120 < s < len(t) - 300 and casting1[s - 120: s + 300].all():
            before_p, before_q = p1[s - 120: s].mean(), q1[s - 120: s].mean()
            dips.append((1 - p1[s: s + 60].mean() / before_p, 1 - q1[s: s + 60].mean() / before_q,
                         p1[s: s + 300].min(), q1[s: s + 300].min()))
    assert dips, "no start of pit 2 while pit 1 casts in two days"
    for dp, dq, pmin, qmin in dips:
        assert 0.005 < dp < 0.05 and 0.005 < dq < 0.06
        assert pmin > 0.28 and qmin > 112  # the yellow limits


def test_the_strainer_clogs_for_days_and_is_clean_after_the_weekly_maintenance(plant):
    week = casting.normal(plant, "cast1", 7 * DAY, 2, 6.0)
    t, dp = week["cast1.strainer_dp"]
    stops = [(a, b) for a, b in casting.maintenance(2, 6.0, 0.0, 7 * DAY)]
    assert len(stops) == 1
    a, b = stops[0]
    pump_off = (t >= a + 1800) & (t < a + 4200)
    assert dp[pump_off].max() < 1
    assert np.median(dp[(t > a + 1000) & (t < a + 1700)]) - np.median(dp[(t > a + 4300) & (t < a + 5000)]) > 5
    assert dp.max() < 25  # never reaches the blue limit in normal life
    daily_means = [np.median(dp[(t >= d) & (t < d + DAY) & ((t < a) | (t >= b))]) for d in np.arange(0, 7 * DAY, DAY)]
    rising = [y - x for x, y in zip(daily_means, daily_means[1:]) if not (x > y + 3)]  # skip the cleaning day
    assert all(r > 0 for r in rising)


def test_the_gas_area_breathes_with_load_and_wind_but_stays_far_below_its_limits(day):
    main = day["steel1.main_p"][1]
    assert 8.0 < main.min() and main.max() < 10.0 and main.max() - main.min() > 0.6
    booster, room, rack = (day[f"steel1.{p}"][1] for p in ("co_a", "co_b", "co_c"))
    assert booster.max() < 9 and np.percentile(booster, 99.9) > np.median(booster) + 1.5  # small puffs
    assert np.median(room) < 2 and rack.max() < 9
    t = day["steel1.co_c"][0]
    hour = (6.0 + t / 3600.0) % 24
    assert np.median(rack[(hour > 3) & (hour < 6)]) > np.median(rack[(hour > 13) & (hour < 17)]) + 0.8  # calm dawn


# --- accidents ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sc", ACCIDENTS, ids=lambda s: s.name)
def test_each_accident_is_rebuilt_at_its_real_local_time_after_a_normal_lead_in(sc, runs, plant):
    assert sc.sector in (Sector.ALUMINIUM_CASTING, Sector.STEEL)
    assert sc.start_local.endswith("+08:00") and sc.title_zh and sc.title_en and sc.summary
    truth = sc.truth
    assert 3600 <= truth.hazard_start_s <= 3 * 3600 + 1800 and truth.hazard_start_s < truth.danger_s
    assert 0 < sc.duration_s - truth.danger_s <= 15 * 60
    _, series = runs[sc.name]
    assert set(truth.points) <= set(series)
    quiet_before = [f for f in detect(plant, series) if f.tier > Tier.NORMAL and f.ts < truth.hazard_start_s]
    assert quiet_before == []


@pytest.mark.parametrize("sc", ACCIDENTS, ids=lambda s: s.name)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_shipped_limits_raise_orange_on_a_hazard_point_before_the_danger_point(sc, seed, plant):
    truth = sc.truth
    found = [f for f in detect(plant, sc.series(plant, seed)) if f.point in truth.points and f.rule != "stale"
             and f.ts < truth.danger_s]
    assert any(f.tier >= Tier.YELLOW for f in found)
    assert max(f.tier for f in found) >= Tier.ORANGE


def local(sc, clock: str) -> float:
    start = datetime.fromisoformat(sc.start_local)
    hh, mm, ss = (int(x) for x in clock.split(":"))
    return (start.replace(hour=hh, minute=mm, second=ss) - start).total_seconds()


def test_in_qingyuan_the_table_drains_through_the_leak_for_92_s_while_the_water_looks_normal(runs):
    sc, s = runs["qingyuan"]
    leak, boom = sc.truth.hazard_start_s, sc.truth.danger_s
    assert (leak, boom) == (local(sc, "11:08:28"), local(sc, "11:10:00"))
    assert at(s["cast1.casting"], leak) == 1 and at(s["cast1.casting"], boom) == 1
    assert mean_between(s["cast1.level"], leak - 60, leak) > 115
    assert 85 < at(s["cast1.level"], leak + 60) < 95 and at(s["cast1.level"], boom) < 75
    rise = at(s["cast1.pit_water_t"], boom) - mean_between(s["cast1.pit_water_t"], leak - 60, leak)
    assert 4 < rise < 8 and at(s["cast1.pit_water_t"], boom) < 40
    assert s["cast1.water_p"][1][(s["cast1.water_p"][0] > leak - 600) & (s["cast1.water_p"][0] < boom)].min() > 0.28


def test_in_guangxi_the_strainer_clogs_for_hours_before_pit_2s_start_drops_pit_1s_water_by_a_quarter(runs):
    sc, s = runs["guangxi"]
    clog_start, boom = sc.truth.hazard_start_s, sc.truth.danger_s
    pit2_on = local(sc, "21:02:00")
    assert boom == local(sc, "21:19:00") and pit2_on - clog_start >= 4 * 3600
    dp = s["cast1.strainer_dp"]
    hourly = [mean_between(dp, a, a + 600) for a in np.arange(clog_start - 600, pit2_on, 3600.0)]
    assert hourly[0] < 20 and hourly[-1] > 40 and all(b > a for a, b in zip(hourly, hourly[1:]))
    assert mean_between(dp, pit2_on - 600, pit2_on) > 42
    p_before, p_after = (mean_between(s["cast1.water_p"], pit2_on - 120, pit2_on),
                         mean_between(s["cast1.water_p"], pit2_on + 30, pit2_on + 300))
    q_before, q_after = (mean_between(s["cast1.water_q"], pit2_on - 120, pit2_on),
                         mean_between(s["cast1.water_q"], pit2_on + 30, pit2_on + 300))
    assert p_before > 0.285 and p_after / p_before == pytest.approx(0.75, abs=0.02)
    assert q_after / q_before == pytest.approx(0.70, abs=0.02)
    t, level = s["cast1.level"]
    fall = (t >= local(sc, "21:13:00")) & (t < local(sc, "21:18:50"))
    slope = np.polyfit(t[fall], level[fall], 1)[0]
    assert slope == pytest.approx(-0.2, abs=0.02)  # constant speed: the caster is away
    assert at(s["cast1.casting"], boom - 1) == 1


def test_in_nantong_the_gap_under_the_stuck_starter_block_grows_with_the_platform_speed(runs):
    sc, s = runs["nantong"]
    drop, fall = sc.truth.hazard_start_s, sc.truth.danger_s
    assert drop == local(sc, "02:04:00") and fall < local(sc, "02:11:00")
    assert at(s["cast1.casting"], drop) == 1
    t, dev = s["cast1.block_dev"]
    stuck = (t >= drop + 5) & (t < fall - 5)
    assert np.polyfit(t[stuck], dev[stuck], 1)[0] == pytest.approx(0.75, abs=0.03)  # 45 mm/min
    assert at(s["cast1.block_dev"], fall - 1) > 300
    assert s["cast1.level"][1][stuck].min() > 110  # the table holds its metal on the stuck block
    assert at(s["cast1.level"], fall + 6) < 5      # until it falls


def test_in_wenshui_the_main_loses_pressure_at_once_and_co_spreads_from_the_rack_to_the_duty_room(runs):
    sc, s = runs["wenshui"]
    leak, poisoned = sc.truth.hazard_start_s, sc.truth.danger_s
    assert (leak, poisoned) == (local(sc, "05:30:00"), local(sc, "06:20:00"))
    main = s["steel1.main_p"]
    assert mean_between(main, leak - 60, leak) - mean_between(main, leak + 20, leak + 60) > 1.2
    assert mean_between(main, poisoned - 600, poisoned) < 7.5
    last = {p: mean_between(s[f"steel1.{p}"], poisoned - 300, poisoned) for p in ("co_a", "co_b", "co_c")}
    assert last["co_c"] > 40 and last["co_c"] > last["co_a"] > last["co_b"] > 5
    assert s["steel1.co_c"][1][(s["steel1.co_c"][0] > leak) & (s["steel1.co_c"][0] < poisoned)].max() > 160
    assert all(mean_between(s[f"steel1.{p}"], leak - 600, leak) < 6 for p in ("co_a", "co_b", "co_c"))
