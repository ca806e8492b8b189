"""Time to threshold: a hopper warming steadily is forecast to reach red long before it does; noise is not.

Pure, in-process: readings go in as numpy arrays stamped with their own time, findings come out. No clock is read.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from pydantic import ValidationError

from config.load import DEMO, load_plant
from config.model import ForecastRule, Horizons, Limits, Point, Tier
from detectors.trend import ForecastDetector

T0 = 1_732_300_000.0
PLANT = load_plant(DEMO)
POINTS = PLANT.point_map()
HOPPER = "dust1.hopper_t"  # red 80 degC; forecast: window 1800 s, blue 240, yellow 180, orange 60 min; on 120 s
STRAINER = "cast1.strainer_dp"  # orange 45 kPa, forecast target orange, 5 s readings


def seconds(minutes: float, start: float = 0.0, every: float = 1.0) -> np.ndarray:
    return T0 + start * 60 + np.arange(0.0, minutes * 60, every)


def minutes_in(reason: str) -> int:
    return int(re.search(r"预计(\d+)分钟后", reason).group(1))


def sump_oxygen(**extra) -> Point:
    """Confined-space oxygen forecast on its low side, short window, default horizons (yellow 60, orange 20)."""
    return Point(id="sump2.o2", name="氧气浓度", name_en="Oxygen", area="sump1", unit="%VOL", interval_s=1,
                 range=(0, 30), low=Limits(yellow=20.0, orange=19.5, red=18.0),
                 forecast=ForecastRule(window_s=600, on_delay_s=30, off_delay_s=120), **extra)


def test_the_demo_plant_forecasts_the_slow_hazards_only():
    watched = {p.id for p in PLANT.points if p.forecast is not None}
    assert {HOPPER, STRAINER, "steel1.co_a", "sump1.h2s"} <= watched
    assert not watched & {"cast1.water_p", "cast1.level", "dust1.fan_a"}  # fast casting water: later
    assert POINTS[STRAINER].forecast.target == "orange"


def test_a_hopper_warming_steadily_forecasts_red_in_about_the_right_number_of_minutes():
    d = ForecastDetector(POINTS)
    ts = seconds(120)
    warming = 40.0 + (ts - T0) * 2.0 / 600  # 2 K per 10 min from 40 degC: red (80) in 200 min
    found = d.feed(HOPPER, ts, warming)
    assert [f.tier for f in found] == [Tier.BLUE, Tier.YELLOW]
    for f in found:
        expected = (80.0 - f.value) / 0.2  # minutes at 0.2 K / min
        assert abs(minutes_in(f.reason_zh) - expected) <= 0.1 * expected
        assert f.rule == "forecast" and "红色阈值80℃" in f.reason_zh
        assert "Ash hopper temperature rising 2 ℃ per 10 min, will reach the red limit 80 ℃ in" in f.reason_en
    assert "灰斗温度每10分钟上升2℃，预计" in found[0].reason_zh
    assert minutes_in(found[1].reason_zh) <= 180  # yellow: red forecast within three hours


def test_noise_alone_forecasts_nothing_even_near_the_limit():
    d = ForecastDetector(POINTS)
    ts = seconds(12 * 60)
    rng = np.random.default_rng(7)
    noisy = 70.0 + rng.normal(0, 1.0, len(ts)) + np.sin((ts - T0) / 3600) * 0.5  # 10 K below red, wandering
    assert d.feed(HOPPER, ts, noisy) == []


def test_a_single_glitch_forecasts_nothing():
    d = ForecastDetector(POINTS)
    ts = seconds(90)
    flat = np.full(len(ts), 45.0)
    flat[3000] = 79.0
    assert d.feed(HOPPER, ts, flat) == []


def test_the_forecast_stands_down_once_the_limit_is_reached_and_the_limit_alarm_speaks():
    d = ForecastDetector(POINTS)
    ts = seconds(150)
    warming = 50.0 + (ts - T0) * 3.0 / 600  # reaches 80 at minute 100
    found = d.feed(HOPPER, ts, warming)
    assert found[-1].tier == Tier.NORMAL and found[-2].tier >= Tier.ORANGE
    assert 6000 <= found[-1].ts - T0 <= 6000 + 2 * 60  # within a bin or two (60 s) of reaching 80
    assert "由阈值报警接管" in found[-1].reason_zh and "the limit alarm takes over" in found[-1].reason_en
    # still past red: it stays quiet
    more = seconds(60, start=150)
    assert d.feed(HOPPER, more, 95.0 + (more - T0) * 0.001) == []


def test_a_clogging_strainer_is_forecast_to_reach_orange_hours_ahead():
    d = ForecastDetector(POINTS)
    ts = seconds(240, every=5)
    clogging = 20.0 + (ts - T0) / 3600 * 5.0  # 5 kPa an hour: orange (45) in five hours
    found = d.feed(STRAINER, ts, clogging)
    assert found and found[0].tier == Tier.BLUE
    yellow = next(f for f in found if f.tier == Tier.YELLOW)
    assert "橙色阈值45kPa" in yellow.reason_zh and "orange limit 45 kPa" in yellow.reason_en
    assert 150 <= minutes_in(yellow.reason_zh) <= 185


def test_oxygen_falling_towards_its_low_red_limit_is_forecast():
    p = sump_oxygen()
    d = ForecastDetector({**POINTS, p.id: p})
    ts = seconds(40)
    falling = 20.9 - (ts - T0) * 0.1 / 60  # 0.1 %VOL a minute: red (18) in 29 min
    found = d.feed(p.id, ts, falling)
    assert found and found[0].tier == Tier.YELLOW
    assert "下降" in found[0].reason_zh and "红色阈值18%VOL" in found[0].reason_zh
    assert "falling" in found[0].reason_en


def test_no_forecast_while_the_process_is_stopped():
    p = sump_oxygen(active_when="sump1.permit")
    d = ForecastDetector({**POINTS, p.id: p})
    assert d.status_points == {"sump1.permit"}
    ts = seconds(40)
    falling = 20.9 - (ts - T0) * 0.1 / 60
    d.feed("sump1.permit", ts[::5], np.zeros(len(ts[::5])))
    assert d.feed(p.id, ts, falling) == []
    later = seconds(40, start=40)
    d.feed("sump1.permit", later[::5], np.ones(len(later[::5])))
    assert d.feed(p.id, later, 20.9 - (later - later[0]) * 0.1 / 60)


def test_state_survives_a_restart_through_json():
    ts = seconds(120)
    warming = 40.0 + (ts - T0) * 2.0 / 600
    straight = ForecastDetector(POINTS).feed(HOPPER, ts, warming)
    before = ForecastDetector(POINTS)
    early = before.feed(HOPPER, ts[:3000], warming[:3000])
    after = ForecastDetector(POINTS)
    after.restore(json.loads(json.dumps(before.state())))
    assert early + after.feed(HOPPER, ts[3000:], warming[3000:]) == straight and straight


def test_a_forecast_needs_limits_and_horizons_that_shrink_with_the_tier():
    with pytest.raises(ValidationError):
        Point(id="x", name="x", area="a", unit="", interval_s=1, range=(0, 1), forecast=ForecastRule())
    with pytest.raises(ValidationError):
        ForecastRule(within_min=Horizons(yellow=20, orange=60))
