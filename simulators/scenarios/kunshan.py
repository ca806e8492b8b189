"""Kunshan, 2 August 2014: aluminium wheel-hub polishing dust explosion at Zhongrong Metal Products (146 dead).

From the State Council investigation: the collection system had not been cleaned for a long time; the No. 1
collector's dust bucket had rusted through, the aluminium dust in it got damp and self-heated (aluminium + water
oxidise exothermically, giving off hydrogen) until it reached the ignition temperature of a dust cloud. Staff came
on shift at 07:00; at about 07:10 the collector fan was started and polishing began; the fan lifted a dust cloud
over the hot bucket, and at 07:34 the No. 1 collector exploded; with no explosion vents the blast ran back through
the ducts and out of every suction port into the workshop.

Rebuilt here (times local, t = 0 at 20:00 on 1 August; the evening shift and its end at 22:00 are assumed):
  20:00-22:00  evening production, collector running: normal life, except that the bags have been blinding with
               damp dust for days (residual dP +300 Pa, rising ~150 Pa a day) and the hopper air is humid.
  22:15        the fan stops. With no air stream to carry the heat away, the damp dust in the rusted bucket
               self-heats all night (hazard start): the hot spot runs away towards several hundred degC; the
               hopper-wall sensor sees ~1/5 of it, creeping up with a steepening slope (~x^3 over 9.3 h, ~95 K at
               ignition), and the hopper humidity climbs as water steams off the heating dust.
  07:10        fan on, polishing on: the air stream lifts a cloud over the hot bucket (danger point: from here the
               explosion only waits for the cloud to reach the hot spot; stopping before the fan start prevents it).
  07:34        the No. 1 collector explodes.
"""
from __future__ import annotations

import numpy as np

from config.model import Plant, Sector
from simulators import signals as sg
from simulators.scenarios.base import Scenario, Series, Truth
from simulators.sectors import dust

AREA = "dust1"
START_HOUR = 20.0
H = 3600.0
EVENING_SHIFT = (-4 * H, 2 * H)             # 16:00-22:00 on 1 August
FAN_STOP = dust.on_grid(2 * H + dust.FAN_TRAIL_S)   # 22:15: self-heating starts
FAN_START = 11 * H + 10 * 60                  # 07:10 on 2 August
WORK_START = FAN_START + 30                   # polishing begins as soon as the fan runs
IGNITION = 11 * H + 34 * 60                   # 07:34
DURATION = IGNITION + 60

HOT_SPOT_RISE_K = 95.0   # what the hopper-wall sensor sees of the hot spot at ignition (~1/5 of ~480 K)
RUNAWAY_POWER = 3.0      # self-heating accelerates: the slope keeps steepening until ignition
BLINDING_PA = 300.0      # residual dP over clean bags when the scenario starts
BLINDING_PER_DAY = 150.0
AUGUST_MEAN_C = 30.0


def self_heating(t: np.ndarray) -> np.ndarray:
    """K above its normal reading at the hopper-wall sensor, from the fan stop to ignition."""
    return sg.accelerating(t, FAN_STOP, IGNITION, HOT_SPOT_RISE_K, RUNAWAY_POWER)


def blinding(t: np.ndarray) -> np.ndarray:
    return BLINDING_PA + BLINDING_PER_DAY * t / sg.DAY_S


def build(plant: Plant, seed: int) -> dict[str, Series]:
    op = dust.Operation(production=[EVENING_SHIFT, (WORK_START, DURATION + H)],
                        fan=[dust.fan_for([EVENING_SHIFT])[0], (FAN_START, DURATION + H)],
                        ambient_c=AUGUST_MEAN_C, ambient_swing_c=4.0, extra_dp=blinding)
    out = dust.operate(plant, AREA, DURATION, seed, START_HOUR, op)
    t, v = out[f"{AREA}.hopper_t"]
    out[f"{AREA}.hopper_t"] = (t, np.round(v + self_heating(t), 1))
    t, v = out[f"{AREA}.humidity"]
    damp = 22.0 + 10.0 * np.minimum(1.0, self_heating(t) / 40.0)  # rain through the rusted bucket, then steam
    out[f"{AREA}.humidity"] = (t, np.round(np.clip(v + damp, 0.0, 99.5), 1))
    return dust.explosion(out, plant, AREA, IGNITION, seed)


SCENARIO = Scenario(
    name="kunshan",
    sector=Sector.DUST,
    title_zh="昆山中荣粉尘爆炸（2014）",
    title_en="Kunshan Zhongrong polishing dust explosion (2014)",
    summary=("Aluminium wheel polishing. The collector's dust bucket has rusted through and the aluminium dust in it "
             "is damp; the bags have been blinding for days (baghouse dP riding ~300-400 Pa above its usual band "
             "whenever the fan runs) and the hopper air is humid. After the fan stops at 22:15 the damp dust "
             "self-heats all night: the hopper temperature creeps up with an ever steeper slope (blue 50 degC at "
             "~03:40, yellow ~04:30, orange ~05:10, red ~05:40, ~115 degC by morning) and the humidity climbs. At "
             "07:10 the fan and polishing start, lifting a cloud over the hot bucket; at 07:34 the collector "
             "explodes (dP saturates then collapses, temperature and spark bursts, the fan trips)."),
    start_local="2014-08-01T20:00:00+08:00",
    duration_s=DURATION,
    build=build,
    truth=Truth(hazard_start_s=FAN_STOP, danger_s=FAN_START,
                points=(f"{AREA}.hopper_t", f"{AREA}.humidity", f"{AREA}.dp"),
                note="07:10 collector fan start (the explosion followed at 07:34): the last moment to keep the fan "
                     "off and the workshop empty"),
)
