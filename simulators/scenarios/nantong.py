"""Hai'an, Nantong, 18 February 2024: at the start of a cast the starter block stuck to the mould table; instead of
stopping the cast and draining the table, workers pried at it with metal bars while the platform below kept
descending at constant speed. When the block came free it fell, the metal in the table poured down after it and
met the pit water: explosion at 02:11 (5 dead, 13 injured).

Rebuilt on pit 1 of the demo plant, seconds after 00:00 local:
  0 .. 7440        normal life: pit 1 finished a cast at 01:05; pit 2 casts from 00:40
  7440 (02:04:00)  pit 1's drop starts (casting flag 1) but the starter block stays stuck in the mould: the
                   following deviation (platform travel minus block travel) grows at the platform's start speed,
                   45 mm/min: past 10 mm at ~+11 s, 20 mm at ~+25 s, 40 mm at ~+51 s, ~310 mm after 7 min.
                   Water, level and metal stay normal: the table holds its metal on the stuck block.
  7856 (02:10:56)  the block is pried free and falls onto the platform: the deviation snaps back, the table empties
                   into the pit within seconds: the danger point (the explosion follows at 02:11:00)
"""
from __future__ import annotations

import numpy as np

from config.model import Plant, Sector
from simulators.scenarios.base import Scenario, Series, Truth
from simulators.sectors.casting import Cast, CastingShop, cleaned_strainer, finish
from simulators.signals import DAY_S, gauss, smoothstep

START = "2024-02-18T00:00:00+08:00"
START_HOUR = 0.0
DROP_S = 7440.0            # 02:04:00
FALL_S = 7856.0            # 02:10:56
EXPLOSION_S = 7860.0       # 02:11:00
DURATION_S = 7920.0        # 02:12:00
START_SPEED_MM_S = 45.0 / 60.0


def build(plant: Plant, seed: int) -> dict[str, Series]:
    casts = {"cast1": [Cast.starting(-1800.0, 95), Cast.starting(DROP_S, 100)],   # 23:30 the day before; 02:04
             "cast2": [Cast.starting(2400.0, 100)]}                               # 00:40
    shop = CastingShop(seed, START_HOUR, casts, cleaned_strainer(seed, [(-2 * DAY_S - 2400.0, -2 * DAY_S)]))
    out = shop.series(plant, "cast1", DURATION_S) | shop.series(plant, "cast2", DURATION_S)
    points = plant.point_map()

    t, dev = out["cast1.block_dev"]
    stuck = (t >= DROP_S) & (t < FALL_S)
    gap = 1.0 + START_SPEED_MM_S * (t - DROP_S) + np.abs(gauss(seed, "nantong/gap", t, 0.4))
    out["cast1.block_dev"] = (t, finish(points["cast1.block_dev"], np.where(stuck, gap, dev)))

    t, level = out["cast1.level"]
    out["cast1.level"] = (t, finish(points["cast1.level"], level * (1.0 - smoothstep(t, FALL_S, FALL_S + 4.0))))

    t, water = out["cast1.pit_water_t"]
    out["cast1.pit_water_t"] = (t, finish(points["cast1.pit_water_t"],
                                          water + 12.0 * smoothstep(t, FALL_S + 2.0, FALL_S + 8.0)))
    return out


SCENARIO = Scenario(
    name="nantong",
    sector=Sector.ALUMINIUM_CASTING,
    title_zh="南通海安铝棒铸造爆炸（2024）",
    title_en="Hai'an, Nantong aluminium billet casting explosion (2024)",
    summary=("At 02:04 pit 1 starts a cast but the starter block is stuck to the mould table. The platform keeps "
             "descending at its start speed of 45 mm/min, so the following deviation (platform travel minus block "
             "travel) grows linearly from a few mm to ~310 mm over 7 minutes, while workers pry at the block "
             "instead of stopping the cast; water, table level and metal temperature look normal. At 02:10:56 "
             "the block comes free and falls, the table empties into the pit (level to 0 in seconds, pit water "
             "jumps) and the metal explodes at 02:11."),
    start_local=START,
    duration_s=DURATION_S,
    build=build,
    truth=Truth(DROP_S, FALL_S, ("cast1.block_dev", "cast1.level"),
                "02:10:56 the pried-free starter block falls and the table's metal pours into the pit (explosion "
                "at 02:11:00); stopping the drop and draining the table before then would have saved it"),
)
