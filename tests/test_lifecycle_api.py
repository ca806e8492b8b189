"""The alarm lifecycle over the real API: `riskwatch serve` on the demo plant, readings over a real Mosquitto,
walls on the websocket. Who may shelve, reset, take a point out of service and close a warning out, and every
such act is on every wall at once and in the event log with who and why."""
from __future__ import annotations

import time

from conftest import alert_event
from test_pipeline_e2e import Publisher


def raise_reading(pub, point: str, value: float, seconds: int = 8, ago: float = 0.0) -> None:
    """Holds a value for longer than the point's on-delay (5 s for the dust temperatures), ending `ago` s ago."""
    end = time.time() - ago
    for i in range(seconds, -1, -1):
        pub.reading(point, end - i, value)


def test_operators_shelve_a_nuisance_alarm_but_not_a_red_one_and_every_wall_sees_it(riskwatch, broker):
    pub = Publisher(broker)
    with riskwatch.wall() as wall:
        assert wall.recv()["type"] == "snapshot"
        raise_reading(pub, "dust1.inlet_t", 65.0)  # inlet temperature yellow
        raise_reading(pub, "dust1.hopper_t", 95.0)  # hopper red
        seen = wall.until(alert_event("raised", "dust1.hopper_t", "high"))
        seen += wall.until(alert_event("raised", "dust1.inlet_t", "high")) if not any(
            alert_event("raised", "dust1.inlet_t", "high")(m) for m in seen) else []
        inlet = next(m["event"] for m in seen if alert_event("raised", "dust1.inlet_t", "high")(m))
        hopper = next(m["event"] for m in seen if alert_event("raised", "dust1.hopper_t", "high")(m))

        body = {"reason": "探头待更换", "minutes": 30}
        assert riskwatch.call("POST", f"/api/alerts/{inlet['alert_id']}/shelve", body, role="display")[0] == 403
        status, err = riskwatch.call("POST", f"/api/alerts/{hopper['alert_id']}/shelve", body, role="operator")
        assert status == 409 and "red alarm may not be shelved" in err["detail"]
        assert riskwatch.call("POST", f"/api/alerts/{inlet['alert_id']}/shelve", {"reason": "", "minutes": 30},
                              role="operator")[0] == 422
        status, shelved = riskwatch.call("POST", f"/api/alerts/{inlet['alert_id']}/shelve", body, role="operator")
        assert status == 200 and shelved["suppressed"] == "shelved"
        msgs = wall.until(lambda m: m["type"] == "suppressions")
        ev = next(m["event"] for m in msgs if alert_event("shelved", "dust1.inlet_t", "high")(m))
        assert (ev["actor"], ev["note"]) == ("operator-user", "探头待更换")
        assert [(s["kind"], s["point"], s["started_by"]) for s in msgs[-1]["suppressions"]] == \
            [("shelved", "dust1.inlet_t", "operator-user")]

        status, back = riskwatch.call("POST", f"/api/alerts/{inlet['alert_id']}/unshelve", {"note": "已更换"},
                                      role="operator")
        assert status == 200 and back["suppressed"] is None and back["acked_by"] == "operator-user"
        wall.until(alert_event("unshelved", "dust1.inlet_t", "high"))
    assert riskwatch.get("/api/suppressions")[1] == []
    history = riskwatch.get("/api/suppressions?history=true")[1]
    assert [(s["kind"], s["ended_by"], s["end_reason"]) for s in history] == [("shelved", "operator-user", "已更换")]
    pub.close()


def test_a_red_hopper_warning_is_handled_through_its_closed_loop_by_the_right_roles(riskwatch, broker):
    pub = Publisher(broker)
    with riskwatch.wall() as wall:
        assert wall.recv()["type"] == "snapshot"
        raise_reading(pub, "dust1.hopper_t", 95.0, ago=60)  # so that the cooling readings below come after
        red = wall.until(alert_event("raised", "dust1.hopper_t", "high"))[-1]["event"]
    aid = red["alert_id"]
    status, loop = riskwatch.get(f"/api/alerts/{aid}/loop")
    assert status == 200 and loop["next_step"] == "ack" and loop["tier"] == "red"
    assert loop["deadline"] - loop["since"] == 5 * 60
    assert [lp["alert_id"] for lp in riskwatch.get("/api/loops")[1]] == [aid]

    step = lambda name, role, **kw: riskwatch.call("POST", f"/api/alerts/{aid}/steps", {"step": name, **kw}, role=role)
    assert step("ack", "display")[0] == 403
    status, err = step("verify", "operator", note="先核查")
    assert status == 409 and "next step" in err["detail"]
    assert step("ack", "operator", note="收到")[1]["next_step"] == "verify"
    assert riskwatch.alerts("dust1.hopper_t", "high")[0]["acked_by"] == "operator-user"  # the ack is the ack
    assert step("verify", "operator", note="灰斗外壁发烫", photo="IMG_0412.jpg")[0] == 200
    assert step("handle", "operator", note="停机惰化")[0] == 200
    assert step("feedback", "operator", note="温度回落")[0] == 200
    status, err = step("close", "operator")
    assert status == 403 and "engineer" in err["detail"]
    status, err = step("close", "engineer")
    assert status == 409 and "still active" in err["detail"]
    raise_reading(pub, "dust1.hopper_t", 30.0, seconds=45)  # back inside for longer than the 30 s off-delay
    riskwatch_wait_cleared(riskwatch, aid)
    status, loop = step("close", "engineer", note="同意销号")
    assert status == 200 and loop["closed"] and loop["steps"][1]["photo"] == "IMG_0412.jpg"
    assert [s["actor"] for s in loop["steps"]] == ["operator-user"] * 4 + ["engineer-user"]
    assert riskwatch.get("/api/loops")[1] == []
    kinds = [e["kind"] for e in riskwatch.events(point="dust1.hopper_t", rule="high")]
    assert kinds == ["raised", "acked", "step", "step", "step", "cleared", "step"]
    pub.close()


def riskwatch_wait_cleared(riskwatch, aid: int) -> None:
    from conftest import wait_until
    wait_until(lambda: any(e["kind"] == "cleared" and e["alert_id"] == aid for e in riskwatch.events()), 20,
               "the hopper alarm to clear")


def test_only_an_engineer_takes_a_point_out_of_service_and_its_alarms_come_back_when_it_returns(riskwatch, broker):
    pub = Publisher(broker)
    body = {"reason": "灰斗温度探头校验", "hours": 2}
    assert riskwatch.call("POST", "/api/points/dust1.hopper_t/out-of-service", body, role="operator")[0] == 403
    status, sups = riskwatch.call("POST", "/api/points/dust1.hopper_t/out-of-service", body, role="engineer")
    assert status == 200 and [(s["kind"], s["started_by"], s["rules"]) for s in sups] == \
        [("out_of_service", "engineer-user", None)]
    assert riskwatch.call("POST", "/api/points/nope/out-of-service", body, role="engineer")[0] == 404
    with riskwatch.wall() as wall:
        snap = wall.recv()
        assert snap["type"] == "snapshot" and [s["point"] for s in snap["suppressions"]] == ["dust1.hopper_t"]
        raise_reading(pub, "dust1.hopper_t", 95.0)
        red = wall.until(alert_event("raised", "dust1.hopper_t", "high"))[-1]["event"]
        assert red["alert"]["suppressed"] == "out_of_service"
        assert riskwatch.health()["alerts"]["red"] == 0  # a point in maintenance is not a live red
        status, _ = riskwatch.call("POST", "/api/points/dust1.hopper_t/return-to-service", {"note": "校验完成"},
                                   role="engineer")
        assert status == 200
        back = wall.until(alert_event("in_service", "dust1.hopper_t", "high"))[-1]["event"]
    assert back["actor"] == "engineer-user" and back["alert"]["suppressed"] is None and back["alert"]["acked_by"] is None
    assert riskwatch.health()["alerts"]["red"] == 1
    pub.close()


def test_a_mould_level_red_stays_latched_on_the_wall_until_an_operator_resets_it(riskwatch, broker):
    pub = Publisher(broker)
    with riskwatch.wall() as wall:
        assert wall.recv()["type"] == "snapshot"
        now = time.time()
        pub.reading("cast1.casting", now - 40, 1)
        for i in range(5):
            pub.reading("cast1.level", now - 35 + i, 190.0)  # above red (180 mm), past the 1 s on-delay
        red = wall.until(alert_event("raised", "cast1.level", "high"))[-1]["event"]
        assert red["tier"] == "red"
        for i in range(21):
            pub.reading("cast1.level", now - 20 + i, 100.0)  # back to normal for longer than the 10 s off-delay
        latched = wall.until(alert_event("latched", "cast1.level", "high"))[-1]["event"]
        assert latched["alert"]["state"] == "latched"
        aid = red["alert_id"]
        assert [a["state"] for a in riskwatch.alerts("cast1.level", "high")] == ["latched"]
        assert riskwatch.call("POST", f"/api/alerts/{aid}/reset", {"note": "x"}, role="display")[0] == 403
        status, out = riskwatch.call("POST", f"/api/alerts/{aid}/reset", {"note": "液位稳定"}, role="operator")
        assert status == 200 and out["state"] == "cleared" and out["acked_by"] == "operator-user"
        wall.until(alert_event("cleared", "cast1.level", "high"))
    assert riskwatch.alerts("cast1.level", "high") == []
    pub.close()
