"""A week of the whole demo plant in normal operation: the yardstick of alarm quality (domain.md section 7).

Every area's own sector model, Monday 00:00 to Sunday 24:00: shifts, casts, cleaning cycles, a sump entry on
some days. Nothing here is a hazard, so every alarm it raises is a nuisance alarm and counts against the bar:
<= 1 alarm per 10 min per console on average, never > 10 in any 10 min, no chattering, no red.
"""
from __future__ import annotations

from config.model import Plant, Sector
from simulators.scenarios.base import Scenario, Series
from simulators.sectors import normal_plant

WEEK_S = 7 * 86400.0
START = "2024-09-02T00:00:00+08:00"  # a Monday


def build(plant: Plant, seed: int) -> dict[str, Series]:
    return normal_plant(plant, WEEK_S, seed, SCENARIO.start_hour)


SCENARIO = Scenario(
    name="normal-week",
    sector=Sector.DUST,  # the whole plant; the field names the first sector, it does not limit the areas
    title_zh="全厂正常运行一周",
    title_en="A normal week of the whole plant",
    summary="Seven days of normal operation of every area of the demo plant, from Monday 00:00: production "
            "shifts, casts, collector cleaning, gas detectors at their clean-air readings, occasional confined-"
            "space entries done by the book. Must raise nothing: the alarm-quality yardstick.",
    start_local=START,
    duration_s=WEEK_S,
    build=build,
)
