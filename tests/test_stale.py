"""A sensor that stops talking is a safety event (MEM order No. 10, article 14), not an IT ticket.

Time passes only through tick(now), handed in by the test exactly as the pipeline hands it in.
"""
from __future__ import annotations

import json

import numpy as np

from config.load import DEMO, load_plant
from config.model import Tier
from detectors.stale import StaleDetector

T0 = 1_732_300_000.0
POINTS = load_plant(DEMO).point_map()

H2S = "sump1.h2s"  # every 1 s, offline after 3 s of silence
WATER_P = "cast1.water_p"  # casting mould cooling water: interlock-grade, every 1 s
FAN_ON = "dust1.fan_on"  # a status point, every 5 s: offline after 15 s


def only(point: str) -> StaleDetector:
    return StaleDetector({point: POINTS[point]}, started=T0)


def heard(d: StaleDetector, point: str, at_s: float, value: float = 0.5):
    return d.feed(point, np.array([T0 + at_s]), np.array([value]))


def ticks(d: StaleDetector, start_s: float, end_s: float, every_s: float = 1.0) -> list:
    out = []
    for now in np.arange(start_s, end_s + every_s / 2, every_s):
        out.extend(d.tick(T0 + float(now)))
    return out


def test_an_h2s_sensor_silent_for_more_than_three_intervals_goes_offline_blue():
    d = only(H2S)
    assert heard(d, H2S, 0) == []
    assert d.tick(T0 + 3.0) == []  # three intervals exactly: not yet
    found = d.tick(T0 + 3.5)
    assert [(f.point, f.rule, f.tier) for f in found] == [(H2S, "stale", Tier.BLUE)]
    assert found[0].ts == T0 + 3.0 and found[0].value is None  # when the silence crossed the limit
    assert "硫化氢浓度" in found[0].reason_zh and "无数据" in found[0].reason_zh


def test_the_offline_threshold_follows_the_points_own_interval_and_stale_factor():
    d = only(FAN_ON)  # every 5 s, factor 3
    heard(d, FAN_ON, 0, 1.0)
    assert ticks(d, 1, 15) == []
    assert [f.tier for f in d.tick(T0 + 15.5)] == [Tier.BLUE]


def test_losing_the_mould_cooling_water_pressure_is_red_at_once():
    d = only(WATER_P)
    heard(d, WATER_P, 0, 0.30)
    found = ticks(d, 1, 10)
    assert [(f.tier, f.ts - T0) for f in found] == [(Tier.RED, 3.0)]  # stamped when the silence crossed 3 s


def test_a_point_never_heard_since_start_counts_its_silence_from_the_start():
    d = only(H2S)
    assert d.tick(T0 + 2.0) == []
    assert [f.tier for f in d.tick(T0 + 4.0)] == [Tier.BLUE]


def test_silence_escalates_blue_then_yellow_after_15_min_then_orange_after_2_h_each_tier_once():
    d = only(H2S)
    heard(d, H2S, 0)
    found = ticks(d, 0, 3 * 3600, every_s=10)
    assert [f.tier for f in found] == [Tier.BLUE, Tier.YELLOW, Tier.ORANGE]
    assert [f.ts - T0 for f in found] == [3.0, 900.0, 7200.0]  # when the silence crossed 3 s, 15 min, 2 h


def test_the_yellow_and_orange_boundaries_are_strictly_more_than_15_min_and_2_h():
    d = only(H2S)
    heard(d, H2S, 0)
    assert [f.tier for f in d.tick(T0 + 900.0)] == [Tier.BLUE]
    assert [f.tier for f in d.tick(T0 + 900.5)] == [Tier.YELLOW]
    assert d.tick(T0 + 7200.0) == []
    assert [f.tier for f in d.tick(T0 + 7200.5)] == [Tier.ORANGE]


def test_an_interlock_point_stays_red_however_long_it_is_silent_and_says_so_once():
    d = only(WATER_P)
    heard(d, WATER_P, 0, 0.30)
    found = ticks(d, 1, 4 * 3600, every_s=5)
    assert [f.tier for f in found] == [Tier.RED]


def test_repeated_ticks_never_emit_the_same_tier_twice():
    d = only(H2S)
    heard(d, H2S, 0)
    first = d.tick(T0 + 10)
    assert [f.tier for f in first] == [Tier.BLUE]
    for now in (11, 11, 12, 100, 899):
        assert d.tick(T0 + now) == []


def test_a_sensor_that_reports_again_returns_to_normal_on_its_next_reading():
    d = only(H2S)
    heard(d, H2S, 0)
    assert [f.tier for f in d.tick(T0 + 60)] == [Tier.BLUE]
    back = heard(d, H2S, 61, 0.3)
    assert [(f.rule, f.tier, f.ts, f.value) for f in back] == [("stale", Tier.NORMAL, T0 + 61, 0.3)]
    assert "硫化氢浓度" in back[0].reason_zh and "恢复" in back[0].reason_zh
    assert heard(d, H2S, 62) == []  # reporting normally says nothing more
    assert d.tick(T0 + 63) == []


def test_a_recovered_sensor_that_falls_silent_again_is_a_new_offline_episode():
    d = only(H2S)
    heard(d, H2S, 0)
    d.tick(T0 + 10)
    heard(d, H2S, 11)
    assert [f.tier for f in d.tick(T0 + 15)] == [Tier.BLUE]


def test_a_redelivered_old_reading_does_not_end_an_offline_episode():
    """A QoS 1 redelivery of an old message after a reconnect is not the sensor talking again."""
    d = only(H2S)
    heard(d, H2S, 100)
    assert [f.tier for f in d.tick(T0 + 200)] == [Tier.BLUE]
    assert heard(d, H2S, 50) == []  # stamped before the last reading we had: no 'reporting again'
    assert d.tick(T0 + 201) == []  # and so no second offline episode a second later


def test_one_silent_point_among_many_is_the_only_one_reported():
    d = StaleDetector(POINTS, started=T0)
    found = []
    for second in range(1, 30):
        for point in POINTS:
            if point != H2S:
                found.extend(heard(d, point, second, 1.0))
        found.extend(d.tick(T0 + second + 0.5))
    assert [(f.point, f.tier) for f in found] == [(H2S, Tier.BLUE)]


def test_a_restored_stale_detector_continues_identically():
    points = {p: POINTS[p] for p in (H2S, WATER_P, FAN_ON)}
    script = [("feed", H2S, 1), ("feed", WATER_P, 1), ("feed", FAN_ON, 2), ("tick", 6), ("feed", FAN_ON, 7),
              ("tick", 30), ("feed", H2S, 31), ("tick", 1000), ("tick", 8000), ("feed", WATER_P, 8001),
              ("tick", 8002), ("feed", H2S, 8003), ("tick", 8004), ("tick", 9000)]

    def play(d, steps):
        out = []
        for step in steps:
            if step[0] == "feed":
                out.extend(d.feed(step[1], np.array([T0 + step[2]]), np.array([1.0])))
            else:
                out.extend(d.tick(T0 + step[1]))
        return out

    whole = play(StaleDetector(points, started=T0), script)
    assert len(whole) >= 6
    for cut in range(len(script) + 1):
        before = StaleDetector(points, started=T0)
        first = play(before, script[:cut])
        after = StaleDetector(points, started=T0 + 50_000)  # restarted much later: the state says when it last heard
        after.restore(json.loads(json.dumps(before.state())))
        assert first + play(after, script[cut:]) == whole, f"restart after step {cut}"


def test_assume_makes_a_restarted_detector_agree_with_an_open_stale_alert():
    d = only(H2S)
    d.assume(H2S, "stale", Tier.YELLOW)  # the book holds a yellow offline alert from before the restart
    assert d.tick(T0 + 1000) == []  # already yellow: nothing to raise again
    back = heard(d, H2S, 1001)
    assert [f.tier for f in back] == [Tier.NORMAL]  # and the book's alert is cleared when data returns


def test_a_silence_inside_a_back_filled_batch_is_an_offline_episode_at_the_times_it_happened():
    d = StaleDetector({"sump1.h2s": _h2s()}, started=T0)
    times = np.array([T0 + 1, T0 + 2, T0 + 1000, T0 + 1001])  # a gateway buffered through a 998 s outage
    found = d.feed("sump1.h2s", times, np.zeros(4))
    assert [(f.tier, f.ts) for f in found] == [(Tier.BLUE, T0 + 5), (Tier.YELLOW, T0 + 2 + 900), (Tier.NORMAL, T0 + 1000)]
    assert d.tick(T0 + 1002) == []


def test_a_tick_after_a_long_silence_raises_one_alarm_at_the_tier_reached():
    d = StaleDetector({"sump1.h2s": _h2s()}, started=T0)
    assert [f.tier for f in d.tick(T0 + 3 * 3600)] == [Tier.ORANGE]


def _h2s():
    return load_plant(DEMO).point_map()["sump1.h2s"]
