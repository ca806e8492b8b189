"""The provincial uplink, told as the plant's story: readings and alarms of the demo plant reach a loopback Hebei
platform (tests/fake_province.py: its own DES, every field checked) through a real store, a real alert book fed by
the real threshold detector, and the durable queue, on a clock the test drives (no sleeps)."""
from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from pydantic import ValidationError

from alerting.book import AlertBook
from alerting.uplink.hebei import HebeiFormat, des_cbc_encrypt
from alerting.uplink.queue import UplinkQueue
from alerting.uplink.sender import Sender
from config.load import DEMO, load_plant
from config.uplink import UplinkConfig
from detectors.threshold import ThresholdDetector
from ingest.payload import Reading
from ingest.store import SQLiteStore

pytest.register_assert_rewrite("fake_province")
from fake_province import FakeProvince, _subkeys, des_block, des_cbc, pkcs5_pad, pkcs5_unpad  # noqa: E402

NOON = datetime.fromisoformat("2026-11-20T12:00:00+08:00").timestamp()
KEY = "Rw8#kEy!"
QYBM = "130100000001"
GATEWAYS = {"gw-dust1": "GW-DUST1", "gw-cast1": "GW-CAST1"}


@pytest.fixture(scope="module")
def plant():
    return load_plant(DEMO)


@pytest.fixture
def province():
    points = {"T0101": "GW-DUST1", "T0102": "GW-DUST1", "T0201": "GW-CAST1"}
    with FakeProvince(QYBM, KEY.encode(), KEY.encode(), points) as fake:
        yield fake


def uplink(province: FakeProvince, **overrides) -> UplinkConfig:
    fields = {"url": province.url, "enterprise_code": QYBM, "key": KEY, "gateways": GATEWAYS,
              "points": {"dust1.hopper_t": {"code": "T0101", "decimals": 1}, "dust1.inlet_t": "T0102",
                         "cast1.pit_water_t": {"code": "T0201", "decimals": 1}}, "timeout_s": 2}
    return UplinkConfig.model_validate({**fields, **overrides})


def hopper(t: float) -> float:
    """Ash hopper self-heating from 12:07: 1 K/s from 45 to 85 ℃, held 2 min, then back to 40 ℃."""
    s = t - NOON - 420
    return 45.0 if s < 0 else min(45.0 + s, 85.0) if s < 160 else 40.0


class Site:
    """riskwatch on one SQLite file: store, alert book, threshold detector, uplink queue and sender."""

    def __init__(self, tmp_path, plant, cfg: UplinkConfig, temperature=hopper):
        self.db, self.plant, self.cfg, self.temperature = tmp_path / "rw.db", plant, cfg, temperature
        self.t = NOON
        self.start()

    def start(self) -> None:
        self.store = SQLiteStore(self.db)
        self.book = AlertBook(self.db, self.plant.point_map())
        self.detector = ThresholdDetector(self.plant.point_map())
        for (point, rule), tier in self.book.open_tiers().items():
            self.detector.assume(point, rule, tier)
        self.queue = UplinkQueue(self.db)
        self.sender = Sender(self.plant, self.cfg, self.store, self.book, self.queue)

    def stop(self) -> None:
        for part in (self.queue, self.book, self.store):
            part.close()

    def read(self, t: float) -> None:
        values = {"dust1.hopper_t": self.temperature(t), "dust1.inlet_t": 35.0 + (int(t) % 7) / 10,
                  "cast1.pit_water_t": 28.0, "dust1.duct_t": 30.0}
        self.store.write([Reading(p, int(t * 1000), v) for p, v in values.items()], [], t)
        for p, v in values.items():
            self.book.apply(self.detector.feed(p, np.array([t]), np.array([v])))

    def run(self, until: float, readings: bool = True, after_round=None) -> None:
        """Second by second: the plant's readings, then one uplink round."""
        while self.t <= until:
            if readings:
                self.read(self.t)
            self.sender.run_once(self.t)
            if after_round:
                after_round(self.t)
            self.t += 1


def when(ts: str) -> float:
    """A platform ts (Beijing time) as seconds since the epoch."""
    return datetime.fromisoformat(ts + "+08:00").timestamp()


def slots(start: float, end: float, every: float) -> list[str]:
    """Platform ts strings from start to end, every so often."""
    beijing = timezone(timedelta(hours=8))
    return [datetime.fromtimestamp(t, beijing).strftime("%Y-%m-%d %H:%M:%S") for t in np.arange(start, end + 1, every)]


# --- the envelope ---------------------------------------------------------------------------------------------
def test_des_known_answers_and_the_two_implementations_agree():
    # FIPS 46 worked example (one block) and FIPS 81 CBC example, in the platform's own pure-Python DES
    assert des_block(0x0123456789ABCDEF, _subkeys(bytes.fromhex("133457799BBCDFF1"))) == 0x85E813540F0AB405
    key, iv, text = bytes.fromhex("0123456789abcdef"), bytes.fromhex("1234567890abcdef"), b"Now is the time for all "
    fips81 = "e5c7cdde872bf27c43e934008c389c0f683788499a7c05f6"
    assert des_cbc(key, iv, text, decrypt=False).hex() == fips81
    assert des_cbc_encrypt(key, iv, text).hex()[:48] == fips81  # the adapter's (cryptography); then one pad block
    rng = np.random.default_rng(7)
    for n in (0, 1, 7, 8, 9, 100):  # every padding length, both ways
        k, v, plain = (bytes(rng.integers(0, 256, size=s, dtype=np.uint8)) for s in (8, 8, n))
        sealed = des_cbc_encrypt(k, v, plain)
        assert pkcs5_unpad(des_cbc(k, v, sealed, decrypt=True)) == plain
        assert des_cbc(k, v, pkcs5_pad(plain), decrypt=False) == sealed


def test_the_envelope_is_hex_of_base64_of_des_cbc_with_the_key_as_iv(province):
    fmt = HebeiFormat(uplink(province))
    req = fmt.request("readings", "GW-DUST1", [{"tnm": "T0101", "ts": "2026-11-20 12:00:00", "val": "45.0"}])
    assert req.url == province.url + "/rtsData"
    envelope = json.loads(req.body)
    assert list(envelope) == ["qybm", "wgbm", "data"] and envelope["qybm"] == QYBM and envelope["wgbm"] == "GW-DUST1"
    assert re.fullmatch(r"[0-9A-F]+", envelope["data"])
    status, answer = province.handle("/api/dust/rtsData", req.body)
    assert answer == {"code": 0, "msg": "成功"}
    assert json.loads(province.taken[0].plain) == {"rtsData": [{"tnm": "T0101", "ts": "2026-11-20 12:00:00",
                                                                "val": "45.0"}]}
    # lower-case hex and an IV of its own, when a platform says so
    other = FakeProvince(QYBM, KEY.encode(), b"iv-8byte", {"T0101": "GW-DUST1"}, hex_upper=False)
    body = HebeiFormat(uplink(province, hex_upper=False, iv="iv-8byte")).request("readings", "GW-DUST1", [
        {"tnm": "T0101", "ts": "2026-11-20 12:00:00", "val": "45.0"}]).body
    assert re.fullmatch(r"[0-9a-f]+", json.loads(body)["data"])
    assert other.handle("/api/dust/rtsData", body)[1]["code"] == 0
    assert province.handle("/api/dust/rtsData", body)[1]["code"] == 1003  # the key's IV cannot open it


# --- the plant's story ------------------------------------------------------------------------------------------
def test_the_hoppers_readings_reach_the_province_every_period_with_the_mapped_codes(tmp_path, plant, province):
    site = Site(tmp_path, plant, uplink(province), temperature=lambda t: 45.0)
    site.run(NOON + 15 * 60 + 5)
    every_5_min = slots(NOON, NOON + 900, 300)
    assert province.values("T0101") == [(ts, "45.0") for ts in every_5_min]
    assert [ts for ts, _ in province.values("T0102")] == every_5_min  # default decimals: 2
    assert all(re.fullmatch(r"35\.\d0", v) for _, v in province.values("T0102"))
    assert province.values("T0201") == [(ts, "28.0") for ts in every_5_min]
    # one request per gateway and instant, only the mapped points: dust1.duct_t and the rest of the plant stay home
    assert sorted((t.wgbm, tuple(r["tnm"] for r in t.records)) for t in province.taken) == \
        sorted([("GW-DUST1", ("T0101", "T0102"))] * 4 + [("GW-CAST1", ("T0201",))] * 4)
    assert province.refused == [] and province.repeats == 0
    stats = site.sender.stats
    assert stats["queued"] == 0 and stats["sent"] == 8 and stats["failures"] == 0 and stats["last_error"] is None


def test_a_red_alarm_and_its_clear_reach_eventsdata_at_once(tmp_path, plant, province):
    site = Site(tmp_path, plant, uplink(province))
    arrived: dict[int, float] = {}
    site.run(NOON + 900, after_round=lambda t: [arrived.setdefault(i, t) for i in range(len(province.events))])
    events = [r for _, r in province.events]
    # blue and yellow are riskwatch's early warnings, not sent; orange = above high (3), red = above high-high (4)
    assert [(e["scd"], e["threshold"]) for e in events] == [("3", "70.0"), ("4", "80.0"), ("0", "80.0")]
    assert re.fullmatch(r"灰斗温度 橙色报警 7\d\.0℃ ≥ 70\.0℃", events[0]["content"])
    assert events[1]["content"] == f"灰斗温度 红色报警 {events[1]['avx']}℃ ≥ 80.0℃"
    assert events[2]["content"] == "灰斗温度 报警解除 40.0℃" and events[2]["avx"] == "40.0"
    assert {e["oname"] for e in events} == {"T0101"} and {w for w, _ in province.events} == {"GW-DUST1"}
    for i, e in enumerate(events):  # at once: in the round of the reading that raised it
        assert arrived[i] == when(e["ts"])
    raised = [ev for ev in site.book.events_since(0) if ev.kind in ("raised", "tier_up") and ev.tier.label == "red"]
    assert when(events[1]["ts"]) == int(raised[0].ts)


def test_an_alarm_standing_when_the_uplink_is_first_enabled_is_told_then_its_clear(tmp_path, plant, province):
    site = Site(tmp_path, plant, uplink(province))
    while site.t <= NOON + 540:           # riskwatch ran without the uplink: the hopper is red by now
        site.read(site.t)
        site.t += 1
    red = next(a for a in site.book.listed() if a.point == "dust1.hopper_t")
    red_at = red.changed_at
    assert red.tier.label == "red" and site.book.last_seq() > 0
    site.run(NOON + 900)
    events = [r for _, r in province.events]
    assert [(e["scd"], e["ts"]) for e in events[:1]] == [("4", slots(red_at, red_at, 1)[0])]
    assert [e["scd"] for e in events] == ["4", "0"]  # the log before the uplink began is not replayed


def test_points_in_alarm_are_sent_every_10_s_and_back_to_the_period_after_the_clear(tmp_path, plant, province):
    site = Site(tmp_path, plant, uplink(province))
    site.run(NOON + 1505)
    orange_at, clear_at = (when(r["ts"]) for _, r in (province.events[0], province.events[-1]))
    hopper_ts = [when(ts) for ts, _ in province.values("T0101")]
    in_alarm = [t for t in hopper_ts if orange_at < t <= clear_at]
    assert np.all(np.diff(in_alarm) == 10) and len(in_alarm) >= 10
    outside = [t for t in hopper_ts if not orange_at - 10 < t <= clear_at + 10]
    assert all((t - NOON) % 300 == 0 for t in outside) and NOON + 1500 in outside
    # the inlet temperature on the same gateway was never in alarm: every 5 min only
    assert [when(ts) for ts, _ in province.values("T0102")] == list(np.arange(NOON, NOON + 1501, 300))


def test_platform_down_for_a_while_then_back_every_batch_and_event_arrives_once_in_order(tmp_path, plant, province):
    site = Site(tmp_path, plant, uplink(province))
    site.run(NOON + 360)
    province.down()                      # 503 from its front through the whole alarm
    site.run(NOON + 600)
    province.down("refused")
    site.run(NOON + 900)
    province.busy()
    site.run(NOON + 1200)
    assert site.sender.stats["queued"] > 20 and site.sender.stats["oldest_age_s"] >= 700
    assert "500" in site.sender.stats["last_error"]
    province.up()
    site.run(NOON + 1805)
    assert [r["scd"] for _, r in province.events] == ["3", "4", "0"]
    assert province.repeats == 0 and province.refused == []
    # every 5-min instant of every point exactly once, and the hopper's 10-s readings through the alarm
    for code in ("T0101", "T0102", "T0201"):
        held = [when(ts) for ts, _ in province.values(code)]
        assert set(np.arange(NOON, NOON + 1801, 300)) <= set(held)
    assert len([1 for ts, _ in province.values("T0101") if (when(ts) - NOON) % 300]) >= 10
    # in order: each gateway's readings arrived oldest first, and the replay went merged
    for gw in GATEWAYS.values():
        arrived = [r["ts"] for t in province.taken if t.kind == "rtsData" and t.wgbm == gw for r in t.records]
        assert arrived == sorted(arrived)
    assert any(len(t.records) > 2 for t in province.taken if t.wgbm == "GW-DUST1")
    stats = site.sender.stats
    assert stats["queued"] == 0 and stats["rejected"] == 0 and stats["failures"] > 0


def test_restart_of_riskwatch_mid_outage_loses_and_duplicates_nothing(tmp_path, plant, province):
    site = Site(tmp_path, plant, uplink(province))
    site.run(NOON + 300)
    province.down("refused")
    site.run(NOON + 450)                 # the hopper turns orange at 12:07:2x: queued, not sent
    queued = site.sender.stats["queued"]
    site.stop()                          # riskwatch stops mid-outage ...
    site.t = NOON + 700
    site.start()                         # ... and comes back 4 min later; the broker redelivers what it held
    for t in np.arange(NOON + 451, NOON + 700):
        site.read(float(t))
    site.run(NOON + 1000)
    assert site.sender.stats["queued"] > queued
    province.up()
    site.run(NOON + 1805)
    assert [r["scd"] for _, r in province.events] == ["3", "4", "0"] and province.repeats == 0
    for code in ("T0101", "T0102", "T0201"):  # the instants missed while down were built from the stored readings
        assert set(np.arange(NOON, NOON + 1801, 300)) <= {when(ts) for ts, _ in province.values(code)}
    for code in ("T0101", "T0102", "T0201"):  # in time order, each once
        arrived = [r["ts"] for t in province.taken if t.kind == "rtsData" for r in t.records if r["tnm"] == code]
        assert arrived == sorted(set(arrived))
    assert site.sender.stats["queued"] == 0 and site.sender.stats["rejected"] == 0


def test_a_batch_taken_whose_answer_was_lost_is_sent_again_and_held_once(tmp_path, plant, province):
    site = Site(tmp_path, plant, uplink(province), temperature=lambda t: 45.0)
    province.lose_replies(1)
    site.run(NOON + 30)
    assert site.sender.stats["failures"] == 1 and "no answer" in site.sender.stats["last_error"]
    assert province.repeats == 1       # at least once; the platform is idempotent by timestamp
    assert province.values("T0101") == [("2026-11-20 12:00:00", "45.0")] and site.sender.stats["queued"] == 0


def test_a_permanent_rejection_is_not_retried_forever_and_shows_in_stats(tmp_path, plant, province):
    site = Site(tmp_path, plant, uplink(province), temperature=lambda t: 45.0)
    site.run(NOON + 5)
    province.answer_next(1004, "数据格式错误: val")
    site.run(NOON + 305)
    requests = province.requests
    site.run(NOON + 1205)
    stats = site.sender.stats
    assert stats["rejected"] == 1 and "1004" in stats["last_error"] and stats["queued"] == 0
    assert province.requests == requests + 2 * 3  # later instants went on; the rejected batch never again
    failed = site.queue.rows("WHERE state='failed'")
    assert len(failed) == 1 and failed[0]["reply_code"] == "1004" and failed[0]["attempts"] == 1
    assert site.queue.requeue_failed(site.t) == 1
    site.run(site.t + 2)
    assert site.sender.stats["rejected"] == 0


def test_one_bad_batch_in_a_merged_replay_fails_alone(tmp_path, plant, province):
    site = Site(tmp_path, plant, uplink(province), temperature=lambda t: 45.0)
    province.down()
    site.run(NOON + 1205)
    province.refuse_ts = {"2026-11-20 12:10:00"}
    province.up()
    site.run(NOON + 1600)
    failed = site.queue.rows("WHERE state='failed'")
    assert [(f["gateway"], f["ts"]) for f in failed] == [("GW-CAST1", "2026-11-20 12:10:00"),
                                                         ("GW-DUST1", "2026-11-20 12:10:00")] or \
        sorted((f["gateway"], f["ts"]) for f in failed) == [("GW-CAST1", "2026-11-20 12:10:00"),
                                                            ("GW-DUST1", "2026-11-20 12:10:00")]
    assert site.sender.stats["rejected"] == 2 and site.sender.stats["queued"] == 0
    held = {ts for ts, _ in province.values("T0101")}
    assert held == set(slots(NOON, NOON + 1500, 300)) - {"2026-11-20 12:10:00"}
    assert any(len(t.records) > 2 for t in province.taken if t.wgbm == "GW-DUST1")  # the others went merged


def test_setup_errors_are_retried_not_dropped_and_the_key_never_shows(tmp_path, plant, province, caplog):
    wrong = "wrong-k!"
    site = Site(tmp_path, plant, uplink(province, key=wrong), temperature=lambda t: 45.0)
    province.answer_next(1003, f"数据解密失败 key={wrong}")
    with caplog.at_level(logging.WARNING, logger="riskwatch.uplink"):
        site.run(NOON + 700)
    stats = site.sender.stats
    assert stats["rejected"] == 0 and stats["queued"] >= 4 and "1003" in stats["last_error"]
    assert wrong not in json.dumps(stats) and wrong not in caplog.text and "***" in caplog.text
    assert wrong not in repr(site.cfg) and wrong not in repr(site.sender.fmt)
    site.stop()
    site.cfg = uplink(province)          # the engineer fixes the key and restarts
    site.start()
    site.run(NOON + 1100)
    assert [ts for ts, _ in province.values("T0101")] == slots(NOON, NOON + 900, 300)


# --- configuration ----------------------------------------------------------------------------------------------
def test_configuration_is_checked_where_it_is_written(province, monkeypatch, plant, tmp_path):
    with pytest.raises(ValidationError, match="enterprise_code"):
        uplink(province, enterprise_code="13010000001")
    with pytest.raises(ValidationError, match="less than or equal to 300"):
        uplink(province, period_s=600)
    with pytest.raises(ValidationError, match="8 bytes"):
        uplink(province, key="short")
    with pytest.raises(ValidationError, match="alarm_period_s"):
        uplink(province, period_s=5)
    with pytest.raises(ValidationError, match="given to more than one point"):
        uplink(province, points={"dust1.hopper_t": "T0101", "dust1.inlet_t": "T0101"})
    with pytest.raises(ValidationError, match="0 means back to normal"):
        uplink(province, levels={"high": {"red": 0}})
    with pytest.raises(ValidationError, match="UPLINK_KEY is not set"):
        uplink(province, key="env:UPLINK_KEY")
    monkeypatch.setenv("UPLINK_KEY", KEY)
    cfg = uplink(province, key="env:UPLINK_KEY", points={"dust1.hopper_t": "T0101", "nope": "X1",
                                                          "dust1.humidity": "H1", "cast1.level": "L1"},
                 gateways={"gw-dust1": "GW-DUST1", "gw-none": "GW-X"})
    assert cfg.key.get_secret_value() == KEY and KEY not in repr(cfg)
    gateway_of = {p.id: gw for gw, pts in plant.gateways().items() for p in pts}
    problems = cfg.problems({p.id: gateway_of.get(p.id) for p in plant.points})
    assert problems == ["uplink.points: 'nope' is not a point of the plant",
                        "uplink.points: 'cast1.level' reports through gateway 'gw-cast1', which has no code in "
                        "uplink.gateways (and no default_gateway is set)",
                        "uplink.gateways: 'gw-none' is not a gateway of the plant"]
    site = Site(tmp_path, plant, cfg)  # a plant file not checked: what cannot be sent is said, the rest goes
    assert site.sender.stats["unsent_points"] == ["cast1.level", "nope"] and site.sender.stats["points"] == 2
    with_default = uplink(province, gateways={}, default_gateway="GW-DUST1")
    assert with_default.gateway_code("gw-cast1") == "GW-DUST1" and with_default.decimals("dust1.inlet_t") == 2
