"""The alarm-system quality page in a real headless Chromium, against the quality router served over real HTTP
with a real alert book: an engineer sees the flooded dust console judged overloaded, in Chinese first."""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from alerting.book import AlertBook
from browser import open_page
from config.model import Tier
from conftest import TOKENS
from detectors.finding import Finding
from test_quality import HOPPER, INLET, POINTS, quality_app, serve


@pytest.fixture
def page():
    with open_page(1600, 1000) as pg:
        yield pg


@pytest.fixture
def server(tmp_path):
    """Two hours ago the dust console flooded: 12 inlet alarms in 4 min and a red hopper alarm acknowledged a
    minute later; a hopper rule has stood unacknowledged for 30 h."""
    book = AlertBook(tmp_path / "alerts.db", POINTS)
    t0 = time.time() - 2 * 3600

    def apply(point, rule, tier, at):
        return book.apply([Finding(point, rule, tier, at, 80.0, f"{point} {tier.zh}", f"{point} {tier.label}")])

    for i in range(12):
        apply(INLET, f"b{i}", Tier.YELLOW, t0 + 20 * i)
        apply(INLET, f"b{i}", Tier.NORMAL, t0 + 20 * i + 60)
    red = apply(HOPPER, "high", Tier.RED, t0 + 30)[0]
    book.ack(red.alert_id, "operator-user", t0 + 90)
    apply(HOPPER, "rate", Tier.YELLOW, time.time() - 30 * 3600)
    with serve(quality_app(book, plant_names=True)) as url:
        yield url
    book.close()


def login(page, url: str, role: str) -> None:
    page.goto(url + "/quality")
    page.get_by_test_id("login-token").fill(TOKENS[role])
    page.get_by_test_id("login-submit").click()


def test_an_engineer_sees_the_flooded_dust_console_judged_overloaded_in_chinese_then_english(page, server):
    login(page, server, "engineer")
    expect(page.locator("body")).to_have_attribute("data-loaded", "true", timeout=20_000)
    for heading in ("报警系统性能报告", "各控制台概况", "报警泛滥时段", "最频繁报警点（前10）", "确认时间与恢复时间",
                    "振荡报警", "瞬时报警", "长期报警（持续超过24小时）"):
        expect(page.get_by_role("heading", name=heading).first).to_be_visible()
    assert page.evaluate("localStorage.getItem('riskwatch.token')") == TOKENS["engineer"]  # the wall's login

    page.get_by_test_id("range-week").click()  # the flood two hours ago is in it whatever the time of day
    expect(page.get_by_test_id("range-week")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("body")).to_have_attribute("data-loaded", "true", timeout=20_000)
    flood = page.get_by_test_id("flood-row-0")
    expect(flood).to_contain_text("抛光车间除尘系统")
    expect(flood.locator("td").nth(4)).to_have_text("13")
    expect(page.get_by_test_id("flood-row-1")).to_have_count(0)
    row = page.get_by_test_id("console-row-dust1")
    expect(row).to_have_attribute("data-level", "overloaded")
    expect(page.get_by_test_id("verdict-dust1")).to_have_text("超负荷")
    expect(page.get_by_test_id("verdict-nh3")).to_have_text("可接受")  # a quiet console is listed too
    expect(page.get_by_test_id("top-table")).to_contain_text("进口温度")
    expect(page.get_by_test_id("response-dust1-red")).to_contain_text("1.0 分")  # acknowledged after a minute
    expect(page.get_by_test_id("stale-table")).to_contain_text("灰斗温度")
    expect(page.get_by_test_id("overdue-note")).to_contain_text("尚未记录")

    page.get_by_test_id("area-select").select_option("dust1")
    expect(page.get_by_test_id("console-row-nh3")).to_have_count(0, timeout=20_000)
    expect(page.get_by_test_id("console-row-dust1")).to_be_visible()

    page.get_by_test_id("lang-toggle").click()
    expect(page.get_by_role("heading", name="Alarm floods")).to_be_visible()
    expect(page.get_by_test_id("verdict-dust1")).to_have_text("Overloaded")
    expect(page.get_by_test_id("flood-row-0")).to_contain_text("Polishing dust collection")

    page.reload()  # the token and the language are remembered
    expect(page.locator("body")).to_have_attribute("data-loaded", "true", timeout=20_000)
    expect(page.get_by_role("heading", name="Alarm system performance report")).to_be_visible()


def test_an_operator_is_told_the_report_needs_an_engineer(page, server):
    login(page, server, "operator")
    expect(page.get_by_test_id("status")).to_contain_text("需要工程师及以上权限", timeout=20_000)
    expect(page.locator("body")).to_have_attribute("data-loaded", "false")


def test_a_wrong_token_is_refused_at_login(page, server):
    page.goto(server + "/quality")
    page.get_by_test_id("login-token").fill("not-a-real-token-123456")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_text("令牌无效")).to_be_visible(timeout=20_000)
