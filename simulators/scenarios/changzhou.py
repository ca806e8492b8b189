"""Changzhou (Wujin), 20 January 2024: aluminium-alloy grinding dust explosion at Shenrong Metal Technology (8 dead).

From the Changzhou investigation report ("1·20"): laptop-case grinding run dry against the machines' design, so
dry aluminium-alloy dust piled up in the machines and the workshop. The night shift came on at 20:00. At 01:54 the
dust in the plastic (static-charging) vacuum pipe under the No. 2 five-axis grinder deflagrated; the flame spread
quickly, set off deflagrations in several places and filled the manual grinding area with smoke. The shift leader
had the staff fight the flames with extinguishers and resume work; nobody evacuated. Embers left by the
deflagration were drawn into the No. 1 wet collector, and at 03:32:07 it exploded first; the blast wave ran
through the branch ducts and raised the dust inside the other machines: a chain of explosions.

Rebuilt here (times local, t = 0 at 23:30 on 19 January; the night-shift meal break is assumed):
  23:30-01:54  night production, collector running: normal life, January ambient.
  01:54:00     deflagration in the vacuum pipe (hazard start), flare-ups at +25 s and +70 s: bursts of sparks past
               the spark detector (dozens in 10 s), the suction-duct temperature spikes to ~200 degC and the
               collector inlet to ~80 degC, a pressure pulse through the baghouse dP; production stops as the crew
               fights the fire; smouldering deposits keep the duct a few K warm and shed an ember now and then.
  02:25        production resumes (the report gives no time for the restart; we place it 31 min after the
               deflagration, once the flames were out). Danger point: restarting grinding feeds dust and embers
               into the collector again, after which the explosion only waits on chance; a warning that stops the
               restart and empties the floor is the one that saves the shift (the strict last moment, evacuating
               before 03:32, is also reported by the lead time below).
  02:25-03:32  grinding stirs the smouldering deposits: embers past the spark detector every few minutes.
  03:32:07     the No. 1 collector explodes, then the machines.
"""
from __future__ import annotations

import numpy as np

from config.model import Plant, Sector
from simulators import signals as sg
from simulators.scenarios.base import Scenario, Series, Truth
from simulators.sectors import dust

AREA = "dust1"
START_HOUR = 23.5
H = 3600.0
DEFLAGRATION = 2 * H + 24 * 60          # 01:54:00
FLARE_UPS = (0.0, 25.0, 70.0)           # s after DEFLAGRATION: the flame spreading to other deposits
CREW_STOPS = DEFLAGRATION + 30          # machines stopped to fight the fire
RESTART = 2 * H + 55 * 60               # 02:25:00 (assumed)
EXPLOSION = 4 * H + 2 * 60 + 7          # 03:32:07
DURATION = EXPLOSION + 53               # until 03:33:00
JANUARY_MEAN_C = 3.0
NIGHT_SHIFT = [(-3.5 * H, 0.5 * H), (1.0 * H, CREW_STOPS), (RESTART, DURATION + H)]  # 20:00-24:00, 00:30-..., restart
SPARK_TO_DETECTOR_S = 1.0               # flame and sparks reach the detector downstream of the machine
EMBERS_PER_S_STOPPED = 1 / 420.0        # fan still running, machines stopped
EMBERS_PER_S_GRINDING = 1 / 200.0       # grinding again: the deposits are stirred and fed


def sparks(t: np.ndarray, seed: int, pid: str) -> np.ndarray:
    events = []
    for k, dt in enumerate(FLARE_UPS):
        t0 = DEFLAGRATION + dt + SPARK_TO_DETECTOR_S
        size = 8.0 / (k + 1)  # the first deflagration is the largest
        events.append(sg.poisson(seed, f"{pid}/flare{k}", t0, t0 + 40.0,
                                   lambda g, t0=t0, size=size: size * np.exp(-(g - t0) / 8.0)))
    embers = sg.poisson(seed, f"{pid}/embers", DEFLAGRATION + 120.0, EXPLOSION,
                          lambda g: np.where(g < RESTART, EMBERS_PER_S_STOPPED, EMBERS_PER_S_GRINDING))
    return sg.counts(np.concatenate(events + [embers]), t)


def build(plant: Plant, seed: int) -> dict[str, Series]:
    op = dust.Operation(production=NIGHT_SHIFT, fan=[(-3.5 * H - dust.FAN_LEAD_S, DURATION + H)],
                        ambient_c=JANUARY_MEAN_C, ambient_swing_c=3.0)
    out = dust.operate(plant, AREA, DURATION, seed, START_HOUR, op)
    heat = {f"{AREA}.duct_t": (190.0, 4.0, 60.0), f"{AREA}.inlet_t": (45.0, 6.0, 120.0)}  # peak K, rise s, fall s
    for pid, (peak, rise, fall) in heat.items():
        t, v = out[pid]
        for k, dt in enumerate(FLARE_UPS):
            v = v + sg.pulse(t, DEFLAGRATION + dt + SPARK_TO_DETECTOR_S, peak / (k + 1) ** 0.6, rise, fall)
        smoulder = 0.06 * peak * np.exp(-np.clip(t - DEFLAGRATION, 0, None) / 2400.0) * (t >= DEFLAGRATION)
        out[pid] = (t, np.round(v + smoulder, 1))
    t, v = out[f"{AREA}.spark"]
    out[f"{AREA}.spark"] = (t, v + sparks(t, seed, f"{AREA}.spark"))
    t, v = out[f"{AREA}.dp"]
    blast = sg.window(t, DEFLAGRATION + 2.0, DEFLAGRATION + 4.0)  # the pressure wave passes the collector
    out[f"{AREA}.dp"] = (t, np.where(blast, v + 1800.0, v))
    return dust.explosion(out, plant, AREA, EXPLOSION, seed)


SCENARIO = Scenario(
    name="changzhou",
    sector=Sector.DUST,
    title_zh="常州燊荣粉尘爆炸（2024）",
    title_en="Changzhou Shenrong aluminium grinding dust explosion (2024)",
    summary=("Aluminium-alloy grinding on the night shift. At 01:54 dust deflagrates in a plastic vacuum pipe and "
             "the flame spreads: spark bursts (red at once), the suction-duct temperature spikes to ~200 degC, the "
             "collector inlet warms, production stops while the crew fights the fire. At 02:25 they restart "
             "instead of evacuating; embers from the smouldering deposits keep passing the spark detector every "
             "few minutes (repeated orange alarms while production runs) and are drawn into the collector, which "
             "explodes at 03:32:07 (dP saturates then collapses, temperature and spark bursts, the fan trips)."),
    start_local="2024-01-19T23:30:00+08:00",
    duration_s=DURATION,
    build=build,
    truth=Truth(hazard_start_s=DEFLAGRATION, danger_s=RESTART,
                points=(f"{AREA}.spark", f"{AREA}.duct_t", f"{AREA}.inlet_t", f"{AREA}.dp"),
                note="02:25 production restarted after the 01:54 deflagration instead of evacuating (the collector "
                     "exploded at 03:32:07)"),
)
