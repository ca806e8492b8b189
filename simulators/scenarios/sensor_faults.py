"""Sensor and network faults that are not hazards: each a morning of the sewage sump's normal life (a routine
entry from 09:00: permit, 35 min ventilation, test, two people inside 09:42-10:43, fan off 10:54) with one fault;
the glitches also hit the steelworks' CO detectors, whose normal morning runs alongside.

A threshold alarm in any of these is a false alarm. A faulty sensor is different: a failed monitoring device IS
a safety event (MEM order No. 10, article 14), so each fault must raise its own sensor-health rule (stale,
stuck, glitch) and nothing else; a gateway outage must raise exactly one alarm.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from config.model import Plant, Sector
from simulators import signals
from simulators.scenarios.base import Scenario, Series
from simulators.sectors import normal_area
from simulators.sectors.confined import entry, sump_readings

AREA = "sump1"
START = "2024-09-03T08:00:00+08:00"  # a Tuesday morning
DURATION = 4 * 3600.0
ROUTINE = entry(permit_at=3600.0, vent_s=35 * 60.0, work_s=60 * 60.0, crew=2, stir_ppm=1.2)
PEOPLE_IN = 6120.0   # 09:42, the first of two goes in
PEOPLE_OUT = 9810.0  # 10:43:30, the last one is out

# the faults, in seconds since 08:00
STUCK = ("sump1.h2s", 6000.0, 11400.0)              # 09:40-11:10: frozen through the whole entry
DRIFT = {"sump1.o2": -0.10, "sump1.lel": 0.8}       # per hour from 08:30: O2 ends ~0.35 low, LEL ~2.8 high
DRIFT_FROM = 1800.0
SPIKES = {"sump1.h2s": 40.0, "sump1.o2": -4.0, "sump1.lel": 30.0,  # one bad sample every ~5 min, each
          "steel1.co_a": 200.0, "steel1.co_b": 200.0, "steel1.co_c": 200.0}  # beyond the red limit
SPIKE_AREAS = ("sump1", "steel1")
SPIKE_EVERY_S = 300.0
DROPOUT = ("sump1.h2s", 7200.0, 7500.0)             # 10:00-10:05, people inside
GATEWAY_OFFLINE = (8000.0, 8600.0)                  # 10:13:20-10:23:20, every sump point
CLOCK_BEHIND_S = 120.0
CLOCK_POINT = "sump1.h2s"


def sump_morning(plant: Plant, seed: int, duration_s: float = DURATION) -> dict[str, Series]:
    return sump_readings(plant, AREA, duration_s, seed, 8.0, ROUTINE)


def glitch_free(plant: Plant, seed: int) -> dict[str, Series]:
    """The morning the glitches are injected into: the sump and the steelworks gas area."""
    out = sump_morning(plant, seed)
    for area in SPIKE_AREAS[1:]:
        out.update(normal_area(plant, area, DURATION, seed, 8.0))
    return out


def single_samples(values: np.ndarray, glitched: np.ndarray) -> np.ndarray:
    """Keeps only glitches whose neighbours are good: a glitch is one sample, never two in a row."""
    hit = glitched != values
    lone = hit & ~np.concatenate(([False], hit[:-1]))
    return np.where(lone, glitched, values)


def stuck(plant: Plant, seed: int) -> dict[str, Series]:
    out = sump_morning(plant, seed)
    point, t0, t1 = STUCK
    t, v = out[point]
    out[point] = (t, signals.stuck(v, t, t0, t1))
    return out


def drift(plant: Plant, seed: int) -> dict[str, Series]:
    out = sump_morning(plant, seed)
    for point, per_hour in DRIFT.items():
        t, v = out[point]
        out[point] = (t, np.round(signals.sensor_drift(v, t, DRIFT_FROM, per_hour), 2))
    return out


def spikes(plant: Plant, seed: int) -> dict[str, Series]:
    out = glitch_free(plant, seed)
    points = plant.point_map()
    for point, size in SPIKES.items():
        t, v = out[point]
        glitched = single_samples(v, signals.spikes(v, t, seed, point, SPIKE_EVERY_S, size))
        out[point] = (t, np.clip(glitched, *points[point].range))
    return out


def dropout(plant: Plant, seed: int) -> dict[str, Series]:
    out = sump_morning(plant, seed)
    point, g0, g1 = DROPOUT
    out[point] = signals.dropout(*out[point], [(g0, g1)])
    return out


def gateway_offline(plant: Plant, seed: int) -> dict[str, Series]:
    return {p: signals.dropout(t, v, [GATEWAY_OFFLINE]) for p, (t, v) in sump_morning(plant, seed).items()}


def clock_behind(plant: Plant, seed: int) -> dict[str, Series]:
    """The detector measures at real time T and stamps T - 120 s: each stamp carries the value of 2 min later."""
    out = sump_morning(plant, seed)
    later_t, later_v = sump_morning(plant, seed, DURATION + CLOCK_BEHIND_S)[CLOCK_POINT]
    keep = later_t >= CLOCK_BEHIND_S
    out[CLOCK_POINT] = (later_t[keep] - CLOCK_BEHIND_S, later_v[keep])
    return out


def _fault(name: str, title_zh: str, title_en: str, summary: str, build: Callable[[Plant, int], dict[str, Series]],
           expected: frozenset[str] = frozenset(), max_alerts: int | None = None) -> Scenario:
    return Scenario(name=name, sector=Sector.CONFINED_SPACE, title_zh=title_zh, title_en=title_en,
                    summary=summary, start_local=START, duration_s=DURATION, build=build, truth=None,
                    allowed_rules=expected, expected_rules=expected, max_alerts=max_alerts)


SCENARIOS = [
    _fault("fault-stuck", "传感器卡值：污水池硫化氢", "Stuck sensor: sump H2S",
           "The sump's H2S detector freezes at its 09:40 reading for 90 min, through a routine two-person entry "
           "(the real H2S rises ~1 ppm meanwhile). The stuck-sensor alarm must follow, and no threshold alarm.", stuck,
           frozenset({"stuck"})),
    _fault("fault-drift", "传感器漂移：污水池氧气与可燃气", "Calibration drift: sump O2 and LEL",
           "From 08:30 the O2 cell drifts down 0.10 %VOL/h and the LEL sensor up 0.8 %LEL/h: after 3.5 h O2 reads "
           "~0.35 low and LEL ~2.8 high, still inside every limit. No alarm may follow.", drift),
    _fault("fault-spikes", "单点毛刺：污水池与煤气区域气体检测", "Single-sample glitches on the gas detectors",
           "About one bad sample every 5 min on the sump's H2S (+40 ppm), O2 (-4 %VOL) and LEL (+30 %LEL) and on "
           "the steelworks' three CO detectors (+200 ppm), each one sample long, shorter than every on-delay. "
           "The glitch alarm must follow, and no threshold alarm.", spikes, frozenset({"glitch"})),
    _fault("fault-dropout", "传感器掉线：污水池硫化氢", "Sensor dropout: sump H2S",
           "The H2S detector is silent for 5 min (10:00-10:05) while two people work inside. Only the stale "
           "alarm of the dead sensor must follow.", dropout, frozenset({"stale"}), 1),
    _fault("fault-gateway-offline", "网关离线：污水池", "Gateway offline: sump",
           "Every sump point is silent for 10 min (10:13-10:23) while people are inside, then reports again. "
           "One gateway-offline alarm must follow, not one per point.", gateway_offline, frozenset({"stale"}), 1),
    _fault("fault-clock-behind", "设备时钟滞后：污水池硫化氢", "Device clock 2 min behind: sump H2S",
           "The H2S detector's clock runs 120 s behind: each reading is stamped 2 min before it was taken. "
           "No alarm may follow.", clock_behind),
]
