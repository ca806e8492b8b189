"""A scenario in real time over MQTT: `riskwatch simulate --scenario NAME` (demos, drills, integration)."""
from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

from config.model import Plant
from ingest.payload import encode_reading, point_topic
from simulators.publish import CONNECT_TIMEOUT_S, PublishStats, make_client
from simulators.scenarios import Scenario


def publish_scenario(plant: Plant, scenario: Scenario, host: str, port: int, *, seed: int = 1, speed: float = 1.0,
                     skip_s: float = 0.0, stop: threading.Event | None = None,
                     on_progress: Callable[[float, PublishStats], None] | None = None,
                     clock: Callable[[], float] = time.time) -> PublishStats:
    """Publishes the scenario's readings as they fall due. Each reading is stamped with the moment it is
    published, so riskwatch sees a live plant; speed > 1 compresses the scenario's time (and its dynamics) for a
    demonstration; skip_s starts that far into the scenario (past its quiet lead-in)."""
    if speed <= 0:
        raise ValueError("speed must be > 0")
    stop = stop or threading.Event()
    series = scenario.series(plant, seed)
    names = list(series)
    t = np.concatenate([series[n][0] for n in names])
    v = np.concatenate([series[n][1] for n in names])
    who = np.concatenate([np.full(len(series[n][0]), i) for i, n in enumerate(names)])
    order = np.argsort(t, kind="stable")
    t, v, who = t[order], v[order], who[order]
    keep = t >= skip_s
    t, v, who = t[keep] - skip_s, v[keep], who[keep]
    topics = [point_topic(plant.broker.topic_prefix, plant.site, n) for n in names]
    stats = PublishStats()
    connected = threading.Event()
    client = make_client(f"riskwatch-scenario-{scenario.name}-{id(stats):x}")
    client.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else None

    def acked(c, u, mid, rc, p) -> None:
        stats.acked += 1

    client.on_publish = acked
    client.max_inflight_messages_set(1000)
    client.connect_async(host, port, keepalive=30)
    client.loop_start()
    try:
        if not connected.wait(CONNECT_TIMEOUT_S):
            raise ConnectionError(f"no MQTT broker answered at {host}:{port} within {CONNECT_TIMEOUT_S:g} s")
        wall0, i, last_report = clock(), 0, 0.0
        while i < len(t) and not stop.is_set():
            due = wall0 + t[i] / speed
            wait = due - clock()
            if wait > 0:
                stop.wait(min(wait, 0.5))
                continue
            j = int(np.searchsorted(t, (clock() - wall0) * speed, side="right"))
            for k in range(i, max(j, i + 1)):
                client.publish(topics[who[k]], encode_reading(clock(), float(v[k])), qos=1)
                stats.sent += 1
            i = max(j, i + 1)
            if on_progress and clock() - last_report >= 5:
                last_report = clock()
                on_progress(skip_s + (clock() - wall0) * speed, stats)
        return stats
    finally:
        client.disconnect()
        client.loop_stop()
