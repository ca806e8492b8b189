"""Wenshui, Shanxi, 15 August 2018: a corroded patch plate (~50 x 72 cm) fell off a blast-furnace gas main at about
05:30; nobody in the works noticed. Villagers 100 m away were poisoned (hospital from ~06:20, 1 dead, 18 in
hospital); the works learned of it from them nearly two hours later and cut the gas at 07:20.

Rebuilt on the demo plant's gas area, seconds after 03:30 local (calm, stable dawn air: ~1 m/s wind):
  0 .. 7200        normal life
  7200 (05:30:00)  the plate falls: a ~40 x 60 cm hole vents ~60,000 m3/h of gas (~23 % CO). The main pressure
                   drops 1.5 kPa within seconds, then another 0.6 kPa over ten minutes as the furnaces downstream
                   open their valves to keep their gas: ~9.0 -> ~6.9 kPa, swinging round the 7 kPa yellow limit.
  7260 ..          gas reaches the pipe-rack detector (~150 m from the hole, off the mean wind): a cloud pools in
                   the calm air (+~24 ppm by ~05:45, ~+47 ppm by 06:20) and whenever the meandering wind swings
                   the plume over the detector it reads hundreds of ppm for a minute or two.
  7500 ..          the pooled cloud reaches the booster station (~400 m): +~20 ppm by 06:20; the duty room next to
                   it follows through its air exchange (about half an hour): ~+10 ppm by 06:20.
  10200 (06:20:00) villagers poisoned, the first reach hospital: the danger point
"""
from __future__ import annotations

import numpy as np

from config.model import Plant, Sector
from simulators.scenarios.base import Scenario, Series, Truth
from simulators.sectors.steel import GasArea, finish
from simulators.signals import drift, smoothstep

START = "2018-08-15T03:30:00+08:00"
START_HOUR = 3.5
LEAK_S = 7200.0          # 05:30
POISONED_S = 10200.0     # 06:20
DURATION_S = 10800.0     # 06:30
PLUME_PPM = 400.0        # in the plume, ~150 m downwind of the hole in stable air
PLUME_BEARING_DEG = 30.0  # the rack detector, seen from the hole, off the mean wind direction
PLUME_HALF_WIDTH_DEG = 6.0


def pooled(t: np.ndarray, delay_s: float, tau_s: float, ppm: float) -> np.ndarray:
    """The cloud pooling in calm air: arrives after delay_s, then fills in towards ppm with time constant tau_s."""
    s = np.clip(t - LEAK_S - delay_s, 0.0, None)
    return ppm * (1.0 - np.exp(-s / tau_s))


def indoors(t: np.ndarray, delay_s: float, tau_s: float, ppm: float, exchange_s: float) -> np.ndarray:
    """A room fed by `pooled(...)` outside through its air exchange (a first-order lag, closed form)."""
    s = np.clip(t - LEAK_S - delay_s, 0.0, None)
    return ppm * (1.0 - (tau_s * np.exp(-s / tau_s) - exchange_s * np.exp(-s / exchange_s)) / (tau_s - exchange_s))


def build(plant: Plant, seed: int) -> dict[str, Series]:
    gas = GasArea(seed, START_HOUR)
    out = gas.series(plant, "steel1", DURATION_S)
    points = plant.point_map()

    t, p = out["steel1.main_p"]
    s = np.clip(t - LEAK_S, 0.0, None)
    loss = 1.5 * (1.0 - np.exp(-s / 5.0)) + 0.6 * smoothstep(t, LEAK_S, LEAK_S + 600.0)
    out["steel1.main_p"] = (t, finish(points["steel1.main_p"], p - loss * (t >= LEAK_S)))

    t, co = out["steel1.co_c"]
    heading = drift(seed, "wenshui/wind_heading", t, 45.0, 900.0)  # the dawn wind meanders
    plume = PLUME_PPM * np.exp(-0.5 * ((heading - PLUME_BEARING_DEG) / PLUME_HALF_WIDTH_DEG) ** 2)
    out["steel1.co_c"] = (t, finish(points["steel1.co_c"], co + pooled(t, 60.0, 1500.0, 55.0)
                                    + plume * (t >= LEAK_S + 60.0)))

    t, co = out["steel1.co_a"]
    out["steel1.co_a"] = (t, finish(points["steel1.co_a"], co + pooled(t, 300.0, 2400.0, 30.0)))
    t, co = out["steel1.co_b"]
    out["steel1.co_b"] = (t, finish(points["steel1.co_b"], co + indoors(t, 300.0, 2400.0, 30.0, 1800.0)))
    return out


SCENARIO = Scenario(
    name="wenshui",
    sector=Sector.STEEL,
    title_zh="文水高炉煤气管道泄漏中毒（2018）",
    title_en="Wenshui blast-furnace gas main leak and poisoning (2018)",
    summary=("At 05:30 a corroded patch plate falls off the gas main, opening a ~40 x 60 cm hole. The main "
             "pressure drops from ~9 to ~7.5 kPa within seconds and sags to ~6.9 kPa over ten minutes as the "
             "furnaces downstream open up. In the calm dawn air the gas pools: the pipe-rack CO detector ~150 m "
             "away climbs past 24 ppm within ~15 minutes and reads hundreds of ppm whenever the meandering plume "
             "passes over it; the booster station and its duty room follow more slowly (~20 and ~10 ppm above "
             "normal by 06:20). Nobody in the works reacts; villagers are poisoned and reach hospital from 06:20."),
    start_local=START,
    duration_s=DURATION_S,
    build=build,
    truth=Truth(LEAK_S, POISONED_S, ("steel1.co_a", "steel1.co_b", "steel1.co_c", "steel1.main_p"),
                "06:20 the first poisoned villagers reach hospital (the works only learned of the leak from them, "
                "and cut the gas at 07:20)"),
)
