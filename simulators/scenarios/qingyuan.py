"""Qingyuan, 3 April 2022: a flow-guide hole of a mould leaked metal into the casting pit for 1 min 32 s while
nobody watched the table; the metal met the cooling water and the pit exploded (5 dead).

Rebuilt on pit 1 of the demo plant, seconds after 09:00 local:
  0 .. 7708        normal life: pit 1 finished a cast at 09:50 and started the next at 10:35; pit 2 casts 09:40-11:15
  7708 (11:08:28)  the hole starts to leak, eroding wider over ~40 s to ~2-3 kg/s more than the launder can
                   replace: the table level falls at up to 0.75 mm/s (120 -> 90 mm at ~+60 s, -> 70 mm at ~+87 s)
  7711 ..          the metal reaches the pit water: the water temperature by the pit wall climbs ~6 K in a minute
                   (it stays under the 40 degC yellow limit: the metal falls far from the probe)
  7800 (11:10:00)  the metal in the pit explodes: the danger point
Water, metal temperature and starter block stay normal throughout: only the level and the pit water show it.
"""
from __future__ import annotations

import numpy as np

from config.model import Plant, Sector
from simulators.scenarios.base import Scenario, Series, Truth
from simulators.sectors.casting import Cast, CastingShop, cleaned_strainer, finish
from simulators.signals import DAY_S

START = "2022-04-03T09:00:00+08:00"
START_HOUR = 9.0
LEAK_S = 2 * 3600 + 8 * 60 + 28.0   # 11:08:28
EXPLOSION_S = LEAK_S + 92.0         # 11:10:00
DURATION_S = EXPLOSION_S + 60.0         # 11:11:00
LEVEL_FALL_MM_S = 0.75              # net fall of the table level once the hole is fully open
ERODE_S = 40.0                      # the hole widens over this long
FALL_TO_WATER_S = 3.0               # metal falling ~5 m down the pit
PIT_WARMING_K = 6.0                 # at the pit-water probe, for the whole 92 s of leak


def leaked_mm(t: np.ndarray) -> np.ndarray:
    """Millimetres of table level lost to the leak by time t: the integral of a leak widening as a smoothstep."""
    x = np.clip((t - LEAK_S) / ERODE_S, 0.0, 1.0)
    return LEVEL_FALL_MM_S * (ERODE_S * (x ** 3 - x ** 4 / 2) + np.clip(t - LEAK_S - ERODE_S, 0.0, None))


def build(plant: Plant, seed: int) -> dict[str, Series]:
    casts = {"cast1": [Cast.starting(-1800.0, 80), Cast.starting(5700.0, 100)],   # 08:30 and 10:35
             "cast2": [Cast.starting(2400.0, 95)]}                                 # 09:40
    shop = CastingShop(seed, START_HOUR, casts, cleaned_strainer(seed, [(-3 * DAY_S - 2400.0, -3 * DAY_S)]))
    out = shop.series(plant, "cast1", DURATION_S) | shop.series(plant, "cast2", DURATION_S)
    points = plant.point_map()

    t, level = out["cast1.level"]
    out["cast1.level"] = (t, finish(points["cast1.level"], level - leaked_mm(t)))

    t, water = out["cast1.pit_water_t"]
    lost = leaked_mm(t - FALL_TO_WATER_S)
    warming = PIT_WARMING_K * lost / leaked_mm(np.array([EXPLOSION_S - FALL_TO_WATER_S]))[0]
    out["cast1.pit_water_t"] = (t, finish(points["cast1.pit_water_t"], water + warming))
    return out


SCENARIO = Scenario(
    name="qingyuan",
    sector=Sector.ALUMINIUM_CASTING,
    title_zh="清远铝棒铸造爆炸（2022）",
    title_en="Qingyuan aluminium billet casting explosion (2022)",
    summary=("Pit 1 is 33 min into a normal cast when a flow-guide hole of one mould starts leaking metal into the "
             "pit (11:08:28). Nobody is at the table. The hole erodes wider and the launder cannot replace what "
             "escapes, so the mould-table level falls at up to 0.75 mm/s (120 mm to below 90 mm in about a "
             "minute, towards 70 mm after 87 s) while the pit water by the probe warms ~6 K in a minute. Water "
             "pressure, flow, metal temperature and the starter block stay normal. At 11:10:00, 1 min 32 s "
             "after the leak began, the metal in the pit explodes."),
    start_local=START,
    duration_s=DURATION_S,
    build=build,
    truth=Truth(LEAK_S, EXPLOSION_S, ("cast1.level", "cast1.pit_water_t"),
                "11:10:00 the leaked metal explodes in the pit: the last moment to stop the cast and drain the table"),
)
