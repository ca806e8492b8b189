"""A scenario replayed in real time over MQTT reaches riskwatch as a live plant and raises its alarm."""
from __future__ import annotations

import numpy as np

from config.load import DEMO, load_plant
from config.model import Sector
from conftest import wait_until
from simulators.replay import publish_scenario
from simulators.scenarios import Scenario, Truth


def h2s_release(plant, seed):
    t = np.arange(0.0, 30.0, 0.5)
    return {"sump1.h2s": (t, np.where(t < 5, 0.3, 0.3 + (t - 5) * 3.0))}  # agitation at 5 s: +3 ppm/s


def test_a_replayed_h2s_release_at_double_speed_raises_a_red_alarm_in_riskwatch(riskwatch, broker):
    sc = Scenario("release", Sector.CONFINED_SPACE, "硫化氢释放", "H2S release", "", "2026-03-02T06:00:00+08:00",
                  30.0, h2s_release, Truth(5.0, 20.0, ("sump1.h2s",)))
    # at 2x, red (20 ppm, 11.6 s into the scenario) lasts ~9 s of wall clock: longer than the 2 s on-delay
    stats = publish_scenario(load_plant(DEMO), sc, broker.host, broker.port, speed=2.0)
    assert stats.sent == 60
    alert = wait_until(lambda: [a for a in riskwatch.get("/api/alerts/active")[1]
                                if a["point"] == "sump1.h2s" and a["rule"] == "high"], 30, "the H2S alarm")[0]
    assert alert["max_tier"] == "red"
