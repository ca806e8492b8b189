"""Building blocks for simulated-time plant signals: vectorised over time, deterministic by seed.

Every function takes `t`, an array of seconds since the scenario's start, and returns an array of the same
shape. Noise is counter-based (seed, point id, time in ms), so a signal does not depend on how it is sliced.
"""
from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np
from scipy.signal import lfilter

DAY_S = 86_400.0
SHIFT_S = 8 * 3600.0


def _key(seed: int, name: str) -> np.uint64:
    digest = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))


def _mix(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(33)
        x *= np.uint64(0xFF51AFD7ED558CCD)
        x ^= x >> np.uint64(33)
        x *= np.uint64(0xC4CEB9FE1A85EC53)
        x ^= x >> np.uint64(33)
    return x


def uniform(seed: int, name: str, t: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) per (seed, name, millisecond of t)."""
    ms = np.round(np.asarray(t, float) * 1000).astype(np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        bits = _mix(ms ^ _key(seed, name))
    return (bits >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def gauss(seed: int, name: str, t: np.ndarray, sd: float) -> np.ndarray:
    """Gaussian noise with standard deviation sd (Box-Muller on two counter-based uniforms)."""
    u1 = np.maximum(uniform(seed, name + "/a", t), 1e-12)
    u2 = uniform(seed, name + "/b", t)
    return sd * np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * np.pi * u2)


def drift(seed: int, name: str, t: np.ndarray, amplitude: float, period_s: float = 3600.0) -> np.ndarray:
    """A slow wander within +-amplitude: two incommensurate sinusoids with seeded phases."""
    ph = uniform(seed, name + "/phase", np.array([0.0, 1.0])) * 2 * np.pi
    return amplitude * (0.6 * np.sin(2 * np.pi * t / period_s + ph[0])
                        + 0.4 * np.sin(2 * np.pi * t / (period_s * 2.71) + ph[1]))


def daily(t: np.ndarray, amplitude: float, start_hour: float = 0.0, peak_hour: float = 14.0) -> np.ndarray:
    """A daily cycle (ambient temperature and the like) peaking at peak_hour local time; t = 0 is start_hour."""
    hour = (start_hour + t / 3600.0) % 24.0
    return amplitude * np.cos(2 * np.pi * (hour - peak_hour) / 24.0)


def sawtooth(t: np.ndarray, period_s: float, span: float) -> np.ndarray:
    """Rises by span over each period, then drops at once (filter cake building, then the cleaning pulse)."""
    return span * ((t % period_s) / period_s)


def ramp(t: np.ndarray, t0: float, t1: float, v0: float, v1: float) -> np.ndarray:
    """v0 before t0, linear to v1 at t1, v1 after."""
    x = np.clip((t - t0) / max(t1 - t0, 1e-9), 0.0, 1.0)
    return v0 + (v1 - v0) * x


def smoothstep(t: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """0 before t0, 1 after t1, smooth in between."""
    x = np.clip((t - t0) / max(t1 - t0, 1e-9), 0.0, 1.0)
    return x * x * (3 - 2 * x)


def accelerating(t: np.ndarray, t0: float, t1: float, rise: float, power: float = 2.0) -> np.ndarray:
    """0 before t0, then rise * x**power with x = (t - t0) / (t1 - t0): a slope that keeps steepening."""
    x = np.clip((t - t0) / max(t1 - t0, 1e-9), 0.0, None)
    return rise * x ** power


def window(t: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """True inside [t0, t1)."""
    return (t >= t0) & (t < t1)


def schedule(t: np.ndarray, on_off: list[tuple[float, float]]) -> np.ndarray:
    """1.0 inside any (start, end) interval, else 0.0: run states, casting phases, permits."""
    out = np.zeros_like(np.asarray(t, float))
    for start, end in on_off:
        out[window(t, start, end)] = 1.0
    return out


def daily_windows(days: int, start_hour: float, hours: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(start, end) seconds since the scenario start for the given local hours on each day, e.g. two shifts
    [(8, 16), (16, 24)] with production stopped at night."""
    out = []
    for d in range(days + 1):
        for h0, h1 in hours:
            out.append(((d * 24 + h0 - start_hour) * 3600.0, (d * 24 + h1 - start_hour) * 3600.0))
    return out


# --- sensor and network faults: part of normal life, not hazards ----------------------------------------------

def stuck(values: np.ndarray, t: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """The sensor freezes at its reading at t0 until t1."""
    out = values.copy()
    inside = window(t, t0, t1)
    if inside.any():
        out[inside] = values[np.argmax(inside)]
    return out


def sensor_drift(values: np.ndarray, t: np.ndarray, t0: float, per_hour: float) -> np.ndarray:
    """A slow calibration drift from t0 on."""
    return values + np.clip(t - t0, 0.0, None) / 3600.0 * per_hour


def spikes(values: np.ndarray, t: np.ndarray, seed: int, name: str, every_s: float, size: float) -> np.ndarray:
    """Single-sample glitches (EMI, a loose connector): about one every every_s seconds."""
    hit = uniform(seed, name + "/spike", t) < (np.gradient(t) if len(t) > 1 else np.ones_like(t)) / every_s
    return np.where(hit, values + size, values)


def dropout(t: np.ndarray, values: np.ndarray, gaps: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Readings lost in the given windows (a sensor, or a whole gateway, offline)."""
    keep = np.ones(len(t), bool)
    for g0, g1 in gaps:
        keep &= ~window(t, g0, g1)
    return t[keep], values[keep]


# --- instruments' responses and random events ------------------------------------------------------------

def lag(x: np.ndarray, tau_s: float, step_s: float) -> np.ndarray:
    """First-order lag (thermal mass, a sensor's response) starting at steady state."""
    a = 1.0 - np.exp(-step_s / tau_s)
    y, _ = lfilter([a], [1.0, a - 1.0], x, zi=[(1.0 - a) * x[0]])
    return y


def counts(events: np.ndarray, t: np.ndarray, window_s: float = 10.0) -> np.ndarray:
    """A spark detector's reading: events counted in the last window_s seconds."""
    events = np.sort(events)
    return (np.searchsorted(events, t, "right") - np.searchsorted(events, t - window_s, "right")).astype(float)


def pulse(t: np.ndarray, t0: float, peak: float, rise_s: float, fall_s: float) -> np.ndarray:
    """A sensor's answer to a short burst of heat at t0: up within ~rise_s, back down with fall_s (peak height)."""
    dt = np.clip(t - t0, 0.0, None)
    shape = np.exp(-dt / fall_s) - np.exp(-dt / rise_s)
    tp = np.log(fall_s / rise_s) * rise_s * fall_s / (fall_s - rise_s)
    top = np.exp(-tp / fall_s) - np.exp(-tp / rise_s)
    return np.where(t >= t0, peak * shape / top, 0.0)


def poisson(seed: int, name: str, t0: float, t1: float, rate: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Event times in [t0, t1) at a time-varying rate (per second), at 0.1 s resolution."""
    grid = np.arange(t0, t1, 0.1)
    return grid[uniform(seed, name, grid) < rate(grid) * 0.1]
