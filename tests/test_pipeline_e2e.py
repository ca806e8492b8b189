"""The whole pipeline with real parts: Mosquitto -> riskwatch (a subprocess) -> SQLite -> websocket client."""
from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import TOKENS, RiskwatchProcess, wait_until
from config.load import DEMO, load_plant
from simulators.publish import publish_plant
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

PREFIX = "rw/v1/demo"


class Publisher:
    """A QoS 1 publisher that waits for each PUBACK: what it sent, the broker has."""

    def __init__(self, broker):
        self.c = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()

    def raw(self, topic: str, payload: bytes | str) -> None:
        self.c.publish(topic, payload, qos=1).wait_for_publish(10)

    def reading(self, point: str, ts: float, value) -> None:
        self.raw(f"{PREFIX}/point/{point}", json.dumps({"ts": ts, "value": value}))

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


class WallClient:
    """A websocket client as the wall display uses it."""

    def __init__(self, rw: RiskwatchProcess, since: int | None = None, role: str = "display"):
        self._conn = connect(f"ws://127.0.0.1:{rw.port}/ws", open_timeout=10)
        self.ws = self._conn.__enter__()
        self.ws.send(json.dumps({"token": TOKENS[role], "since": since}))
        self.hello = self.recv()
        self.seq = self.hello["seq"]

    def recv(self, timeout: float = 30) -> dict:
        msg = json.loads(self.ws.recv(timeout=timeout))
        self.seq = max(getattr(self, "seq", 0), msg.get("seq", 0))
        return msg

    def until(self, pred, timeout: float = 60) -> list[dict]:
        """Every message up to and including the first one matching pred."""
        seen, deadline = [], time.monotonic() + timeout
        while True:
            msg = self.recv(timeout=max(0.1, deadline - time.monotonic()))
            seen.append(msg)
            if pred(msg):
                return seen

    def close(self) -> None:
        self._conn.__exit__(None, None, None)


def alert_event(kind: str, point: str, tier: str | None = None):
    return lambda m: (m["type"] == "alert_event" and m["event"]["kind"] == kind and m["event"]["point"] == point
                      and (tier is None or m["event"]["tier"] == tier))


def test_hopper_self_heating_reaches_the_wall_display_as_a_red_alert(riskwatch, broker):
    wall = WallClient(riskwatch)
    assert wall.recv()["type"] == "snapshot"
    pub = Publisher(broker)
    now = time.time()
    # the hopper creeps from 40 to 88 degC over 49 s of readings: blue, yellow, orange, then red
    for i in range(49):
        pub.reading("dust1.hopper_t", now - 49 + i, 40.0 + i)
    seen = wall.until(alert_event("tier_up", "dust1.hopper_t", "red"))
    kinds = [(m["event"]["kind"], m["event"]["tier"]) for m in seen
             if m["type"] == "alert_event" and m["event"]["point"] == "dust1.hopper_t" and m["event"]["rule"] == "high"]
    assert kinds == [("raised", "blue"), ("tier_up", "yellow"), ("tier_up", "orange"), ("tier_up", "red")]
    red = seen[-1]["event"]
    assert "灰斗温度" in red["reason_zh"] and "红色" in red["reason_zh"]
    assert red["alert"]["state"] == "active" and red["alert"]["acked_by"] is None
    status, active = riskwatch.get("/api/alerts/active")
    assert status == 200
    assert [(a["point"], a["tier"]) for a in active if a["rule"] == "high"] == [("dust1.hopper_t", "red")]
    health = riskwatch.health()
    assert health["alerts"]["red"] == 1 and health["readings"]["accepted"] >= 49
    pub.close()
    wall.close()


def test_the_simulated_demo_plant_flows_into_the_store_for_every_point(riskwatch, broker):
    plant = load_plant(DEMO)
    stop = threading.Event()
    stats = publish_plant(plant, broker.host, broker.port, rate_hz=4, duration=2.0, incident_at=None, stop=stop)
    assert stats.acked > 0
    wait_until(lambda: riskwatch.health()["readings"]["accepted"] >= stats.acked, 30, "all readings stored")
    status, points = riskwatch.get("/api/points")
    assert status == 200
    missing = [p["id"] for p in points if p["latest"] is None]
    assert missing == []
    assert riskwatch.health()["readings"]["rejected"] == 0


def test_sigkill_mid_stream_loses_no_acknowledged_reading_and_stores_each_once(tmp_path, broker):
    rw = RiskwatchProcess(tmp_path, broker).start()
    plant = load_plant(DEMO)
    stop = threading.Event()
    result = {}
    publisher = threading.Thread(target=lambda: result.setdefault("stats", publish_plant(
        plant, broker.host, broker.port, rate_hz=100, incident_at=None, stop=stop, record_acked=True)))
    publisher.start()
    try:
        wait_until(lambda: rw.health()["readings"]["accepted"] > 500, 60, "readings to flow")
        # The disk stalls (we hold SQLite's write lock): riskwatch keeps receiving but cannot commit...
        stall = sqlite3.connect(rw.db, isolation_level=None)
        stall.execute("BEGIN IMMEDIATE")
        time.sleep(1.0)
        rw.kill()  # ...and is killed with SIGKILL holding delivered, uncommitted messages
        stall.execute("ROLLBACK")
        stall.close()
        time.sleep(1.0)  # the publisher goes on while riskwatch is down; the broker queues for its session
        rw.start()
        wait_until(lambda: rw.health()["readings"]["accepted"] > 0, 60, "readings after restart")
    finally:
        stop.set()
        publisher.join(30)
    acked = result["stats"].acked_readings
    assert len(acked) > 500
    db = sqlite3.connect(rw.db)

    def stored() -> set:
        return set(db.execute("SELECT p.name, r.ts FROM readings r JOIN point_ids p ON p.id = r.point"))

    wait_until(lambda: set(acked) <= stored(), 60, "every acknowledged reading to be stored")
    rows = db.execute("SELECT count(*), count(DISTINCT p.name || '@' || r.ts) FROM readings r "
                      "JOIN point_ids p ON p.id = r.point").fetchone()
    assert rows[0] == rows[1]  # exactly once
    rw.stop()


def test_readings_published_while_riskwatch_is_down_arrive_when_it_returns(tmp_path, broker):
    rw = RiskwatchProcess(tmp_path, broker).start()
    rw.stop()
    pub = Publisher(broker)
    now = time.time()
    for i in range(20):
        pub.reading("sump1.h2s", now - 20 + i, 0.5)
    rw.start()
    wait_until(lambda: rw.health()["readings"]["accepted"] == 20, 30, "the queued readings")
    status, hist = rw.get(f"/api/points/sump1.h2s/history?start={now - 60}&end={now + 1}")
    assert status == 200 and len(hist["rows"]) == 20 and hist["bucket_s"] == 0
    pub.close()
    rw.stop()


def test_bad_payloads_are_rejected_with_reasons_while_good_readings_flow(riskwatch, broker):
    pub = Publisher(broker)
    now = time.time()
    bad = [
        (f"{PREFIX}/point/dust1.hopper_t", b"{not json"),
        (f"{PREFIX}/point/no.such.point", json.dumps({"ts": now, "value": 1})),
        (f"{PREFIX}/point/dust1.hopper_t", json.dumps({"ts": now, "value": "hot"})),
        (f"{PREFIX}/point/dust1.hopper_t", '{"ts": %f, "value": NaN}' % now),
        (f"{PREFIX}/point/dust1.hopper_t", json.dumps({"ts": now, "value": 9999})),
        (f"{PREFIX}/point/dust1.hopper_t", json.dumps({"ts": now + 86400, "value": 40})),
        (f"{PREFIX}/point/dust1.hopper_t", json.dumps({"ts": now - 30 * 86400, "value": 40})),
        (f"{PREFIX}/point/dust1.hopper_t", b"x" * 300_000),
        (f"{PREFIX}/elsewhere/x", json.dumps({"ts": now, "value": 1})),
    ]
    for i, (topic, payload) in enumerate(bad):
        pub.raw(topic, payload)
        pub.reading("dust1.inlet_t", now - 20 + i, 30.0 + i)  # good readings interleaved
    gw = {"readings": [{"point": "sump1.o2", "ts": now - 1, "value": 20.9},
                       {"point": "sump1.o2", "ts": now - 2, "value": "x"},
                       {"point": "sump1.lel", "value": 0.0}]}
    pub.raw(f"{PREFIX}/gateway/gw1", json.dumps({"ts": now - 1, **gw}))
    wait_until(lambda: riskwatch.health()["readings"]["messages"] >= 2 * len(bad) + 1, 30, "all messages")
    health = riskwatch.health()["readings"]
    assert health["accepted"] == len(bad) + 2
    assert health["rejected_by_reason"] == {"malformed_json": 1, "unknown_point": 1, "wrong_type": 2,
                                            "not_finite": 1, "out_of_range": 1, "ts_future": 1, "ts_past": 1,
                                            "oversized": 1, "bad_topic": 1}
    status, rejected = riskwatch.get("/api/rejected?limit=100", role="engineer")
    assert status == 200 and len(rejected) == 10
    assert all(r["detail"] for r in rejected)
    assert riskwatch.get("/api/rejected", role="operator")[0] == 403
    assert len(riskwatch.get(f"/api/points/dust1.inlet_t/history?start={now - 60}")[1]["rows"]) == len(bad)
    pub.close()


def test_a_reading_delivered_three_times_is_stored_once(riskwatch, broker):
    pub = Publisher(broker)
    now = time.time()
    for _ in range(3):
        pub.reading("steel1.co_a", now - 1, 3.0)
    wait_until(lambda: riskwatch.health()["readings"]["messages"] >= 3, 30, "three messages")
    h = riskwatch.health()["readings"]
    assert (h["accepted"], h["duplicates"]) == (1, 2)
    pub.close()


def test_a_reconnecting_wall_display_misses_no_alert_event(riskwatch, broker):
    wall = WallClient(riskwatch)
    wall.recv()  # snapshot
    pub = Publisher(broker)
    now = time.time()
    for i in range(8):
        pub.reading("steel1.co_a", now - 60 + i, 30.0)  # above orange 24 ppm for longer than its on-delay
    wall.until(alert_event("raised", "steel1.co_a"))
    last_seen = wall.seq
    wall.close()
    # while the display is away: the CO alarm escalates to red, and the gas main pressure falls
    for i in range(8):
        pub.reading("steel1.co_a", now - 50 + i, 200.0)
    for i in range(10):
        pub.reading("steel1.main_p", now - 50 + i, 3.0)
    wait_until(lambda: riskwatch.health()["alerts"]["red"] >= 2, 30, "two red alerts")
    status, log = riskwatch.get(f"/api/alerts/events?since={last_seen}")
    missed = [e["seq"] for e in log]
    assert len(missed) >= 2
    back = WallClient(riskwatch, since=last_seen)
    replay = back.until(lambda m: m["type"] == "snapshot")
    got = [m["seq"] for m in replay if m["type"] == "alert_event"]
    assert got[: len(missed)] == missed  # every missed event, in order, nothing skipped
    assert {(a["point"], a["tier"]) for a in replay[-1]["alerts"]} >= {("steel1.co_a", "red"), ("steel1.main_p", "red")}
    back.close()
    pub.close()


def test_operators_acknowledge_displays_may_not_and_every_ack_is_in_the_event_log(riskwatch, broker):
    pub = Publisher(broker)
    now = time.time()
    for i in range(6):
        pub.reading("nh3.room_ppm", now - 10 + i, 160.0)
    alert = wait_until(lambda: [a for a in riskwatch.get("/api/alerts/active")[1] if a["point"] == "nh3.room_ppm"],
                       30, "the ammonia alert")[0]
    assert alert["tier"] == "red"
    assert riskwatch.call("POST", f"/api/alerts/{alert['id']}/ack", {"note": "x"}, role="display")[0] == 403
    assert riskwatch.call("POST", f"/api/alerts/{alert['id']}/ack", {}, role=None)[0] == 401
    status, acked = riskwatch.call("POST", f"/api/alerts/{alert['id']}/ack", {"note": "已通知现场"}, role="operator")
    assert status == 200 and acked["acked_by"] == "operator-user" and acked["ack_note"] == "已通知现场"
    assert riskwatch.call("POST", f"/api/alerts/{alert['id']}/ack", {}, role="operator")[0] == 409
    events = riskwatch.get("/api/alerts/events?since=0")[1]
    acks = [e for e in events if e["kind"] == "acked" and e["alert_id"] == alert["id"]]
    assert len(acks) == 1 and acks[0]["actor"] == "operator-user" and acks[0]["note"] == "已通知现场"
    db = sqlite3.connect(riskwatch.db)
    try:
        db.execute("DELETE FROM alert_events")
        raise AssertionError("the event log accepted a delete")
    except sqlite3.DatabaseError as e:
        assert "append-only" in str(e)
    pub.close()


def test_every_route_but_health_needs_a_token(riskwatch):
    for path in ("/api/me", "/api/plant", "/api/points", "/api/alerts/active", "/api/alerts/events",
                 "/api/points/dust1.dp/history"):
        assert riskwatch.call("GET", path, role=None)[0] == 401, path
    assert riskwatch.get("/api/me")[1] == {"name": "display-user", "role": "display"}
    health = riskwatch.health()
    assert health["broker"]["connected"] is True and health["broker"]["address"].startswith("127.0.0.1:")
    with connect(f"ws://127.0.0.1:{riskwatch.port}/ws", open_timeout=10) as ws:
        ws.send(json.dumps({"token": "wrong-token-000000000", "since": None}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 4401


def test_a_sensor_that_stops_talking_raises_a_stale_alert_and_clears_when_it_returns(riskwatch, broker):
    wall = WallClient(riskwatch)
    pub = Publisher(broker)
    pub.reading("sump1.h2s", time.time(), 0.2)
    seen = wall.until(lambda m: m["type"] == "alert_event" and m["event"]["point"] == "sump1.h2s"
                      and m["event"]["rule"] == "stale" and m["event"]["kind"] == "raised")
    assert seen[-1]["event"]["tier"] == "blue" and "无数据" in seen[-1]["event"]["reason_zh"]
    pub.reading("sump1.h2s", time.time(), 0.3)
    wall.until(lambda m: m["type"] == "alert_event" and m["event"]["point"] == "sump1.h2s"
               and m["event"]["rule"] == "stale" and m["event"]["kind"] == "cleared")
    pub.close()
    wall.close()


def test_an_alert_survives_a_restart_and_clears_when_the_gas_comes_down(tmp_path, broker):
    rw = RiskwatchProcess(tmp_path, broker).start()
    pub = Publisher(broker)
    now = time.time()
    for i in range(8):
        pub.reading("sump1.h2s", now - 200 + i, 25.0)  # above red 20 ppm
    alert = wait_until(lambda: [a for a in rw.get("/api/alerts/active")[1]
                                if a["point"] == "sump1.h2s" and a["rule"] == "high"], 30, "the H2S alert")[0]
    assert alert["tier"] == "red"
    rw.stop()
    rw.start()
    after = [a for a in rw.get("/api/alerts/active")[1] if a["point"] == "sump1.h2s" and a["rule"] == "high"]
    assert [(a["id"], a["tier"], a["state"]) for a in after] == [(alert["id"], "red", "active")]
    # after the restart the detector starts from the book's red, so the fall is seen as a clear, not as nothing
    for i in range(90):
        pub.reading("sump1.h2s", now - 190 + i, 0.5)  # 90 s of clean air, past the 60 s off-delay
    events = wait_until(lambda: [e for e in rw.get("/api/alerts/events?since=0")[1]
                                 if e["alert_id"] == alert["id"] and e["kind"] == "cleared"], 30, "the clear")
    assert events[0]["tier"] == "normal"
    pub.close()
    rw.stop()


def test_a_broker_outage_is_reported_and_ingestion_resumes_on_its_own(riskwatch, broker):
    broker.stop()
    wait_until(lambda: riskwatch.health()["broker"]["connected"] is False, 30, "the outage to be noticed")
    assert riskwatch.health()["status"] == "degraded"
    broker.start()
    wait_until(lambda: riskwatch.health()["broker"]["connected"], 60, "the reconnect")
    pub = Publisher(broker)
    pub.reading("nh3.hall_ppm", time.time(), 3.0)
    wait_until(lambda: riskwatch.health()["readings"]["accepted"] == 1, 30, "the reading after the outage")
    assert riskwatch.health()["broker"]["connects"] >= 2
    pub.close()
