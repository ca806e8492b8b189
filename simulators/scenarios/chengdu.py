"""Chengdu Jinjiang "8·3" 2024: H2S poisoning in a sewage collection sump, 3 dead, 2 hurt (domain.md section 6).

From the investigation report (Chengdu emergency management bureau, March 2025): at about 00:30 on 3 August 2024,
in sump 19# on basement level -5 of a commercial complex, workers went in without protection; their work
stirred the sludge, and the H2S dissolved in it (weeks of > 30 degC heat, anaerobic bacteria) came out and built
up in the unventilated sump. The pre-entry check with a four-gas detector had found nothing; rescuers went in one
after another ("盲目施救") and the detector left on site kept alarming.

Our rebuild, in local time (start 22:00 on 2 August). The first stage is our reconstruction of a job done right;
the report only says the pre-entry test was clean and that there was no ventilation when it happened:
  22:30     permit opened, forced ventilation on
  23:05     gas test after 33 min of ventilation: clean
  23:10     two workers go in and pump the water down (ventilation on, H2S ~1-2 ppm)
  23:55     they come out; 23:58 the fan is switched off
  00:25     they go back in to dig out the sludge: no ventilation, no respirators; the air reads clean
  00:28:00  HAZARD START: the sludge is broken up. H2S released into the sump air, mixed within tens of seconds
            (release time constant 25 s, sensor T63 8 s): 0 -> 150 ppm within 60 s, ~180 ppm plateau; the
            same sludge gas (mostly CO2, a little CH4) displaces air: O2 20.8 -> 18.0 %VOL within 60 s, LEL +4
  00:29:30  the two workers are overcome
  00:30:30  DANGER POINT: the first rescuer climbs in (people 2 -> 3)
  00:31:40, 00:32:50  two more rescuers (-> 5 inside); each stirs the sludge again (+25 ppm H2S, peak ~240)
  00:45     end
Detected with the shipped h2s_ppm limits (5/7/10/20 ppm, on-delay 2 s): blue 00:28:06, yellow 00:28:07, orange
00:28:08, red 00:28:10; O2 low yellow ~00:28:16, orange ~00:28:22, red ~00:29:00. Orange 142 s before the danger
point, 82 s before the workers are overcome.
"""
from __future__ import annotations

import numpy as np

from config.model import Plant, Sector
from simulators import signals
from simulators.scenarios.base import Scenario, Series, Truth
from simulators.sectors.confined import SumpPlan, sump_readings

AREA = "sump1"
START = "2024-08-02T22:00:00+08:00"
HOUR = 3600.0
PERMIT_AT = 0.5 * HOUR              # 22:30
VENT = (PERMIT_AT + 120.0, 7080.0)  # 22:32 .. 23:58
FIRST_STAGE = (4200.0, 6900.0)      # 23:10 .. 23:55, two workers pumping with the fan on
SECOND_STAGE = 8700.0               # 00:25, two workers back in, fan off
AGITATION = 8880.0                  # 00:28:00
OVERCOME = 8970.0                   # 00:29:30
RESCUERS = (9030.0, 9100.0, 9170.0)  # 00:30:30, 00:31:40, 00:32:50
DURATION = 9900.0                   # 00:45

RELEASE_TAU_S = 25.0       # stripping of the stirred sludge and mixing into the sump air
EXCHANGE_TAU_S = 40 * 60.0  # the open hatch alone renews the sump air slowly
H2S_PLATEAU = 185.0        # ppm the main release mixes up to (~150 ppm read 60 s after the start)
RESCUER_H2S = 25.0         # each rescuer falling into the sludge stirs up more
GAS_SHARE = 0.16           # share of the sump air displaced by sludge gas at the plateau (O2 20.8 -> ~17.5)
RESCUER_SHARE = 0.02
CH4_LEL_PER_SHARE = 27.0   # the sludge gas is mostly CO2: 0.16 of displaced air carries ~0.2 %VOL CH4 = 4 %LEL
SENSOR_TAU_S = {"h2s_ppm": 8.0, "o2_pct": 6.0, "combustible_lel": 10.0}  # electrochemical / catalytic T63


def release(t: np.ndarray, at: float, level: float, sensor_tau: float) -> np.ndarray:
    """What a sensor reads of a gas released at `at`: the sump air approaches `level` with the release time
    constant, seen through the sensor's own first-order lag, slowly renewed through the hatch."""
    x = np.clip(t - at, 0.0, None)
    r, s = RELEASE_TAU_S, sensor_tau
    seen = 1.0 - (r * np.exp(-x / r) - s * np.exp(-x / s)) / (r - s)
    return level * seen * np.exp(-x / EXCHANGE_TAU_S)


def plan() -> SumpPlan:
    crew = [(FIRST_STAGE[0], 1), (FIRST_STAGE[0] + 45.0, 2), (FIRST_STAGE[1], 1), (FIRST_STAGE[1] + 45.0, 0),
            (SECOND_STAGE, 1), (SECOND_STAGE + 40.0, 2)]
    crew += [(at, 3 + k) for k, at in enumerate(RESCUERS)]
    return SumpPlan(permits=[(PERMIT_AT, DURATION + 1.0)], vents=[VENT], crew=crew, stir=[1.2, 1.0])


def build(plant: Plant, seed: int) -> dict[str, Series]:
    out = sump_readings(plant, AREA, DURATION, seed, SCENARIO.start_hour, plan())
    points = plant.point_map()
    for pid, (t, v) in out.items():
        kind = points[pid].kind
        if kind not in SENSOR_TAU_S:
            continue
        tau = SENSOR_TAU_S[kind]
        share = release(t, AGITATION, GAS_SHARE, tau) + sum(release(t, at + 5.0, RESCUER_SHARE, tau)
                                                             for at in RESCUERS)
        turbulence = 1.0 + signals.gauss(seed, pid + "/release", t, 0.02)  # eddies in the sump air
        if kind == "h2s_ppm":
            gas = release(t, AGITATION, H2S_PLATEAU, tau) + sum(release(t, at + 5.0, RESCUER_H2S, tau)
                                                                for at in RESCUERS)
            v = np.round(v + gas * turbulence, 2)
        elif kind == "o2_pct":  # sludge gas displaces air: oxygen falls in proportion
            v = np.round(v * (1.0 - share * turbulence), 2)
        else:
            v = np.round(v + CH4_LEL_PER_SHARE * share * turbulence, 1)
        out[pid] = (t, np.clip(v, *points[pid].range))
    return out


SCENARIO = Scenario(
    name="chengdu",
    sector=Sector.CONFINED_SPACE,
    title_zh="成都锦江污水集水井中毒和窒息（2024）",
    title_en="Chengdu Jinjiang sewage sump poisoning (2024)",
    summary="A sewage sump is ventilated, tested clean and pumped down; after a break two workers go back in "
            "without ventilation and break up the sludge at 00:28. H2S comes out of the sludge: 0 -> 150 ppm "
            "within 60 s while the sludge gas pushes O2 from 20.8 to 18 %VOL; the workers are overcome and "
            "three rescuers climb in one after another (people inside 2 -> 5). The danger point is the first "
            "rescuer going in: the last moment a warning still stops the blind rescue that tripled the toll.",
    start_local=START,
    duration_s=DURATION,
    build=build,
    truth=Truth(hazard_start_s=AGITATION, danger_s=RESCUERS[0], points=(f"{AREA}.h2s", f"{AREA}.o2"),
                note="00:30:30 the first rescuer climbs in; the two workers were overcome at ~00:29:30"),
)
