"""The alarm lifecycle on the wall display, in a real headless Chromium against a real riskwatch, broker and
database: an operator shelves a nuisance alarm (never a red one) and resets a latched interlock alarm, records a
red warning's closed loop that only an engineer may close out, and an engineer takes a point out of service so its
tile says so. Chinese first; English on the toggle."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from browser import open_page
from conftest import RiskwatchProcess, wait_until
from test_lifecycle_api import raise_reading
from test_pipeline_e2e import Publisher
from test_wall_display import login

WAIT = 30_000  # ms: bounds a hang; the tests assert what the wall shows, not how fast


@pytest.fixture
def page():
    with open_page() as pg:
        yield pg


@pytest.fixture
def pub(broker):
    p = Publisher(broker)
    yield p
    p.close()


def alert_id(riskwatch, point: str, rule: str = "high", **fields) -> int:
    """The id of the listed alert on this point's rule, once the book has it (with these fields, if given)."""
    found = wait_until(lambda: [a for a in riskwatch.alerts(point, rule)
                                if all(a[k] == v for k, v in fields.items())], 30, f"an alert on {point}")
    return found[0]["id"]


def log_in_again(page, riskwatch, role: str) -> None:
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login-token")).to_be_visible()
    login(page, riskwatch, role)


def test_an_operator_shelves_a_yellow_inlet_alarm_with_a_reason_and_unshelves_it_but_cannot_shelve_a_red_hopper(
        page, riskwatch, pub):
    login(page, riskwatch, "operator")
    expect(page.get_by_test_id("quality-link")).to_be_hidden()  # the report is for engineers
    raise_reading(pub, "dust1.inlet_t", 65.0)  # yellow
    raise_reading(pub, "dust1.hopper_t", 95.0)  # red
    inlet, hopper = alert_id(riskwatch, "dust1.inlet_t"), alert_id(riskwatch, "dust1.hopper_t")

    expect(page.get_by_test_id(f"alert-row-{hopper}")).to_have_attribute("data-tier", "red", timeout=WAIT)
    expect(page.get_by_test_id(f"ack-{hopper}")).to_be_visible()
    expect(page.get_by_test_id(f"shelve-{hopper}")).to_have_count(0)  # a red alarm is never shelved
    row = page.get_by_test_id(f"alert-row-{inlet}")
    expect(row).to_have_attribute("data-tier", "yellow", timeout=WAIT)
    tile = page.get_by_test_id("area-tile-dust1")
    expect(tile.locator(".count-chip[data-tier='yellow']")).to_have_text("黄色 1")

    page.get_by_test_id(f"shelve-{inlet}").click()
    dialog = page.get_by_test_id("dialog")
    expect(dialog).to_be_visible()
    expect(page.get_by_test_id("dialog-title")).to_have_text("搁置报警")
    expect(page.get_by_test_id("dialog-about")).to_contain_text("进口温度")
    page.get_by_test_id("dialog-submit").click()  # no reason: refused on the page, nothing sent
    expect(page.get_by_test_id("dialog-error")).to_have_text("请填写原因")
    page.get_by_test_id("dialog-reason").fill("探头待更换")
    page.get_by_test_id("dialog-minutes").select_option("30")
    page.get_by_test_id("dialog-submit").click()
    expect(dialog).to_be_hidden(timeout=WAIT)

    # off the live list and out of the tile's counts, listed apart with who, why and until when
    expect(row).to_have_count(0, timeout=WAIT)
    expect(tile.locator(".count-chip[data-tier='yellow']")).to_have_count(0)
    expect(tile).to_have_attribute("data-tier", "red")  # the hopper still is
    section = page.get_by_test_id("suppressed-section")
    expect(section).to_be_visible()
    page.get_by_test_id("suppressed-toggle").click()
    shelved = page.get_by_test_id(f"suppressed-row-{inlet}")
    expect(shelved).to_be_visible()
    expect(shelved).to_have_attribute("data-kind", "shelved")
    expect(page.get_by_test_id(f"suppressed-note-{inlet}")).to_have_text("搁置（operator-user：探头待更换）")
    expect(page.get_by_test_id(f"suppressed-until-{inlet}")).to_have_text(re.compile(r"\d\d:\d\d:\d\d"), timeout=WAIT)
    expect(page.locator("#events .ev[data-kind='shelved']").first).to_contain_text("探头待更换")
    sup = riskwatch.get("/api/suppressions")[1]
    assert [(s["kind"], s["started_by"], s["reason"]) for s in sup if s["point"] == "dust1.inlet_t"] == \
        [("shelved", "operator-user", "探头待更换")]

    page.get_by_test_id(f"unshelve-{inlet}").click()
    expect(row).to_have_attribute("data-acked", "true", timeout=WAIT)  # back, acknowledged by who unshelved it
    expect(shelved).to_have_count(0)
    expect(tile.locator(".count-chip[data-tier='yellow']")).to_have_text("黄色 1")
    expect(page.locator("#events .ev[data-kind='unshelved']")).to_have_count(1)

    # two operators at once: the second request is refused and the wall says why, in the server's words
    page.get_by_test_id(f"shelve-{inlet}").click()
    page.get_by_test_id("dialog-reason").fill("工艺调整")
    status, _ = riskwatch.call("POST", f"/api/alerts/{inlet}/shelve", {"reason": "另一位操作员", "minutes": 15},
                               role="operator")
    assert status == 200
    page.get_by_test_id("dialog-submit").click()
    expect(page.get_by_test_id("toast")).to_contain_text("搁置失败：", timeout=WAIT)
    expect(page.get_by_test_id("toast")).to_contain_text(f"alert {inlet} is already")
    expect(page.get_by_test_id("dialog-error")).to_contain_text("already")
    page.get_by_test_id("dialog-cancel").click()
    expect(page.get_by_test_id("dialog")).to_be_hidden()
    expect(page.get_by_test_id(f"suppressed-note-{inlet}")).to_have_text("搁置（operator-user：另一位操作员）")


def test_an_operator_records_the_closed_loop_of_a_red_hopper_warning_and_only_an_engineer_closes_it_out(
        page, riskwatch, pub):
    login(page, riskwatch, "operator")
    raise_reading(pub, "dust1.hopper_t", 95.0, ago=60)  # so that the cooling readings below come after it
    hopper = alert_id(riskwatch, "dust1.hopper_t")
    loop = page.get_by_test_id(f"loop-{hopper}")
    expect(loop).to_have_attribute("data-next-step", "ack", timeout=WAIT)
    expect(loop).to_contain_text("灰斗温度")
    expect(page.get_by_test_id(f"loop-next-{hopper}")).to_have_text("签收")
    expect(page.get_by_test_id(f"loop-deadline-{hopper}")).to_contain_text("剩余")  # 5 min for a red ack
    expect(loop).to_have_attribute("data-overdue", "false")

    for step, button, note, photo in (("ack", "记录签收", "收到", None),
                                      ("verify", "记录现场核查", "灰斗外壁发烫", "IMG_0412.jpg"),
                                      ("handle", "记录处置", "停机惰化", None),
                                      ("feedback", "记录反馈", "温度回落", None)):
        expect(loop).to_have_attribute("data-next-step", step, timeout=WAIT)
        page.get_by_test_id(f"loop-step-{hopper}").click()
        expect(page.get_by_test_id("dialog-title")).to_have_text(button)
        page.get_by_test_id("dialog-note").fill(note)
        if photo:
            page.get_by_test_id("dialog-photo").fill(photo)
        page.get_by_test_id("dialog-submit").click()
        expect(page.get_by_test_id("dialog")).to_be_hidden(timeout=WAIT)
    expect(loop).to_have_attribute("data-next-step", "close", timeout=WAIT)
    expect(loop.locator(".loop-steps li")).to_have_count(4)
    expect(loop).to_contain_text("照片：IMG_0412.jpg")
    expect(loop).to_contain_text("operator-user")
    expect(page.get_by_test_id(f"alert-row-{hopper}")).to_have_attribute("data-acked", "true")  # the ack step acks
    expect(page.get_by_test_id(f"loop-step-{hopper}")).to_have_count(0)  # closing out is an engineer's
    expect(page.get_by_test_id(f"loop-close-waiting-{hopper}")).to_have_text("待工程师销号")

    raise_reading(pub, "dust1.hopper_t", 30.0, seconds=45)  # back inside for longer than the 30 s off-delay
    expect(page.get_by_test_id(f"alert-row-{hopper}")).to_have_count(0, timeout=WAIT)  # cleared and acknowledged
    expect(loop).to_be_visible()  # the loop is open until it is closed out

    log_in_again(page, riskwatch, "engineer")
    close = page.get_by_test_id(f"loop-step-{hopper}")
    expect(close).to_have_text("记录销号", timeout=WAIT)
    close.click()
    page.get_by_test_id("dialog-note").fill("同意销号")
    page.get_by_test_id("dialog-submit").click()
    expect(page.get_by_test_id(f"loop-{hopper}")).to_have_count(0, timeout=WAIT)
    status, done = riskwatch.get(f"/api/alerts/{hopper}/loop")
    assert status == 200 and done["closed"]
    assert [(s["step"], s["actor"]) for s in done["steps"]] == \
        [(s, "operator-user") for s in ("ack", "verify", "handle", "feedback")] + [("close", "engineer-user")]
    assert done["steps"][1]["photo"] == "IMG_0412.jpg"


def test_a_latched_mould_level_red_shows_a_reset_button_and_leaves_the_wall_once_reset(page, riskwatch, pub):
    login(page, riskwatch, "operator")
    now = time.time()
    pub.reading("cast1.casting", now - 40, 1)
    for i in range(5):
        pub.reading("cast1.level", now - 35 + i, 190.0)  # above red (180 mm), past the 1 s on-delay
    for i in range(21):
        pub.reading("cast1.level", now - 20 + i, 100.0)  # back to normal for longer than the 10 s off-delay
    level = alert_id(riskwatch, "cast1.level", state="latched")

    row = page.get_by_test_id(f"alert-row-{level}")
    expect(row).to_have_attribute("data-state", "latched", timeout=WAIT)
    expect(page.get_by_test_id(f"state-{level}")).to_have_text("联锁保持·待复位")
    expect(page.get_by_test_id(f"shelve-{level}")).to_have_count(0)
    page.get_by_test_id(f"reset-{level}").click()
    expect(row).to_have_count(0, timeout=WAIT)
    assert riskwatch.alerts("cast1.level", "high") == []
    expect(page.locator("#events .ev[data-kind='cleared']").filter(has_text="operator-user 已复位")).to_have_count(1)


def test_an_engineer_takes_the_hopper_out_of_service_and_its_tile_says_so_in_chinese_then_english(
        page, riskwatch, pub):
    login(page, riskwatch, "engineer")
    expect(page.get_by_test_id("quality-link")).to_have_attribute("href", "/quality")
    expect(page.get_by_test_id("quality-link")).to_have_text("报警系统性能报告")

    page.get_by_test_id("point-dust1.hopper_t").click()
    expect(page.get_by_test_id("dialog-title")).to_have_text("停用维护")
    page.get_by_test_id("dialog-reason").fill("灰斗温度探头校验")
    page.get_by_test_id("dialog-hours").select_option("2")
    page.get_by_test_id("dialog-submit").click()
    expect(page.get_by_test_id("dialog")).to_be_hidden(timeout=WAIT)
    tag = page.get_by_test_id("oos-dust1.hopper_t")
    expect(tag).to_have_text("停用维护", timeout=WAIT)
    tile = page.get_by_test_id("area-tile-dust1")
    expect(tile.locator(".count-chip[data-tier='oos']")).to_have_text("停用维护 1")
    assert [(s["kind"], s["started_by"]) for s in riskwatch.get("/api/suppressions")[1]
            if s["point"] == "dust1.hopper_t"] == [("out_of_service", "engineer-user")]

    raise_reading(pub, "dust1.hopper_t", 95.0)  # a red reading on a point in maintenance: recorded, not live
    hopper = alert_id(riskwatch, "dust1.hopper_t", suppressed="out_of_service")
    page.get_by_test_id("suppressed-toggle").click()
    expect(page.get_by_test_id(f"suppressed-row-{hopper}")).to_have_attribute("data-kind", "out_of_service",
                                                                              timeout=WAIT)
    expect(page.get_by_test_id(f"alert-row-{hopper}")).to_have_count(0)
    expect(page.get_by_test_id("point-dust1.hopper_t")).to_have_attribute("data-tier", "normal")
    expect(tile.locator(".count-chip[data-tier='red']")).to_have_count(0)

    page.get_by_test_id("lang-toggle").click()
    expect(tag).to_have_text("Out of service")
    expect(page.get_by_test_id("suppressed-toggle")).to_contain_text("Shelved / Out of service / Suppressed")
    expect(page.get_by_test_id(f"suppressed-note-{hopper}")).to_have_text(
        "Out of service (engineer-user: 灰斗温度探头校验)")
    expect(page.get_by_test_id("quality-link")).to_have_text("Alarm system report")

    page.get_by_test_id("point-dust1.hopper_t").click()
    expect(page.get_by_test_id("dialog-title")).to_have_text("Return to service")
    page.get_by_test_id("dialog-submit").click()
    expect(tag).to_have_count(0, timeout=WAIT)
    expect(page.get_by_test_id(f"alert-row-{hopper}")).to_have_attribute("data-tier", "red", timeout=WAIT)
    expect(tile.locator(".count-chip[data-tier='red']")).to_have_text("Red 1")


@pytest.fixture
def quick_deadlines(tmp_path, broker):
    """riskwatch where a red warning must be acknowledged within 3 s (the plant file's alarms.handling)."""
    rw = RiskwatchProcess(tmp_path, broker, alarms={"handling": {"limits_min": {"ack": {"red": 0.05}}}}).start()
    yield rw
    rw.stop()


def test_a_red_warning_not_acknowledged_by_its_deadline_shows_overdue_in_the_closed_loop_panel(
        page, quick_deadlines, pub):
    riskwatch = quick_deadlines
    login(page, riskwatch, "display")  # the wall itself: it sees the loop, and records nothing
    raise_reading(pub, "dust1.hopper_t", 95.0)
    hopper = alert_id(riskwatch, "dust1.hopper_t")
    loop = page.get_by_test_id(f"loop-{hopper}")
    expect(loop).to_have_attribute("data-overdue", "true", timeout=WAIT)
    deadline = page.get_by_test_id(f"loop-deadline-{hopper}")
    expect(deadline).to_have_attribute("data-overdue", "true")
    expect(deadline).to_contain_text("超时")
    expect(deadline).to_have_css("color", "rgb(255, 82, 82)")
    expect(page.get_by_test_id(f"loop-step-{hopper}")).to_have_count(0)
    expect(loop.locator(".loop-escalated")).to_contain_text("签收", timeout=WAIT)  # the overdue event's escalation
    expect(page.locator("#events .ev[data-kind='overdue']").first).to_contain_text("签收超时")

    page.get_by_test_id("lang-toggle").click()
    expect(deadline).to_contain_text("OVERDUE")
    expect(page.locator("#events .ev[data-kind='overdue'] .ev-kind").first).to_have_text("Step overdue")
