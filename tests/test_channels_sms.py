"""SMS and e-mail channels against real servers on loopback that check each provider's wire format and signature
the way the provider does (tests/fake_sms.py, tests/fake_smtp.py) and answer the way it answers."""
from __future__ import annotations

import base64
import calendar
import doctest
import hashlib
import json
import logging
import re
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qsl, urlsplit

import pytest

from alerting.channels import aliyun_sms
from alerting.channels.aliyun_sms import AliyunSmsChannel
from alerting.channels.base import Message
from alerting.channels.email import EmailChannel
from alerting.channels.tencent_sms import TencentSmsChannel
from config.channels import Email
from config.model import Tier
import fake_sms
from fake_sms import FakeAliyunSms, FakeTencentSms
from fake_smtp import FakeSmtp

aliyun, tencent, smtp = fake_sms.aliyun, fake_sms.tencent, fake_sms.smtp  # the loopback providers, as fixtures

PARAMS = {"site": "示范工厂", "tier": "红色", "area": "1号深井铸造", "subject": "结晶器 冷却水*出水~温度",
          "state": "新报警", "reason": "出水温度 48.6℃ 超过 45℃/持续 3 分钟"}
TITLE = "【红色预警】1号深井铸造：结晶器冷却水出水温度 48.6℃"
TEXT = "1号深井铸造 结晶器冷却水出水温度 48.6℃，超过 45℃ 已 3 分钟。请立即停止浇铸并在系统中确认。\nRed alarm: mould cooling water."
DUTY, SAFETY, HEAD = "13800001234", "13900005678", "13700009012"
MISTYPED = "1380000123"  # a digit short
SMTP_USER = "alarm@plant.example.cn"


def alarm(key: str = "rw-101", to: tuple[str, ...] = (DUTY,), **params: str) -> Message:
    return Message(key=key, tier=Tier.RED, title=TITLE, text=TEXT, to=to, params={**PARAMS, **params})


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def permanent(r, code: str) -> bool:
    return not r.ok and not r.retry and not r.throttled and r.provider_code == code


# --- Aliyun ---------------------------------------------------------------------------------------------------

def test_aliyun_red_alarm_goes_out_signed_v3_by_default_and_the_provider_verifies_it(aliyun):
    r = AliyunSmsChannel(aliyun.config()).send(alarm(to=(DUTY, "+86 139-0000-5678")))
    assert r.ok and r.provider_code == "OK" and "BizId" in r.detail and r.delivered_to == (DUTY, "+86 139-0000-5678")
    sms, = aliyun.accepted
    assert sms.numbers == (DUTY, SAFETY) and sms.params == PARAMS and sms.trace == "rw-101"
    assert sms.text.startswith("【示范工厂】红色预警（新报警）：示范工厂1号深井铸造结晶器 冷却水*出水~温度，")
    req, = aliyun.requests
    h, url = req.headers, urlsplit(req.path)
    assert (req.method, url.path, req.body) == ("POST", "/", b"") and "content-type" not in h
    assert {k: h[k] for k in ("host", "x-acs-action", "x-acs-version", "x-acs-content-sha256")} == {
        "host": aliyun.url.split("/")[2], "x-acs-action": "SendSms", "x-acs-version": "2017-05-25",
        "x-acs-content-sha256": hashlib.sha256(b"").hexdigest()}
    assert abs(calendar.timegm(time.strptime(h["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ")) - time.time()) < 5
    assert b"+" not in url.query.encode() and "%20" in url.query and "%2A" in url.query and "~" in url.query
    query = parse_qsl(url.query)
    assert [k for k, _ in query] == sorted(k for k, _ in query)  # the canonical query, as sent
    assert dict(query) == {"PhoneNumbers": f"{DUTY},+86{SAFETY}", "SignName": "示范工厂", "TemplateCode": "SMS_276450001",
                           "OutId": "rw-101",
                           "TemplateParam": json.dumps(PARAMS, ensure_ascii=False, separators=(",", ":"))}
    signed = "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
    auth = re.fullmatch(rf"ACS3-HMAC-SHA256 Credential={aliyun.key_id},SignedHeaders={signed},"
                        r"Signature=([0-9a-f]{64})", h["authorization"])
    canonical = aliyun.v3_canonical_request("POST", "/", query, h, signed.split(";"), b"")
    assert auth and auth.group(1) == aliyun.v3_signature(canonical, aliyun.secret)


def test_aliyun_v3_signature_follows_the_worked_example_in_aliyuns_docs():
    """"Fixed parameter values" of Aliyun's "V3 request body & signature mechanism", on the fake's own code; the
    channel's `authorization` carries the same example as a doctest, run here too."""
    headers = {"host": "ecs.cn-shanghai.aliyuncs.com", "x-acs-action": "RunInstances", "x-acs-version": "2014-05-26",
               "x-acs-date": "2023-10-26T10:22:32Z", "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
               "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}
    query = [("RegionId", "cn-shanghai"), ("ImageId", "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd")]
    canonical = FakeAliyunSms.v3_canonical_request("POST", "/", query, headers, sorted(headers), b"")
    assert hashlib.sha256(canonical.encode()).hexdigest() == (
        "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259")
    assert FakeAliyunSms.v3_signature(canonical, "YourAccessKeySecret") == (
        "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0")
    examples = doctest.testmod(aliyun_sms)
    assert examples.failed == 0 and examples.attempted >= 6


def test_aliyun_red_alarm_reaches_two_duty_phones_through_a_verified_v1_signature(aliyun):
    r = AliyunSmsChannel(aliyun.config(signature="v1")).send(alarm(to=(DUTY, "+86 139-0000-5678")))
    assert r.ok and r.provider_code == "OK" and "BizId" in r.detail
    sms, = aliyun.accepted
    assert sms.numbers == (DUTY, SAFETY) and sms.params == PARAMS and sms.trace == "rw-101"
    assert sms.text == ("【示范工厂】红色预警（新报警）：示范工厂1号深井铸造结晶器 冷却水*出水~温度，"
                        "出水温度 48.6℃ 超过 45℃/持续 3 分钟。请立即处置并在系统中确认。")
    req, = aliyun.requests
    assert req.method == "POST" and req.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert b"+" not in req.body and b"%20" in req.body and b"%2A" in req.body and b"~" in req.body
    p = dict(parse_qsl(req.body.decode("ascii")))
    assert {k: p[k] for k in ("Action", "Version", "Format", "SignatureMethod", "SignatureVersion", "AccessKeyId",
                              "SignName", "TemplateCode", "OutId", "PhoneNumbers")} == {
        "Action": "SendSms", "Version": "2017-05-25", "Format": "JSON", "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0", "AccessKeyId": aliyun.key_id, "SignName": "示范工厂", "TemplateCode": "SMS_276450001",
        "OutId": "rw-101", "PhoneNumbers": f"{DUTY},+86{SAFETY}"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", p["Timestamp"])
    assert abs(calendar.timegm(time.strptime(p["Timestamp"], "%Y-%m-%dT%H:%M:%SZ")) - time.time()) < 5
    assert json.loads(p["TemplateParam"]) == PARAMS
    assert p["Signature"] == aliyun.signature("POST", p, aliyun.secret)


def test_aliyun_signature_follows_the_worked_example_in_aliyuns_docs():
    example = {"TimeStamp": "2016-02-23T12:46:24Z", "Format": "XML", "AccessKeyId": "testid",
               "Action": "DescribeRegions", "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
               "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "Version": "2014-05-26"}
    assert FakeAliyunSms().signature("GET", example, "testsecret") == "CT9X0VtwR86fNWSnsc6v8YGOjuE="


def test_aliyun_variable_longer_than_35_characters_is_cut_on_a_character(aliyun):
    long_reason = "出水温度持续上升" * 6  # 48 characters
    assert AliyunSmsChannel(aliyun.config()).send(alarm(reason=long_reason)).ok
    sent = aliyun.accepted[0].params["reason"]
    assert len(sent) == 35 and sent == long_reason[:34] + "…"


def replay(aliyun: FakeAliyunSms, seen, **headers: str) -> tuple[int, dict]:
    """A request as it arrived, sent again (with headers changed or added); the provider's answer."""
    kept = {k: v for k, v in seen.headers.items() if k in ("content-type", "authorization") or k.startswith("x-acs-")}
    again = urllib.request.Request(aliyun.url.rstrip("/") + seen.path, seen.body or None, method="POST",
                                   headers=kept | headers)
    try:
        with urllib.request.urlopen(again, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize("version", ["v1", "v3"])
def test_aliyun_each_request_has_its_own_nonce_and_a_replayed_request_is_refused(aliyun, version):
    channel = AliyunSmsChannel(aliyun.config(signature=version))
    assert channel.send(alarm("rw-1")).ok and channel.send(alarm("rw-2")).ok
    first, second = ({**dict(parse_qsl(r.body.decode())), **r.headers} for r in aliyun.requests)
    nonce = "SignatureNonce" if version == "v1" else "x-acs-signature-nonce"
    assert first[nonce] != second[nonce]
    status, answer = replay(aliyun, aliyun.requests[0])
    assert (status, answer["Code"]) == (400, "SignatureNonceUsed")
    assert len(aliyun.accepted) == 2


def test_aliyun_v3_request_changed_on_the_way_or_with_an_unsigned_header_is_refused(aliyun):
    assert AliyunSmsChannel(aliyun.config()).send(alarm("rw-1")).ok
    seen = aliyun.requests[0]
    other = seen.path.replace(f"PhoneNumbers={DUTY}", f"PhoneNumbers={HEAD}")
    assert other != seen.path
    tampered = type(seen)(seen.method, other, seen.headers, seen.body)
    assert replay(aliyun, tampered)[1]["Code"] == "SignatureDoesNotMatch"
    assert replay(aliyun, seen, **{"x-acs-security-token": "unsigned"})[1]["Code"] == "IncompleteSignature"
    assert replay(aliyun, seen, **{"x-acs-content-sha256": "0" * 64})[1]["Code"] == "SignatureDoesNotMatch"
    assert len(aliyun.accepted) == 1 and aliyun.delivered == {DUTY: 1}


def test_aliyun_number_over_its_minute_limit_waits_a_minute_without_holding_the_channel():
    with FakeAliyunSms(per_number_per_minute=1) as aliyun:
        channel = AliyunSmsChannel(aliyun.config())
        assert channel.send(alarm("rw-1")).ok
        r = channel.send(alarm("rw-2"))
        assert (r.ok, r.retry, r.throttled, r.retry_after_s) == (False, True, False, 60.0)
        assert r.provider_code == "isv.BUSINESS_LIMIT_CONTROL" and "分钟级" in r.detail
        assert channel.send(alarm("rw-3", to=(SAFETY,))).ok  # the safety manager's phone is not held up


def test_aliyun_number_over_its_daily_limit_goes_to_the_next_channel_now():
    with FakeAliyunSms(per_number_per_day=1) as aliyun:
        channel = AliyunSmsChannel(aliyun.config())
        assert channel.send(alarm("rw-1")).ok
        assert permanent(channel.send(alarm("rw-2")), "isv.BUSINESS_LIMIT_CONTROL")


def test_aliyun_api_flow_control_holds_the_channel_and_retries():
    with FakeAliyunSms(app_per_minute=1) as aliyun:
        channel = AliyunSmsChannel(aliyun.config())
        assert channel.send(alarm("rw-1")).ok
        r = channel.send(alarm("rw-2", to=(SAFETY,)))
        assert (r.ok, r.retry, r.throttled, r.provider_code) == (False, True, True, "Throttling.User")


@pytest.mark.parametrize("change, code", [
    ({"access_key_secret": "not-the-secret-0001"}, "SignatureDoesNotMatch"),
    ({"access_key_secret": "not-the-secret-0001", "signature": "v1"}, "SignatureDoesNotMatch"),
    ({"access_key_id": "LTAI5tUnknownKey999"}, "InvalidAccessKeyId.NotFound"),
    ({"template_code": "SMS_000000001"}, "isv.SMS_TEMPLATE_ILLEGAL"),
    ({"sign_name": "未报备签名"}, "isv.SMS_SIGNATURE_ILLEGAL"),
])
def test_aliyun_refusals_that_a_resend_cannot_fix_are_permanent_with_aliyuns_code(aliyun, change, code):
    r = AliyunSmsChannel(aliyun.config(**change)).send(alarm())
    assert permanent(r, code) and not aliyun.accepted
    assert "not-the-secret" not in r.detail and "string to sign" not in r.detail


def test_aliyun_illegal_number_is_permanent(aliyun):
    assert permanent(AliyunSmsChannel(aliyun.config()).send(alarm(to=("1380000",))), "isv.MOBILE_NUMBER_ILLEGAL")


def test_aliyun_one_mistyped_number_among_three_does_not_keep_the_alarm_from_the_other_two(aliyun):
    r = AliyunSmsChannel(aliyun.config()).send(alarm(to=(DUTY, MISTYPED, "137 0000 9012")))
    assert permanent(r, "isv.MOBILE_NUMBER_ILLEGAL") and r.delivered_to == (DUTY, "137 0000 9012")
    assert aliyun.delivered == {DUTY: 1, HEAD: 1}
    assert [dict(parse_qsl(urlsplit(q.path).query))["PhoneNumbers"] for q in aliyun.requests] == [
        f"{DUTY},{MISTYPED},{HEAD}", DUTY, MISTYPED, HEAD]  # refused for all three, then one by one
    assert "2/3 sent" in r.detail and "138****0123" in r.detail and MISTYPED not in r.detail


def test_aliyun_phone_over_its_minute_limit_waits_while_the_other_phone_gets_the_alarm_now():
    with FakeAliyunSms(per_number_per_minute=1) as aliyun:
        channel = AliyunSmsChannel(aliyun.config())
        assert channel.send(alarm("rw-1")).ok
        r = channel.send(alarm("rw-2", to=(DUTY, SAFETY)))
        assert (r.ok, r.retry, r.throttled, r.retry_after_s) == (False, True, False, 60.0)
        assert r.provider_code == "isv.BUSINESS_LIMIT_CONTROL" and r.delivered_to == (SAFETY,)
        assert aliyun.delivered == {DUTY: 1, SAFETY: 1}


def test_aliyun_flow_control_while_sending_number_by_number_leaves_the_rest_unsent_to_retry():
    with FakeAliyunSms(app_per_minute=2) as aliyun:
        r = AliyunSmsChannel(aliyun.config()).send(alarm(to=(DUTY, MISTYPED, HEAD)))
        assert (r.ok, r.retry, r.throttled, r.provider_code) == (False, True, True, "Throttling.User")
        assert r.delivered_to == (DUTY,) and aliyun.delivered == {DUTY: 1}
        assert len(aliyun.requests) == 3  # the batch, 王班长's, then the API said "too fast": 赵主任's waits


@pytest.mark.parametrize("version", ["v1", "v3"])
def test_aliyun_refuses_a_request_signed_by_a_clock_20_minutes_behind(version):
    with FakeAliyunSms(clock=lambda: time.time() + 1200) as aliyun:
        r = AliyunSmsChannel(aliyun.config(signature=version)).send(alarm())
        assert permanent(r, "InvalidTimeStamp.Expired")


@pytest.mark.parametrize("provider, make, busy_code", [("aliyun", AliyunSmsChannel, "isp.SYSTEM_ERROR"),
                                                      ("tencent", TencentSmsChannel, "InternalError.Timeout")])
def test_an_sms_provider_outage_is_retried(request, provider, make, busy_code):
    fake = request.getfixturevalue(provider)
    channel = make(fake.config())
    fake.mode = "down"
    r = channel.send(alarm("rw-1"))
    assert (r.ok, r.retry, r.throttled, r.provider_code) == (False, True, False, "503")
    fake.mode = "busy"
    r = channel.send(alarm("rw-2"))
    assert (r.ok, r.retry, r.provider_code) == (False, True, busy_code)
    r = make(fake.config(base_url=f"http://127.0.0.1:{closed_port()}/")).send(alarm("rw-3"))
    assert (r.ok, r.retry, r.provider_code) == (False, True, "") and "no answer" in r.detail


# --- Tencent --------------------------------------------------------------------------------------------------

def test_tencent_red_alarm_goes_out_as_a_tc3_signed_json_request(tencent):
    r = TencentSmsChannel(tencent.config()).send(alarm(to=(DUTY,)))
    assert r.ok and r.provider_code == "Ok" and "SerialNo 3369:" in r.detail
    req, = tencent.requests
    h = req.headers
    assert (req.method, req.path) == ("POST", "/")
    assert {k: h[k] for k in ("content-type", "x-tc-action", "x-tc-version", "x-tc-region")} == {
        "content-type": "application/json; charset=utf-8", "x-tc-action": "SendSms", "x-tc-version": "2021-01-11",
        "x-tc-region": "ap-guangzhou"}
    assert h["host"] == tencent.url.split("/")[2] and abs(int(h["x-tc-timestamp"]) - time.time()) < 5
    day = time.strftime("%Y-%m-%d", time.gmtime(int(h["x-tc-timestamp"])))
    auth = re.fullmatch(rf"TC3-HMAC-SHA256 Credential={tencent.secret_id}/{day}/sms/tc3_request, "
                        r"SignedHeaders=content-type;host, Signature=([0-9a-f]{64})", h["authorization"])
    assert auth and auth.group(1) == tencent.expected_signature(req, tencent.secret_key, day, ["content-type", "host"],
                                                                h["x-tc-timestamp"])
    assert "红色".encode() in req.body  # UTF-8 as itself, not \u escapes
    assert json.loads(req.body) == {
        "PhoneNumberSet": [f"+86{DUTY}"], "SmsSdkAppId": tencent.app_id, "SignName": "示范工厂", "TemplateId": "1938201",
        "TemplateParamSet": [PARAMS[k] for k in ("site", "tier", "area", "subject", "reason")],
        "SessionContext": "rw-101"}
    sms, = tencent.accepted
    assert sms.trace == "rw-101" and sms.text == ("【示范工厂】示范工厂红色预警：1号深井铸造结晶器 冷却水*出水~温度，"
                                                  "出水温度 48.6℃ 超过 45℃/持续 3 分钟。请立即处置并在系统中确认。")


def test_tencent_numbers_in_any_mainland_form_go_out_as_e164(tencent):
    to = (DUTY, f"0086{SAFETY}", "86 137 0000 9012", "+8613600003456", DUTY)
    assert TencentSmsChannel(tencent.config()).send(alarm(to=to)).ok
    assert json.loads(tencent.requests[0].body)["PhoneNumberSet"] == [
        f"+86{DUTY}", f"+86{SAFETY}", f"+86{HEAD}", "+8613600003456"]


def test_tencent_template_params_follow_the_configured_order(tencent):
    tencent.templates["1938202"] = "{1}：{2}{3}（{4}）"
    channel = TencentSmsChannel(tencent.config(template_id="1938202", template_params=["tier", "area", "subject",
                                                                                        "state"]))
    assert channel.send(alarm()).ok
    assert tencent.accepted[0].text == "【示范工厂】红色：1号深井铸造结晶器 冷却水*出水~温度（新报警）"


def test_tencent_one_blacklisted_phone_fails_for_good_and_is_named_masked(tencent):
    tencent.blacklist.add(SAFETY)
    r = TencentSmsChannel(tencent.config()).send(alarm(to=(DUTY, SAFETY, HEAD)))
    assert permanent(r, "FailedOperation.PhoneNumberInBlacklist") and r.delivered_to == (DUTY, HEAD)
    assert "2/3 sent" in r.detail and "139****5678" in r.detail and SAFETY not in r.detail
    assert tencent.accepted[0].numbers == (DUTY, HEAD) and tencent.delivered == {DUTY: 1, HEAD: 1}


def test_tencent_only_a_throttled_phone_failing_means_retry_after_30_s():
    with FakeTencentSms(same_text_per_30s=1) as tencent:
        channel = TencentSmsChannel(tencent.config())
        assert channel.send(alarm("rw-1", to=(DUTY,))).ok
        r = channel.send(alarm("rw-2", to=(DUTY, SAFETY)))
        assert (r.ok, r.retry, r.throttled, r.retry_after_s) == (False, True, False, 30.0)
        assert r.provider_code == "LimitExceeded.PhoneNumberThirtySecondLimit" and "138****1234" in r.detail
        assert r.delivered_to == (SAFETY,) and tencent.delivered == {DUTY: 1, SAFETY: 1}


def test_tencent_says_who_got_it_in_the_rosters_own_spelling_of_each_number(tencent):
    tencent.blacklist.add(SAFETY)
    to = ("138 0000 1234", f"0086{SAFETY}", "+8613800001234", "86-137-0000-9012")
    r = TencentSmsChannel(tencent.config()).send(alarm(to=to))
    assert r.delivered_to == ("138 0000 1234", "+8613800001234", "86-137-0000-9012")
    assert r.partial(to) == (r.delivered_to, (f"0086{SAFETY}",))
    assert tencent.delivered == {DUTY: 1, HEAD: 1}


def test_tencent_phone_over_its_daily_limit_goes_to_the_next_channel():
    with FakeTencentSms(per_number_per_day=1) as tencent:
        channel = TencentSmsChannel(tencent.config())
        assert channel.send(alarm("rw-1")).ok
        assert permanent(channel.send(alarm("rw-2", reason="出水温度回落")), "LimitExceeded.PhoneNumberDailyLimit")


def test_tencent_request_rate_limit_holds_the_channel():
    with FakeTencentSms(app_per_minute=1) as tencent:
        channel = TencentSmsChannel(tencent.config())
        assert channel.send(alarm("rw-1")).ok
        r = channel.send(alarm("rw-2", to=(SAFETY,)))
        assert (r.ok, r.retry, r.throttled, r.provider_code) == (False, True, True, "RequestLimitExceeded")


@pytest.mark.parametrize("change, code", [
    ({"secret_key": "not-the-secret-0002"}, "AuthFailure.SignatureFailure"),
    ({"secret_id": "AKIDunknown0000000000000000000000009"}, "AuthFailure.SecretIdNotFound"),
    ({"template_id": "1000001"}, "FailedOperation.TemplateIncorrectOrUnapproved"),
    ({"sign_name": "未报备签名"}, "FailedOperation.SignatureIncorrectOrUnapproved"),
    ({"sdk_app_id": "1400000000"}, "InvalidParameterValue.SdkAppIdNotExist"),
    ({"region": "us-east-9"}, "UnsupportedRegion"),
])
def test_tencent_refusals_that_a_resend_cannot_fix_are_permanent_with_tencents_code(tencent, change, code):
    r = TencentSmsChannel(tencent.config(**change)).send(alarm())
    assert permanent(r, code) and not tencent.accepted and "not-the-secret" not in r.detail


def test_tencent_refuses_a_request_signed_by_a_clock_10_minutes_ahead():
    with FakeTencentSms(clock=lambda: time.time() - 600) as tencent:
        assert permanent(TencentSmsChannel(tencent.config()).send(alarm()), "AuthFailure.SignatureExpire")


def test_tencent_personal_account_refuses_variables_over_12_characters():
    with FakeTencentSms(var_max=12) as tencent:
        r = TencentSmsChannel(tencent.config()).send(alarm())
        assert permanent(r, "InvalidParameterValue.TemplateParameterLengthLimit")


# --- e-mail ---------------------------------------------------------------------------------------------------

def mail_config(smtp: FakeSmtp, **kw) -> Email:
    return Email(**{"kind": "email", "name": "duty-mail", "host": "127.0.0.1", "port": smtp.port, "security": "none",
                    "username": SMTP_USER, "password": smtp.users.get(SMTP_USER, "x"), "from": SMTP_USER,
                    "timeout_s": 5.0, **kw})


def test_email_red_alarm_arrives_with_a_readable_chinese_subject_and_body(smtp):
    r = EmailChannel(mail_config(smtp)).send(alarm(to=("zhang.wei@plant.example.cn", "li.na@plant.example.cn")))
    assert r.ok and r.provider_code == "250"
    mail, = smtp.received
    assert (mail.mail_from, mail.rcpt_to) == (SMTP_USER, ("zhang.wei@plant.example.cn", "li.na@plant.example.cn"))
    assert (mail.user, mail.mechanism) == (SMTP_USER, "PLAIN")
    head = mail.data.split(b"\r\n\r\n")[0].decode("ascii")
    assert "=?utf-8?" in head  # RFC 2047 encoded words, the header itself plain ASCII
    m = mail.message
    assert m["Subject"] == TITLE and m["From"] == SMTP_USER and m["X-Riskwatch-Tier"] == "red"
    assert m["To"] == "zhang.wei@plant.example.cn, li.na@plant.example.cn"
    assert m.get_content_type() == "text/plain" and m.get_content_charset() == "utf-8"
    assert m.get_content().rstrip("\n") == TEXT
    assert m["Message-ID"] == "<riskwatch.rw-101@plant.example.cn>" and m["Date"]


def test_email_resend_of_the_same_alarm_carries_the_same_message_id(smtp):
    channel = EmailChannel(mail_config(smtp))
    for key in ("rw-7", "rw-7", "rw-8"):
        assert channel.send(alarm(key, to=("zhang.wei@plant.example.cn",))).ok
    first, again, other = (m.message["Message-ID"] for m in smtp.received)
    assert first == again != other


def test_email_logs_in_with_auth_login_when_that_is_all_the_relay_offers():
    with FakeSmtp(mechanisms=("LOGIN",)) as smtp:
        assert EmailChannel(mail_config(smtp)).send(alarm(to=("zhang.wei@plant.example.cn",))).ok
        assert smtp.received[0].mechanism == "LOGIN"


def test_email_to_an_unknown_mailbox_fails_for_good():
    with FakeSmtp(mailboxes={"zhang.wei@plant.example.cn"}) as smtp:
        r = EmailChannel(mail_config(smtp)).send(alarm(to=("nobody@plant.example.cn",)))
        assert permanent(r, "550") and "n***@plant.example.cn" in r.detail and not smtp.received


def test_email_with_one_unknown_mailbox_still_reaches_the_others_and_says_who_was_refused():
    with FakeSmtp(mailboxes={"zhang.wei@plant.example.cn"}) as smtp:
        r = EmailChannel(mail_config(smtp)).send(alarm(to=("zhang.wei@plant.example.cn", "nobody@plant.example.cn")))
        assert permanent(r, "550") and "1/2 accepted" in r.detail and "nobody@" not in r.detail
        assert smtp.received[0].rcpt_to == ("zhang.wei@plant.example.cn",)
        assert r.delivered_to == ("zhang.wei@plant.example.cn",)  # a retry or fallback is for nobody@ alone


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data", "message"])
def test_email_temporary_failure_451_is_retried(smtp, stage):
    smtp.replies[stage] = (451, "4.3.0 Temporary lookup failure")
    r = EmailChannel(mail_config(smtp)).send(alarm(to=("zhang.wei@plant.example.cn",)))
    assert (r.ok, r.retry, r.throttled, r.provider_code) == (False, True, False, "451") and not smtp.received


def test_email_relay_saying_421_holds_the_channel(smtp):
    smtp.replies["connect"] = (421, "4.7.0 Too many connections, try again later")
    r = EmailChannel(mail_config(smtp)).send(alarm(to=("zhang.wei@plant.example.cn",)))
    assert (r.ok, r.retry, r.throttled, r.provider_code) == (False, True, True, "421")


def test_email_wrong_password_is_permanent_and_never_shown(smtp):
    r = EmailChannel(mail_config(smtp, password="wrong-Pa55/word")).send(alarm(to=("zhang.wei@plant.example.cn",)))
    assert permanent(r, "535") and "wrong-Pa55" not in r.detail and not smtp.received


def test_email_starttls_asked_of_a_relay_without_it_is_a_configuration_error(smtp):
    r = EmailChannel(mail_config(smtp, security="starttls")).send(alarm(to=("zhang.wei@plant.example.cn",)))
    assert not r.ok and not r.retry and "STARTTLS" in r.detail


def test_email_relay_down_or_silent_is_retried(smtp):
    r = EmailChannel(mail_config(smtp, port=closed_port())).send(alarm(to=("zhang.wei@plant.example.cn",)))
    assert (r.ok, r.retry, r.throttled) == (False, True, False) and "no answer" in r.detail
    smtp.replies["connect"] = (0, "")
    r = EmailChannel(mail_config(smtp, timeout_s=0.5)).send(alarm(to=("zhang.wei@plant.example.cn",)))
    assert (r.ok, r.retry, r.throttled) == (False, True, False) and "timed out" in r.detail


# --- secrets --------------------------------------------------------------------------------------------------

def test_no_secret_in_results_reprs_or_logs(aliyun, tencent, smtp, caplog):
    caplog.set_level(logging.DEBUG)
    password = smtp.users[SMTP_USER]
    channels = [AliyunSmsChannel(aliyun.config()), AliyunSmsChannel(aliyun.config(access_key_secret="wrong-ali-key")),
                AliyunSmsChannel(aliyun.config(access_key_secret="wrong-ali-key1", signature="v1")),
                TencentSmsChannel(tencent.config()), TencentSmsChannel(tencent.config(secret_key="wrong-tc-key")),
                EmailChannel(mail_config(smtp)), EmailChannel(mail_config(smtp, password="wrong-mail-pass"))]
    results = [c.send(alarm(f"rw-{i}", to=("zhang.wei@plant.example.cn",) if c.kind == "email" else (DUTY,)))
               for i, c in enumerate(channels)]
    assert [r.ok for r in results] == [True, False, False, True, False, True, False]
    secrets = [aliyun.secret, tencent.secret_key, password, "wrong-ali-key", "wrong-tc-key", "wrong-mail-pass",
               base64.b64encode(password.encode()).decode(),
               base64.b64encode(f"\0{SMTP_USER}\0{password}".encode()).decode()]
    seen = [r.detail for r in results] + [repr(c) for c in channels] + [str(c) for c in channels]
    seen += [caplog.text] + [r.getMessage() for r in caplog.records]
    assert any("SignatureDoesNotMatch" in s for s in seen)  # the failures were looked at, not skipped
    for secret in secrets:
        assert not [s for s in seen if secret in s], secret
