"""Normal life of each sector, in simulated time: one module per sector, each with

    def normal(plant: Plant, area: str, duration_s: float, seed: int, start_hour: float) -> dict[str, Series]

returning every point of that area at its configured interval: noise, drift, daily and shift cycles, process
cycles and the couplings between points. Scenarios start from it and script their hazard on top.
"""
from __future__ import annotations

import importlib

from config.model import Plant, Sector
from simulators.scenarios.base import Series

MODULES = {Sector.DUST: "dust", Sector.ALUMINIUM_CASTING: "casting", Sector.STEEL: "steel",
           Sector.CONFINED_SPACE: "confined", Sector.AMMONIA: "ammonia"}


def point_roles(plant: Plant, area: str, roles: set[str] | dict, by_kind: dict[str, str], model: str) -> dict[str, str]:
    """point id -> its role in a sector model: by the id's suffix (`dust1.hopper_t` -> `hopper_t`, scaled copies
    `<id>~k` alike), else by the point's kind. A point the model cannot play is an error, not a silent zero."""
    out = {}
    for p in plant.points:
        if p.area != area:
            continue
        suffix = p.id.split("~", 1)[0].split(".", 1)[-1]
        role = suffix if suffix in roles else by_kind.get(p.kind or "")
        if role is None:
            raise ValueError(f"the {model} model has no instrument like {p.id!r} (kind {p.kind!r})")
        out[p.id] = role
    return out


def normal_area(plant: Plant, area: str, duration_s: float, seed: int, start_hour: float) -> dict[str, Series]:
    sector = plant.area_map()[area].sector
    module = importlib.import_module(f"{__name__}.{MODULES[sector]}")
    return module.normal(plant, area, duration_s, seed, start_hour)


def normal_plant(plant: Plant, duration_s: float, seed: int, start_hour: float) -> dict[str, Series]:
    out: dict[str, Series] = {}
    for area in plant.areas:
        out.update(normal_area(plant, area.id, duration_s, seed, start_hour))
    return out
