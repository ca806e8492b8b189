"""`riskwatch eval` scores what the live detectors and alert book do with a scenario, and scores it right."""
from __future__ import annotations

import numpy as np
import pytest

from config.alarms import AlarmConfig, ChatterRule
from config.load import DEMO, load_plant
from config.model import Sector
from riskwatch.eval import alarm_quality, evaluate, meets_bar, replay, score_accident, score_quiet
from simulators.scenarios import Scenario, Truth

PLANT = load_plant(DEMO)
START = "2026-03-02T06:00:00+08:00"


def flat(point: str, value: float, duration: float, every: float = 1.0):
    t = np.arange(0.0, duration, every)
    return t, np.full(len(t), value)


def creeping_co(plant, seed):
    """CO at the booster station: 3 ppm for 10 min, then +1 ppm a minute."""
    t = np.arange(0.0, 3600.0)
    return {"steel1.co_a": (t, np.clip(3.0 + np.maximum(t - 600, 0) / 60.0, 0, 1000))}


def leak(danger_s: float) -> Scenario:
    return Scenario("leak", Sector.STEEL, "泄漏", "leak", "CO creeping up", START, 3600.0, creeping_co,
                    Truth(600.0, danger_s, ("steel1.co_a",)))


def test_a_creeping_gas_leak_is_scored_with_the_lead_time_of_its_first_yellow_alert():
    # yellow 17 ppm is crossed at 600 + 14*60 = 1440 s and raised after the 5 s on-delay, at 1445 s
    result = score_accident(replay(PLANT, leak(danger_s=2500.0)))
    assert result["detected"] and result["lead_time_s"] == 2500.0 - 1445.0
    assert result["first_tier"] == "blue" and result["tier_at_danger"] == "orange"  # 24 ppm at 1865 s, red at 160
    assert result["orange_lead_time_s"] == 2500.0 - (600 + 21 * 60 + 5)


def test_an_alert_after_the_danger_point_is_a_negative_lead_time():
    result = score_accident(replay(PLANT, leak(danger_s=1000.0)))
    assert result["detected"] and result["lead_time_s"] == 1000.0 - 1445.0
    assert meets_bar({"scenarios": [result], "normal": _quiet_normal(), "quiet": []})[0].startswith("leak: not detected")


def test_a_dead_sensor_in_a_quiet_scenario_is_allowed_only_where_the_scenario_allows_stale_alarms():
    def build(plant, seed):
        t, v = flat("sump1.h2s", 0.3, 1800.0)
        keep = (t < 600) | (t >= 900)  # five minutes of silence
        return {"sump1.h2s": (t[keep], v[keep])}

    allowed = Scenario("dropout", Sector.CONFINED_SPACE, "掉线", "dropout", "", START, 1800.0, build,
                       allowed_rules=frozenset({"stale"}))
    strict = Scenario("dropout", Sector.CONFINED_SPACE, "掉线", "dropout", "", START, 1800.0, build)
    ok, bad = score_quiet(replay(PLANT, allowed)), score_quiet(replay(PLANT, strict))
    assert ok["ok"] and ok["allowed_alerts"] == 1
    assert not bad["ok"] and [(a["point"], a["rule"], a["raised_s"]) for a in bad["unexpected"]] == [
        ("sump1.h2s", "stale", 599.0 + 3.0)]


def test_a_value_hovering_at_a_limit_without_deadband_counts_as_chattering():
    def build(plant, seed):
        t = np.arange(0.0, 600.0)
        return {"dust1.inlet_t": (t, np.where((t // 10) % 2 == 0, 61.0, 50.0))}  # 10 s above yellow, 10 s below

    sc = Scenario("hover", Sector.DUST, "波动", "hover", "", START, 600.0, build)
    plant = PLANT.model_copy(update={"points": [p.model_copy(update={"on_delay_s": 0, "off_delay_s": 0, "deadband": 0})
                                                if p.id == "dust1.inlet_t" else p for p in PLANT.points]})
    quality = alarm_quality([replay(plant, sc)], plant)
    # the alert book holds a chattering alarm's return after its third raise in 60 s: still found chattering,
    # but the console hears 3 alarms, not 30
    assert quality["chattering"] == 1 and quality["max_alarms_in_10min"] == 3 and quality["false_red"] == 0
    raw = plant.model_copy(update={"alarms": AlarmConfig(chatter=ChatterRule(hold_s=0))})  # the hold switched off
    quality = alarm_quality([replay(raw, sc)], raw)
    assert quality["chattering"] == 1 and quality["max_alarms_in_10min"] == 30 and quality["false_red"] == 0


def test_the_whole_result_has_the_promised_shape():
    quiet = Scenario("quiet", Sector.STEEL, "安静", "quiet", "", START, 1200.0,
                     lambda plant, seed: {"steel1.co_b": flat("steel1.co_b", 1.5, 1200.0)})
    result = evaluate(PLANT, [leak(2500.0), quiet])
    assert set(result["scenarios"][0]) >= {"name", "sector", "detected", "lead_time_s", "first_tier", "max_tier",
                                           "alerts"}
    assert set(result["normal"]) >= {"hours", "alarms_per_10min_per_console", "max_alarms_in_10min", "chattering",
                                     "false_red"}
    assert result["normal"]["alarms"] == 0 and meets_bar(result) == []


def test_a_scenario_that_writes_outside_a_sensors_range_fails_loudly():
    bad = Scenario("bad", Sector.STEEL, "错", "bad", "", START, 60.0,
                   lambda plant, seed: {"steel1.co_a": flat("steel1.co_a", 5000.0, 60.0)})
    with pytest.raises(ValueError, match="physical range"):
        replay(PLANT, bad)


def _quiet_normal() -> dict:
    return {"alarms_per_10min_per_console": 0, "max_alarms_in_10min": 0, "chattering": 0, "false_red": 0}
