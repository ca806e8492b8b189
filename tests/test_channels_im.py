"""The four IM / webhook channels against loopback servers that check each request the way the provider does
(tests/fake_im.py): what lands on the wire, what a refusal means to the notifier, and that no secret leaks."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import urllib.request
from datetime import datetime, timezone
from urllib.parse import urlencode

import pytest

from alerting.channels.base import Message
from alerting.channels.dingtalk_robot import DingtalkRobotChannel, sign
from alerting.channels.webhook import WebhookChannel
from alerting.channels.wecom_app import WecomAppChannel
from alerting.channels.wecom_robot import WecomRobotChannel
from config.model import Tier

pytest.register_assert_rewrite("fake_im")  # before the import: the fakes are also this module's plugin
from fake_im import SECRETS, WEBHOOK_SECRET  # noqa: E402

pytest_plugins = ["fake_im"]

TITLE = "【红色预警】1号深井铸造"
TEXT = "结晶器冷却水流量低低：当前 12.3 m³/h，红色限值 15 m³/h。请立即停止浇铸，撤离铸造坑周边人员。"
MOBILES = ("13800138000", "13900139000")


def alarm(key: str = "rw-1", text: str = TEXT, to: tuple[str, ...] = MOBILES) -> Message:
    return Message(key=key, tier=Tier.RED, title=TITLE, text=text, to=to,
                   params={"site": "示范工厂", "tier": "红色", "area": "1号深井铸造"})


def post_raw(url: str, payload: dict) -> dict:
    """Straight to a fake, around the channels: proves the fake itself refuses what the provider refuses."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def assert_cut(sent: str, full: str, limit: int) -> None:
    """Within the byte limit, cut on a character boundary, ending with "…", and no shorter than it had to be."""
    size = len(sent.encode("utf-8"))
    assert size <= limit and sent.endswith("…") and full.startswith(sent[:-1])
    assert size > limit - 3 - 3  # the next character would not have fitted beside the ellipsis


# --- 企业微信群机器人 -------------------------------------------------------------------------------------------

def test_wecom_robot_markdown_lands_as_the_documented_json_with_chinese_intact(fake_wecom_robot):
    result = WecomRobotChannel(fake_wecom_robot.config()).send(alarm())
    assert result.ok and result.provider_code == "0"
    [got] = fake_wecom_robot.delivered
    assert (got.method, got.path, got.query) == ("POST", "/cgi-bin/webhook/send", {"key": [fake_wecom_robot.key]})
    assert got.headers["content-type"] == "application/json; charset=utf-8"
    assert got.json == {"msgtype": "markdown", "markdown": {"content": f"**{TITLE}**\n{TEXT}"}}
    assert "结晶器".encode("utf-8") in got.body  # UTF-8 on the wire, not \\u escapes
    assert got.notes == []


def test_wecom_robot_text_rings_the_recipients_by_mobile(fake_wecom_robot):
    assert WecomRobotChannel(fake_wecom_robot.config(msgtype="text")).send(alarm()).ok
    [got] = fake_wecom_robot.delivered
    assert got.json == {"msgtype": "text",
                        "text": {"content": f"{TITLE}\n{TEXT}", "mentioned_mobile_list": list(MOBILES)}}


@pytest.mark.parametrize("msgtype, limit", [("markdown", 4096), ("text", 2048)])
def test_wecom_robot_cuts_a_long_report_to_the_byte_limit_on_a_character_boundary(fake_wecom_robot, msgtype, limit):
    long_text = "甲烷浓度持续上升，" * 600  # 27 bytes a phrase: far past either limit
    channel = WecomRobotChannel(fake_wecom_robot.config(msgtype=msgtype))
    assert channel.send(alarm(text=long_text)).ok
    content = fake_wecom_robot.delivered[0].json[msgtype]["content"]
    head = f"**{TITLE}**\n" if msgtype == "markdown" else f"{TITLE}\n"
    assert_cut(content, head + long_text, limit)
    assert channel.max_chars * 3 + len(head.encode()) <= limit  # what the notifier is told fits whole


def test_the_wecom_fake_refuses_content_past_the_documented_limit(fake_wecom_robot):
    url = f"{fake_wecom_robot.config().base_url}?key={fake_wecom_robot.key}"
    answer = post_raw(url, {"msgtype": "markdown", "markdown": {"content": "字" * 1366}})  # 4098 bytes
    assert answer["errcode"] == 40058 and "exceed max length 4096" in answer["errmsg"]
    assert post_raw(url, {"msgtype": "text", "text": {"content": "字" * 682}})["errcode"] == 0  # 2046 bytes


def test_the_21st_wecom_robot_message_in_a_minute_is_throttled_and_the_channel_holds(fake_wecom_robot):
    channel = WecomRobotChannel(fake_wecom_robot.config())
    assert channel.per_minute == 20
    assert all(channel.send(alarm(key=f"rw-{i}")).ok for i in range(20))
    result = channel.send(alarm(key="rw-21"))
    assert (result.ok, result.throttled, result.retry, result.provider_code) == (False, True, True, "45009")
    assert len(fake_wecom_robot.delivered) == 20
    fake_wecom_robot.advance(61)
    assert channel.send(alarm(key="rw-21")).ok


def test_a_wrong_wecom_robot_key_fails_for_good_with_the_provider_code(fake_wecom_robot):
    result = WecomRobotChannel(fake_wecom_robot.config(key="0000-deleted-robot")).send(alarm())
    assert (result.ok, result.retry, result.provider_code) == (False, False, "93000")
    assert "invalid webhook url" in result.detail and "0000-deleted-robot" not in result.detail


def test_wecom_busy_is_retried_without_holding_the_channel(fake_wecom_robot):
    fake_wecom_robot.busy()
    result = WecomRobotChannel(fake_wecom_robot.config()).send(alarm())
    assert (result.ok, result.retry, result.throttled, result.provider_code) == (False, True, False, "-1")


@pytest.mark.parametrize("how", ["502", "refused", "slow"])
def test_a_provider_that_is_down_or_hangs_means_retry(fake_wecom_robot, how):
    channel = WecomRobotChannel(fake_wecom_robot.config(timeout_s=0.3))
    if how == "slow":
        fake_wecom_robot.slow(1.0)
    else:
        fake_wecom_robot.down(how)
    result = channel.send(alarm())
    assert (result.ok, result.retry, result.throttled) == (False, True, False)
    assert result.provider_code == ("502" if how == "502" else "")
    assert {"refused": "ConnectionRefusedError", "slow": "timed out"}.get(how, "HTTP 502") in result.detail
    fake_wecom_robot.up()
    assert channel.send(alarm(key="rw-2")).ok


# --- 企业微信应用消息 -------------------------------------------------------------------------------------------

def test_wecom_app_fetches_a_token_then_sends_the_documented_json(fake_wecom_app):
    channel = WecomAppChannel(fake_wecom_app.config())
    result = channel.send(alarm(to=("zhangwei", "liqiang")))
    assert result.ok and result.provider_code == "0"
    gettoken, send = fake_wecom_app.received
    assert (gettoken.method, gettoken.path) == ("GET", "/cgi-bin/gettoken")
    assert gettoken.query == {"corpid": [fake_wecom_app.corp_id], "corpsecret": [fake_wecom_app.corp_secret]}
    assert (send.method, send.path, send.delivered, send.notes) == ("POST", "/cgi-bin/message/send", True, [])
    assert send.query == {"access_token": list(fake_wecom_app.tokens)}
    assert send.json == {"touser": "zhangwei|liqiang", "msgtype": "text", "agentid": fake_wecom_app.agent_id,
                         "text": {"content": f"{TITLE}\n{TEXT}"}, "safe": 0, "enable_duplicate_check": 1,
                         "duplicate_check_interval": 1800}


def test_wecom_app_token_is_fetched_once_and_reused(fake_wecom_app):
    channel = WecomAppChannel(fake_wecom_app.config())
    assert all(channel.send(alarm(key=f"rw-{i}", text=f"{TEXT}（第{i}次）", to=("zhangwei",))).ok for i in range(3))
    assert fake_wecom_app.gettoken_calls == 1
    assert len({r.param("access_token") for r in fake_wecom_app.delivered}) == 1


def test_wecom_app_token_is_renewed_five_minutes_before_it_expires(fake_wecom_app):
    now = [1000.0]
    channel = WecomAppChannel(fake_wecom_app.config(), clock=lambda: now[0])
    assert channel.send(alarm(to=("zhangwei",))).ok
    now[0] += 7200 - 300 - 1
    assert channel.send(alarm(key="rw-2", text="第二条", to=("zhangwei",))).ok and fake_wecom_app.gettoken_calls == 1
    now[0] += 2
    assert channel.send(alarm(key="rw-3", text="第三条", to=("zhangwei",))).ok and fake_wecom_app.gettoken_calls == 2


@pytest.mark.parametrize("stale", ["expired", "invalid"])
def test_wecom_app_fetches_a_new_token_after_42001_or_40014_and_sends_at_once(fake_wecom_app, stale):
    channel = WecomAppChannel(fake_wecom_app.config())
    assert channel.send(alarm(to=("zhangwei",))).ok
    if stale == "expired":
        fake_wecom_app.expire_tokens()
    else:
        fake_wecom_app.tokens.clear()  # WeCom no longer knows it
    assert channel.send(alarm(key="rw-2", text="第二条", to=("zhangwei",))).ok
    paths = [(r.path, r.answer.body["errcode"]) for r in fake_wecom_app.received]
    code = 42001 if stale == "expired" else 40014
    assert paths == [("/cgi-bin/gettoken", 0), ("/cgi-bin/message/send", 0), ("/cgi-bin/message/send", code),
                     ("/cgi-bin/gettoken", 0), ("/cgi-bin/message/send", 0)]


def test_wecom_app_refreshes_the_token_only_once_per_message(fake_wecom_app):
    for _ in range(2):
        fake_wecom_app.answer_next({"errcode": 42001, "errmsg": "access_token expired"}, path="/cgi-bin/message/send")
    result = WecomAppChannel(fake_wecom_app.config()).send(alarm(to=("zhangwei",)))
    assert (result.ok, result.retry, result.provider_code) == (False, True, "42001")
    assert fake_wecom_app.gettoken_calls == 2 and fake_wecom_app.delivered == []


def test_a_wrong_wecom_app_secret_fails_for_good_at_gettoken(fake_wecom_app):
    result = WecomAppChannel(fake_wecom_app.config(corp_secret="not-the-secret")).send(alarm(to=("zhangwei",)))
    assert (result.ok, result.retry, result.provider_code) == (False, False, "40001")
    assert result.detail.startswith("gettoken: errcode 40001 invalid credential")


def test_wecom_app_names_unknown_users_and_fails_for_good_when_none_exist(fake_wecom_app):
    channel = WecomAppChannel(fake_wecom_app.config())
    partly = channel.send(alarm(to=("zhangwei", "Nobody")))
    assert partly.ok and "invaliduser=nobody" in partly.detail
    none = channel.send(alarm(key="rw-2", to=("ghost1", "ghost2")))
    assert (none.ok, none.retry, none.provider_code) == (False, False, "81013")


def test_wecom_app_without_recipients_fails_for_good_without_a_request(fake_wecom_app):
    result = WecomAppChannel(fake_wecom_app.config()).send(alarm(to=()))
    assert (result.ok, result.retry) == (False, False) and fake_wecom_app.received == []


@pytest.mark.parametrize("code", [45009, 45033])
def test_wecom_app_frequency_limits_hold_the_channel(fake_wecom_app, code):
    fake_wecom_app.answer_next({"errcode": code, "errmsg": "api freq out of limit"}, path="/cgi-bin/message/send")
    result = WecomAppChannel(fake_wecom_app.config()).send(alarm(to=("zhangwei",)))
    assert (result.ok, result.throttled, result.retry, result.provider_code) == (False, True, True, str(code))


def test_wecom_app_text_is_cut_before_wecom_would_cut_it(fake_wecom_app):
    long_text = "氨气泄漏报警，" * 200
    assert WecomAppChannel(fake_wecom_app.config()).send(alarm(text=long_text, to=("wangfang",))).ok
    [got] = fake_wecom_app.delivered
    assert_cut(got.json["text"]["content"], f"{TITLE}\n{long_text}", 2048)
    assert got.notes == []  # WeCom had nothing to cut


def test_a_wecom_app_retry_of_the_same_message_is_not_delivered_twice(fake_wecom_app):
    channel = WecomAppChannel(fake_wecom_app.config())
    assert channel.send(alarm(to=("zhangwei",))).ok and channel.send(alarm(to=("zhangwei",))).ok
    assert len(fake_wecom_app.delivered) == 1
    assert "duplicate" in fake_wecom_app.received[-1].notes[0]


# --- 钉钉自定义机器人 -------------------------------------------------------------------------------------------

def test_dingtalk_markdown_is_signed_and_at_s_every_recipient_in_the_text(fake_dingtalk):
    result = DingtalkRobotChannel(fake_dingtalk.config()).send(alarm())
    assert result.ok and result.provider_code == "0"
    [got] = fake_dingtalk.delivered
    assert (got.method, got.path, set(got.query)) == ("POST", "/robot/send", {"access_token", "timestamp", "sign"})
    timestamp = got.param("timestamp")
    assert abs(int(timestamp) - time.time() * 1000) < 60_000
    mac = hmac.new(fake_dingtalk.secret.encode(), f"{timestamp}\n{fake_dingtalk.secret}".encode(), hashlib.sha256)
    assert got.param("sign") == base64.b64encode(mac.digest()).decode()
    assert got.param("access_token") == fake_dingtalk.token
    assert got.headers["content-type"] == "application/json; charset=utf-8"
    assert got.json == {"msgtype": "markdown",
                        "markdown": {"title": TITLE, "text": f"### {TITLE}\n\n{TEXT}\n\n@13800138000 @13900139000"},
                        "at": {"atMobiles": list(MOBILES), "isAtAll": False}}
    assert got.notes == []  # every mobile is @-ed in the text


def test_a_dingtalk_sign_with_plus_and_slash_survives_url_encoding(fake_dingtalk):
    start = int(time.time() * 1000)
    ts = next(t for t in range(start, start + 10_000) if {"+", "/"} <= set(sign(fake_dingtalk.secret, t)))
    result = DingtalkRobotChannel(fake_dingtalk.config(), clock=lambda: ts / 1000).send(alarm())
    assert result.ok, result.detail  # the fake compared the decoded sign with its own
    assert "%2B" in fake_dingtalk.received[0].raw_query and "%2F" in fake_dingtalk.received[0].raw_query


def test_the_21st_dingtalk_message_is_throttled_for_the_documented_ten_minutes(fake_dingtalk):
    channel = DingtalkRobotChannel(fake_dingtalk.config())
    assert all(channel.send(alarm(key=f"rw-{i}")).ok for i in range(20))
    result = channel.send(alarm(key="rw-21"))
    assert (result.ok, result.throttled, result.retry, result.provider_code) == (False, True, True, "130101")
    assert result.retry_after_s == 600
    fake_dingtalk.advance(61)
    assert channel.send(alarm(key="rw-21")).provider_code == "130101"  # still inside the 10 minutes
    fake_dingtalk.advance(600)
    assert channel.send(alarm(key="rw-21")).ok


@pytest.mark.parametrize("override, code, words", [
    ({"secret": "SECnot-the-signing-secret"}, "310000", "签名不匹配"),
    ({"access_token": "not-a-robot"}, "300001", "token is not exist"),
])
def test_wrong_dingtalk_credentials_fail_for_good_with_the_provider_code(fake_dingtalk, override, code, words):
    result = DingtalkRobotChannel(fake_dingtalk.config(**override)).send(alarm())
    assert (result.ok, result.retry, result.provider_code) == (False, False, code)
    assert words in result.detail and fake_dingtalk.delivered == []


def test_a_dingtalk_timestamp_two_hours_off_is_refused(fake_dingtalk):
    result = DingtalkRobotChannel(fake_dingtalk.config(), clock=lambda: time.time() - 7200).send(alarm())
    assert (result.ok, result.retry, result.provider_code) == (False, False, "310000")
    assert "invalid timestamp" in result.detail


def test_a_long_dingtalk_report_is_cut_to_the_body_limit_keeping_the_mentions(fake_dingtalk):
    long_text = "除尘器灰斗温度异常升高，" * 1000  # 36,000 bytes
    assert DingtalkRobotChannel(fake_dingtalk.config()).send(alarm(text=long_text)).ok
    [got] = fake_dingtalk.delivered
    assert 19_990 < len(got.body) <= 20_000
    report, mentions = got.json["markdown"]["text"].rsplit("\n\n", 1)
    assert mentions == "@13800138000 @13900139000" and report.endswith("…") and got.notes == []
    assert long_text.startswith(report.removeprefix(f"### {TITLE}\n\n")[:-1])


def test_the_dingtalk_fake_refuses_a_body_past_20000_bytes(fake_dingtalk):
    ts = int(time.time() * 1000)
    query = urlencode({"access_token": fake_dingtalk.token, "timestamp": ts, "sign": sign(fake_dingtalk.secret, ts)})
    url = f"{fake_dingtalk.config().base_url}?{query}"
    assert post_raw(url, {"msgtype": "markdown", "markdown": {"title": "t", "text": "字" * 6600}})["errcode"] == 0
    answer = post_raw(url, {"msgtype": "markdown", "markdown": {"title": "t", "text": "字" * 6700}})
    assert answer["errcode"] == 460101


def test_dingtalk_busy_and_down_are_retried(fake_dingtalk):
    channel = DingtalkRobotChannel(fake_dingtalk.config())
    fake_dingtalk.busy()
    assert (channel.send(alarm()).retry, channel.send(alarm()).provider_code) == (True, "-1")
    fake_dingtalk.down()
    assert channel.send(alarm()).retry


# --- 通用 webhook ----------------------------------------------------------------------------------------------

def test_webhook_posts_the_notification_signed_and_with_an_idempotency_key(fake_webhook):
    now = float(int(time.time()))
    result = WebhookChannel(fake_webhook.config(), clock=lambda: now).send(alarm())
    assert result.ok and result.provider_code == "200"
    [got] = fake_webhook.delivered
    assert (got.method, got.path) == ("POST", "/hooks/riskwatch")
    assert got.headers["content-type"] == "application/json; charset=utf-8"
    assert got.headers["idempotency-key"] == "rw-1"
    assert got.headers["x-riskwatch-timestamp"] == str(int(now))
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{int(now)}.".encode() + got.body, hashlib.sha256).hexdigest()
    assert got.headers["x-riskwatch-signature"] == f"sha256={mac}"
    assert got.json == {"key": "rw-1", "tier": "red", "title": TITLE, "text": TEXT, "to": list(MOBILES),
                        "params": {"site": "示范工厂", "tier": "红色", "area": "1号深井铸造"},
                        "sent_at": datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")}


def test_a_webhook_signed_with_the_wrong_secret_or_too_late_is_refused_for_good(fake_webhook):
    wrong = WebhookChannel(fake_webhook.config(secret="whsec-wrong")).send(alarm())
    assert (wrong.ok, wrong.retry, wrong.provider_code) == (False, False, "401")
    assert "bad X-Riskwatch-Signature" in wrong.detail
    late = WebhookChannel(fake_webhook.config(), clock=lambda: time.time() - 3600).send(alarm())
    assert (late.ok, late.provider_code) == (False, "401") and "stale" in late.detail


def test_an_unsigned_webhook_carries_no_signature_headers(fake_webhook):
    fake_webhook.secret = None
    assert WebhookChannel(fake_webhook.config(secret=None)).send(alarm()).ok
    assert not {"x-riskwatch-timestamp", "x-riskwatch-signature"} & set(fake_webhook.delivered[0].headers)


def test_a_webhook_retry_with_the_same_key_is_delivered_once(fake_webhook):
    channel = WebhookChannel(fake_webhook.config())
    assert channel.send(alarm()).ok and channel.send(alarm()).ok
    assert len(fake_webhook.delivered) == 1 and "Idempotency-Key" in fake_webhook.received[1].notes[0]


def test_webhook_statuses_mean_what_the_contract_says(fake_webhook):
    channel = WebhookChannel(fake_webhook.config(timeout_s=0.3))
    fake_webhook.busy()  # 429 with Retry-After: 7
    busy = channel.send(alarm())
    assert (busy.ok, busy.throttled, busy.retry, busy.retry_after_s, busy.provider_code) == (False, True, True, 7.0,
                                                                                            "429")
    fake_webhook.down()
    assert (channel.send(alarm()).retry, channel.send(alarm()).provider_code) == (True, "502")
    fake_webhook.down("refused")
    assert channel.send(alarm()).retry
    fake_webhook.up()
    wrong_path = WebhookChannel(fake_webhook.config(url=fake_webhook.base + "/hooks/other")).send(alarm())
    assert (wrong_path.ok, wrong_path.retry, wrong_path.provider_code) == (False, False, "404")


def test_a_webhook_receivers_rate_limit_holds_the_channel_for_its_retry_after(fake_webhook):
    fake_webhook.window.n = 1
    channel = WebhookChannel(fake_webhook.config())
    assert channel.send(alarm(key="rw-1")).ok
    held = channel.send(alarm(key="rw-2"))
    assert (held.throttled, held.retry, held.retry_after_s) == (True, True, 30.0)


# --- secrets ---------------------------------------------------------------------------------------------------

def test_no_secret_reaches_a_result_a_repr_or_a_log_record(fake_wecom_robot, fake_wecom_app, fake_dingtalk,
                                                          fake_webhook, caplog):
    caplog.set_level(logging.DEBUG)
    cases = [(WecomRobotChannel(fake_wecom_robot.config(msgtype="text")), fake_wecom_robot, (fake_wecom_robot.key,)),
             (WecomAppChannel(fake_wecom_app.config()), fake_wecom_app, (fake_wecom_app.corp_secret,)),
             (DingtalkRobotChannel(fake_dingtalk.config()), fake_dingtalk, (fake_dingtalk.token, fake_dingtalk.secret)),
             (WebhookChannel(fake_webhook.config()), fake_webhook, (WEBHOOK_SECRET,))]
    results = []
    for channel, fake, own in cases:
        results.append(channel.send(alarm(to=("zhangwei",))))
        fake.busy()
        results.append(channel.send(alarm(key="rw-2", to=("zhangwei",))))
        fake.up()
        tokens = tuple(getattr(fake, "tokens", ()))  # the WeCom app's access_token is a credential too
        fake.answer_next({"errcode": 93000, "errmsg": f"echoed {own + tokens} back"}, status=500)  # a careless proxy
        results.append(channel.send(alarm(key="rw-3", to=("zhangwei",))))
    fake_wecom_app.expire_tokens()
    results.append(cases[1][0].send(alarm(key="rw-4", to=("zhangwei",))))
    results.append(WecomAppChannel(fake_wecom_app.config(corp_secret="Qm3v-wrong")).send(alarm(to=("zhangwei",))))
    assert [r.ok for r in results] == [True, False, False] * 4 + [True, False]
    seen = [r.detail for r in results] + [repr(c) for c, _, _ in cases]
    seen += [r.getMessage() for r in caplog.records] + [repr(r.args) for r in caplog.records]
    assert sum("***" in s for s in seen) >= 8  # each echo was found and scrubbed, in the result and the log
    every = SECRETS + tuple(fake_wecom_app.tokens) + ("Qm3v-wrong",)
    assert [(s, secret) for s in seen for secret in every if secret in s] == []
