"""Tiered limits on the plant's analog points: when a tier is raised, when it holds, when it steps back down.

Pure, in-process: readings go in as numpy arrays stamped with their own time, findings come out. No clock is read.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from config.load import DEMO, load_plant
from config.model import Limits, Point, Tier
from detectors.threshold import ThresholdDetector

T0 = 1_732_300_000.0  # 2024-11-22 18:26:40 UTC, a shift in progress
PLANT = load_plant(DEMO)
POINTS = PLANT.point_map()

HOPPER = "dust1.hopper_t"  # blue 50, yellow 60, orange 70, red 80 degC; deadband 2, on 5 s, off 30 s
O2 = "sump1.o2"  # low: yellow 20.0, orange 19.5, red 18.0 %VOL; high: yellow 22.0, orange 23.5; on 3 s
DP = "dust1.dp"  # high: blue 1700, yellow 2000, orange 2500 Pa; low: blue 600, yellow 450, orange 300; on 30 s


def hovering_inlet() -> Point:
    """An inlet temperature with no delays at all, so only the deadband stands between it and chatter."""
    return Point(id="dust1.inlet_fast", name="进口温度", name_en="Inlet temperature", area="dust1", unit="℃",
                 interval_s=1, range=(-40, 400), high=Limits(blue=50, yellow=60), deadband=2,
                 on_delay_s=0, off_delay_s=0)


def two_sided_dp() -> Point:
    """A baghouse differential pressure with short delays, so one stream crosses every tier on both sides."""
    return Point(id="dust2.dp", name="进出口压差", name_en="Baghouse dP", area="dust1", unit="kPa", interval_s=1,
                 range=(0, 100), high=Limits(blue=60, yellow=70, orange=80, red=90),
                 low=Limits(blue=40, yellow=30, orange=20, red=10), deadband=1.5, on_delay_s=2, off_delay_s=3)


def detector(*extra: Point) -> ThresholdDetector:
    return ThresholdDetector({**POINTS, **{p.id: p for p in extra}})


def feed(d: ThresholdDetector, point: str, start_s: float, values, step_s: float = 1.0):
    """One reading every step_s seconds from T0 + start_s."""
    values = np.asarray(values, dtype=float)
    ts = T0 + start_s + step_s * np.arange(len(values), dtype=float)
    return d.feed(point, ts, values)


def tiers(findings) -> list[Tier]:
    return [f.tier for f in findings]


def at(findings) -> list[float]:
    return [f.ts - T0 for f in findings]


def heated_to_red(d: ThresholdDetector) -> float:
    """The hopper sits at 85 degC for 10 s (red from its 6th second); returns when the next reading is due."""
    assert tiers(feed(d, HOPPER, 0, [85.0] * 10)) == [Tier.RED]
    return 10.0


# --- raising ------------------------------------------------------------------------------------------------

def test_a_hopper_heating_up_steadily_climbs_blue_yellow_orange_red_in_order():
    d = detector()
    # 40 -> 88 degC, one degree a second: each limit is crossed at 50, 60, 70, 80 (t = 10, 20, 30, 40)
    found = feed(d, HOPPER, 0, 40.0 + np.arange(49))
    assert tiers(found) == [Tier.BLUE, Tier.YELLOW, Tier.ORANGE, Tier.RED]
    assert at(found) == [15.0, 25.0, 35.0, 45.0]  # each one on-delay (5 s) after its crossing
    assert {f.point for f in found} == {HOPPER} and {f.rule for f in found} == {"high"}


def test_a_single_sample_spike_raises_nothing_when_on_delay_is_set():
    d = detector()
    assert feed(d, HOPPER, 0, [40.0] * 10 + [95.0] + [40.0] * 10) == []


def test_an_excursion_shorter_than_the_on_delay_raises_nothing():
    d = detector()
    # 95 degC for readings at t = 10..14: 4 s beyond red, the on-delay is 5 s
    assert feed(d, HOPPER, 0, [40.0] * 10 + [95.0] * 5 + [40.0] * 10) == []


def test_a_sustained_excursion_is_raised_when_the_readings_clock_says_the_on_delay_has_passed():
    d = detector()
    ts = T0 + np.array([0.0, 1.0, 2.5, 4.9, 5.0, 6.0])
    found = d.feed(HOPPER, ts, np.full(len(ts), 85.0))
    assert tiers(found) == [Tier.RED] and at(found) == [5.0]


def test_the_on_delay_is_judged_on_reading_timestamps_even_when_readings_are_sparse():
    d = detector()
    # a slow gateway: two readings a minute apart, both beyond red; the excursion has lasted 60 s by the second
    assert d.feed(HOPPER, np.array([T0]), np.array([85.0])) == []
    found = d.feed(HOPPER, np.array([T0 + 60.0]), np.array([85.0]))
    assert tiers(found) == [Tier.RED] and at(found) == [60.0]


def test_a_jump_straight_past_every_limit_raises_red_alone_once_the_on_delay_has_passed():
    d = detector()
    found = feed(d, HOPPER, 0, [40.0] * 5 + [85.0] * 20)
    assert tiers(found) == [Tier.RED]
    assert at(found) == [10.0]


def test_a_replay_whose_clock_starts_at_zero_raises_after_exactly_the_on_delay():
    """Backtests replay readings with relative time; t = 0 is a time like any other."""
    d = detector()
    found = d.feed(HOPPER, np.arange(10, dtype=float), np.full(10, 85.0))
    assert tiers(found) == [Tier.RED]
    assert [f.ts for f in found] == [5.0]  # beyond red since t = 0, on-delay 5 s


# --- hysteresis -----------------------------------------------------------------------------------------------

def test_an_inlet_temperature_hovering_at_the_blue_limit_does_not_chatter():
    d = detector(hovering_inlet())
    # 49 / 51 degC alternating for two minutes around the blue limit of 50, deadband 2, no delays
    found = feed(d, "dust1.inlet_fast", 0, [49.0, 51.0] * 60)
    assert tiers(found) == [Tier.BLUE]
    # only below 50 - 2 = 48 is it back inside
    found = feed(d, "dust1.inlet_fast", 120, [48.5] * 30 + [47.9])
    assert tiers(found) == [Tier.NORMAL] and at(found) == [150.0]


def test_a_value_resting_inside_the_deadband_keeps_its_tier_for_as_long_as_it_rests_there():
    d = detector()
    heated_to_red(d)
    # 79 degC: below the red limit (80) but not below 80 - 2; an hour of it must not clear red
    assert feed(d, HOPPER, 10, [79.0] * 3600) == []


def test_a_hopper_hovering_at_its_blue_limit_with_an_on_delay_raises_nothing():
    d = detector()
    assert feed(d, HOPPER, 0, [49.5, 50.5] * 300) == []


# --- clearing -------------------------------------------------------------------------------------------------

def test_red_falls_to_orange_only_after_the_off_delay_inside_its_limit_minus_deadband():
    d = detector()
    t = heated_to_red(d)
    # 75 degC: inside 80 - 2, still beyond orange (70); the off-delay is 30 s
    found = feed(d, HOPPER, t, [75.0] * 40)
    assert tiers(found) == [Tier.ORANGE]
    assert at(found) == [t + 30.0]
    assert "橙色" in found[0].reason_zh


def test_a_return_above_the_limit_restarts_the_off_delay():
    d = detector()
    t = heated_to_red(d)
    assert feed(d, HOPPER, t, [75.0] * 20) == []  # 20 s inside red - deadband...
    assert feed(d, HOPPER, t + 20, [81.0]) == []  # ...one reading back above red (still red: nothing new)...
    found = feed(d, HOPPER, t + 21, [75.0] * 40)  # ...and the 30 s start again from t + 21
    assert tiers(found) == [Tier.ORANGE] and at(found) == [t + 21 + 30.0]


def test_a_red_alarm_falls_straight_to_normal_once_every_limit_has_been_clear_for_the_off_delay():
    d = detector()
    t = heated_to_red(d)
    # the fire is out: 30 degC, far below every limit, for five minutes: one clear, not three tier-downs first
    found = feed(d, HOPPER, t, [30.0] * 300)
    assert tiers(found) == [Tier.NORMAL]
    assert at(found)[0] == t + 30.0  # exactly the off-delay after the first clean reading


def test_a_red_alarm_steps_down_to_the_tier_the_value_still_holds():
    d = detector()
    t = heated_to_red(d)
    found = feed(d, HOPPER, t, [72.0] * 60 + [30.0] * 60)  # orange level for a minute, then clean
    assert tiers(found) == [Tier.ORANGE, Tier.NORMAL]
    assert at(found) == [t + 30.0, t + 90.0]


def test_an_alarm_without_off_delay_clears_on_the_first_reading_inside_limit_minus_deadband():
    d = detector(hovering_inlet())
    assert tiers(feed(d, "dust1.inlet_fast", 0, [52.0])) == [Tier.BLUE]
    assert feed(d, "dust1.inlet_fast", 1, [48.0]) == []  # exactly at 50 - 2 is not inside yet
    assert tiers(feed(d, "dust1.inlet_fast", 2, [47.99])) == [Tier.NORMAL]


# --- low side and both sides ------------------------------------------------------------------------------

def test_oxygen_falling_in_the_sump_is_a_low_side_alarm_orange_below_19_5_and_red_below_18():
    d = detector()
    found = feed(d, O2, 0, [20.9] * 5 + [19.8] * 10 + [19.4] * 10 + [17.9] * 10)
    assert tiers(found) == [Tier.YELLOW, Tier.ORANGE, Tier.RED]
    assert at(found) == [8.0, 18.0, 28.0]  # each 3 s (on-delay) after the drop
    assert {f.rule for f in found} == {"low"}
    orange, red = found[1], found[2]
    assert "氧气浓度" in orange.reason_zh and "低于" in orange.reason_zh and "橙色" in orange.reason_zh
    assert "19.5" in orange.reason_zh and "19.5" in orange.reason_en and "below" in orange.reason_en
    assert "红色" in red.reason_zh and "18" in red.reason_zh


def test_oxygen_exactly_at_19_5_counts_as_beyond_the_orange_limit():
    d = detector()
    found = feed(d, O2, 0, [19.5] * 10)
    assert tiers(found) == [Tier.ORANGE]


def test_oxygen_recovering_after_ventilation_clears_the_low_alarm():
    d = detector()
    feed(d, O2, 0, [17.5] * 10)
    found = feed(d, O2, 10, [20.9] * 300)
    assert found and found[-1].tier == Tier.NORMAL and {f.rule for f in found} == {"low"}


def test_a_baghouse_dp_has_a_high_side_for_blinded_filters_and_a_low_side_for_torn_bags():
    d = detector()
    # blinded filter: 2100 Pa for 40 s (beyond blue and yellow high; on-delay 30 s)
    blinded = feed(d, DP, 0, [1200.0] * 10 + [2100.0] * 40)
    assert [(f.rule, f.tier) for f in blinded] == [("high", Tier.YELLOW)]
    assert at(blinded) == [40.0]
    # cleaned: back to 1200 Pa, the high side eventually clears, the low side says nothing
    cleaned = feed(d, DP, 50, [1200.0] * 300)
    assert {f.rule for f in cleaned} == {"high"} and cleaned[-1].tier == Tier.NORMAL
    # a torn bag: the pressure drop falls to 400 Pa (beyond low blue 600 and low yellow 450)
    torn = feed(d, DP, 350, [400.0] * 40)
    assert [(f.rule, f.tier) for f in torn] == [("low", Tier.YELLOW)]
    assert "低于" in torn[0].reason_zh and "450" in torn[0].reason_zh


# --- redelivery ---------------------------------------------------------------------------------------------

def test_readings_redelivered_after_a_reconnect_are_ignored():
    d = detector()
    ts = T0 + np.arange(10, dtype=float)
    assert tiers(d.feed(HOPPER, ts, np.full(10, 85.0))) == [Tier.RED]
    assert d.feed(HOPPER, ts, np.full(10, 85.0)) == []  # the same batch again
    # old readings, even ones that would have cleared the alarm, cannot move detection backwards
    assert d.feed(HOPPER, T0 - 100 + np.arange(60, dtype=float), np.full(60, 20.0)) == []
    # a batch that straddles: its old part is dropped, its new part is judged
    straddling = T0 + np.arange(5, 60, dtype=float)
    found = d.feed(HOPPER, straddling, np.where(straddling < T0 + 10, 20.0, 75.0))
    assert tiers(found) == [Tier.ORANGE] and at(found) == [40.0]  # 75 degC since t = 10, off-delay 30 s


# --- batching and restarts ----------------------------------------------------------------------------------

def plant_day(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A restless differential pressure: swings across every tier on both sides, irregular sampling, noise."""
    rng = np.random.default_rng(seed)
    ts = T0 + np.cumsum(rng.uniform(0.3, 1.7, 400))
    phase = (ts - T0) * 2 * np.pi / 90
    values = np.clip(50 + 47 * np.sin(phase) + rng.normal(0, 2.5, len(ts)), 0, 100)
    return ts, values


def split_at(ts, values, cuts):
    edges = [0, *sorted(cuts), len(ts)]
    return [(ts[a:b], values[a:b]) for a, b in zip(edges, edges[1:]) if b > a]


def run(d: ThresholdDetector, batches) -> list:
    """Every finding, in time order (within one batch the detector lists the high side before the low side)."""
    out = []
    for ts, values in batches:
        out.extend(d.feed("dust2.dp", ts, values))
    return sorted(out, key=lambda f: (f.ts, f.rule))


def test_the_restless_dp_stream_really_exercises_every_tier_on_both_sides():
    found = run(detector(two_sided_dp()), [plant_day(1)])
    assert {(f.rule, f.tier) for f in found} >= {(rule, tier) for rule in ("high", "low")
                                                  for tier in (Tier.RED, Tier.NORMAL)}
    assert len(found) >= 12


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_splitting_a_stream_at_any_single_point_gives_the_same_findings_as_one_batch(seed):
    ts, values = plant_day(seed)
    whole = run(detector(two_sided_dp()), [(ts, values)])
    for cut in range(1, len(ts)):
        assert run(detector(two_sided_dp()), split_at(ts, values, [cut])) == whole, f"split at {cut}"


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 50])
def test_feeding_a_stream_in_chunks_of_any_size_gives_the_same_findings_as_one_batch(chunk):
    ts, values = plant_day(4)
    whole = run(detector(two_sided_dp()), [(ts, values)])
    assert run(detector(two_sided_dp()), split_at(ts, values, range(chunk, len(ts), chunk))) == whole


@pytest.mark.parametrize("seed", range(5))
def test_feeding_a_stream_in_random_pieces_gives_the_same_findings_as_one_batch(seed):
    ts, values = plant_day(10 + seed)
    whole = run(detector(two_sided_dp()), [(ts, values)])
    cuts = np.random.default_rng(seed).choice(np.arange(1, len(ts)), size=25, replace=False)
    assert run(detector(two_sided_dp()), split_at(ts, values, cuts.tolist())) == whole


@pytest.mark.parametrize("cut", [1, 37, 120, 201, 333, 399])
def test_a_restarted_detector_restored_from_its_saved_state_continues_identically(cut):
    ts, values = plant_day(5)
    whole = run(detector(two_sided_dp()), [(ts, values)])
    before = detector(two_sided_dp())
    first = run(before, [(ts[:cut], values[:cut])])
    saved = json.loads(json.dumps(before.state()))  # as it would be written to disk
    after = detector(two_sided_dp())
    after.restore(saved)
    assert first + run(after, [(ts[cut:], values[cut:])]) == whole
    assert run(after, [(ts[:cut], values[:cut])]) == []  # and it remembers how far it had read


def test_assume_makes_a_fresh_detector_agree_with_a_red_alert_in_the_book():
    d = detector()
    d.assume(HOPPER, "high", Tier.RED)
    assert feed(d, HOPPER, 0, [85.0] * 20) == []  # still red: no second raise of what the book already has
    found = feed(d, HOPPER, 20, [30.0] * 300)
    assert found and found[-1].tier == Tier.NORMAL  # and it clears the book's red alert when the heat is gone


def test_assume_overrides_a_restored_state_that_lags_behind_the_book():
    ts = T0 + np.arange(40, dtype=float)
    ramp = 60.0 + ts - T0  # 60 -> 99 degC
    early = detector()
    early.feed(HOPPER, ts[:15], ramp[:15])  # saved while orange was still pending
    d = detector()
    d.restore(json.loads(json.dumps(early.state())))
    d.assume(HOPPER, "high", Tier.RED)  # the book already holds red (it was raised after the last save)
    found = d.feed(HOPPER, ts[15:], ramp[15:])
    assert found == []  # no tier_up to orange or red for an alert that is red already


def test_a_fresh_detector_without_assume_would_leave_a_book_alert_stuck():
    """The reason assume exists: a quiet hopper says nothing to a detector that believes it is normal."""
    d = detector()
    assert feed(d, HOPPER, 0, [30.0] * 300) == []


# --- reasons ------------------------------------------------------------------------------------------------

def test_reasons_name_the_point_in_chinese_the_tier_in_chinese_and_the_limit():
    d = detector()
    red = feed(d, HOPPER, 0, [85.2] * 10)[0]
    assert red.reason_zh == "灰斗温度 85.2℃，高于红色阈值 80℃"
    assert red.reason_en == "Ash hopper temperature 85.2 ℃, above red limit 80 ℃"
    assert red.value == 85.2
    t = 10.0
    cleared = feed(d, HOPPER, t, [75.0] * 40)[0]
    assert "灰斗温度" in cleared.reason_zh and "橙色" in cleared.reason_zh and "70" in cleared.reason_zh


def test_the_normal_finding_says_the_point_is_back_to_normal():
    d = detector(hovering_inlet())
    feed(d, "dust1.inlet_fast", 0, [55.0])
    normal = feed(d, "dust1.inlet_fast", 1, [40.0])[0]
    assert normal.tier == Tier.NORMAL and "进口温度" in normal.reason_zh and "恢复正常" in normal.reason_zh


# --- the quiet plant ----------------------------------------------------------------------------------------

def test_a_quiet_plant_emits_nothing_at_all():
    d = detector()
    quiet = {"dust1.hopper_t": 35.0, "dust1.inlet_t": 30.0, "dust1.dp": 1100.0, "dust1.velocity": 22.0,
             "dust1.fan_a": 80.0, "dust1.fan_on": 1.0, "dust1.production": 1.0, "cast1.water_p": 0.30,
             "cast1.water_q": 120.0, "cast1.level": 125.0, "cast1.metal_t": 710.0, "cast1.casting": 1.0,
             "steel1.co_a": 2.0, "steel1.co_b": 1.0, "steel1.main_p": 9.0, "sump1.h2s": 0.2, "sump1.o2": 20.9,
             "sump1.lel": 0.0, "sump1.people": 2.0, "nh3.room_ppm": 3.0, "nh3.hall_ppm": 2.0,
             "nh3.discharge_p": 1.1}
    assert set(quiet) <= set(POINTS)
    rng = np.random.default_rng(0)
    for hour in range(3):
        for point, level in quiet.items():
            ts = T0 + hour * 3600 + np.arange(3600, dtype=float)
            noisy = level * (1 + rng.normal(0, 0.005, 3600))
            assert d.feed(point, ts, noisy) == [], point


def test_a_point_with_no_limits_or_an_unknown_point_emits_nothing():
    d = detector()
    ts = T0 + np.arange(5, dtype=float)
    assert d.feed("dust1.fan_a", ts, np.full(5, 499.0)) == []
    assert d.feed("no.such.point", ts, np.full(5, 1e6)) == []
    assert d.feed(HOPPER, ts[:0], np.array([])) == []


# --- plant state: limits that apply only while the process runs ----------------------------------------------

def _casting_plant():
    from config.model import Limits, Point
    level = Point(id="pit.level", name="结晶器液位", name_en="Mould level", area="a", unit="mm", interval_s=1,
                  range=(0, 300), low=Limits(orange=90, red=70), on_delay_s=1, active_when="pit.casting")
    casting = Point(id="pit.casting", name="铸造进行中", name_en="Casting", area="a", unit="", interval_s=1,
                    range=(0, 1))
    return ThresholdDetector({"pit.level": level, "pit.casting": casting})


def test_an_empty_mould_between_casts_is_not_an_alarm():
    d = _casting_plant()
    assert d.feed("pit.casting", np.array([T0]), np.array([0.0])) == []
    assert d.feed("pit.level", T0 + np.arange(60.0), np.zeros(60)) == []


def test_the_level_falling_during_a_cast_is_red_and_the_end_of_the_cast_clears_it():
    d = _casting_plant()
    d.feed("pit.casting", np.array([T0]), np.array([1.0]))
    found = d.feed("pit.level", T0 + np.arange(10.0), np.array([120.0] * 5 + [60.0] * 5))
    assert [f.tier for f in found] == [Tier.RED]
    d.feed("pit.casting", np.array([T0 + 20]), np.array([0.0]))
    cleared = d.feed("pit.level", T0 + 21 + np.arange(5.0), np.zeros(5))
    assert [f.tier for f in cleared] == [Tier.NORMAL] and "不再适用" in cleared[0].reason_zh


def test_a_status_point_never_heard_from_leaves_the_limits_in_force():
    d = _casting_plant()
    assert [f.tier for f in d.feed("pit.level", T0 + np.arange(5.0), np.full(5, 60.0))] == [Tier.RED]


def test_a_start_up_grace_keeps_the_limits_off_while_the_mould_fills():
    d = _casting_plant()
    d.points["pit.level"] = d.points["pit.level"].model_copy(update={"active_after_s": 30.0})
    d.feed("pit.casting", np.array([T0]), np.array([1.0]))
    assert d.feed("pit.level", T0 + np.arange(30.0), np.linspace(0, 110, 30)) == []  # filling: not an alarm
    found = d.feed("pit.level", T0 + 30 + np.arange(5.0), np.full(5, 60.0))  # 30 s into the cast: limits apply
    assert [f.tier for f in found] == [Tier.RED]


def test_a_falling_value_steps_down_no_faster_than_one_tier_per_off_delay():
    d = detector()
    t = heated_to_red(d)
    # below orange's band at once, below yellow's 3 s later: two steps, but a full off-delay apart
    found = feed(d, HOPPER, t, [66.0] * 3 + [30.0] * 120)
    assert tiers(found) == [Tier.YELLOW, Tier.NORMAL]
    assert at(found)[1] - at(found)[0] >= 30.0
