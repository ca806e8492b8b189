"""Normal life of a polishing-dust collection system (domain.md section 3, dust), in simulated time.

Production runs on two shifts, 06:00-22:00 with meal breaks, stopped at night and on Sunday; the collector fan
starts 10 min before production and stops 15 min after it (the collector must start before and stop after
production), and keeps running through a meal break. Couplings between the instruments:
- duct air velocity follows the fan speed and the blast gates the running machines open, and falls a little as
  the filter cake builds up;
- fan current = magnetising current + k * velocity^2 while the motor is energised (plus the star-delta inrush);
- baghouse dP = velocity / 22 m/s * (clean-bag resistance + the filter cake of the 90 s pulse-jet cycle);
- temperatures follow the outdoor daily cycle through the building, the heat of polishing rides on the extracted
  air, and the hopper answers through the collector's thermal mass (a 30 min lag);
- hopper humidity has its daily cycle and falls as the running collector warms the hopper.
`fan_on` is a running-at-speed confirmation polled every 5 s: it reads 1 once the fan has reached speed and drops at
the stop command, a few seconds before the fan starts to coast down. Sparks: none in normal life.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from config.model import Plant, Point
from simulators import signals as sg
from simulators.signals import counts, lag, poisson, pulse
from simulators.scenarios.base import Series
from simulators.sectors import point_roles

Windows = list[tuple[float, float]]  # (start, end) seconds since the scenario's start

SHIFTS_H = [(6.0, 11.5), (12.0, 17.5), (18.0, 22.0)]  # production, local hours: two shifts with meal breaks
SUNDAY = 6
CREW_JITTER_S = 120.0   # a shift starts up to 2 min early or late
FAN_LEAD_S = 600.0
FAN_TRAIL_S = 900.0
MEAL_BREAK_MAX_S = 3600.0  # the fan keeps running through a pause in production shorter than this
STATUS_GRID_S = 5.0     # run states are polled every 5 s; switching on that grid keeps the sampled order true


def on_grid(seconds: float) -> float:
    return float(np.round(seconds / STATUS_GRID_S) * STATUS_GRID_S)
SPIN_UP_S = 25.0        # star-delta start to full speed
AT_SPEED_S = 5.0        # the running confirmation follows the fan reaching speed
COAST_DELAY_S = 3.0     # after the stop command the flow holds a few seconds, then the fan coasts down
COAST_S = 90.0
CLEANING_S = 90.0       # pulse-jet cleaning cycle

V_BASE = 21.2           # m/s with the fan at speed and every blast gate shut
V_GATES = 1.0           # m/s more with the machines' gates open
V_CAKE = 0.35           # m/s lost as the filter cake builds over a cleaning cycle
V_PER_PA = 1 / 800.0    # m/s lost per Pa of extra (blinded-bag) resistance: the fan rides up its curve
V_REF = 22.0
DP_CLEAN = 900.0        # Pa just after a cleaning pulse, at V_REF
DP_CAKE = 450.0         # Pa the cake adds over one cleaning cycle
I_MAG = 45.0            # A, the motor's magnetising current
I_K = 0.29              # A per (m/s)^2: 188 A at 22.2 m/s
I_INRUSH = 220.0        # A above running current at a star-delta start, fading as the fan reaches speed

GRID_S = 10.0           # the thermal model's time step
ROOM_ABOVE_OUTDOOR_K = 4.0
POLISHING_HEAT_K = 8.0  # extracted air above room temperature at full production

ROLES = ("hopper_t", "inlet_t", "duct_t", "dp", "velocity", "fan_a", "fan_on", "production", "spark", "humidity")
ROLE_OF_KIND = {"hopper_temp": "hopper_t", "baghouse_dp": "dp", "duct_velocity": "velocity",
                "fan_current": "fan_a", "spark_count": "spark", "duct_temp": "duct_t"}


@dataclass(frozen=True)
class Operation:
    """How the collector is run over a scenario, and the weather it runs in."""

    production: Windows            # polishing machines running
    fan: Windows                   # fan start command .. stop command
    ambient_c: float = 20.0        # daily mean outdoor temperature
    ambient_swing_c: float = 5.0   # half the day-night difference
    extra_dp: Callable[[np.ndarray], np.ndarray] | None = None  # Pa of residual dP over clean bags (blinding)


def normal(plant: Plant, area: str, duration_s: float, seed: int, start_hour: float,
           weekday: int = 0) -> dict[str, Series]:
    """A collector on two shifts; `weekday` is the day of week at t = 0 (Monday 0), production stops on Sunday."""
    production = shifts(duration_s, start_hour, seed, area, weekday)
    return operate(plant, area, duration_s, seed, start_hour, Operation(production, fan_for(production)))


def shifts(duration_s: float, start_hour: float, seed: int, area: str = "dust1", weekday: int = 0) -> Windows:
    """Production windows of SHIFTS_H on every day but Sunday, each day's crew a little early or late."""
    days = int(np.ceil((start_hour * 3600 + duration_s) / sg.DAY_S))
    out = []
    for day in range(days + 1):
        if (weekday + day) % 7 == SUNDAY:
            continue
        late = CREW_JITTER_S * (2 * sg.uniform(seed, f"{area}/crew", np.array([float(day)]))[0] - 1)
        for h0, h1 in SHIFTS_H:
            start = on_grid((day * 24 + h0 - start_hour) * 3600 + late)
            end = on_grid((day * 24 + h1 - start_hour) * 3600 + late)
            if end > 0 and start < duration_s:
                out.append((start, end))
    return out


def fan_for(production: Windows) -> Windows:
    """The fan starts FAN_LEAD_S before production and stops FAN_TRAIL_S after it, running through meal breaks."""
    runs: Windows = []
    for start, end in sorted(production):
        if runs and start - runs[-1][1] < MEAL_BREAK_MAX_S:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return [(on_grid(s - FAN_LEAD_S), on_grid(e + FAN_TRAIL_S)) for s, e in runs]


def roles(plant: Plant, area: str) -> dict[str, str]:
    return point_roles(plant, area, ROLES, ROLE_OF_KIND, "dust collector")


def operate(plant: Plant, area: str, duration_s: float, seed: int, start_hour: float,
            op: Operation) -> dict[str, Series]:
    """Every point of `area` at its own interval, for the collector run as `op` says."""
    model = _Collector(op, seed, area, start_hour, duration_s)
    points = plant.point_map()
    out = {}
    for pid, role in roles(plant, area).items():
        p = points[pid]
        t = np.arange(0.0, duration_s, p.interval_s)
        out[pid] = (t, _clip(p, model.reading(role, pid, t)))
    return out


def _clip(p: Point, values: np.ndarray) -> np.ndarray:
    return np.clip(values, *p.range)


class _Collector:
    def __init__(self, op: Operation, seed: int, area: str, start_hour: float, duration_s: float):
        self.op, self.seed, self.area, self.start_hour = op, seed, area, start_hour
        self.phase = CLEANING_S * sg.uniform(seed, f"{area}/cleaning", np.array([0.0]))[0]
        self.grid = np.arange(0.0, duration_s + 2 * GRID_S, GRID_S)
        g = self.grid
        outdoor = (op.ambient_c + sg.daily(g, op.ambient_swing_c, start_hour, peak_hour=15.0)
                   + sg.drift(seed, f"{area}/weather", g, 0.8, 3 * 3600.0))
        polishing = lag(self.gates(g), 600.0, GRID_S)
        self.room = outdoor + ROOM_ABOVE_OUTDOOR_K + 2.0 * lag(self.gates(g), 3600.0, GRID_S)
        flowing = self.speed(g)
        self.duct_air = lag(self.room + flowing * (POLISHING_HEAT_K + 1.0) * polishing, 120.0, GRID_S)
        self.inlet_air = lag(self.room + flowing * (POLISHING_HEAT_K - 1.0) * polishing, 300.0, GRID_S)
        self.hopper = lag(self.room + 1.0 + flowing * (POLISHING_HEAT_K - 2.0) * polishing, 1800.0, GRID_S)

    # --- the plant state -------------------------------------------------------------------------------------
    def speed(self, t: np.ndarray) -> np.ndarray:
        """Fan speed as a fraction of full speed."""
        out = np.zeros_like(t)
        for a, b in self.op.fan:
            out += sg.smoothstep(t, a, a + SPIN_UP_S) - sg.smoothstep(t, b + COAST_DELAY_S, b + COAST_DELAY_S + COAST_S)
        return np.clip(out, 0.0, 1.0)

    def gates(self, t: np.ndarray) -> np.ndarray:
        """Blast gates of the running machines, 0 (all shut) .. 1 (production on)."""
        out = np.zeros_like(t)
        for a, b in self.op.production:
            out += sg.smoothstep(t, a, a + 5.0) - sg.smoothstep(t, b, b + 5.0)
        return np.clip(out, 0.0, 1.0)

    def cake(self, t: np.ndarray) -> np.ndarray:
        return ((t + self.phase) % CLEANING_S) / CLEANING_S

    def extra_dp(self, t: np.ndarray) -> np.ndarray:
        return self.op.extra_dp(t) if self.op.extra_dp else np.zeros_like(t)

    def velocity(self, t: np.ndarray) -> np.ndarray:
        at_full = (V_BASE + V_GATES * self.gates(t) + sg.drift(self.seed, f"{self.area}/flow", t, 0.5, 2400.0)
                   - V_CAKE * self.cake(t) - V_PER_PA * self.extra_dp(t))
        return self.speed(t) * at_full

    def energised(self, t: np.ndarray) -> np.ndarray:
        return sg.schedule(t, self.op.fan)

    def at_speed(self, t: np.ndarray) -> np.ndarray:
        confirmed = [(np.ceil((a + SPIN_UP_S + AT_SPEED_S) / STATUS_GRID_S) * STATUS_GRID_S, b)
                     for a, b in self.op.fan]
        return sg.schedule(t, confirmed)

    def thermal(self, t: np.ndarray, on_grid: np.ndarray) -> np.ndarray:
        return np.interp(t, self.grid, on_grid)

    # --- what each instrument reads ----------------------------------------------------------------------
    def reading(self, role: str, pid: str, t: np.ndarray) -> np.ndarray:
        seed = self.seed
        if role == "production":
            return sg.schedule(t, self.op.production)
        if role == "fan_on":
            return self.at_speed(t)
        if role == "velocity":
            v = self.velocity(t)
            return np.round(np.maximum(v + sg.gauss(seed, pid, t, 0.1) * np.minimum(1.0, v), 0.0), 2)
        if role == "fan_a":
            v = self.velocity(t)
            on = self.energised(t)
            inrush = np.zeros_like(t)
            for a, _ in self.op.fan:
                inrush += I_INRUSH * (1 - sg.smoothstep(t, a, a + SPIN_UP_S)) * sg.window(t, a, a + SPIN_UP_S)
            return np.round(on * (I_MAG + I_K * v ** 2 + inrush + sg.gauss(seed, pid, t, 0.8)), 1)
        if role == "dp":
            v = self.velocity(t)
            dp = v / V_REF * (DP_CLEAN + self.extra_dp(t) + DP_CAKE * self.cake(t))
            dp += sg.gauss(seed, pid, t, 8.0) * np.minimum(1.0, v / V_REF) + sg.gauss(seed, pid + "/zero", t, 2.0)
            return np.round(np.maximum(dp, 0.0))
        if role == "duct_t":
            return np.round(self.thermal(t, self.duct_air) + sg.gauss(seed, pid, t, 0.3), 1)
        if role == "inlet_t":
            return np.round(self.thermal(t, self.inlet_air) + sg.gauss(seed, pid, t, 0.2), 1)
        if role == "hopper_t":
            return np.round(self.thermal(t, self.hopper) + sg.gauss(seed, pid, t, 0.1), 1)
        if role == "humidity":
            warm = self.thermal(t, self.hopper - self.room)
            rh = (65.0 + sg.daily(t, -12.0, self.start_hour, peak_hour=15.0)
                  + sg.drift(seed, f"{self.area}/rh", t, 4.0, 5 * 3600.0) - 2.0 * warm + sg.gauss(seed, pid, t, 0.4))
            return np.round(np.clip(rh, 1.0, 100.0), 1)
        if role == "spark":
            return np.zeros_like(t)
        raise ValueError(role)


# --- what a fire or a deflagration does to these instruments (the accident scenarios share it) -----------------


def explosion(series: dict[str, Series], plant: Plant, area: str, at: float, seed: int) -> dict[str, Series]:
    """The collector explodes at `at`: the casing's pressure saturates the dP transmitter, then the torn casing
    reads ~0; flame jets through the ducts (temperature pulses, a shower of sparks); the fan trips, power is lost."""
    points = plant.point_map()
    out = dict(series)
    for pid, role in roles(plant, area).items():
        if pid not in series:
            continue
        t, v = series[pid]
        if role == "hopper_t":
            v = v + pulse(t, at, 260.0, 3.0, 120.0)
        elif role == "inlet_t":
            v = v + pulse(t, at + 0.5, 220.0, 2.0, 90.0)
        elif role == "duct_t":
            v = v + pulse(t, at + 1.0, 300.0, 2.0, 90.0)
        elif role == "spark":
            v = v + counts(poisson(seed, pid + "/blast", at, at + 8.0, lambda g: 40.0 * np.exp(-(g - at) / 2.0)), t)
        elif role == "dp":
            torn = np.round(np.abs(sg.gauss(seed, pid + "/torn", t, 10.0)))
            v = np.where(sg.window(t, at, at + 2.0), points[pid].range[1], np.where(t >= at + 2.0, torn, v))
        elif role == "velocity":
            v = v * (1.0 - sg.smoothstep(t, at, at + 10.0))
        elif role in ("fan_a", "fan_on", "production"):
            v = np.where(t >= at + 1.0, 0.0, v)
        out[pid] = (t, _clip(points[pid], np.round(v, 2)))
    return out
