"""Normal life of a steelworks gas area: the blast-furnace gas main, its booster station, a duty room, a pipe rack.

Gas main pressure ~9 kPa, swinging +-0.5 kPa as the reheating furnaces downstream draw more or less gas. Fixed CO
detectors (GBZ 2.1 / steel presets 24 / 160 ppm): the booster station reads 2-3 ppm with now and then a small
puff from a fan seal or a drain pot (+2-3.5 ppm for a couple of minutes, every few hours); the duty room ~1-2 ppm;
the pipe rack a few ppm that rise in the calm of night and dawn (less wind to carry the trace leakage away).
"""
from __future__ import annotations

import numpy as np

from config.model import Plant, Point
from simulators.scenarios.base import Series
from simulators.signals import daily, drift, gauss, uniform

MAIN_KPA = 9.0
ROLES = {"co_a": "booster", "co_b": "room", "co_c": "rack"}  # point id suffix -> where the detector hangs


class GasArea:
    """Every reading of the gas area as a function of t (seconds since the scenario start)."""

    def __init__(self, seed: int, start_hour: float):
        self.seed = seed
        self.start_hour = start_hour

    def wind(self, t: np.ndarray) -> np.ndarray:
        """m/s at the pipe rack: calm at night and dawn (~1), breezy in the afternoon (~4)."""
        w = 2.4 + daily(t, 1.5, self.start_hour, 15.0) + drift(self.seed, "steel/wind", t, 0.5, 5400.0)
        return np.clip(w, 0.8, None)

    def main_p(self, t: np.ndarray) -> np.ndarray:
        load = drift(self.seed, "steel/main_p", t, 0.35, 2400.0) + daily(t, 0.15, self.start_hour, 4.0)
        return MAIN_KPA + load + gauss(self.seed, "steel/main_p", t, 0.06)

    def co(self, role: str, t: np.ndarray) -> np.ndarray:
        if role == "room":
            return 1.3 + drift(self.seed, "steel/co_room", t, 0.3, 3600.0) + gauss(self.seed, "steel/co_room", t, 0.25)
        if role == "booster":
            base = 2.5 + drift(self.seed, "steel/co_booster", t, 0.4, 1800.0)
            return base + puffs(self.seed, "steel/booster_puff", t) + gauss(self.seed, "steel/co_booster", t, 0.35)
        trace = 2.0 + 3.0 / self.wind(t)  # the trace leakage of a long main, diluted by the wind
        return trace + drift(self.seed, "steel/co_rack", t, 0.3, 1200.0) + gauss(self.seed, "steel/co_rack", t, 0.4)

    def reading(self, p: Point, t: np.ndarray) -> np.ndarray:
        if p.kind == "gas_main_pressure":
            return self.main_p(t)
        if p.kind == "co_ppm":
            return self.co(ROLES.get(p.id.split(".", 1)[-1].split("~")[0], "rack"), t)
        from simulators.demo_plant import behaviour_of  # a point added later: its demo operating value

        b = behaviour_of(p)
        return b.mean + drift(self.seed, p.id, t, b.drift, 1800.0) + gauss(self.seed, p.id, t, b.noise)

    def series(self, plant: Plant, area: str, duration_s: float) -> dict[str, Series]:
        out: dict[str, Series] = {}
        for p in plant.points:
            if p.area == area:
                t = np.arange(0.0, duration_s, p.interval_s)
                out[p.id] = (t, finish(p, self.reading(p, t)))
        return out


def puffs(seed: int, name: str, t: np.ndarray, every_s: float = 4 * 3600.0, peak: float = 3.5,
          width_s: float = 60.0) -> np.ndarray:
    """Small gas puffs at seeded moments about every_s apart, each +1.5..peak ppm over a couple of minutes."""
    out = np.zeros_like(t, dtype=float)
    if len(t) == 0:
        return out
    at, k = -every_s, 0  # anchored at t = 0, not at the first sample: the same puffs however t is sliced
    while at < t[-1] + every_s:
        u = uniform(seed, name, np.array([float(k), k + 0.5]))
        at += every_s * (0.5 + u[0])
        lo, hi = np.searchsorted(t, [at - 5 * width_s, at + 5 * width_s])
        if hi > lo:
            size = 1.5 + (peak - 1.5) * u[1]
            out[lo:hi] += size * np.exp(-(((t[lo:hi] - at) / width_s) ** 2))
        k += 1
    return out


def finish(p: Point, values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values, 2 if p.kind == "gas_main_pressure" else 1), *p.range) + 0.0


def normal(plant: Plant, area: str, duration_s: float, seed: int, start_hour: float) -> dict[str, Series]:
    return GasArea(seed, start_hour).series(plant, area, duration_s)
