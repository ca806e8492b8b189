"""Sensor health: a monitoring device that lies, or a gateway that stops, is a safety event in itself (MEM order
No. 10, article 14). Stuck values, single-sample glitches told apart from real steps, readings outside the
physical range, redundant sensors that disagree, and a gateway outage raised as one alarm, not one per point."""
from __future__ import annotations

import json

import numpy as np

from config.load import DEMO, load_plant
from config.model import GlitchRule, RedundancyRule, StuckRule, Tier
from detectors.health import RANGE_CLEAR_S, HealthDetector, RedundancyDetector
from detectors.stale import StaleDetector
from riskwatch.eval import replay, score_quiet
from riskwatch.pipeline import default_detectors, detect_groups, tick_all
from simulators.scenarios import all_scenarios

T0 = 1_732_300_000.0
PLANT = load_plant(DEMO)
POINTS = PLANT.point_map()
RNG = np.random.default_rng(7)


def noisy(n: int, level: float = 30.0, noise: float = 0.2) -> np.ndarray:
    return np.round(level + RNG.normal(0, noise, n), 1)


def feed_in_slices(d, point: str, ts: np.ndarray, values: np.ndarray, slice_s: float) -> list:
    out = []
    for a in np.arange(ts[0], ts[-1] + 1, slice_s):
        keep = (ts >= a) & (ts < a + slice_s)
        if keep.any():
            out += d.feed(point, ts[keep], values[keep])
    return out


# -- stuck -------------------------------------------------------------------------------------------------------

PIT = POINTS["cast1.pit_water_t"].model_copy(update={"stuck": StuckRule(after_s=600)})


def frozen_story() -> tuple[np.ndarray, np.ndarray]:
    """A pit-water thermometer that freezes at t = 1000 s for 30 min, then moves again."""
    t = T0 + np.arange(4000.0)
    v = noisy(4000)
    v[1000:2800] = v[1000]
    return t, v


def test_a_frozen_transmitter_is_stuck_after_its_limit_and_clears_when_it_moves_again():
    t, v = frozen_story()
    found = HealthDetector({PIT.id: PIT}).feed(PIT.id, t, v)
    assert [(f.rule, f.tier, f.ts - T0) for f in found] == [("stuck", Tier.BLUE, 1600.0),
                                                              ("stuck", Tier.NORMAL, 2800.0)]
    assert "卡在" in found[0].reason_zh and "stuck at" in found[0].reason_en


def test_stuck_is_judged_the_same_whatever_the_batching():
    t, v = frozen_story()
    whole = HealthDetector({PIT.id: PIT}).feed(PIT.id, t, v)
    for slice_s in (1.0, 7.0, 60.0, 997.0):
        sliced = feed_in_slices(HealthDetector({PIT.id: PIT}), PIT.id, t, v, slice_s)
        assert [(f.tier, f.ts) for f in sliced] == [(f.tier, f.ts) for f in whole], slice_s


def test_a_live_signal_a_clean_air_zero_and_a_stopped_process_are_not_stuck():
    t = T0 + np.arange(20_000.0)
    assert HealthDetector({PIT.id: PIT}).feed(PIT.id, t, noisy(len(t))) == []
    h2s = POINTS["sump1.h2s"]  # preset: stuck after 30 min, but a run at 0 ppm is clean air
    assert h2s.stuck is not None and h2s.stuck.ignore_below == 0
    assert HealthDetector({h2s.id: h2s}).feed(h2s.id, t, np.zeros(len(t))) == []
    frozen = HealthDetector({h2s.id: h2s}).feed(h2s.id, t, np.full(len(t), 0.15))
    assert [(f.rule, f.tier, f.ts - T0) for f in frozen] == [("stuck", Tier.BLUE, 1800.0)]


def test_a_flat_flow_between_casts_is_not_stuck_but_a_frozen_one_during_a_cast_is():
    flow = POINTS["cast1.water_q"].model_copy(update={"stuck": StuckRule(after_s=600)})
    casting = POINTS["cast1.casting"]
    d = HealthDetector({flow.id: flow, casting.id: casting})
    t = T0 + np.arange(0.0, 3000.0)
    on = (t - T0 >= 1500).astype(float)  # casting starts at 1500 s
    q = np.where(on > 0, 120 + RNG.normal(0, 0.5, len(t)), 7.3)  # a flat, non-zero reading while stopped
    q[2000:] = q[2000]  # frozen from 2000 s, during the cast
    d.feed(casting.id, t, on)
    found = d.feed(flow.id, t, np.round(q, 1))
    assert [(f.rule, f.tier, f.ts - T0) for f in found] == [("stuck", Tier.RED, 2600.0)]  # interlock-grade


def test_stuck_state_survives_a_restart_through_json():
    t, v = frozen_story()
    d = HealthDetector({PIT.id: PIT})
    first = d.feed(PIT.id, t[:1300], v[:1300])
    again = HealthDetector({PIT.id: PIT})
    again.restore(json.loads(json.dumps(d.state())))
    rest = again.feed(PIT.id, t[1300:], v[1300:])
    assert first == [] and [(f.tier, f.ts - T0) for f in rest] == [(Tier.BLUE, 1600.0), (Tier.NORMAL, 2800.0)]


# -- glitch versus step ------------------------------------------------------------------------------------------

H2S = POINTS["sump1.h2s"].model_copy(update={"glitch": GlitchRule(jump=20, count=3, window_s=600)})


def test_three_single_sample_glitches_in_the_window_raise_blue_one_reading_late():
    t = T0 + np.arange(2000.0)
    v = np.round(0.5 + RNG.normal(0, 0.05, len(t)), 2)
    for at in (100, 300, 500):
        v[at] += 40
    found = HealthDetector({H2S.id: H2S}).feed(H2S.id, t, v)
    assert [(f.rule, f.tier, f.ts - T0) for f in found] == [("glitch", Tier.BLUE, 501.0),
                                                              ("glitch", Tier.NORMAL, 1100.0)]
    assert "毛刺" in found[0].reason_zh


def test_a_real_step_of_the_same_size_is_not_a_glitch():
    t = T0 + np.arange(2000.0)
    v = np.round(0.5 + RNG.normal(0, 0.05, len(t)), 2)
    v[100:] += 40  # the gas is there, and stays
    v[300:] -= 40
    v[500:] += 40
    assert HealthDetector({H2S.id: H2S}).feed(H2S.id, t, v) == []


def test_glitches_on_a_batch_boundary_are_still_seen():
    t = T0 + np.arange(1000.0)
    v = np.full(len(t), 0.5)
    for at in (99, 199, 299):  # each the last reading of a 100-reading batch: judged with the next batch
        v[at] = 45.0
    found = feed_in_slices(HealthDetector({H2S.id: H2S}), H2S.id, t, v, 100.0)
    assert [(f.tier, f.ts - T0) for f in found][:1] == [(Tier.BLUE, 300.0)]


# -- out of physical range ---------------------------------------------------------------------------------------

def test_readings_out_of_range_raise_once_and_clear_after_valid_readings_for_a_while():
    p = POINTS["dust1.hopper_t"]
    d = HealthDetector({p.id: p})
    first = d.rejected(p.id, T0, 9999.0, "value 9999.0 outside physical range")
    assert [(f.rule, f.tier, f.value) for f in first] == [("range", Tier.BLUE, 9999.0)]
    assert d.rejected(p.id, T0 + 10, 9999.0, "again") == []
    t = T0 + 10 + np.arange(1.0, RANGE_CLEAR_S)
    assert d.feed(p.id, t, noisy(len(t))) == []  # not yet: the sensor must prove itself for RANGE_CLEAR_S
    later = d.feed(p.id, np.array([T0 + 10 + RANGE_CLEAR_S]), np.array([30.0]))
    assert [(f.rule, f.tier) for f in later] == [("range", Tier.NORMAL)]


# -- redundant sensors -------------------------------------------------------------------------------------------

def pair(tolerance: float = 5.0, for_s: float = 60.0):
    a = POINTS["steel1.co_a"].model_copy(update={"redundant": RedundancyRule(point="steel1.co_c",
                                                                             tolerance=tolerance, for_s=for_s)})
    b = POINTS["steel1.co_c"]
    return RedundancyDetector({a.id: a, b.id: b}), a, b


def run_pair(d, t, va, vb, slice_s=10.0) -> list:
    out = []
    for s in np.arange(t[0], t[-1] + 1, slice_s):
        keep = (t >= s) & (t < s + slice_s)
        out += d.feed_joint([("steel1.co_a", t[keep], va[keep]), ("steel1.co_c", t[keep], vb[keep])], [])
    return out


def test_redundant_detectors_that_drift_apart_raise_disagree_and_clear_when_they_agree():
    d, a, b = pair()
    t = T0 + np.arange(1000.0)
    va, vb = noisy(1000, 3.0, 0.3), noisy(1000, 3.0, 0.3)
    vb[200:600] += 12  # one cell reads 12 ppm high for 400 s
    found = run_pair(d, t, va, vb)
    assert [(f.rule, f.tier, f.ts - T0) for f in found] == [("disagree", Tier.BLUE, 260.0),
                                                              ("disagree", Tier.NORMAL, 660.0)]
    assert "冗余" in found[0].reason_zh


def test_a_short_difference_or_a_silent_partner_is_not_disagreement():
    d, a, b = pair()
    t = T0 + np.arange(1000.0)
    va, vb = noisy(1000, 3.0, 0.3), noisy(1000, 3.0, 0.3)
    vb[200:230] += 12  # shorter than for_s
    assert run_pair(d, t, va, vb) == []
    d2, _, _ = pair()
    t2 = T0 + 1000 + np.arange(600.0)
    only_a = d2.feed_joint([("steel1.co_a", t2, np.full(600, 30.0))], [])  # co_c silent: the stale rule's
    assert only_a == []


# -- a gateway that stops ----------------------------------------------------------------------------------------

SUMP = [p.id for p in PLANT.gateways()["gw-sump1"]]


def sump_stale() -> StaleDetector:
    pts = {p: POINTS[p] for p in SUMP}
    return StaleDetector(pts, started=T0, gateways={"gw-sump1": SUMP})


def all_heard(d: StaleDetector, at_s: float, only: list[str] | None = None) -> list:
    out = []
    for p in only or SUMP:
        out += d.feed(p, np.array([T0 + at_s]), np.array([1.0 if POINTS[p].range == (0, 1) else 0.5]))
    return out


def test_a_gateway_outage_is_one_alarm_not_one_per_point_and_one_clear():
    d = sump_stale()
    all_heard(d, 0)
    found = [f for s in range(1, 1200) for f in d.tick(T0 + s)]
    assert [(f.point, f.tier, f.ts - T0) for f in found] == [("gateway:gw-sump1", Tier.BLUE, 3.0),
                                                               ("gateway:gw-sump1", Tier.YELLOW, 900.0)]
    assert found[0].area == "sump1" and "网关 gw-sump1 离线" in found[0].reason_zh
    back = all_heard(d, 1200)
    assert [(f.point, f.tier) for f in back] == [("gateway:gw-sump1", Tier.NORMAL)]
    assert [f for s in range(1201, 1300) for f in all_heard(d, s) + d.tick(T0 + s + 0.5)] == []


def test_one_silent_point_behind_a_live_gateway_is_its_own_alarm():
    d = sump_stale()
    others = [p for p in SUMP if p != "sump1.h2s"]
    found = []
    for s in range(0, 30):
        all_heard(d, s, others)
        found += d.tick(T0 + s + 0.5)
    assert [(f.point, f.tier) for f in found] == [("sump1.h2s", Tier.BLUE)]


def test_after_the_gateway_returns_a_point_that_stays_silent_gets_its_own_alarm():
    d = sump_stale()
    all_heard(d, 0)
    [d.tick(T0 + s) for s in range(1, 60)]
    others = [p for p in SUMP if p != "sump1.o2"]
    found = []
    for s in range(60, 100):
        found += all_heard(d, s, others)
        found += d.tick(T0 + s + 0.5)
    assert [(f.point, f.tier) for f in found] == [("gateway:gw-sump1", Tier.NORMAL), ("sump1.o2", Tier.BLUE)]
    assert found[1].ts - T0 == 63.0  # one limit (3 s) after the gateway was heard again


def test_a_restart_during_a_gateway_outage_does_not_raise_it_again():
    d = sump_stale()
    d.assume("gateway:gw-sump1", "stale", Tier.BLUE)
    assert [f for s in range(1, 60) for f in d.tick(T0 + s)] == []
    assert [(f.point, f.tier) for f in all_heard(d, 60)][:1] == [("gateway:gw-sump1", Tier.NORMAL)]


def test_the_demo_plant_judges_gateways_in_the_live_suite_and_eval():
    """The fault scenarios of `riskwatch eval`: each fault found by its health rule, the gateway as one alarm."""
    scenarios = all_scenarios()
    gw = replay(PLANT, scenarios["fault-gateway-offline"])
    assert {(e.alert.point, e.alert.rule, e.kind) for e in gw.events} == {
        ("gateway:gw-sump1", "stale", "raised"), ("gateway:gw-sump1", "stale", "cleared")}
    for name in ("fault-stuck", "fault-spikes", "fault-gateway-offline"):
        q = score_quiet(replay(PLANT, scenarios[name]))
        assert q["ok"] and not q["missing"], q


def test_the_live_suite_reports_health_findings_through_detect_groups():
    detectors = default_detectors(PLANT, T0)
    t = T0 + np.arange(4000.0)
    v = np.full(len(t), 0.15)  # the sump's H2S frozen at 0.15 ppm
    found = detect_groups(detectors, [("sump1.h2s", t, t, v)]) + tick_all(detectors, T0 + 4000)
    assert ("sump1.h2s", "stuck", Tier.BLUE) in {(f.point, f.rule, f.tier) for f in found}


def test_with_a_band_a_slow_drift_is_not_stuck_but_a_head_jittering_inside_the_band_is():
    p = PIT.model_copy(update={"stuck": StuckRule(after_s=600, band=0.5)})
    t = T0 + np.arange(3000.0)
    drift = 30 + 0.01 * np.arange(3000.0)  # 0.01 per reading: always moving, never a step over the band
    assert HealthDetector({p.id: p}).feed(p.id, t, drift) == []
    jitter = 30 + RNG.uniform(-0.2, 0.2, 3000)  # a dead head: only electrical noise inside the band
    jitter[:100] = noisy(100, 25.0, 1.0)
    found = feed_in_slices(HealthDetector({p.id: p}), p.id, t, jitter, 60.0)
    assert [(f.rule, f.tier, f.ts - T0) for f in found] == [("stuck", Tier.BLUE, 700.0)]
