"""The whole pipeline with real parts: Mosquitto -> riskwatch (a subprocess) -> SQLite -> websocket client."""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import urllib.request

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import RiskwatchProcess, alert_event, wait_until
from config.load import DEMO, load_plant
from simulators.publish import publish_plant

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


class SensorStream:
    """Quiet sensors talking fast at QoS 1, the way a busy gateway does: up to 100 messages in flight, none waited
    for one by one. Each message carries one reading with its own (point, ts) and a value told apart from its
    neighbours'; the broker's PUBACK is what makes a reading "acknowledged".

    dust1.fan_a (fan current, 0-500 A) and sump1.people (0-20) have no alarm limits, and their timestamps lie an
    hour back, so the stream raises no alert of any kind."""

    POINTS = (("dust1.fan_a", lambda n: (n % 4000) / 10), ("sump1.people", lambda n: (n % 2000) / 100))
    INFLIGHT = 100

    def __init__(self, broker):
        self.base_ms = int(time.time() * 1000) - 3_600_000
        self.lock = threading.Lock()
        self.published: dict[tuple[str, int], float] = {}  # (point, ts_ms) -> value, for every message sent
        self.acked: dict[tuple[str, int], float] = {}      # the subset the broker acknowledged
        self.refused: list[tuple[str, int]] = []
        self.errors: list[str] = []
        self._inflight: dict[int, tuple[str, int]] = {}
        self._early: dict[int, bool] = {}                  # PUBACKs that came back before publish() gave us the mid
        self._room = threading.Semaphore(self.INFLIGHT)
        self._stop = threading.Event()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.c.max_inflight_messages_set(self.INFLIGHT)
        self.c.on_publish = self._on_publish
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()
        self._thread = threading.Thread(target=self._run, name="sensor-stream", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            if not self._room.acquire(timeout=0.1):
                continue
            point, value_of = self.POINTS[n % len(self.POINTS)]
            key, value = (point, self.base_ms + n), value_of(n)
            with self.lock:
                self.published[key] = value
            info = self.c.publish(f"{PREFIX}/point/{point}", json.dumps({"ts": key[1] / 1000, "value": value}), qos=1)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                self.errors.append(f"publish {key}: {info.rc}")
            with self.lock:
                refused = self._early.pop(info.mid, None)
                if refused is None:
                    self._inflight[info.mid] = key
                else:
                    self._settle(key, refused)
            n += 1
            time.sleep(0.001)  # ~ a thousand readings a second: a stream, not a flood

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        refused = bool(getattr(reason_code, "is_failure", False))
        with self.lock:
            key = self._inflight.pop(mid, None)
            if key is None:
                self._early[mid] = refused
            else:
                self._settle(key, refused)
        self._room.release()

    def _settle(self, key: tuple[str, int], refused: bool) -> None:
        if refused:
            self.refused.append(key)
        else:
            self.acked[key] = self.published[key]

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)

    def close(self) -> None:
        """Stops publishing and waits for the broker to acknowledge what is still in flight."""
        self._stop.set()
        self._thread.join(10)
        wait_until(lambda: not self._inflight, 30, "the last PUBACKs")
        self.c.loop_stop()
        self.c.disconnect()


def story(messages: list[dict], point: str, rule: str) -> list[tuple[str, str]]:
    """(kind, tier) of every alert event a wall received for one point's rule, in order."""
    return [(m["event"]["kind"], m["event"]["tier"]) for m in messages
            if m["type"] == "alert_event" and m["event"]["point"] == point and m["event"]["rule"] == rule]


def test_hopper_self_heating_reaches_the_wall_display_as_a_red_alert(riskwatch, broker):
    pub = Publisher(broker)
    with riskwatch.wall() as wall:
        assert wall.recv()["type"] == "snapshot"
        now = time.time()
        # the hopper creeps from 40 to 88 degC over 49 s of readings: blue, yellow, orange, then red
        for i in range(49):
            pub.reading("dust1.hopper_t", now - 49 + i, 40.0 + i)
        seen = wall.until(alert_event("tier_up", "dust1.hopper_t", "high", "red"))
    assert story(seen, "dust1.hopper_t", "high") == [("raised", "blue"), ("tier_up", "yellow"),
                                                      ("tier_up", "orange"), ("tier_up", "red")]
    red = seen[-1]["event"]
    assert "灰斗温度" in red["reason_zh"] and "红色" in red["reason_zh"]
    assert red["alert"]["state"] == "active" and red["alert"]["acked_by"] is None
    # the REST view agrees: one hopper alert, red, the same episode the wall was told about
    hopper = riskwatch.alerts("dust1.hopper_t", "high")
    assert [(a["id"], a["tier"], a["state"]) for a in hopper] == [(red["alert_id"], "red", "active")]
    status, active = riskwatch.get("/api/alerts/active")
    assert status == 200
    assert [a["point"] for a in active if a["rule"] == "high"] == ["dust1.hopper_t"]  # no other point ran hot
    status, hist = riskwatch.get(f"/api/points/dust1.hopper_t/history?start={now - 60}&end={now + 1}")
    assert status == 200 and [v for _, v in hist["rows"]] == [40.0 + i for i in range(49)]
    pub.close()


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
    stream = SensorStream(broker)
    try:
        wait_until(lambda: rw.health()["readings"]["accepted"] > 500, 60, "readings to flow")
        # The disk stalls (we hold SQLite's write lock): riskwatch keeps receiving but cannot commit...
        stall = sqlite3.connect(rw.db, isolation_level=None)
        stall.execute("BEGIN IMMEDIATE")
        time.sleep(1.0)
        wait_until(lambda: rw.health()["readings"]["backlog"] > 0, 30, "delivered messages waiting for the disk")
        first_run = rw.health()["readings"]  # nothing commits while we hold the lock: the first run's last word
        rw.kill()  # ...and is killed with SIGKILL holding delivered, uncommitted messages
        stall.execute("ROLLBACK")
        stall.close()
        # the sensors go on while riskwatch is down; the broker acknowledges and queues for riskwatch's session
        down = stream.acked_count()
        wait_until(lambda: stream.acked_count() > down + 200, 30, "readings acknowledged while riskwatch is down")
        rw.start()
        back = stream.acked_count()
        wait_until(lambda: rw.health()["readings"]["accepted"] > 0 and stream.acked_count() > back + 200, 60,
                   "readings after the restart")
    finally:
        stream.close()
    assert stream.errors == [] and stream.refused == []
    published, acked = stream.published, stream.acked
    assert len(acked) > 1000
    db = sqlite3.connect(rw.db)

    def stored() -> dict[tuple[str, int], float]:
        return {(name, ts): value for name, ts, value in
                db.execute("SELECT p.name, r.ts, r.value FROM readings r JOIN point_ids p ON p.id = r.point")}

    try:
        wait_until(lambda: acked.keys() <= stored().keys(), 60, "every acknowledged reading to be stored")
    except AssertionError:
        lost = sorted(acked.keys() - stored().keys())
        raise AssertionError(f"{len(lost)} of {len(acked)} acknowledged readings were never stored, e.g. {lost[:5]}")
    rows = stored()
    assert {k: (rows[k], v) for k, v in acked.items() if rows[k] != v} == {}  # each with the value it was sent with
    assert rows.keys() - published.keys() == set()  # and nothing that was never sent
    assert {k: (v, published[k]) for k, v in rows.items() if published[k] != v} == {}
    # each stored once: what the two runs counted as new readings is exactly what the table holds
    second_run = wait_until(lambda: (lambda r: r if r["backlog"] == 0 else None)(rw.health()["readings"]), 30,
                            "the second run to commit its backlog")
    assert first_run["accepted"] > 500
    assert first_run["accepted"] + second_run["accepted"] == len(stored()) >= len(acked)
    db.close()
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
    # a reading outside the sensor's physical range is rejected AND raises a sensor-health alarm on its point
    wait_until(lambda: any(a["rule"] == "range" for a in riskwatch.get("/api/alerts/active")[1]), 30, "range alert")
    (alert,) = [a for a in riskwatch.get("/api/alerts/active")[1] if a["rule"] == "range"]
    assert (alert["point"], alert["tier"], alert["value"]) == ("dust1.hopper_t", "blue", 9999)
    assert "超出量程" in alert["reason_zh"] and "outside its range" in alert["reason_en"]
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
    pub = Publisher(broker)
    now = time.time()
    with riskwatch.wall() as wall:
        assert wall.recv()["type"] == "snapshot"
        for i in range(8):
            pub.reading("steel1.co_a", now - 60 + i, 30.0)  # above orange 24 ppm for longer than its on-delay
        wall.until(alert_event("raised", "steel1.co_a", "high"))
        last_seen = wall.seq
    # while the display is away: the CO alarm escalates to red, and the gas main pressure falls below red 4 kPa
    for i in range(8):
        pub.reading("steel1.co_a", now - 50 + i, 200.0)
    for i in range(10):
        pub.reading("steel1.main_p", now - 50 + i, 3.0)
    wait_until(lambda: [a["tier"] for a in riskwatch.alerts("steel1.co_a", "high")] == ["red"]
               and [a["tier"] for a in riskwatch.alerts("steel1.main_p", "low")] == ["red"], 30,
               "the CO and the gas-main alerts to reach red")
    log = riskwatch.events(since=last_seen)
    missed = [e["seq"] for e in log]
    assert ("tier_up", "red") in [(e["kind"], e["tier"]) for e in log
                                  if (e["point"], e["rule"]) == ("steel1.co_a", "high")]
    assert "red" in [e["tier"] for e in log if (e["point"], e["rule"]) == ("steel1.main_p", "low")]
    with riskwatch.wall(since=last_seen) as back:
        replay = back.until(lambda m: m["type"] == "snapshot")
    got = [m["seq"] for m in replay if m["type"] == "alert_event"]
    assert got[: len(missed)] == missed  # every missed event, in order, nothing skipped
    assert {(a["point"], a["rule"], a["tier"]) for a in replay[-1]["alerts"]} >= {
        ("steel1.co_a", "high", "red"), ("steel1.main_p", "low", "red")}
    pub.close()


def test_operators_acknowledge_displays_may_not_and_every_ack_is_in_the_event_log(riskwatch, broker):
    pub = Publisher(broker)
    now = time.time()
    for i in range(6):
        pub.reading("nh3.room_ppm", now - 10 + i, 160.0)  # above GB 50072's 150 ppm
    alert = wait_until(lambda: riskwatch.alerts("nh3.room_ppm", "high"), 30, "the ammonia alert")[0]
    assert alert["tier"] == "red"
    assert riskwatch.call("POST", f"/api/alerts/{alert['id']}/ack", {"note": "x"}, role="display")[0] == 403
    assert riskwatch.call("POST", f"/api/alerts/{alert['id']}/ack", {}, role=None)[0] == 401
    status, acked = riskwatch.call("POST", f"/api/alerts/{alert['id']}/ack", {"note": "已通知现场"}, role="operator")
    assert status == 200 and acked["acked_by"] == "operator-user" and acked["ack_note"] == "已通知现场"
    assert riskwatch.call("POST", f"/api/alerts/{alert['id']}/ack", {}, role="operator")[0] == 409
    acks = [e for e in riskwatch.events(since=0, point="nh3.room_ppm", rule="high")
            if e["kind"] == "acked" and e["alert_id"] == alert["id"]]
    assert len(acks) == 1 and acks[0]["actor"] == "operator-user" and acks[0]["note"] == "已通知现场"
    db = sqlite3.connect(riskwatch.db)
    try:
        db.execute("DELETE FROM alert_events")
        raise AssertionError("the event log accepted a delete")
    except sqlite3.DatabaseError as e:
        assert "append-only" in str(e)
    pub.close()


HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def plausible(param: dict) -> str:
    """A value a caller might really send for an OpenAPI parameter: the route must refuse it for the missing
    token, not for the value."""
    schema = param.get("schema", {})
    types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
    if types & {"integer", "number"}:
        return str(max(1, schema.get("minimum", 1)))
    return "dust1.dp"


def test_every_route_but_health_needs_a_token(riskwatch):
    with urllib.request.urlopen(riskwatch.url + "/openapi.json", timeout=10) as r:
        spec = json.load(r)
    routes = [(method.upper(), path, op) for path, ops in spec["paths"].items()
              for method, op in ops.items() if method in HTTP_METHODS]
    documented = {(m, p) for m, p, _ in routes}
    assert documented >= {("GET", "/healthz"), ("GET", "/api/me"), ("GET", "/api/plant"), ("GET", "/api/points"),
                          ("GET", "/api/points/{point_id}/history"), ("GET", "/api/alerts/active"),
                          ("GET", "/api/alerts/events"), ("POST", "/api/alerts/{alert_id}/ack"),
                          ("GET", "/api/rejected")}  # what the README promises is what the server documents
    for method, path, op in routes:
        if path == "/healthz":
            continue
        url, query = path, []
        for param in op.get("parameters", []):
            if param["in"] == "path":
                url = url.replace("{" + param["name"] + "}", plausible(param))
            elif param["in"] == "query" and param.get("required"):
                query.append(f"{param['name']}={plausible(param)}")
        url += "?" + "&".join(query) if query else ""
        body = {} if method in ("POST", "PUT", "PATCH") else None
        status, answer = riskwatch.call(method, url, body, role=None)
        assert status == 401, (method, url, status, answer)
    assert riskwatch.get("/healthz", role=None)[0] == 200
    # a token is not a role: the display sees, but neither acknowledges nor reads rejected input
    assert riskwatch.call("POST", "/api/alerts/1/ack", {}, role="display")[0] == 403
    assert riskwatch.get("/api/rejected", role="display")[0] == 403
    assert riskwatch.get("/api/me")[1] == {"name": "display-user", "role": "display"}
    health = riskwatch.health()
    assert health["broker"]["connected"] is True and health["broker"]["address"].startswith("127.0.0.1:")
    with connect(f"ws://127.0.0.1:{riskwatch.port}/ws", open_timeout=10) as ws:
        ws.send(json.dumps({"token": "wrong-token-000000000", "since": None}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd.code == 4401


def keep_talking(broker, points: list[str], stop: threading.Event) -> threading.Thread:
    """The rest of a gateway's points, reporting every 0.5 s until stopped."""
    def run():
        pub = Publisher(broker)
        while not stop.wait(0.5):
            for p in points:
                pub.reading(p, time.time(), 1 if p in ("sump1.vent_on", "sump1.permit") else 20.9 if p == "sump1.o2"
                            else 0.0)
        pub.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_a_sensor_that_stops_talking_raises_a_stale_alert_and_clears_when_it_returns(riskwatch, broker):
    pub = Publisher(broker)
    stop = threading.Event()
    others = keep_talking(broker, ["sump1.o2", "sump1.lel", "sump1.people", "sump1.vent_on", "sump1.permit"], stop)
    try:
        with riskwatch.wall() as wall:
            pub.reading("sump1.h2s", time.time(), 0.2)
            seen = wall.until(alert_event("raised", "sump1.h2s", "stale"))
            assert seen[-1]["event"]["tier"] == "blue" and "无数据" in seen[-1]["event"]["reason_zh"]
            pub.reading("sump1.h2s", time.time(), 0.3)
            wall.until(alert_event("cleared", "sump1.h2s", "stale"))
    finally:
        stop.set()
        others.join(5)
    assert not any(a["point"] == "gateway:gw-sump1" for a in riskwatch.get("/api/alerts/active")[1])
    pub.close()


def test_a_silent_gateway_is_one_alert_on_the_gateway_not_one_per_point(riskwatch, broker):
    pub = Publisher(broker)
    with riskwatch.wall() as wall:
        heard = time.time()
        for p in ("sump1.h2s", "sump1.o2", "sump1.lel"):
            pub.reading(p, time.time(), 0.5)
        # (the gateway may already be raised from start-up, when nothing had been heard yet: wait for the
        # silence that follows these readings)
        seen = wall.until(lambda m: alert_event("raised", "gateway:gw-sump1", "stale")(m) and m["event"]["ts"] > heard)
        ev = seen[-1]["event"]
        assert ev["area"] == "sump1" and "网关 gw-sump1 离线" in ev["reason_zh"]
        assert not [m for m in seen if m["type"] == "alert_event" and m["event"]["point"].startswith("sump1.")
                    and m["event"]["rule"] == "stale" and m["event"]["ts"] > heard]
        pub.reading("sump1.h2s", time.time(), 0.5)
        wall.until(alert_event("cleared", "gateway:gw-sump1", "stale"))
    pub.close()


def test_an_alert_survives_a_restart_and_clears_when_the_gas_comes_down(tmp_path, broker):
    rw = RiskwatchProcess(tmp_path, broker).start()
    pub = Publisher(broker)
    now = time.time()
    for i in range(8):
        pub.reading("sump1.h2s", now - 200 + i, 25.0)  # above red 20 ppm
    alert = wait_until(lambda: rw.alerts("sump1.h2s", "high"), 30, "the H2S alert")[0]
    assert alert["tier"] == "red"
    rw.stop()
    rw.start()
    after = rw.alerts("sump1.h2s", "high")
    assert [(a["id"], a["tier"], a["state"]) for a in after] == [(alert["id"], "red", "active")]
    # after the restart the detector starts from the book's red, so the fall is seen as a clear, not as nothing
    for i in range(90):
        pub.reading("sump1.h2s", now - 190 + i, 0.5)  # 90 s of clean air, past the 60 s off-delay
    events = wait_until(lambda: [e for e in rw.events(since=0, point="sump1.h2s", rule="high")
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
