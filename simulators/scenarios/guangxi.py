"""Pingguo, Guangxi, 20 October 2023: a clogged pump strainer and a second pit drawing on the same pump starved
pit 2# of mould water; at the end of its cast the table level fell while the caster was away and the speed was not
reduced; ~1030 kg of unsolidified metal left the moulds into the pit and exploded at 21:19 (6 dead).

Rebuilt on the demo plant (its pit 1 is the report's 2#, its pit 2 the report's 4#), seconds after 15:30 local:
  0 .. 5400        normal life: both pits casting in turn; the strainer ~15 kPa, a few days since its cleaning
  5400 (17:00)     debris starts blinding the strainer: dP climbs with a steepening slope, 15 -> ~25 kPa by
                   ~18:40, ~35 by ~19:45, ~45 by ~20:50; the pump's speed margin runs out, pit 1's water sags ~3 %
  14700 (19:35)    pit 1 opens its water for its next cast while pit 2 still runs: with the strainer half blinded
                   the pump no longer wins the dip back, both pits run ~8 % short until pit 2's water is shut at 19:50
  15000 (19:40)    pit 1 starts the cast that will end in the explosion
  19920 (21:02)    pit 2 opens its mould water for its next cast: with no pump margin left, pit 1 loses a quarter
                   of its pressure (0.29 -> 0.22 MPa) and 30 % of its flow (116 -> 81 m3/h) at once, for good
  20580 (21:12:30) the furnace runs low; nobody reduces the casting speed: the table level falls at a constant
                   0.2 mm/s (below 90 mm at ~21:15:00, below 70 mm at ~21:16:40)
  20935 (21:18:55) the under-cooled billets break out: the table empties into the pit
  20940 (21:19:00) explosion: the danger point
"""
from __future__ import annotations

import numpy as np

from config.model import Plant, Sector
from simulators.scenarios.base import Scenario, Series, Truth
from simulators.sectors.casting import Cast, CastingShop, cleaned_strainer, finish
from simulators.signals import DAY_S, accelerating, smoothstep

START = "2023-10-20T15:30:00+08:00"
START_HOUR = 15.5
CLOGGING_S = 5400.0          # 17:00
PIT2_WATER_ON_S = 19920.0    # 21:02
LEVEL_FALL_S = 20580.0       # 21:12:30
BREAKOUT_S = 20935.0         # 21:18:55
EXPLOSION_S = 20940.0        # 21:19:00
DURATION_S = 21000.0         # 21:20:00
CLOG_RISE_KPA = 33.0
LEVEL_FALL_MM_S = 0.2


def clog(seed: int):
    usual = cleaned_strainer(seed, [(-5.5 * DAY_S - 2400.0, -5.5 * DAY_S)])  # cleaned five and a half days ago

    def dp(t: np.ndarray) -> np.ndarray:
        return usual(t) + accelerating(t, CLOGGING_S, EXPLOSION_S, CLOG_RISE_KPA, power=1.6)
    return dp


def build(plant: Plant, seed: int) -> dict[str, Series]:
    casts = {
        "cast1": [Cast.starting(-1200.0, 85), Cast.starting(7200.0, 90),      # 15:10, 17:30
                  Cast.starting(15000.0, 130)],                                # 19:40: never ends by the book
        "cast2": [Cast.starting(1200.0, 95), Cast.starting(10200.0, 80),      # 15:50, 18:20
                  Cast.starting(PIT2_WATER_ON_S + 300.0, 100)],                # 21:07 (water on 21:02)
    }
    shop = CastingShop(seed, START_HOUR, casts, clog(seed))
    out = shop.series(plant, "cast1", DURATION_S) | shop.series(plant, "cast2", DURATION_S)
    points = plant.point_map()

    t, level = out["cast1.level"]
    falling = LEVEL_FALL_MM_S * np.clip(t - LEVEL_FALL_S, 0.0, None)
    emptied = 1.0 - smoothstep(t, BREAKOUT_S, BREAKOUT_S + 5.0)
    out["cast1.level"] = (t, finish(points["cast1.level"], (level - falling) * emptied))

    t, water = out["cast1.pit_water_t"]
    out["cast1.pit_water_t"] = (t, finish(points["cast1.pit_water_t"],
                                          water + 12.0 * smoothstep(t, BREAKOUT_S + 2.0, BREAKOUT_S + 8.0)))
    return out


SCENARIO = Scenario(
    name="guangxi",
    sector=Sector.ALUMINIUM_CASTING,
    title_zh="广西平果铝棒铸造爆炸（2023）",
    title_en="Pingguo, Guangxi aluminium billet casting explosion (2023)",
    summary=("Two pits share one cooling-water pump. From 17:00 debris blinds the pump's suction strainer: its "
             "differential pressure climbs for four hours with a steepening slope (15 to ~45 kPa) while the "
             "variable-speed pump hides it, until pit 1's water sags ~3 %. At 21:02 pit 2 opens its mould water "
             "for a new cast and, with no pump margin left, pit 1 (casting since 19:40) loses a quarter of its "
             "pressure and 30 % of its flow in one step, and pit 2 starts on the same starved header. From "
             "21:12:30 the furnace runs low and nobody slows the cast: pit 1's table level falls at a constant "
             "0.2 mm/s. The under-cooled billets break out at 21:18:55 and the metal explodes in the pit at 21:19."),
    start_local=START,
    duration_s=DURATION_S,
    build=build,
    truth=Truth(CLOGGING_S, EXPLOSION_S,
                ("cast1.strainer_dp", "cast1.water_p", "cast1.water_q", "cast1.level", "cast2.water_p",
                 "cast2.water_q"),
                "21:19:00 explosion after ~1030 kg of unsolidified metal broke out of pit 1's moulds; stopping the "
                "cast (or pit 2's start) before then would have saved it"),
)
