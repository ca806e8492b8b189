"""The anomaly scorer and detector: causal, catches the plant's surprises, quiet when nothing changes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from config.model import Point, Tier
from detectors.anomaly import FIRE_SCORE, AnomalyDetector, AnomalyScorer, score

CALIBRATION = 320  # warmup + SPOT's calibration window: like NAB's probation, no verdicts before it


def hopper(n=3000, seed=7):
    """Ash hopper temperature around 60 ℃ with sensor noise."""
    return 60 + np.random.default_rng(seed).uniform(-1.0, 1.0, n)


def point():
    return Point(id="hopper.t", name="灰斗温度", name_en="Ash hopper temperature", area="a", unit="℃",
                 interval_s=1, range=(0, 200))


def test_scores_of_a_prefix_do_not_change_when_the_series_grows():
    x = np.random.default_rng(1).normal(0, 1, 2500).cumsum()
    x[1800:] += 40
    full = score(x)
    for cut in (400, 1000, 1801, 2200):
        assert np.array_equal(score(x[:cut]), full[:cut])
    assert ((0 <= full) & (full <= 1)).all()


def test_a_spike_is_flagged_and_then_the_scorer_rests():
    x = hopper()
    x[2000] = 75.0
    s = score(x)
    assert s[2000] >= FIRE_SCORE
    assert s[2001:2121].max() == 0.0  # the rest period: 120 readings


def test_a_level_shift_is_flagged_soon_after_it_starts():
    x = hopper()
    x[2000:] += 4.0  # a fouled thermocouple: the reading steps up and stays
    s = score(x)
    assert s[2000:2010].max() >= FIRE_SCORE


def test_a_slow_drift_inside_the_old_range_is_flagged():
    x = hopper(4000)
    x[2500:] += np.linspace(0, 1.5, 1500)  # self-heating: the level creeps up a little at a time
    assert score(x)[2500:].max() >= FIRE_SCORE


def test_a_quiet_noisy_series_raises_rarely_after_calibration():
    for seed in range(3):
        for x in (hopper(10_000, seed), np.random.default_rng(seed).normal(60, 1, 10_000)):
            alarms = int((score(x)[CALIBRATION:] >= FIRE_SCORE).sum())
            assert alarms <= 10, alarms  # at most one in ~1000 readings


def test_detector_findings_carry_a_tier_and_chinese_and_english_reasons():
    d = AnomalyDetector({"hopper.t": point()})
    x = hopper(1000)
    x[700] = 95.0
    found = d.feed("hopper.t", np.arange(1000.0), x)
    raised = [f for f in found if f.tier > Tier.NORMAL]
    assert raised and raised[0].ts == 700.0 and raised[0].rule == "anomaly"
    assert "灰斗温度 偏离正常范围（异常评分" in raised[0].reason_zh
    assert raised[0].reason_en.startswith("Ash hopper temperature unusual (score ")
    cleared = [f for f in found if f.tier == Tier.NORMAL and f.ts > 700]
    assert cleared and "已恢复正常" in cleared[0].reason_zh and "back to normal" in cleared[0].reason_en


def test_state_and_restore_give_identical_findings():
    x = np.random.default_rng(5).normal(0, 1, 3000).cumsum() * 0.1 + 60
    x[2200] += 30
    x[2600:] += 10
    ts = np.arange(3000.0)
    whole = AnomalyDetector({"hopper.t": point()})
    expected = whole.feed("hopper.t", ts[:1500], x[:1500]) + whole.feed("hopper.t", ts[1500:], x[1500:])
    first = AnomalyDetector({"hopper.t": point()})
    got = first.feed("hopper.t", ts[:1500], x[:1500])
    saved = json.loads(json.dumps(first.state()))  # it survives a trip through JSON, as the store keeps it
    second = AnomalyDetector({"hopper.t": point()})
    second.restore(saved)
    got += second.feed("hopper.t", ts[1500:], x[1500:])
    assert got == expected and any(f.tier > Tier.NORMAL for f in got)


def test_redelivered_readings_are_not_scored_twice_and_assume_wins():
    d = AnomalyDetector({"hopper.t": point()})
    x = hopper(600)
    d.feed("hopper.t", np.arange(600.0), x)
    assert d.feed("hopper.t", np.arange(600.0), x) == []
    d.assume("hopper.t", "anomaly", Tier.YELLOW)  # the alert book says yellow; the next quiet reading clears it
    f = d.feed("hopper.t", np.array([600.0]), np.array([60.0]))
    assert [g.tier for g in f] == [Tier.NORMAL]


def test_scorer_state_round_trip_continues_identically():
    x = hopper(1500)
    a = AnomalyScorer()
    head = [a.score_one(v) for v in x[:700]]
    b = AnomalyScorer.from_state(json.loads(json.dumps(a.state())))
    assert head == list(score(x[:700]))
    assert [a.score_one(v) for v in x[700:]] == [b.score_one(v) for v in x[700:]]


# --- a live point reports every 1-10 s for months: on stationary noise the scorer must stay quiet ------------

NOISE_READINGS = 200_000


def noise(kind, n, seed=0):
    """Stationary i.i.d. sensor noise around 60, and its standard deviation."""
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        return rng.normal(60, 1.0, n), 1.0
    if kind == "uniform":
        return rng.uniform(59, 61, n), 1 / np.sqrt(3)
    return np.round(rng.normal(60, 0.3, n), 1), 0.3  # a sensor that reports one decimal


def every_5s(n):
    return 1.7e9 + 5.0 * np.arange(n)  # 200,000 readings are 11.6 days: the time-of-day baseline joins in


@pytest.mark.parametrize("kind", ["gaussian", "uniform", "quantised"])
def test_iid_noise_never_fires_in_200k_readings(kind):
    x, _ = noise(kind, NOISE_READINGS)
    s = score(x, every_5s(len(x)))
    assert s[CALIBRATION:].max() < FIRE_SCORE  # not once: the bare records of white noise do not count


@pytest.mark.parametrize("kind", ["gaussian", "uniform", "quantised"])
def test_a_step_a_spike_and_a_slow_drift_in_noise_are_caught(kind):
    n, at = 30_000, 20_000
    ts = every_5s(n)
    for seed in (0, 1, 2):
        x, sd = noise(kind, n, seed)
        step = x.copy()
        step[at:] += 3 * sd
        s = score(step, ts)
        assert s[CALIBRATION:at].max() < FIRE_SCORE
        assert s[at:at + 20].max() >= FIRE_SCORE  # a 3-sigma step: within 20 readings
        spike = x.copy()
        spike[at] += 6 * sd
        assert score(spike, ts)[at] >= FIRE_SCORE  # a 6-sigma spike: at once
        drift = x.copy()
        drift[at:] += 3 * sd * np.arange(n - at) / 1000  # 3 sigma per 1,000 readings
        assert score(drift, ts)[at:at + 1500].max() >= FIRE_SCORE  # within 1,500 readings (4.5 sigma)


def test_detector_save_and_restore_mid_stream_scores_like_one_run():
    x, _ = noise("gaussian", 6000, seed=4)
    x[4000:] += 5.0
    ts = 1.7e9 + 600.0 * np.arange(len(x))  # 10-minute readings: the time-of-day baseline is in the state
    whole = AnomalyScorer()
    expected = [whole.score_one(v, t) for v, t in zip(x, ts)]
    a = AnomalyScorer()
    got = [a.score_one(v, t) for v, t in zip(x[:3333], ts[:3333])]
    b = AnomalyScorer.from_state(json.loads(json.dumps(a.state())))
    got += [b.score_one(v, t) for v, t in zip(x[3333:], ts[3333:])]
    assert got == expected and max(got) >= FIRE_SCORE


def test_the_live_suite_scores_only_points_that_opt_in_and_caps_their_tier():
    """`anomaly: {max_tier: yellow}` on a point puts it under the statistical detector in serve and eval; the
    score's own tier (red for a 30-sigma jump) is capped, since the detector knows unusual, not dangerous."""
    from config.load import DEMO, load_plant
    from config.model import AnomalyRule
    from riskwatch.pipeline import default_detectors, detect_groups

    plant = load_plant(DEMO)
    assert not [p.id for p in plant.points if p.anomaly]  # no preset turns it on (see the README for why)
    opted = plant.model_copy(update={"points": [
        p.model_copy(update={"anomaly": AnomalyRule(max_tier="yellow")}) if p.id == "cast1.pit_water_t" else p
        for p in plant.points]})
    t0 = 1_732_300_000.0
    t = t0 + np.arange(2000.0)
    x = 30 + np.random.default_rng(5).normal(0, 0.2, len(t))
    x[1500:] += 6.0  # 30 sigma: the anomaly score alone would say red
    groups = [(p, t, t, x) for p in ("cast1.pit_water_t", "dust1.hopper_t")]
    found = [f for f in detect_groups(default_detectors(opted, t0), groups) if f.rule == "anomaly"]
    assert found and {f.point for f in found} == {"cast1.pit_water_t"}
    assert found[0].ts == t[1500] and max(f.tier for f in found) == Tier.YELLOW
    assert [f for f in detect_groups(default_detectors(plant, t0), groups) if f.rule == "anomaly"] == []
