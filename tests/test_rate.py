"""Rate of change: a hopper heating too fast raises an alarm long before its temperature does; glitches do not.

Pure, in-process: readings go in as numpy arrays stamped with their own time, findings come out. No clock is read.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from config.load import DEMO, load_plant, parse_plant
from config.model import Limits, Point, RateRule, Tier
from detectors.rate import RateDetector

T0 = 1_732_300_000.0
PLANT = load_plant(DEMO)
POINTS = PLANT.point_map()
HOPPER = "dust1.hopper_t"  # rate: window 600 s, rise blue 3, yellow 5, orange 10 K / 10 min; on 60 s, off 600 s


def seconds(minutes: float, start: float = 0.0) -> np.ndarray:
    return T0 + start * 60 + np.arange(0.0, minutes * 60)


def heating(ts: np.ndarray, k_per_10min: float, base: float = 30.0) -> np.ndarray:
    return base + (ts - T0) * k_per_10min / 600


def mould_water(**gate) -> Point:
    """A casting water pressure watched for fast falls, per minute, gated by the casting status when asked."""
    return Point(id="cast1.water_p2", name="冷却水进水压力", name_en="Cooling-water inlet pressure", area="cast1",
                 unit="MPa", interval_s=1, range=(0, 1.6),
                 rate=RateRule(window_s=60, per_s=60, fall=Limits(yellow=0.02, orange=0.04), on_delay_s=5,
                               off_delay_s=30), **gate)


def test_the_demo_hopper_carries_the_domain_rate_limit():
    rate = POINTS[HOPPER].rate
    assert rate is not None and rate.rise.yellow == 5 and rate.per_s == 600  # domain.md: > ~5 K / 10 min
    assert POINTS["dust1.fan_a"].rate is None


def test_a_hopper_heating_6K_per_10min_raises_a_yellow_rate_alarm_with_reasons_in_both_languages():
    d = RateDetector(POINTS)
    ts = seconds(30)
    found = d.feed(HOPPER, ts, heating(ts, 6.0))
    assert [f.tier for f in found] == [Tier.YELLOW]
    f = found[0]
    assert f.rule == "rate" and f.point == HOPPER
    assert "灰斗温度每10分钟上升6℃" in f.reason_zh and "黄色" in f.reason_zh
    assert "Ash hopper temperature rising 6 ℃ per 10 min" in f.reason_en and "yellow" in f.reason_en
    # raised once the window is half full (300 s) and the on-delay (60 s) has passed, not before
    assert 300 + 60 <= f.ts - T0 <= 300 + 60 + 2 * 20


def test_a_single_20K_glitch_on_a_quiet_hopper_raises_nothing():
    d = RateDetector(POINTS)
    ts = seconds(60)
    values = 30.0 + np.random.default_rng(1).normal(0, 0.1, len(ts))
    values[1800] += 20.0
    assert d.feed(HOPPER, ts, values) == []


def test_a_hopper_heating_faster_and_faster_climbs_the_tiers_and_steps_down_after_the_off_delay():
    d = RateDetector(POINTS)
    ts = seconds(90)
    rate = np.where(ts - T0 < 1800, 4.0, np.where(ts - T0 < 3600, 12.0, 0.0))  # K / 10 min per stretch
    values = 30 + np.cumsum(rate / 600)
    found = d.feed(HOPPER, ts, values)
    heated = [f for f in found if f.ts - T0 <= 3600]
    assert [f.tier for f in heated] == [Tier.BLUE, Tier.YELLOW, Tier.ORANGE]
    assert heated[0].ts - T0 < 1800 <= heated[1].ts - T0  # 4 K / 10 min is blue; the 12 K stretch climbs on
    cooled = [f for f in found if f.ts - T0 > 3600]
    # flat from minute 60: each step down waits a full off-delay (600 s) of its own
    assert [f.tier for f in cooled] == [Tier.YELLOW, Tier.NORMAL]
    assert cooled[0].ts - T0 >= 3600 + 600 and cooled[1].ts - cooled[0].ts >= 600
    assert "降为黄色" in cooled[0].reason_zh and "down to yellow" in cooled[0].reason_en
    assert "恢复正常" in cooled[-1].reason_zh and "back to normal" in cooled[-1].reason_en


def test_a_fast_fall_in_mould_water_pressure_raises_on_the_falling_side():
    p = mould_water()
    d = RateDetector({**POINTS, p.id: p})
    ts = seconds(5)
    values = np.where(ts - T0 < 120, 0.30, 0.30 - (ts - T0 - 120) * 0.05 / 60).clip(0.05)
    found = d.feed(p.id, ts, values)
    assert found and found[0].tier >= Tier.YELLOW
    assert "下降" in found[0].reason_zh and "falling" in found[0].reason_en


def test_readings_fed_one_by_one_or_in_one_batch_give_the_same_findings():
    ts = seconds(40)
    values = heating(ts, 7.0)
    whole = RateDetector(POINTS).feed(HOPPER, ts, values)
    d = RateDetector(POINTS)
    trickled = [f for i in range(0, len(ts), 7) for f in d.feed(HOPPER, ts[i:i + 7], values[i:i + 7])]
    assert whole == trickled and whole


def test_redelivered_readings_are_not_judged_twice():
    d = RateDetector(POINTS)
    ts = seconds(20)
    first = d.feed(HOPPER, ts, heating(ts, 6.0))
    assert first and d.feed(HOPPER, ts, heating(ts, 6.0)) == []


def test_state_survives_a_restart_through_json():
    ts = seconds(40)
    values = heating(ts, 6.0)
    straight = RateDetector(POINTS).feed(HOPPER, ts, values)
    before = RateDetector(POINTS)
    early = before.feed(HOPPER, ts[:250], values[:250])  # half a window: nothing judged yet
    after = RateDetector(POINTS)
    after.restore(json.loads(json.dumps(before.state())))
    assert early + after.feed(HOPPER, ts[250:], values[250:]) == straight


def test_the_alert_book_tier_wins_over_a_restored_state():
    d = RateDetector(POINTS)
    d.assume(HOPPER, "rate", Tier.ORANGE)
    ts = seconds(20)
    found = d.feed(HOPPER, ts, heating(ts, 6.0))
    assert found == [] or found[0].tier == Tier.YELLOW  # it steps down from the assumed orange, never re-raises it


def test_a_falling_pressure_between_casts_is_not_a_rate_alarm_and_a_stop_clears_it():
    p = mould_water(active_when="cast1.casting")
    d = RateDetector({**POINTS, p.id: p})
    assert "cast1.casting" in d.status_points
    ts = seconds(10)
    falling = (0.30 - (ts - T0) * 0.05 / 60).clip(0.0)
    d.feed("cast1.casting", ts[::5], np.zeros(len(ts[::5])))
    assert d.feed(p.id, ts, falling) == []  # no cast: the water is being shut off on purpose

    ts2 = seconds(10, start=10)
    d.feed("cast1.casting", ts2[::5], np.ones(len(ts2[::5])))
    falling2 = (0.30 - (ts2 - ts2[0]) * 0.05 / 60).clip(0.05)
    raised = d.feed(p.id, ts2[:150], falling2[:150])
    assert raised and raised[-1].tier >= Tier.YELLOW

    d.feed("cast1.casting", ts2[150:][::5], np.zeros(len(ts2[150:][::5])))
    stopped = d.feed(p.id, ts2[150:], falling2[150:])
    assert [f.tier for f in stopped] == [Tier.NORMAL]
    assert "铸造进行中已停止" in stopped[0].reason_zh and "Casting active stopped" in stopped[0].reason_en


def test_a_point_may_switch_the_kind_rate_off_and_limits_must_be_ascending_magnitudes():
    raw = {"site": "t", "name": "t", "areas": [{"id": "a", "name": "a", "sector": "dust"}],
           "points": [{"id": "h", "name": "灰斗温度", "area": "a", "kind": "hopper_temp", "rate": None}]}
    assert parse_plant(raw).points[0].rate is None
    with pytest.raises(ValidationError):
        RateRule(rise=Limits(yellow=5, orange=3))
    with pytest.raises(ValidationError):
        RateRule()
