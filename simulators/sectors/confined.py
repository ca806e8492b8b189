"""Normal life of a confined space (a sewage sump), GB 30871-2022 practice.

Most days nobody goes in: the sump air is stagnant (O2 ~20.7 %VOL, H2S and LEL a fraction of a unit). On some
days there is one cleaning or inspection entry, always in this order: the permit is opened, forced ventilation
runs >= 30 min (O2 recovers to 20.9), the gas is tested, one to three people go in one after another and work
while the fixed detectors monitor continuously (their work stirs the sludge: H2S up by ~1 ppm, still < 3), they
come out one by one, ventilation runs 10 more minutes, the permit is closed. Nothing here crosses a limit.

The physics (`sump_readings`) takes a `SumpPlan` (permits, ventilation, crew over time), so an accident scenario
scripts its own plan and overlays its hazard on the same sump.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from config.model import Plant
from simulators import signals
from simulators.demo_plant import behaviour_of
from simulators.scenarios.base import Series, sample_times

ENTRY_CHANCE = 0.4          # share of days with an entry
ENTRY_HOURS = (8.5, 14.0)   # local hours in which an entry's permit is opened
VENT_MIN_S = 30 * 60.0      # GB 30871-2022: ventilate before testing; never less than this
STAGNANT_O2 = 20.7          # unventilated sump: sludge bacteria draw the oxygen down a little
FRESH_O2 = 20.9
VENT_TAU_S = 5 * 60.0       # forced ventilation flushes the sump air in minutes...
STAGNATE_TAU_S = 40 * 60.0  # ...and it goes stale again slowly once the fan stops
STIR_TAU_S = 3 * 60.0       # H2S released by people working the sludge builds up and fades over minutes


@dataclass(frozen=True)
class SumpPlan:
    """What people do at the sump: permit and ventilation intervals (s since start), crew size from each time on."""

    permits: list[tuple[float, float]] = field(default_factory=list)
    vents: list[tuple[float, float]] = field(default_factory=list)
    crew: list[tuple[float, int]] = field(default_factory=list)  # (time, people inside from then on)
    stir: list[float] = field(default_factory=list)  # per stretch with people inside: H2S it stirs up (ppm)

    def __add__(self, other: "SumpPlan") -> "SumpPlan":
        return SumpPlan(self.permits + other.permits, self.vents + other.vents,
                        sorted(self.crew + other.crew), self.stir + other.stir)


def entry(permit_at: float, vent_s: float, work_s: float, crew: int, stir_ppm: float = 1.0,
          stagger_s: float = 45.0) -> SumpPlan:
    """One entry done right: permit, ventilation >= 30 min, gas test (5 min), people in one by one, work,
    out one by one, 10 more minutes of ventilation, permit closed."""
    vent_on = permit_at + 120.0
    tested = vent_on + max(vent_s, VENT_MIN_S)
    enter = tested + 300.0
    leave = enter + (crew - 1) * stagger_s + work_s
    ins = [(enter + k * stagger_s, k + 1) for k in range(crew)]
    outs = [(leave + k * stagger_s, crew - k - 1) for k in range(crew)]
    vent_off = outs[-1][0] + 600.0
    return SumpPlan([(permit_at, vent_off + 300.0)], [(vent_on, vent_off)], ins + outs, [stir_ppm])


def normal_plan(duration_s: float, seed: int, start_hour: float, area: str = "sump1") -> SumpPlan:
    """The entries of normal life. Day d's entry depends only on (seed, d): a longer run extends a shorter one."""
    plan = SumpPlan()
    days = np.arange(int(np.ceil((duration_s / 3600.0 + start_hour) / 24.0)) + 1, dtype=float)
    u = [signals.uniform(seed, f"{area}/entry/{k}", days) for k in range(5)]
    for d in range(len(days)):
        if u[0][d] >= ENTRY_CHANCE:
            continue
        hour = ENTRY_HOURS[0] + (ENTRY_HOURS[1] - ENTRY_HOURS[0]) * u[1][d]
        at = (d * 24 + hour - start_hour) * 3600.0
        if at < 0 or at >= duration_s:
            continue
        plan = plan + entry(at, vent_s=VENT_MIN_S + 15 * 60 * u[2][d], work_s=20 * 60 + 70 * 60 * u[3][d],
                            crew=1 + int(3 * u[4][d]), stir_ppm=0.6 + 0.9 * u[4][d])
    return plan


def people(t: np.ndarray, plan: SumpPlan) -> np.ndarray:
    out = np.zeros_like(t)
    for at, n in sorted(plan.crew):
        out[t >= at] = n
    return out


def first_order(t: np.ndarray, target: np.ndarray, tau_up: float, tau_down: float, start: float) -> np.ndarray:
    """A first-order lag of a piecewise-constant target (one time constant rising, one falling), in closed form
    on each constant stretch, so it is exact at any sampling interval."""
    out = np.empty_like(t)
    if len(t) == 0:
        return out
    edges = np.flatnonzero(np.diff(target)) + 1
    bounds = np.concatenate(([0], edges, [len(t)]))
    level, since = start, t[0]
    for i0, i1 in zip(bounds[:-1], bounds[1:]):
        goal = target[i0]
        tau = tau_up if goal > level else tau_down
        seg = t[i0:i1]
        out[i0:i1] = goal + (level - goal) * np.exp(-(seg - since) / tau)
        if i1 < len(t):  # carry the state to the moment the target changes
            level = goal + (level - goal) * np.exp(-(t[i1] - since) / tau)
            since = t[i1]
    return out


def stagnation(t: np.ndarray, plan: SumpPlan) -> np.ndarray:
    """1 = stagnant sump air, 0 = freshly ventilated."""
    fan = signals.schedule(t, plan.vents)
    return first_order(t, 1.0 - fan, STAGNATE_TAU_S, VENT_TAU_S, start=1.0 - fan[0] if len(t) else 1.0)


def stirring(t: np.ndarray, plan: SumpPlan) -> np.ndarray:
    """ppm of H2S that people working the sludge add: each stretch with people inside stirs up its own amount."""
    crew = people(t, plan)
    target = np.zeros_like(t)
    inside = np.flatnonzero(np.diff(np.concatenate(([0.0], (crew > 0).astype(float)))) > 0)
    for k, i in enumerate(inside):
        level = plan.stir[k] if k < len(plan.stir) else 1.0
        target[i:] = np.where(crew[i:] > 0, level, 0.0)
    return first_order(t, target, STIR_TAU_S, STIR_TAU_S, start=0.0)


def sump_readings(plant: Plant, area: str, duration_s: float, seed: int, start_hour: float,
                  plan: SumpPlan) -> dict[str, Series]:
    """Every point of the sump at its interval, for a given plan."""
    out: dict[str, Series] = {}
    for p in (p for p in plant.points if p.area == area):
        t = sample_times(plant, p.id, duration_s)
        kind, name = p.kind, p.id
        if kind == "o2_pct":
            v = FRESH_O2 - (FRESH_O2 - STAGNANT_O2) * stagnation(t, plan)
            v = v + signals.drift(seed, name, t, 0.04, 2400.0) + signals.gauss(seed, name, t, 0.03)
            v = np.round(v, 2)
        elif kind == "h2s_ppm":  # a little more in stagnant air and in the afternoon heat (anaerobic sludge)
            v = 0.15 + 0.25 * stagnation(t, plan) + signals.daily(t, 0.05, start_hour) + stirring(t, plan)
            v = v + signals.drift(seed, name, t, 0.08, 1800.0) + signals.gauss(seed, name, t, 0.08)
            v = np.round(np.clip(v, 0.0, None), 2)
        elif kind == "combustible_lel":
            v = 0.3 + 0.3 * stagnation(t, plan) + 0.2 * stirring(t, plan)
            v = v + signals.drift(seed, name, t, 0.1, 3000.0) + signals.gauss(seed, name, t, 0.1)
            v = np.round(np.clip(v, 0.0, None), 1)
        elif name.endswith(".people"):
            v = people(t, plan)
        elif name.endswith(".vent_on"):
            v = signals.schedule(t, plan.vents)
        elif name.endswith(".permit"):
            v = signals.schedule(t, plan.permits)
        else:  # a point this model does not know (a CO cell added on site...): quiet, well inside its limits
            b = behaviour_of(p)
            v = np.round(b.mean + signals.gauss(seed, name, t, b.noise), b.decimals)
        out[p.id] = (t, np.clip(v, *p.range))
    return out


def normal(plant: Plant, area: str, duration_s: float, seed: int, start_hour: float) -> dict[str, Series]:
    return sump_readings(plant, area, duration_s, seed, start_hour, normal_plan(duration_s, seed, start_hour, area))
