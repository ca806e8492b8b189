"""The wall display in a real headless Chromium against a real riskwatch, broker and database."""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from browser import open_page
from conftest import TOKENS, RiskwatchProcess
from test_pipeline_e2e import Publisher

@pytest.fixture
def page():
    with open_page() as pg:
        yield pg


def login(page, rw: RiskwatchProcess, role: str) -> None:
    page.goto(rw.url + "/")
    page.get_by_test_id("login-token").fill(TOKENS[role])
    page.get_by_test_id("login-submit").click()
    expect(page.locator("body")).to_have_attribute("data-connected", "true", timeout=20_000)


def test_an_operator_sees_the_hopper_turn_red_acknowledges_it_and_is_told_when_data_goes_stale(page, riskwatch, broker):
    login(page, riskwatch, "operator")
    expect(page.get_by_test_id("stale-banner")).to_be_hidden()
    expect(page.get_by_test_id("area-tile-dust1")).to_be_visible()
    assert page.get_by_text("抛光车间除尘系统").count() >= 1  # Chinese first

    pub = Publisher(broker)
    now = time.time()
    for i in range(50):
        pub.reading("dust1.hopper_t", now - 50 + i, 40.0 + i)
    tile = page.get_by_test_id("area-tile-dust1")
    expect(tile).to_have_attribute("data-tier", "red", timeout=30_000)
    expect(page.get_by_test_id("value-dust1.hopper_t")).to_contain_text("89", timeout=30_000)
    # other points, never fed here, raise their own offline alarms: find the hopper's row among them
    rows = page.locator("[data-testid^='alert-row-'][data-tier='red']").filter(has_text="高于红色阈值")
    expect(rows).to_have_count(1, timeout=30_000)
    alert_id = rows.first.get_attribute("data-testid").removeprefix("alert-row-")
    expect(rows.first).to_have_attribute("data-acked", "false")
    expect(rows.first).to_contain_text("灰斗温度")

    page.get_by_test_id(f"ack-{alert_id}").click()
    expect(page.get_by_test_id(f"alert-row-{alert_id}")).to_have_attribute("data-acked", "true", timeout=20_000)
    acked = [a for a in riskwatch.get("/api/alerts/active")[1] if a["id"] == int(alert_id)]
    assert acked[0]["acked_by"] == "operator-user"

    page.get_by_test_id("lang-toggle").click()
    expect(page.get_by_text("Polishing dust collection").first).to_be_visible()

    riskwatch.kill()  # the server dies: the wall must say its data is no longer live
    expect(page.get_by_test_id("stale-banner")).to_be_visible(timeout=30_000)
    expect(page.locator("body")).to_have_attribute("data-connected", "false")
    pub.close()


def test_a_display_role_sees_alerts_but_has_no_acknowledge_button(page, riskwatch, broker):
    login(page, riskwatch, "display")
    pub = Publisher(broker)
    now = time.time()
    for i in range(8):
        pub.reading("steel1.co_a", now - 8 + i, 30.0)
    row = page.locator("[data-testid^='alert-row-'][data-tier='orange']").filter(has_text="煤气加压站CO浓度")
    expect(row).to_have_count(1, timeout=30_000)
    expect(page.locator("[data-testid^='ack-']")).to_have_count(0)
    # the dust area, never heard from, is one gateway-offline alert named after its gateway, not one per point
    gw = page.locator("[data-testid^='alert-row-']").filter(has_text="网关 gw-dust1 离线")
    expect(gw).to_have_count(1, timeout=30_000)
    expect(gw.locator("td").nth(2)).to_have_text("网关 gw-dust1")
    expect(page.locator("[data-testid^='alert-row-']").filter(has_text="灰斗温度")).to_have_count(0)
    pub.close()


def test_a_wrong_token_is_refused_at_login(page, riskwatch):
    page.goto(riskwatch.url + "/")
    page.get_by_test_id("login-token").fill("not-a-real-token-123456")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_text("令牌无效")).to_be_visible(timeout=20_000)
