"""Normal life of an ammonia refrigeration plant (domain.md section 3, ammonia): machine room + processing hall.

- Compressor discharge (condensing) pressure follows the outdoor temperature and the compressor load stages, which
  change every 15-45 min and sit higher while the processing hall works.
- Hot-gas defrost of the freezer evaporator every 6-8 h, 20-30 min with `defrost` = 1: pump-out (liquid feed shut,
  suction open: evaporator pressure dips), then hot gas let in gently up to the defrost regulator's setpoint
  (0.6-0.7 MPa), a plateau with the regulator hunting a little, a slow bleed-down back to suction pressure (~0.35
  MPa); every step smooth, so normal life has no pressure transients. Hot gas is drawn from the discharge side.
- NH3 a few ppm: the machine room with small puffs from valve packings and oil drains now and then, the processing
  hall a little higher in working hours (product and doors).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from config.model import Plant
from simulators import signals as sg
from simulators.scenarios.base import Series
from simulators.sectors import point_roles
from simulators.sectors.dust import on_grid
from simulators.signals import lag, pulse

WORK_H = [(8.0, 12.0), (13.0, 17.5)]  # processing hall crew, every day but Sunday
SUNDAY = 6
P_SUCTION = 0.35          # MPa, evaporator pressure in operation
P_PUMP_OUT_DIP = 0.03     # MPa the evaporator drops while its liquid is pumped out
PUMP_OUT_S = 300.0
HOT_GAS_RISE_S = 180.0    # soft-gas admission up to the defrost setpoint
BLEED_S = 240.0
AFTER_BLEED_S = 120.0     # bled down; the fans wait for the coil to refreeze its drips, then defrost ends
DEFROST_EVERY_S = (6 * 3600.0, 8 * 3600.0)
DEFROST_LEN_S = (20 * 60.0, 30 * 60.0)
DEFROST_SETPOINT = (0.60, 0.70)
P_DISCHARGE = 1.08        # MPa at 25 degC outdoors and the middle load stage
DISCHARGE_PER_K = 0.01
DISCHARGE_PER_STAGE = 0.025
HOT_GAS_DRAW = 0.02       # MPa off the discharge while hot gas flows to an evaporator
GRID_S = 10.0

ROLES = ("room_ppm", "hall_ppm", "discharge_p", "evap_p", "defrost")
ROLE_OF_KIND = {"nh3_machine_room_ppm": "room_ppm", "nh3_hall_ppm": "hall_ppm", "evaporator_pressure": "evap_p"}


@dataclass(frozen=True)
class Defrost:
    """One hot-gas defrost: `defrost` = 1 from start to start + length_s."""

    start: float
    length_s: float
    setpoint: float  # MPa, the defrost pressure regulator

    @property
    def hot_gas(self) -> tuple[float, float]:
        """When hot gas is let in, and when the bleed-down begins."""
        return self.start + PUMP_OUT_S, self.start + self.length_s - BLEED_S - AFTER_BLEED_S


@dataclass(frozen=True)
class Operation:
    defrosts: list[Defrost]
    ambient_c: float = 22.0       # daily mean outdoor temperature
    ambient_swing_c: float = 4.0
    weekday: int = 0              # day of week at t = 0, Monday 0


def normal(plant: Plant, area: str, duration_s: float, seed: int, start_hour: float,
           weekday: int = 0) -> dict[str, Series]:
    return operate(plant, area, duration_s, seed, start_hour,
                   Operation(defrosts(duration_s, seed, area), weekday=weekday))


def defrosts(duration_s: float, seed: int, area: str = "nh3", first_after_s: float | None = None) -> list[Defrost]:
    """A defrost every 6-8 h (the first within the first 7 h unless given), 20-30 min each."""
    u = sg.uniform(seed, f"{area}/defrost", np.arange(0.0, 3 * (duration_s / DEFROST_EVERY_S[0] + 2)))
    start = first_after_s if first_after_s is not None else 7 * 3600.0 * u[0]
    out, k = [], 1
    while start < duration_s:
        length = DEFROST_LEN_S[0] + (DEFROST_LEN_S[1] - DEFROST_LEN_S[0]) * u[k]
        setpoint = DEFROST_SETPOINT[0] + (DEFROST_SETPOINT[1] - DEFROST_SETPOINT[0]) * u[k + 1]
        out.append(Defrost(on_grid(start), on_grid(length), round(float(setpoint), 3)))
        start += DEFROST_EVERY_S[0] + (DEFROST_EVERY_S[1] - DEFROST_EVERY_S[0]) * u[k + 2]
        k += 3
    return out


def roles(plant: Plant, area: str) -> dict[str, str]:
    return point_roles(plant, area, ROLES, ROLE_OF_KIND, "ammonia plant")


def operate(plant: Plant, area: str, duration_s: float, seed: int, start_hour: float,
            op: Operation) -> dict[str, Series]:
    model = _Refrigeration(op, seed, area, start_hour, duration_s)
    points = plant.point_map()
    out = {}
    for pid, role in roles(plant, area).items():
        p = points[pid]
        t = np.arange(0.0, duration_s, p.interval_s)
        out[pid] = (t, np.clip(model.reading(role, pid, t), *p.range))
    return out


def evaporator_defrost(t: np.ndarray, d: Defrost) -> np.ndarray:
    """MPa above suction pressure through one normal defrost: dip, soft rise, plateau, bleed-down."""
    gas_in, bleed = d.hot_gas
    dip = -P_PUMP_OUT_DIP * (sg.smoothstep(t, d.start, d.start + 120.0) - sg.smoothstep(t, gas_in, gas_in + 60.0))
    up = (d.setpoint - P_SUCTION) * (sg.smoothstep(t, gas_in, gas_in + HOT_GAS_RISE_S)
                                     - sg.smoothstep(t, bleed, bleed + BLEED_S))
    return dip + up


class _Refrigeration:
    def __init__(self, op: Operation, seed: int, area: str, start_hour: float, duration_s: float):
        self.op, self.seed, self.area, self.start_hour = op, seed, area, start_hour
        self.grid = np.arange(0.0, duration_s + 2 * GRID_S, GRID_S)
        self.work = lag(self.working(self.grid), 1200.0, GRID_S)
        self.stage = lag(self.load_stage(self.grid), 90.0, GRID_S)

    def working(self, t: np.ndarray) -> np.ndarray:
        days = int(np.ceil((self.start_hour * 3600 + t[-1]) / sg.DAY_S)) + 1
        hours = sg.daily_windows(days, self.start_hour, WORK_H)
        keep = [w for i, w in enumerate(hours) if (self.op.weekday + i // len(WORK_H)) % 7 != SUNDAY]
        return sg.schedule(t, keep)

    def load_stage(self, t: np.ndarray) -> np.ndarray:
        """Compressor stages in service, 1..3, changing every 15-45 min, higher while the hall works."""
        n = int(t[-1] / 900.0) + 2
        u = sg.uniform(self.seed, f"{self.area}/load", np.arange(0.0, 2 * n))
        bounds = np.cumsum(900.0 + 1800.0 * u[:n])
        segment = np.searchsorted(bounds, t, "right")
        return 1.0 + np.floor(u[n + segment] * 2.0 + 0.999 * self.working(t))

    def defrosting(self, t: np.ndarray) -> np.ndarray:
        return sg.schedule(t, [(d.start, d.start + d.length_s) for d in self.op.defrosts])

    def hot_gas(self, t: np.ndarray) -> np.ndarray:
        out = np.zeros_like(t)
        for d in self.op.defrosts:
            gas_in, bleed = d.hot_gas
            out += sg.smoothstep(t, gas_in, gas_in + HOT_GAS_RISE_S) - sg.smoothstep(t, bleed, bleed + BLEED_S)
        return out

    def reading(self, role: str, pid: str, t: np.ndarray) -> np.ndarray:
        seed, area = self.seed, self.area
        if role == "defrost":
            return self.defrosting(t)
        if role == "evap_p":
            p = P_SUCTION + sg.drift(seed, f"{area}/suction", t, 0.015, 5400.0)
            for d in self.op.defrosts:
                p = p + evaporator_defrost(t, d)
            hunting = 0.006 * np.sin(2 * np.pi * t / 45.0) * self.hot_gas(t)  # the regulator hunts on its plateau
            return np.round(p + hunting + sg.gauss(seed, pid, t, 0.003), 3)
        if role == "discharge_p":
            outdoor = (self.op.ambient_c + sg.daily(t, self.op.ambient_swing_c, self.start_hour, peak_hour=15.0)
                       + sg.drift(seed, f"{area}/weather", t, 0.8, 3 * 3600.0))
            p = (P_DISCHARGE + DISCHARGE_PER_K * (outdoor - 25.0)
                 + DISCHARGE_PER_STAGE * (np.interp(t, self.grid, self.stage) - 2.0)
                 - HOT_GAS_DRAW * self.hot_gas(t))
            return np.round(p + sg.gauss(seed, pid, t, 0.004), 3)
        if role == "room_ppm":
            ppm = 3.0 + sg.drift(seed, f"{area}/room", t, 1.0, 7200.0) + self.puffs(t) + sg.gauss(seed, pid, t, 0.5)
            return np.round(np.maximum(ppm, 0.0), 1)
        if role == "hall_ppm":
            ppm = (1.2 + 1.5 * np.interp(t, self.grid, self.work) + sg.drift(seed, f"{area}/hall", t, 0.4, 5400.0)
                   + sg.gauss(seed, pid, t, 0.3))
            return np.round(np.maximum(ppm, 0.0), 1)
        raise ValueError(role)

    def puffs(self, t: np.ndarray) -> np.ndarray:
        """Small releases in the machine room (a valve packing, an oil drain): a few ppm, gone in ~15 min."""
        n = int(t[-1] / (6 * 3600.0)) + 2
        u = sg.uniform(self.seed, f"{self.area}/puff", np.arange(0.0, 2 * n))
        at = np.cumsum(6 * 3600.0 + 6 * 3600.0 * u[:n]) - 3 * 3600.0
        out = np.zeros_like(t)
        for k, t0 in enumerate(at):
            if t0 < t[-1]:
                out += pulse(t, t0, 3.0 + 5.0 * u[n + k], 60.0, 600.0)
        return out
