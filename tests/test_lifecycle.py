"""The ISA-18.2 alarm lifecycle as plant stories, on a real alert book (SQLite files in tmp) and explicit time:
shelving, out of service, suppression by design, latched interlock alarms, chattering, and the closed loop of an
orange or red warning with its overdue steps escalating. Notifications are decided by the real planner."""
from __future__ import annotations

import sqlite3

import pytest

from alerting.book import AckError, AlertBook, StepError
from alerting.notify import Planner
from alerting.outbox import Outbox
from config.load import DEMO, load_plant
from config.model import Tier
from config.notify import NotifyConfig
from detectors.finding import Finding
from test_notify import NOON, NOTIFY

PLANT = load_plant(DEMO)
POINTS = PLANT.point_map()
HOPPER, INLET, DP = "dust1.hopper_t", "dust1.inlet_t", "dust1.dp"
LEVEL = "cast1.level"  # interlock-grade: its alarms latch
T0 = NOON


def f(point: str, tier: Tier, at_s: float, rule: str = "high", value: float = 80.0) -> Finding:
    name = POINTS[point].name if point in POINTS else point
    return Finding(point, rule, tier, T0 + at_s, value, f"{name} {tier.zh}", f"{point} {tier.label}",
                   area="dust1" if point.startswith("gateway:") else None)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "rw.db"


@pytest.fixture
def book(path):
    b = AlertBook.for_plant(PLANT, path)
    yield b
    b.close()


def kinds(events) -> list[str]:
    return [e.kind for e in events]


# --- shelving ------------------------------------------------------------------------------------------------

def test_an_operator_shelves_a_nuisance_alarm_which_returns_unacknowledged_when_the_shelf_expires(book):
    (ev,) = book.apply([f(INLET, Tier.YELLOW, 0)])
    shelved = book.shelve(ev.alert_id, "王班长", T0 + 10, "进口温度探头已报修，等待更换", minutes=30)
    assert shelved.kind == "shelved" and shelved.actor == "王班长" and shelved.note == "进口温度探头已报修，等待更换"
    a = book.get(ev.alert_id)
    assert a.suppressed == "shelved" and "王班长" in a.suppressed_note
    assert book.counts_by_tier()["yellow"] == 0  # not a live alarm while shelved
    assert [s.kind for s in book.open_suppressions()] == ["shelved"]

    # it clears and comes back while shelved: recorded, never live, and needs nobody's acknowledgement
    assert kinds(book.apply([f(INLET, Tier.NORMAL, 60)])) == ["cleared"]
    (again,) = book.apply([f(INLET, Tier.YELLOW, 120)])
    assert again.alert.suppressed == "shelved" and again.alert.shown is False

    assert book.tick(T0 + 29 * 60) == []
    back = book.tick(T0 + 10 + 30 * 60)
    assert kinds(back) == ["unshelved", "unshelved"] and {e.alert_id for e in back} == {ev.alert_id, again.alert_id}
    assert all(e.actor is None and e.note == "搁置到期" for e in back)
    a = book.get(again.alert_id)
    assert a.suppressed is None and a.acked_at is None and a.shown  # returns unacknowledged
    # the first one, live before it was shelved and cleared meanwhile: returned to normal, still to acknowledge
    first = book.get(ev.alert_id)
    assert first.state == "cleared" and first.suppressed is None and first.acked_at is None
    assert ev.alert_id in {x.id for x in book.listed()}
    assert book.counts_by_tier()["yellow"] == 1
    assert book.open_suppressions() == []
    (record,) = book.suppression_history()
    assert (record.started_by, record.ended_by, record.end_reason) == ("王班长", None, "搁置到期")


def test_an_operator_unshelving_gets_the_alarm_back_acknowledged(book):
    (ev,) = book.apply([f(INLET, Tier.YELLOW, 0)])
    book.shelve(ev.alert_id, "王班长", T0 + 10, "检修", minutes=60)
    back = book.unshelve(ev.alert_id, "王班长", T0 + 600, "探头已更换")
    assert back.kind == "unshelved" and back.alert.acked_by == "王班长" and back.alert.suppressed is None
    with pytest.raises(AckError, match="not shelved"):
        book.unshelve(ev.alert_id, "王班长", T0 + 700)


def test_a_shelved_alarm_that_rises_to_red_returns_at_once(book):
    (ev,) = book.apply([f(HOPPER, Tier.YELLOW, 0)])
    book.shelve(ev.alert_id, "王班长", T0 + 10, "误报", minutes=120)
    events = book.apply([f(HOPPER, Tier.RED, 300)])
    assert kinds(events) == ["unshelved", "tier_up"]
    assert "升级为红色" in events[0].note
    assert events[1].alert.suppressed is None and book.counts_by_tier()["red"] == 1


def test_shelving_has_limits_a_red_alarm_no_reason_or_too_long_is_refused(book):
    (red,) = book.apply([f(HOPPER, Tier.RED, 0)])
    with pytest.raises(AckError, match="red alarm may not be shelved"):
        book.shelve(red.alert_id, "王班长", T0 + 1, "吵", minutes=10)
    (yellow,) = book.apply([f(INLET, Tier.YELLOW, 0)])
    with pytest.raises(AckError, match="reason"):
        book.shelve(yellow.alert_id, "王班长", T0 + 1, "  ", minutes=10)
    with pytest.raises(AckError, match="480"):
        book.shelve(yellow.alert_id, "王班长", T0 + 1, "交班", minutes=9 * 60)
    assert book.open_suppressions() == [] and book.get(yellow.alert_id).suppressed is None


# --- out of service and suppression by design -------------------------------------------------------------------

def test_a_hopper_probe_in_maintenance_records_its_alarms_without_showing_them_until_it_returns(book):
    (before,) = book.apply([f(HOPPER, Tier.YELLOW, 0)])
    evs = book.out_of_service(HOPPER, "设备科刘工", T0 + 60, "灰斗温度探头校验", hours=2)
    assert kinds(evs) == ["out_of_service"] and evs[0].alert.suppressed == "out_of_service"
    # during calibration the probe reads red: kept in the book, not a live alarm
    assert kinds(book.apply([f(HOPPER, Tier.RED, 120)])) == ["tier_up"]
    assert book.counts_by_tier() == {"red": 0, "orange": 0, "yellow": 0, "blue": 0}
    with pytest.raises(AckError, match="at most 168"):
        book.out_of_service(INLET, "设备科刘工", T0, "检修", hours=200)

    back = book.return_to_service(HOPPER, "设备科刘工", T0 + 3600, "校验完成")
    assert kinds(back) == ["in_service"] and back[0].actor == "设备科刘工"
    a = book.get(before.alert_id)
    assert a.suppressed is None and a.acked_at is None and a.tier == Tier.RED  # still red: back on the list
    assert book.counts_by_tier()["red"] == 1


def test_out_of_service_expires_by_itself(book):
    book.out_of_service(HOPPER, "设备科刘工", T0, "更换探头", hours=1)
    (ev,) = book.apply([f(HOPPER, Tier.ORANGE, 60)])
    assert ev.alert.suppressed == "out_of_service"
    back = book.tick(T0 + 3600)
    assert kinds(back) == ["in_service"] and back[0].note == "停用维护到期"
    assert book.get(ev.alert_id).suppressed is None


def test_a_gateway_offline_suppresses_its_points_silence_alarms_by_design(book):
    gw = book.apply([f("gateway:gw-dust1", Tier.YELLOW, 0, rule="stale")])
    assert kinds(gw) == ["raised"]
    sups = book.open_suppressions()
    assert {s.point for s in sups} == set(PLANT.gateways()["gw-dust1"] and [p.id for p in PLANT.gateways()["gw-dust1"]])
    assert all(s.kind == "by_design" and s.rules == ("stale",) and s.reason == "网关 gw-dust1 离线" for s in sups)
    (point_stale,) = book.apply([f(HOPPER, Tier.YELLOW, 30, rule="stale")])
    assert point_stale.alert.suppressed == "by_design"
    (limit,) = book.apply([f(HOPPER, Tier.YELLOW, 31, rule="high")])
    assert limit.alert.suppressed is None  # only silence is explained by the gateway
    back = book.apply([f("gateway:gw-dust1", Tier.NORMAL, 600, rule="stale")])
    assert kinds(back)[0] == "cleared" and "unsuppressed" in kinds(back)
    assert book.open_suppressions() == [] and book.get(point_stale.alert_id).suppressed is None


def test_a_stopped_fan_suppresses_the_filter_pressure_alarms_it_gates_and_a_start_lifts_it(book):
    (dp,) = book.apply([f(DP, Tier.YELLOW, 0)])
    evs = book.line_state([("dust1.fan_on", False, T0 + 60)])
    assert kinds(evs) == ["suppressed"] and evs[0].alert.suppressed == "by_design" and "停止" in evs[0].note
    assert book.line_state([("dust1.fan_on", False, T0 + 61)]) == []  # no second record for the same stop
    book.apply([f(DP, Tier.NORMAL, 60)])  # the detector's own clear at the stop
    assert book.get(dp.alert_id) in book.listed()  # it was live before: someone still has to acknowledge it
    sups = book.open_suppressions()  # the fan gates the filter's pressure drop and the duct's air speed
    assert {s.point for s in sups} == {DP, "dust1.velocity"}
    assert all((s.kind, s.rules) == ("by_design", ("high", "low", "rate", "forecast", "anomaly")) for s in sups)
    # nothing live to return; the cleared one is shown again, returned to normal and still to acknowledge
    (shown,) = book.line_state([("dust1.fan_on", True, T0 + 600)])
    assert (shown.kind, shown.alert_id, shown.alert.state, shown.alert.suppressed) == \
        ("unsuppressed", dp.alert_id, "cleared", None) and shown.alert.acked_at is None
    assert book.open_suppressions() == [] and book.suppression_history()[-1].end_reason.endswith("运行")


# --- latched interlock alarms ---------------------------------------------------------------------------------

def test_a_mould_level_red_latches_until_an_operator_resets_it_after_the_return_to_normal(book):
    (ev,) = book.apply([f(LEVEL, Tier.RED, 0)])
    with pytest.raises(AckError, match="still active"):
        book.reset(ev.alert_id, "铸造班长", T0 + 10)
    (latched,) = book.apply([f(LEVEL, Tier.NORMAL, 40)])
    assert latched.kind == "latched" and latched.alert.state == "latched" and "待复位" in latched.reason_zh
    assert book.get(ev.alert_id) in book.listed() and book.open_tiers() == {}
    assert book.counts_by_tier()["red"] == 0  # back to normal: listed, not a live red
    assert book.apply([f(LEVEL, Tier.NORMAL, 50)]) == []
    (again,) = book.apply([f(LEVEL, Tier.ORANGE, 70)])  # comes back while latched: the same alarm, armed again
    assert again.kind == "realarm" and again.alert_id == ev.alert_id and again.alert.acked_at is None
    book.apply([f(LEVEL, Tier.NORMAL, 90)])
    reset = book.reset(ev.alert_id, "铸造班长", T0 + 120, "液位已稳定，复位")
    assert (reset.kind, reset.actor, reset.alert.state) == ("cleared", "铸造班长", "cleared")
    assert reset.alert.acked_by == "铸造班长"  # the reset acknowledges it too
    assert book.get(ev.alert_id) not in book.listed()


def test_an_interlock_sensor_back_from_silence_clears_without_a_reset(book):
    (ev,) = book.apply([f(LEVEL, Tier.RED, 0, rule="stale")])
    (back,) = book.apply([f(LEVEL, Tier.NORMAL, 30, rule="stale")])
    assert back.kind == "cleared" and back.alert_id == ev.alert_id


def test_a_latched_alarm_survives_a_restart(path):
    b = AlertBook.for_plant(PLANT, path)
    (ev,) = b.apply([f(LEVEL, Tier.RED, 0)])
    b.apply([f(LEVEL, Tier.NORMAL, 40)])
    b.close()
    b = AlertBook.for_plant(PLANT, path)
    assert b.get(ev.alert_id).state == "latched" and b.open_tiers() == {}
    assert b.reset(ev.alert_id, "铸造班长", T0 + 60).kind == "cleared"
    b.close()


# --- chattering --------------------------------------------------------------------------------------------------

def test_a_chattering_inlet_alarm_stays_up_instead_of_ringing_again_and_a_red_still_gets_through(book):
    events = []
    for k in range(3):  # raised three times inside a minute
        events += book.apply([f(INLET, Tier.YELLOW, 20 * k)])
        events += book.apply([f(INLET, Tier.NORMAL, 20 * k + 10)])
    assert kinds(events) == ["raised", "cleared", "raised", "cleared", "raised", "chattering"]
    held = events[-1].alert
    assert held.state == "active" and held.chattering
    for k in range(3, 8):  # it keeps chattering: no new alarm
        assert book.apply([f(INLET, Tier.YELLOW, 20 * k)]) == []
        assert book.apply([f(INLET, Tier.NORMAL, 20 * k + 10)]) == []
    (red,) = book.apply([f(INLET, Tier.RED, 160)])
    assert (red.kind, red.alert_id, red.alert.tier) == ("tier_up", held.id, Tier.RED)
    assert book.apply([f(INLET, Tier.NORMAL, 170)]) == []  # a held return, still visible as red
    assert book.counts_by_tier()["red"] == 1
    book.ack(red.alert_id, "王班长", T0 + 180)
    assert book.tick(T0 + 170 + 299) == []
    (cleared,) = book.tick(T0 + 170 + 300)
    assert cleared.kind == "cleared" and "抖动已平息" in cleared.reason_zh and not cleared.alert.chattering


# --- the closed loop -------------------------------------------------------------------------------------------------

def test_a_red_hopper_warning_is_acknowledged_verified_handled_fed_back_and_closed_out_in_order(book, path):
    (ev,) = book.apply([f(HOPPER, Tier.RED, 0)])
    loop = book.loop(ev.alert_id)
    assert loop["next_step"] == "ack" and loop["deadline"] == T0 + 5 * 60
    assert (loop["point"], loop["area"], loop["rule"]) == (HOPPER, "dust1", "high")
    with pytest.raises(StepError, match="next step .* is ack"):
        book.step(ev.alert_id, "verify", "王班长", T0 + 30)
    book.ack(ev.alert_id, "王班长", T0 + 60)
    assert book.loop(ev.alert_id)["next_step"] == "verify"
    book.step(ev.alert_id, "verify", "王班长", T0 + 600, "现场确认灰斗外壁发烫", photo="IMG_0412.jpg")
    book.step(ev.alert_id, "handle", "王班长", T0 + 900, "停机、氮气惰化、清灰")
    step = book.step(ev.alert_id, "feedback", "王班长", T0 + 3000, "温度回落至45℃")
    assert step.kind == "step" and "反馈" in step.reason_zh
    with pytest.raises(StepError, match="still active"):
        book.step(ev.alert_id, "close", "安全科张科长", T0 + 3100)
    book.apply([f(HOPPER, Tier.NORMAL, 3200)])
    book.step(ev.alert_id, "close", "安全科张科长", T0 + 3600, "隐患已消除，同意销号")
    loop = book.loop(ev.alert_id)
    assert loop["closed"] and [s["step"] for s in loop["steps"]] == ["ack", "verify", "handle", "feedback", "close"]
    assert loop["steps"][1]["photo"] == "IMG_0412.jpg" and loop["overdue"] == []
    assert book.open_loops() == []
    with sqlite3.connect(path) as db, pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM handling_steps")


def test_yellow_warnings_carry_no_loop_by_default_and_orange_ones_do(book):
    (y,) = book.apply([f(INLET, Tier.YELLOW, 0)])
    assert book.loop(y.alert_id) is None
    book.apply([f(INLET, Tier.ORANGE, 30)])  # it grew: from now on it carries the loop
    assert book.loop(y.alert_id)["tier"] == "orange"


def test_overdue_steps_escalate_one_level_each_and_survive_a_restart(path):
    plant = PLANT.model_copy(update={"notify": NotifyConfig.model_validate(NOTIFY)})
    book = AlertBook.for_plant(plant, path)
    outbox = Outbox(path)
    planner = Planner(plant, book, outbox)
    (ev,) = book.apply([f(HOPPER, Tier.RED, 0)])
    book.ack(ev.alert_id, "王班长", T0 + 60)
    planner.run_once(T0 + 60)
    assert book.tick(T0 + 29 * 60) == []
    (late,) = book.tick(T0 + 30 * 60)  # verify on site: 30 min for red
    assert (late.kind, late.note) == ("overdue", "verify") and "现场核查超时" in late.reason_zh
    assert book.tick(T0 + 31 * 60) == []  # reported once
    planner.run_once(T0 + 30 * 60)
    rows = [r for r in outbox.rows() if r["kind"] == "overdue"]
    phones = {p for r in rows for p in eval(r["recipients"])}
    assert {"13800000001", "13800000003"} <= phones and "13800000004" not in phones  # operator + one level up
    assert all("上报安全管理人员" in r["text"] for r in rows)
    book.close()
    outbox.close()

    book = AlertBook.for_plant(plant, path)  # restart: the loop and its overdue step are remembered
    assert book.loop(ev.alert_id)["overdue"] == ["verify"] and book.tick(T0 + 40 * 60) == []
    book.step(ev.alert_id, "verify", "王班长", T0 + 41 * 60)
    (late2,) = book.tick(T0 + 60 * 60)  # handle: 60 min
    outbox = Outbox(path)
    Planner(plant, book, outbox).run_once(T0 + 60 * 60)
    rows = [r for r in outbox.rows() if r["kind"] == "overdue" and "处置超时" in r["text"]]
    assert late2.note == "handle" and {p for r in rows for p in eval(r["recipients"])} >= {"13800000004"}
    book.close()
    outbox.close()


# --- notifications follow the lifecycle -------------------------------------------------------------------------------

def test_nobody_is_texted_about_an_alarm_out_of_service_and_everyone_due_is_when_it_returns(path):
    plant = PLANT.model_copy(update={"notify": NotifyConfig.model_validate(NOTIFY)})
    book = AlertBook.for_plant(plant, path)
    outbox = Outbox(path)
    planner = Planner(plant, book, outbox)
    book.out_of_service(HOPPER, "设备科刘工", T0, "探头校验", hours=1)
    book.apply([f(HOPPER, Tier.RED, 60)])
    planner.run_once(T0 + 20 * 60)  # no first message, no escalation, no red repeat
    assert outbox.rows() == []
    book.return_to_service(HOPPER, "设备科刘工", T0 + 30 * 60)
    planner.run_once(T0 + 30 * 60)
    rows = outbox.rows()
    assert rows and {r["kind"] for r in rows} == {"in_service"}
    assert all("恢复投用仍在报警" in r["text"] for r in rows)
    book.close()
    outbox.close()


def test_the_quality_report_counts_overdue_steps_and_keeps_suppressed_alarms_out_of_the_rates(book):
    from alerting.quality import report
    (red,) = book.apply([f(HOPPER, Tier.RED, 0)])
    book.tick(T0 + 6 * 60)  # nobody signed for it within 5 min
    book.out_of_service(INLET, "设备科刘工", T0, "校验", hours=1)
    book.apply([f(INLET, Tier.YELLOW, 60)])
    dust = next(a for a in report(book.events_since(0), T0, T0 + 3600, ["dust1"])["areas"])
    assert dust["summary"]["overdue_steps"] == {"total": 1, "by_step": {"ack": 1}}
    assert dust["summary"]["alarms"] == 1 and dust["summary"]["suppressed"] == 1


def test_a_shelf_outlives_its_alarm_and_can_be_ended_early_or_unshelved_after_the_clear(book):
    (ev,) = book.apply([f(INLET, Tier.YELLOW, 0)])
    book.shelve(ev.alert_id, "王班长", T0 + 10, "探头待换", minutes=60)
    book.apply([f(INLET, Tier.NORMAL, 20)])  # cleared while shelved; it was live before, so still listed
    back = book.unshelve(ev.alert_id, "王班长", T0 + 30, "已换")
    assert back.kind == "unshelved" and back.alert_id == ev.alert_id and book.open_suppressions() == []
    (again,) = book.apply([f(INLET, Tier.YELLOW, 100)])
    book.shelve(again.alert_id, "王班长", T0 + 110, "探头待换", minutes=60)
    book.apply([f(INLET, Tier.NORMAL, 120)])
    (s,) = book.open_suppressions()
    book.end_suppression(s.id, "王班长", T0 + 130)
    assert book.open_suppressions() == [] and book.suppression_history()[-1].ended_by == "王班长"
    gw = book.apply([f("gateway:gw-dust1", Tier.YELLOW, 200, rule="stale")])
    assert gw and book.open_suppressions()
    with pytest.raises(AckError, match="by design"):
        book.end_suppression(book.open_suppressions()[0].id, "王班长", T0 + 210)


def test_every_suppression_is_kept_and_an_ended_one_cannot_be_rewritten(book, path):
    (ev,) = book.apply([f(INLET, Tier.YELLOW, 0)])
    book.shelve(ev.alert_id, "王班长", T0, "检修", minutes=10)
    book.unshelve(ev.alert_id, "王班长", T0 + 60)
    with sqlite3.connect(path) as db:
        with pytest.raises(sqlite3.DatabaseError, match="cannot change"):
            db.execute("UPDATE suppressions SET reason='x'")
        with pytest.raises(sqlite3.DatabaseError, match="kept"):
            db.execute("DELETE FROM suppressions")
