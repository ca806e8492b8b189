"""Normal life of the deep-well DC casting pits: casts, mould cooling water, one shared pump and its strainer.

One cast, in seconds from its drop start D (the platform starts down) to its drop end E (the caster starts the
end sequence); the casting flag reads 1 on [D, E), and every gated limit applies only then:
  D - 1500          launder burner on: the metal thermocouple warms towards ~350 degC
  D - 300           mould cooling water on (the valve opens over 15 s): 0.30 MPa, 120 m3/h
  D - 200           metal reaches the launder: the thermocouple reads 700-735 degC within a minute
  D - 170 .. D - 40 the mould table fills: level 0 -> 120 mm
  D .. E            casting: level 120 mm, starter block following within ~0-5 mm, pit water warming
  E + 5             supply cut (furnace tilted back); E + 10 .. E + 100 the table drains, level 120 -> 0
  E + 600           water off (the valve closes over 10 s) once the butt has cooled
All pits of the shop draw mould water from one pump through one suction strainer (the Guangxi 2023 layout). A
variable-speed pump holds the header at 0.30 MPa, so a pit opening its valve dips the others by ~2.5 % for a
minute. Debris clogs the strainer: its differential pressure climbs ~1.3 kPa a day and is reset when the strainer
is cleaned at the weekly maintenance stop (pump off 08:30-09:10, no casts 08:00-12:00). A clogged strainer eats
the pump's margin: the header sags, and a second pit's start costs up to -25 % pressure / -30 % flow, for good.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from config.model import Plant, Point, Sector
from simulators.scenarios.base import Series
from simulators.signals import DAY_S, daily, drift, gauss, smoothstep, spikes, uniform

P_SET = 0.30        # MPa, recipe setpoint of the mould water
Q_SET = 120.0       # m3/h at the setpoint
LEVEL_SET = 120.0   # mm of metal on the mould table
PREHEAT_S, WATER_LEAD_S, METAL_LEAD_S = 1500.0, 300.0, 200.0
FILL_S = (170.0, 40.0)          # the table fills between D - 170 and D - 40
DRAIN_S = (10.0, 100.0)         # and drains between E + 10 and E + 100
WATER_AFTER_S = 600.0
VALVE_OPEN_S, VALVE_CLOSE_S = 15.0, 10.0
CLOG_PER_DAY = 1.3              # kPa of strainer dP gained per day of debris
RECOVERY_S = 60.0               # the pump's speed controller wins back a dip within about a minute
AMBIENT_C = 30.0                # a launder thermocouple with nothing in it, near a warm furnace


@dataclass(frozen=True)
class Cast:
    """One cast of one pit: the casting flag reads 1 from drop_start to drop_end (seconds since scenario start)."""

    drop_start: float
    drop_end: float

    @classmethod
    def starting(cls, drop_start: float, minutes: float) -> "Cast":
        return cls(float(drop_start), float(drop_start + minutes * 60.0))

    @property
    def water_on(self) -> float:
        return self.drop_start - WATER_LEAD_S

    @property
    def water_off(self) -> float:
        return self.drop_end + WATER_AFTER_S

    @property
    def busy(self) -> tuple[float, float]:
        """From the launder burner on to the water off: the pit is not free for another cast."""
        return self.drop_start - PREHEAT_S, self.water_off + VALVE_CLOSE_S


def header_loss(strainer_dp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a clogging strainer costs the header, as fractions of the setpoint: (sag with one pit open; dip when
    another pit opens its valve; share of that dip the pump cannot win back). Clean (< 22 kPa): no sag, a 2.5 %
    dip mostly recovered. Past ~46 kPa the pump runs flat out: -25 % for good (Guangxi 2023)."""
    clogged = smoothstep(strainer_dp, 22.0, 46.0)
    sag = 0.03 * smoothstep(strainer_dp, 34.0, 50.0)
    return sag, 0.025 + 0.225 * clogged, 0.3 + 0.7 * clogged


class _Pit:
    """One pit's casts as arrays, and which cast each moment belongs to (from its preheat to the next one's)."""

    def __init__(self, area: str, casts: list[Cast], seed: int):
        casts = sorted(casts, key=lambda c: c.drop_start)
        for a, b in zip(casts, casts[1:]):
            if b.busy[0] < a.busy[1]:
                raise ValueError(f"{area}: a cast at {b.drop_start:.0f} s starts before the one at "
                                 f"{a.drop_start:.0f} s is done (water off at {a.water_off:.0f} s)")
        idle = Cast(-1e9, -1e9 + 3600.0)  # a cast long ago: the moments before the first one are idle
        self.casts = [idle] + casts
        self.area = area
        self.d = np.array([c.drop_start for c in self.casts])
        self.e = np.array([c.drop_end for c in self.casts])
        self.begins = self.d - PREHEAT_S
        key = self.d
        self.metal_c = 722.0 + 16.0 * (uniform(seed, f"{area}/melt", key) - 0.5)  # this furnace load's temperature
        self.warming_k = 4.0 + 1.5 * uniform(seed, f"{area}/heat", key)         # what the cast puts in the pit

    def index(self, t: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.begins, t, side="right") - 1


class CastingShop:
    """The casting pits of one shop: their casts, their shared pump and strainer, every point as a function of t.

    `clog(t)`: the strainer's differential pressure (kPa) at design flow; `pump_stops`: windows with the pump off.
    Scenarios build one with their own casts and clog, then script the hazard on top of `series()`.
    """

    def __init__(self, seed: int, start_hour: float, casts: dict[str, list[Cast]],
                 clog: Callable[[np.ndarray], np.ndarray], pump_stops: list[tuple[float, float]] = ()):
        self.seed = seed
        self.start_hour = start_hour
        self.pits = {area: _Pit(area, cs, seed) for area, cs in casts.items()}
        self.clog = clog
        self.pump_stops = list(pump_stops)

    # --- plant state ------------------------------------------------------------------------------------------

    def casting(self, area: str, t: np.ndarray) -> np.ndarray:
        pit = self.pits[area]
        k = pit.index(t)
        return ((t >= pit.d[k]) & (t < pit.e[k])).astype(float)

    def valve(self, area: str, t: np.ndarray) -> np.ndarray:
        """0 closed .. 1 open: the pit's mould-water valve."""
        pit = self.pits[area]
        k = pit.index(t)
        on, off = pit.d[k] - WATER_LEAD_S, pit.e[k] + WATER_AFTER_S
        return np.clip((t - on) / VALVE_OPEN_S, 0, 1) * (1 - np.clip((t - off) / VALVE_CLOSE_S, 0, 1))

    def pump_on(self, t: np.ndarray) -> np.ndarray:
        on = np.ones_like(t, dtype=float)
        for a, b in self.pump_stops:
            on[(t >= a) & (t < b)] = 0.0
        return on

    def strainer_dp(self, t: np.ndarray) -> np.ndarray:
        """kPa across the suction strainer: the clog at design flow, a little more with each mould valve open."""
        opened = sum(self.valve(a, t) for a in self.pits)
        return self.clog(t) * (1.0 + 0.05 * opened) * self.pump_on(t)

    def water_loss(self, area: str, t: np.ndarray) -> np.ndarray:
        """Fraction of the setpoint pressure this pit's mould water has lost to the strainer and the other pits."""
        sag, dip, kept = header_loss(self.clog(t))
        left = 1.0 - sag
        for other, pit in self.pits.items():
            if other == area:
                continue
            k = pit.index(t)
            since = np.clip(t - (pit.d[k] - WATER_LEAD_S), 0.0, None)
            share = kept + (1.0 - kept) * np.exp(-since / RECOVERY_S)
            left = left * (1.0 - self.valve(other, t) * dip * share)
        return 1.0 - left

    # --- readings --------------------------------------------------------------------------------------------

    def water_p(self, area: str, t: np.ndarray) -> np.ndarray:
        w = self.valve(area, t)
        lively = drift(self.seed, f"{area}.water_p", t, 0.002, 1200.0) + gauss(self.seed, f"{area}.water_p", t, 0.0015)
        floor = np.abs(gauss(self.seed, f"{area}.water_p/zero", t, 0.0005))  # the transducer at no flow
        return w * (P_SET * (1.0 - self.water_loss(area, t)) + lively) * self.pump_on(t) + floor

    def water_q(self, area: str, t: np.ndarray) -> np.ndarray:
        """Flow falls a little faster than pressure when the header sags (-30 % for -25 %, Guangxi 2023)."""
        w = self.valve(area, t)
        lively = drift(self.seed, f"{area}.water_q", t, 1.0, 1500.0) + gauss(self.seed, f"{area}.water_q", t, 0.5)
        return w * (Q_SET * (1.0 - 1.2 * self.water_loss(area, t)) + lively) * self.pump_on(t)

    def level(self, area: str, t: np.ndarray) -> np.ndarray:
        pit = self.pits[area]
        k = pit.index(t)
        d, e = pit.d[k], pit.e[k]
        full = _step(t, d - FILL_S[0], d - FILL_S[1]) * (1.0 - _step(t, e + DRAIN_S[0], e + DRAIN_S[1]))
        control = drift(self.seed, f"{area}.level", t, 2.0, 600.0) + gauss(self.seed, f"{area}.level", t, 0.7)
        reading = full * (LEVEL_SET + control) + (1.0 - full) * np.abs(gauss(self.seed, f"{area}.level/empty", t, 0.3))
        return spikes(reading, t, self.seed, f"{area}.level", 6 * 3600.0, -20.0)  # a laser glint on oxide skin

    def metal_t(self, area: str, t: np.ndarray) -> np.ndarray:
        """Launder thermocouple: burner preheat, metal 700-735 degC cooling slowly through the cast, then cooling
        down in the empty launder."""
        pit = self.pits[area]
        k = pit.index(t)
        d, e = pit.d[k], pit.e[k]
        progress = np.clip((t - d) / np.maximum(e - d, 1.0), 0.0, 1.0)
        melt = pit.metal_c[k] - 8.0 * progress + drift(self.seed, f"{area}.metal_t", t, 3.0, 900.0)
        before = _cooling(t, pit.e[np.maximum(k - 1, 0)] + DRAIN_S[0], pit.metal_c[np.maximum(k - 1, 0)] - 8.0)
        preheat = before + (350.0 - before) * (1.0 - np.exp(-np.clip(t - (d - PREHEAT_S), 0, None) / 300.0))
        metal = melt - (melt - 350.0) * np.exp(-np.clip(t - (d - METAL_LEAD_S), 0, None) / 15.0)
        after = _cooling(t, e + DRAIN_S[0], pit.metal_c[k] - 8.0)
        value = np.where(t < d - METAL_LEAD_S, preheat, np.where(t < e + DRAIN_S[0], metal, after))
        return value + gauss(self.seed, f"{area}.metal_t", t, 0.8)

    def pit_water_t(self, area: str, t: np.ndarray) -> np.ndarray:
        """Pit water: ambient plus the heat of this cast and the two before it, shed by the cooling tower."""
        pit = self.pits[area]
        k = pit.index(t)
        heat = np.zeros_like(t, dtype=float)
        for back in (0, 1, 2):
            j = np.maximum(k - back, 0)
            d, e = pit.d[j], pit.e[j]
            soak = 1.0 - np.exp(-np.clip(np.minimum(t, e) - d, 0, None) / 2400.0)
            heat += pit.warming_k[j] * soak * np.exp(-np.clip(t - e, 0, None) / 3600.0)
        base = 27.0 + daily(t, 1.5, self.start_hour, 15.0) + drift(self.seed, f"{area}.pit_water_t", t, 0.4, 5400.0)
        return base + heat + gauss(self.seed, f"{area}.pit_water_t", t, 0.1)

    def block_dev(self, area: str, t: np.ndarray) -> np.ndarray:
        """Platform travel minus ingot travel: a few mm while the platform moves, 0 while it rests."""
        pit = self.pits[area]
        k = pit.index(t)
        d, e = pit.d[k], pit.e[k]
        moving = (t >= d) & (t < e + DRAIN_S[1])
        start = 2.5 * np.exp(-np.clip(t - d, 0, None) / 60.0)  # the block settles into the platform's pace
        lag = 1.5 + start + drift(self.seed, f"{area}.block_dev", t, 0.5, 700.0)
        noise = np.abs(gauss(self.seed, f"{area}.block_dev", t, 0.5))
        return np.where(moving, lag + noise, 0.1 * noise)

    # --- the area's points ---------------------------------------------------------------------------------

    def series(self, plant: Plant, area: str, duration_s: float) -> dict[str, Series]:
        out: dict[str, Series] = {}
        for p in plant.points:
            if p.area != area:
                continue
            t = np.arange(0.0, duration_s, p.interval_s)
            out[p.id] = (t, finish(p, self._reading(p, area, t)))
        return out

    def _reading(self, p: Point, area: str, t: np.ndarray) -> np.ndarray:
        by_kind = {"run_state": self.casting, "cooling_water_pressure": self.water_p,
                   "cooling_water_flow": self.water_q, "mould_level": self.level, "metal_temp": self.metal_t,
                   "pit_water_temp": self.pit_water_t, "starter_block_deviation": self.block_dev}
        if p.kind == "strainer_dp":
            return self.strainer_dp(t) + gauss(self.seed, p.id, t, 0.25)
        if p.kind == "run_state" and p.id.split(".")[-1].split("~")[0] != "casting":
            return _steady(p, t, self.seed)  # some other run/stop status added to the pit later
        if p.kind in by_kind:
            return by_kind[p.kind](area, t)
        return _steady(p, t, self.seed)


def finish(p: Point, values: np.ndarray) -> np.ndarray:
    """Rounded to the instrument's resolution and kept inside its physical range."""
    decimals = 4 if p.kind == "cooling_water_pressure" else 0 if p.kind == "run_state" else 1
    return np.clip(np.round(values, decimals), *p.range) + 0.0  # no -0.0 on the wall


def _step(t: np.ndarray, t0, t1) -> np.ndarray:
    """smoothstep with per-sample edges."""
    x = np.clip((t - t0) / np.maximum(t1 - t0, 1e-9), 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _cooling(t: np.ndarray, since, hot) -> np.ndarray:
    return AMBIENT_C + (hot - AMBIENT_C) * np.exp(-np.clip(t - since, 0, None) / 900.0)


def _steady(p: Point, t: np.ndarray, seed: int) -> np.ndarray:
    """A point this model does not know (added to the plant later): its demo-plant operating value."""
    from simulators.demo_plant import behaviour_of

    b = behaviour_of(p)
    return b.mean + drift(seed, p.id, t, b.drift, 1800.0) + gauss(seed, p.id, t, b.noise)


# --- the normal week ----------------------------------------------------------------------------------------

def maintenance(seed: int, start_hour: float, t0: float, t1: float) -> list[tuple[float, float]]:
    """The weekly maintenance stops (08:00-12:00 local, one seeded weekday) overlapping [t0, t1]."""
    first_day = int(7 * uniform(seed, "casting/maintenance", np.array([0.0]))[0])
    out = []
    for week in range(int(np.floor(t0 / (7 * DAY_S))) - 1, int(np.ceil(t1 / (7 * DAY_S))) + 2):
        a = ((first_day + 7 * week) * 24 + 8 - start_hour) * 3600.0
        if a + 4 * 3600 > t0 and a < t1:
            out.append((a, a + 4 * 3600.0))
    return out


def cleaned_strainer(seed: int, stops: list[tuple[float, float]]) -> Callable[[np.ndarray], np.ndarray]:
    """Strainer dP at design flow: clean value + debris since the last cleaning (at the end of a pump stop)."""
    clean = 7.5 + 1.5 * uniform(seed, "casting/strainer", np.array([0.0]))[0]
    cleanings = np.array(sorted(b for _, b in stops) or [-3 * DAY_S])  # none given: cleaned three days ago

    def clog(t: np.ndarray) -> np.ndarray:
        i = np.searchsorted(cleanings, t, side="right") - 1
        last = np.where(i >= 0, cleanings[np.maximum(i, 0)], cleanings[0] - 7 * DAY_S)
        return clean + CLOG_PER_DAY * (t - last) / DAY_S
    return clog


def planned_casts(seed: int, area: str, order: int, t0: float, t1: float,
                  stops: list[tuple[float, float]]) -> list[Cast]:
    """A pit's casts round the clock: 60-115 min drops, 40-80 min turnarounds, none in a maintenance stop."""
    casts: list[Cast] = []
    cursor = t0 + 1800.0 * order + 3600.0 * uniform(seed, f"{area}/offset", np.array([0.0]))[0]
    n = 0
    while cursor < t1:
        u = uniform(seed, f"{area}/cast", np.array([float(n), n + 0.5]))
        drop = 60.0 + 55.0 * u[0]
        d = cursor + PREHEAT_S
        cast = Cast.starting(5.0 * np.ceil(d / 5.0), drop)
        clash = [b for a, b in stops if cast.busy[0] < b and cast.busy[1] > a]
        if clash:
            cursor = max(clash)
        else:
            casts.append(cast)
            cursor = cast.busy[1] + 60.0 * (40.0 + 40.0 * u[1])
        n += 1
    return casts


def normal_shop(plant: Plant, duration_s: float, seed: int, start_hour: float) -> CastingShop:
    areas = [a.id for a in plant.areas if a.sector == Sector.ALUMINIUM_CASTING]
    t0, t1 = -8 * 3600.0, duration_s + 4 * 3600.0
    stops = maintenance(seed, start_hour, t0 - 8 * DAY_S, t1)  # the last cleaning before t0 sets the strainer
    pump_stops = [(a + 1800.0, a + 4200.0) for a, _ in stops]
    casts = {area: planned_casts(seed, area, i, t0, t1, stops) for i, area in enumerate(areas)}
    return CastingShop(seed, start_hour, casts, cleaned_strainer(seed, pump_stops), pump_stops)


def normal(plant: Plant, area: str, duration_s: float, seed: int, start_hour: float) -> dict[str, Series]:
    return normal_shop(plant, duration_s, seed, start_hour).series(plant, area, duration_s)
