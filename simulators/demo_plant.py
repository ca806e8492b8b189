"""A deterministic model of the demo plant: normal operation for every point, plus a scripted incident.

Normal operation: each point reads its operating value plus a slow drift (two sinusoids, minutes to tens of
minutes) and gaussian noise, always well inside its limits at every tier and inside its physical range.

Scripted incident, dust hopper self-heating (Kunshan 2014 pattern, domain.md section 6), on `dust1.hopper_t`
and its scaled copies, in seconds after each incident start s:
  s + 0   .. s + 85    hopper temperature rises with an accelerating slope (+50 K * x^2, x = elapsed / 85 s);
                       from ~38 degC it crosses blue 50 at ~s+42, yellow 60 at ~s+56, orange 70 at ~s+68,
                       red 80 at ~s+78 (each +-1 s with the drift) and peaks at ~88 degC at s+85
  s + 85  .. s + 145   held at the peak (60 s)
  s + 145 .. s + 220   cools back (half cosine); below 50 degC from ~s+196, back to normal at s+220
The baghouse differential pressure `dust1.dp` drifts up by at most 120 Pa with the same envelope.
Starts: s = incident_at + n * incident_period for n = 0, 1, 2, ... (only n = 0 when incident_period is None).

Noise is counter-based (a hash of seed, point id and time in milliseconds), so the same (seed, t) gives the
same values whatever order or rate the model is sampled at.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from config.model import Plant, Point

HOPPER_POINT = "dust1.hopper_t"
BAGHOUSE_DP_POINT = "dust1.dp"
INCIDENT_RISE_S = 85.0
INCIDENT_HOLD_S = 60.0
INCIDENT_COOL_S = 75.0
INCIDENT_DURATION_S = INCIDENT_RISE_S + INCIDENT_HOLD_S + INCIDENT_COOL_S
HOPPER_RISE_K = 50.0
BAGHOUSE_RISE_PA = 120.0
CLEANING_CYCLE_S = 90.0  # pulse-jet cleaning: dP builds up as the filter cake grows, then drops at the pulse
PEOPLE_SHIFT_S = 300.0   # the crew in a confined space changes at most this often


@dataclass(frozen=True)
class Behaviour:
    """How one instrument reads in normal operation."""

    mean: float
    noise: float = 0.0     # gaussian standard deviation per sample
    drift: float = 0.0     # largest excursion of the slow drift
    decimals: int = 2
    shape: str = "level"   # level | sawtooth (mean rising by span per cycle) | state (constant) | count (0..span)
    span: float = 0.0


BY_KIND: dict[str, Behaviour] = {
    "hopper_temp": Behaviour(38.0, 0.2, 1.0, 1),  # drift small: rate of rise > 5 K / 10 min is an alarm
    "duct_temp": Behaviour(32.0, 0.4, 2.0, 1),
    "baghouse_dp": Behaviour(950.0, 12.0, 40.0, 0, "sawtooth", span=350.0),
    "duct_velocity": Behaviour(22.0, 0.3, 0.8, 2),
    "fan_current": Behaviour(185.0, 1.5, 5.0, 1),
    "run_state": Behaviour(1.0, shape="state"),
    "combustible_lel": Behaviour(0.5, 0.25, 0.3, 1),
    "co_ppm": Behaviour(3.0, 0.5, 1.0, 1),
    "h2s_ppm": Behaviour(0.3, 0.15, 0.2, 2),
    "o2_pct": Behaviour(20.9, 0.03, 0.05, 2),
    "nh3_hall_ppm": Behaviour(2.0, 0.4, 0.8, 1),
    "nh3_machine_room_ppm": Behaviour(4.0, 0.6, 1.0, 1),
    "cooling_water_pressure": Behaviour(0.30, 0.0015, 0.003, 4),
    "cooling_water_flow": Behaviour(120.0, 0.8, 1.5, 1),
    "metal_temp": Behaviour(720.0, 0.8, 6.0, 1),
    "mould_level": Behaviour(120.0, 1.0, 3.0, 1),
    "gas_main_pressure": Behaviour(9.0, 0.08, 0.3, 2),
    "spark_count": Behaviour(0.0, shape="state"),
    "strainer_dp": Behaviour(12.0, 0.3, 1.0, 1),
    "pit_water_temp": Behaviour(28.0, 0.15, 1.0, 1),
    "starter_block_deviation": Behaviour(2.0, 0.3, 0.5, 1),
    "evaporator_pressure": Behaviour(0.35, 0.004, 0.02, 3),
}

BY_POINT: dict[str, Behaviour] = {
    "steel1.co_b": Behaviour(1.5, 0.4, 0.6, 1),  # the duty room is further from the gas equipment
    "sump1.people": Behaviour(0.0, shape="count", span=2),
    "nh3.discharge_p": Behaviour(1.15, 0.01, 0.04, 3),
    "dust1.humidity": Behaviour(55.0, 0.5, 4.0, 1),
    "nh3.defrost": Behaviour(0.0, shape="state"),
}


def base_id(point_id: str) -> str:
    """`dust1.dp~7` -> `dust1.dp`: a scaled copy behaves like its original."""
    return point_id.split("~", 1)[0]


def behaviour_of(point: Point) -> Behaviour:
    """The demo plant's own model, else the kind's, else one derived from the point's limits."""
    known = BY_POINT.get(base_id(point.id)) or BY_KIND.get(point.kind or "")
    return known or _from_limits(point)


def _from_limits(point: Point) -> Behaviour:
    lo, hi = point.range
    low_limits = [v for _, v in point.low.by_tier()] if point.low else []
    high_limits = [v for _, v in point.high.by_tier()] if point.high else []
    floor = max(low_limits, default=lo)
    ceiling = min(high_limits, default=hi)
    band = ceiling - floor
    # two-sided: the middle of the band; one-sided: 30 % of the way from the limit
    mean = floor + (0.5 if low_limits and high_limits else 0.3) * band
    return Behaviour(mean, 0.01 * band, 0.03 * band, 3)


@dataclass(frozen=True)
class IncidentWindow:
    """One occurrence of the hopper self-heating incident, in seconds since simulation start."""

    start: float
    peak_at: float      # the rise ends, the temperature is at its peak
    cooling_at: float   # operators have acted: cooling starts
    end: float          # back to normal


class DemoPlant:
    """Values for every point of `plant.points` at t seconds since simulation start."""

    def __init__(self, plant: Plant, seed: int = 1, incident_at: float | None = 20.0,
                 incident_period: float | None = 360.0):
        if incident_period is not None and incident_period < INCIDENT_DURATION_S:
            raise ValueError(f"incident_period must be at least the incident's {INCIDENT_DURATION_S:.0f} s, "
                             f"got {incident_period}")
        self.plant = plant
        self.seed = seed
        self.incident_at = incident_at
        self.incident_period = incident_period
        self.point_ids = [p.id for p in plant.points]
        models = [behaviour_of(p) for p in plant.points]

        def column(f) -> np.ndarray:
            return np.array([f(b) for b in models], dtype=np.float64)

        self._mean = column(lambda b: b.mean)
        self._noise = column(lambda b: b.noise)
        self._drift = column(lambda b: b.drift)
        self._span = column(lambda b: b.span)
        self._scale = 10.0 ** column(lambda b: b.decimals)
        self._sawtooth = np.array([b.shape == "sawtooth" for b in models])
        self._state = np.array([b.shape == "state" for b in models])
        self._count = np.array([b.shape == "count" for b in models])
        self._lo = np.array([p.range[0] for p in plant.points], dtype=np.float64)
        self._hi = np.array([p.range[1] for p in plant.points], dtype=np.float64)
        self._hopper = np.array([base_id(i) == HOPPER_POINT for i in self.point_ids])
        self._baghouse_dp = np.array([base_id(i) == BAGHOUSE_DP_POINT for i in self.point_ids])

        # One noise stream per point id (not per list position), keyed with the seed.
        streams = np.array([_stable_id(i) for i in self.point_ids], dtype=np.uint64)
        self._streams = _mix(streams ^ _mix(np.full_like(streams, seed & _MASK)))
        u = [_uniform(_mix(self._streams ^ np.uint64(channel))) for channel in range(1, 7)]
        self._period1 = 900.0 + 1500.0 * u[0]
        self._period2 = 180.0 + 300.0 * u[1]
        self._phase1 = 2 * math.pi * u[2]
        self._phase2 = 2 * math.pi * u[3]
        self._cycle_offset = CLEANING_CYCLE_S * u[4]
        self._shift_offset = PEOPLE_SHIFT_S * u[5]

    def sample(self, t: float) -> list[tuple[str, float]]:
        """(point_id, value) for every point, in `plant.points` order."""
        return list(zip(self.point_ids, self.sample_array(t).tolist()))

    def sample_array(self, t: float) -> np.ndarray:
        """Values aligned with `self.point_ids`."""
        two_pi = 2 * math.pi
        drift = self._drift * (0.65 * np.sin(two_pi * t / self._period1 + self._phase1)
                               + 0.35 * np.sin(two_pi * t / self._period2 + self._phase2))
        value = self._mean + drift + self._noise * self._gauss(t)
        cake = ((t + self._cycle_offset) / CLEANING_CYCLE_S) % 1.0
        value = np.where(self._sawtooth, value + self._span * cake, value)
        value = np.where(self._state, self._mean, value)
        if self._count.any():
            shift = np.floor((t + self._shift_offset) / PEOPLE_SHIFT_S).astype(np.int64).view(np.uint64)
            crew = (_mix(self._streams ^ _mix(shift ^ np.uint64(0xC0FFEE))) % np.uint64(1 << 16)).astype(np.float64)
            value = np.where(self._count, crew % (self._span + 1), value)
        envelope = self.incident_envelope(t)
        if envelope > 0.0:
            value = value + HOPPER_RISE_K * envelope * self._hopper + BAGHOUSE_RISE_PA * envelope * self._baghouse_dp
        value = np.round(value * self._scale) / self._scale
        return np.clip(value, self._lo, self._hi)

    def incident_envelope(self, t: float) -> float:
        """0 in normal operation, 1 at the incident's peak."""
        tau = self.incident_elapsed(t)
        if tau is None:
            return 0.0
        if tau < INCIDENT_RISE_S:
            return (tau / INCIDENT_RISE_S) ** 2  # self-heating accelerates
        if tau < INCIDENT_RISE_S + INCIDENT_HOLD_S:
            return 1.0
        u = (tau - INCIDENT_RISE_S - INCIDENT_HOLD_S) / INCIDENT_COOL_S
        return (1.0 + math.cos(math.pi * u)) / 2

    def incident_elapsed(self, t: float) -> float | None:
        """Seconds since the start of the incident under way at t, or None outside any incident."""
        if self.incident_at is None or t < self.incident_at:
            return None
        tau = t - self.incident_at
        if self.incident_period is not None:
            tau %= self.incident_period
        return tau if tau < INCIDENT_DURATION_S else None

    def incident_windows(self, until: float, since: float = 0.0) -> list[IncidentWindow]:
        """Every incident that overlaps [since, until)."""
        if self.incident_at is None:
            return []
        if self.incident_period is None:
            starts = [self.incident_at]
        else:
            first = max(0, math.ceil((since - self.incident_at - INCIDENT_DURATION_S) / self.incident_period))
            last = math.ceil((until - self.incident_at) / self.incident_period)
            starts = [self.incident_at + n * self.incident_period for n in range(first, max(first, last))]
        return [IncidentWindow(s, s + INCIDENT_RISE_S, s + INCIDENT_RISE_S + INCIDENT_HOLD_S, s + INCIDENT_DURATION_S)
                for s in starts if s < until and s + INCIDENT_DURATION_S > since]

    def _gauss(self, t: float) -> np.ndarray:
        """Standard normal noise per point at t (ms resolution), Box-Muller over two hashed uniforms."""
        step = np.array([round(t * 1000)], dtype=np.int64).view(np.uint64)
        key = _mix(self._streams ^ _mix(step))
        u1 = _uniform(_mix(key ^ np.uint64(0xA1)))
        u2 = _uniform(_mix(key ^ np.uint64(0xB2)))
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * math.pi * u2)


_MASK = (1 << 64) - 1


def _stable_id(point_id: str) -> int:
    """64 bits from the id; unlike hash(), the same in every process."""
    return int.from_bytes(hashlib.blake2b(point_id.encode(), digest_size=8).digest(), "little")


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a counter-based generator, so a value depends only on its key."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _uniform(bits: np.ndarray) -> np.ndarray:
    """Uniform in (0, 1), never 0, so log() is safe."""
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53
