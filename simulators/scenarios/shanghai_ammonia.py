"""Shanghai (Baoshan), 31 August 2013: liquid ammonia release at Weng's Cold Storage (15 dead, 25 injured).

From the Shanghai investigation: the hot-gas defrost of a single-freezer's evaporator was done against the rules:
hot ammonia gas was let into an evaporator and return header still holding liquid, which set off liquid hammer
(condensation-induced hydraulic shock); the pressure shocks broke the badly welded end cap off the freezer's
return-gas header, and liquid ammonia sprayed into the processing hall where the packing crew worked, at about
10:50. Witnesses and the analysis describe some seven pressure/vibration shocks in the two minutes before.

Rebuilt here (times local, t = 0 at 08:30, the hall working since 08:00; minute-level times within 10:40-10:50 are
our reconstruction):
  08:30-10:40  normal life: no defrost, hall NH3 a few ppm, hot late-summer day.
  10:40:00     defrost begins without the pump-out (hazard start): liquid feed and suction shut with the liquid
               still inside; the trapped liquid warms in the hall and the evaporator pressure creeps from ~0.35 to
               ~0.42 MPa.
  10:47:50     the hot-gas valve is opened wide: pressure up to ~0.72 MPa within ~20 s, and hot gas meets cold
               liquid: seven hydraulic shocks over two minutes, each stronger than the last. A 1 Hz transmitter
               sees each shock's tail only (a sharp surge decaying in ~0.6 s, sampled at a random moment).
  10:50:00     the end cap blows off (danger point). The header empties into the hall: evaporator pressure falls
               towards ~0.08 MPa, hall NH3 passes 25 / 50 ppm within ~10 s and nears the detector's 1000 ppm full
               scale within two minutes; hot gas escaping through the break draws the discharge pressure down.
"""
from __future__ import annotations

import numpy as np

from config.model import Plant, Sector
from simulators import signals as sg
from simulators.scenarios.base import Scenario, Series, Truth
from simulators.sectors import ammonia

AREA = "nh3"
START_HOUR = 8.5
DEFROST = 7800.0                  # 10:40:00
HOT_GAS = 8270.0                  # 10:47:50
END_CAP = 8400.0                  # 10:50:00
DURATION = END_CAP + 180.0
TRAPPED_RISE = 0.07               # MPa the isolated liquid-logged coil gains warming in the hall
HOT_GAS_P = 0.72                  # MPa with the hot-gas valve wide open
SHOCKS_AFTER_S = (6.0, 22.0, 39.0, 57.0, 74.0, 92.0, 108.0)
SHOCK_FIRST, SHOCK_LAST = 0.3, 1.4   # MPa surge at the transmitter, growing as more liquid is slugged
SHOCK_DECAY_S = 0.6
AFTER_BREAK_P = 0.08              # MPa left in the open header (liquid flashing)
HALL_FULL_PPM = 1000.0
HALL_DELAY_S = 6.0                # the jet's cloud reaches the hall detector
HALL_FILL_S = 20.0
AUGUST_MEAN_C = 31.0


def shocks(seed: int) -> list[tuple[float, float]]:
    """(time, MPa surge) of each hydraulic shock: timing jittered, the strength growing shock by shock."""
    u = sg.uniform(seed, f"{AREA}/shocks", np.arange(0.0, 2 * len(SHOCKS_AFTER_S)))
    n = len(SHOCKS_AFTER_S)
    out = []
    for k, after in enumerate(SHOCKS_AFTER_S):
        at = HOT_GAS + after + 6.0 * (u[k] - 0.5)
        size = (SHOCK_FIRST + (SHOCK_LAST - SHOCK_FIRST) * (k / (n - 1)) ** 1.2) * (0.85 + 0.3 * u[n + k])
        out.append((float(at), float(size)))
    return out


def evaporator(t: np.ndarray, v: np.ndarray, seed: int) -> np.ndarray:
    p = (v + TRAPPED_RISE * sg.smoothstep(t, DEFROST, HOT_GAS)
         + (HOT_GAS_P - ammonia.P_SUCTION - TRAPPED_RISE) * sg.smoothstep(t, HOT_GAS, HOT_GAS + 20.0))
    for at, size in shocks(seed):
        p = p + np.where(t >= at, size * np.exp(-np.clip(t - at, 0.0, None) / SHOCK_DECAY_S), 0.0)
    broken = t >= END_CAP
    p = np.where(broken, AFTER_BREAK_P + (p - AFTER_BREAK_P) * np.exp(-np.clip(t - END_CAP, 0, None) / 12.0), p)
    return np.round(p, 3)


def build(plant: Plant, seed: int) -> dict[str, Series]:
    op = ammonia.Operation(defrosts=[], ambient_c=AUGUST_MEAN_C, weekday=5)  # a Saturday
    out = ammonia.operate(plant, AREA, DURATION, seed, START_HOUR, op)
    t, v = out[f"{AREA}.defrost"]
    out[f"{AREA}.defrost"] = (t, np.where(t >= DEFROST, 1.0, v))
    t, v = out[f"{AREA}.evap_p"]
    out[f"{AREA}.evap_p"] = (t, evaporator(t, v, seed))
    t, v = out[f"{AREA}.hall_ppm"]
    release = HALL_FULL_PPM * (1 - np.exp(-np.clip(t - END_CAP - HALL_DELAY_S, 0, None) / HALL_FILL_S))
    out[f"{AREA}.hall_ppm"] = (t, np.round(np.minimum(v + release, HALL_FULL_PPM), 1))
    t, v = out[f"{AREA}.discharge_p"]
    draw = (ammonia.HOT_GAS_DRAW * sg.smoothstep(t, HOT_GAS, HOT_GAS + 20.0)
            + 0.12 * sg.smoothstep(t, END_CAP, END_CAP + 60.0))  # hot gas escaping through the break
    out[f"{AREA}.discharge_p"] = (t, np.round(v - draw, 3))
    return out


SCENARIO = Scenario(
    name="shanghai-ammonia",
    sector=Sector.AMMONIA,
    title_zh="上海翁牌冷藏液氨泄漏（2013）",
    title_en="Shanghai Weng's Cold Storage ammonia release (2013)",
    summary=("Hot-gas defrost of a freezer evaporator without pumping out its liquid. From 10:40 the defrost flag "
             "is on and the isolated coil's pressure creeps up; at 10:47:50 hot gas is let in wide open (to "
             "~0.72 MPa) and seven hydraulic shocks follow in two minutes, growing stronger: single-sample "
             "pressure spikes of the evaporator (yellow 0.9 / orange 1.05 / red 1.2 MPa). At 10:50 the return "
             "header's end cap blows off: the evaporator pressure collapses and NH3 in the processing hall, "
             "where people work, passes 25 and 50 ppm within ~10 s and nears the detector's full scale."),
    start_local="2013-08-31T08:30:00+08:00",
    duration_s=DURATION,
    build=build,
    truth=Truth(hazard_start_s=DEFROST, danger_s=END_CAP,
                points=(f"{AREA}.evap_p", f"{AREA}.hall_ppm", f"{AREA}.defrost"),
                note="10:50 the return header's end cap blows off and liquid ammonia sprays into the processing hall"),
)
