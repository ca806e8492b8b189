"""Bad input and bad clocks never stop the pipeline or make it cry wolf (real broker, real riskwatch)."""
from __future__ import annotations

import json
import time

from websockets.sync.client import connect

from conftest import TOKENS, wait_until
from test_pipeline_e2e import PREFIX, Publisher


def test_a_gateway_message_with_text_no_database_can_store_is_rejected_and_data_keeps_flowing(riskwatch, broker):
    pub = Publisher(broker)
    pub.raw(f"{PREFIX}/gateway/gw1", '{"readings": [{"point": "\\ud800", "value": 1}]}')
    pub.reading("dust1.fan_a", time.time(), 85.0)
    wait_until(lambda: riskwatch.health()["readings"]["accepted"] == 1, 30, "the good reading after the bad one")
    health = riskwatch.health()
    assert health["readings"]["rejected_by_reason"] == {"unknown_point": 1}
    assert health["readings"]["store_errors"] == 0 and health["status"] == "ok"
    kept = riskwatch.get("/api/rejected", role="engineer")[1]
    assert kept[0]["point"] == "\\ud800"
    pub.close()


def test_a_device_clock_running_behind_does_not_make_the_offline_alarm_chatter(riskwatch, broker):
    pub = Publisher(broker)
    for _ in range(8):  # a 1 s point whose gateway clock is 4 s slow: every reading looks 4 s old on arrival
        pub.reading("nh3.hall_ppm", time.time() - 4.0, 3.0)
        time.sleep(1.0)
    events = riskwatch.get("/api/alerts/events?since=0")[1]
    assert [e for e in events if e["point"] == "nh3.hall_ppm" and e["rule"] == "stale"] == []
    pub.close()


def test_a_second_value_for_the_same_instant_is_rejected_as_a_conflict(riskwatch, broker):
    pub = Publisher(broker)
    ts = time.time()
    pub.reading("steel1.main_p", ts, 9.0)
    pub.reading("steel1.main_p", ts, 9.0)  # a redelivered copy
    pub.reading("steel1.main_p", ts, 2.0)  # not a copy: another value for the same instant
    wait_until(lambda: riskwatch.health()["readings"]["messages"] == 3, 30, "three messages")
    r = riskwatch.health()["readings"]
    assert (r["accepted"], r["duplicates"], r["rejected_by_reason"]) == (1, 1, {"conflicting_duplicate": 1})
    # the conflicting 2.0 kPa (below red 4.0) reached no detector: no low-pressure alert
    assert [a for a in riskwatch.get("/api/alerts/active")[1] if a["point"] == "steel1.main_p" and a["rule"] == "low"] == []
    pub.close()


def test_a_wall_whose_last_seq_comes_from_another_database_is_started_afresh(riskwatch):
    with connect(f"ws://127.0.0.1:{riskwatch.port}/ws", open_timeout=10) as ws:
        ws.send(json.dumps({"token": TOKENS["display"], "since": 999_999}))
        hello = json.loads(ws.recv(timeout=10))
        snapshot = json.loads(ws.recv(timeout=10))
    last = riskwatch.get("/api/alerts/events?since=0&limit=10000")[1]
    assert hello["type"] == "hello" and hello["seq"] <= (last[-1]["seq"] if last else 0)  # the real log's position
    assert snapshot["type"] == "snapshot" and snapshot["seq"] == hello["seq"]
