"""阿里云短信 (Aliyun Dysmsapi) SendSms, version 2017-05-25, RPC style, signature version 1.0 (HMAC-SHA1).

From the Aliyun docs. SendSms (help.aliyun.com/document_detail/55284): up to 1000 comma-separated PhoneNumbers
(+/+86/0086/86 or no prefix), an approved SignName and TemplateCode, TemplateParam as a JSON object of strings, and
OutId (< 256 characters), which comes back in the delivery receipts. SendSms is not idempotent: OutId only lets a
resend be traced, Aliyun does not deduplicate on it. A template variable takes at most 35 characters unless that
limit was lifted for the template (document_detail/3041859); the whole message at most 500.
Signature v1 (the RPC signature mechanism, document_detail/172849): every parameter but Signature sorted by name,
names and values percent-encoded as RFC 3986 (A-Z a-z 0-9 - _ . ~ as they are, space %20, * %2A), then
StringToSign = METHOD & %2F & encode(query), HMAC-SHA1 keyed with the secret + "&", base64.
Flow control (document_detail/2881383): a notification to one number with one signature and template at most
50 times a day by default, more gives isv.BUSINESS_LIMIT_CONTROL ("触发分钟级/小时级/天级流控"); that limit is per
number, so it does not hold the channel for everyone else. Throttling.* is the API's own rate limit and does.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import Callable
from urllib.parse import quote

from alerting.channels.base import Message, SendResult
from alerting.channels.wire import ELLIPSIS, Reply, exchange, http_failure, scrub
from config.channels import AliyunSms

log = logging.getLogger("riskwatch.alerting.channels")

VERSION = "2017-05-25"
MAX_NUMBERS = 1000
VAR_MAX_CHARS = 35
OUT_ID_MAX_CHARS = 255
SMS_MAX_CHARS = 500
CHANNEL_THROTTLED = ("Throttling",)    # the API's own rate limit (Throttling.User, Throttling.Api): hold the channel
QUOTA = frozenset({"isv.DAY_LIMIT_CONTROL", "isv.MONTH_LIMIT_CONTROL"})  # the account's own daily/monthly cap
NUMBER_LIMIT = "isv.BUSINESS_LIMIT_CONTROL"
NUMBER_WAIT_S = {"分钟级": 60.0, "小时级": 3600.0, "天级": 86400.0}
TRANSIENT = frozenset({"isp.SYSTEM_ERROR", "ServiceUnavailable", "InternalError", "SignatureNonceUsed"})
# isv.MOBILE_NUMBER_ILLEGAL, isv.SMS_TEMPLATE_ILLEGAL, isv.SMS_SIGNATURE_ILLEGAL, SignatureDoesNotMatch,
# InvalidAccessKeyId.NotFound, InvalidTimeStamp.Expired (a wrong clock) and every other code are for good


def percent_encode(text: str) -> str:
    """RFC 3986 percent-encoding as Aliyun signs with it.

    >>> percent_encode("1号 深井*铸造~A/B")
    '1%E5%8F%B7%20%E6%B7%B1%E4%BA%95%2A%E9%93%B8%E9%80%A0~A%2FB'
    """
    return quote(text, safe="~")


def sign(params: dict[str, str], secret: str, method: str = "POST") -> str:
    """Signature v1 of a request's parameters (Signature itself not among them).

    The worked example of Aliyun's signature docs (AccessKey secret "testsecret"):
    >>> sign({"TimeStamp": "2016-02-23T12:46:24Z", "Format": "XML", "AccessKeyId": "testid",
    ...       "Action": "DescribeRegions", "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
    ...       "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "Version": "2014-05-26"}, "testsecret", "GET")
    'CT9X0VtwR86fNWSnsc6v8YGOjuE='
    """
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    return base64.b64encode(hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


def cut(text: str, max_chars: int) -> str:
    """At most max_chars characters (not bytes: Aliyun counts a Chinese character as one), "…" when cut."""
    return text if len(text) <= max_chars else text[:max_chars - 1] + ELLIPSIS


def numbers(to: tuple[str, ...]) -> list[str]:
    """The recipients' numbers without spaces or dashes, each once, in order."""
    out: list[str] = []
    for n in to:
        n = "".join(c for c in n if c not in " -")
        if n and n not in out:
            out.append(n)
    return out


class AliyunSmsChannel:
    kind = "aliyun_sms"

    def __init__(self, cfg: AliyunSms, clock: Callable[[], float] = time.time):
        self.name = cfg.name
        self.per_minute = cfg.per_minute  # Aliyun's limits are per number and per day, not per sender and minute
        self.max_chars = SMS_MAX_CHARS   # the text itself is not sent: the approved template is, with msg.params
        self._cfg = cfg
        self._clock = clock

    def __repr__(self) -> str:
        return (f"AliyunSmsChannel(name={self.name!r}, access_key_id={self._cfg.access_key_id!r}, "
                f"sign_name={self._cfg.sign_name!r}, template_code={self._cfg.template_code!r})")

    def params(self, msg: Message, to: list[str]) -> dict[str, str]:
        """The request's parameters before signing: common ones, then SendSms's own."""
        p = {"Format": "JSON", "Version": VERSION, "AccessKeyId": self._cfg.access_key_id,
             "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": uuid.uuid4().hex,
             "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock())), "Action": "SendSms",
             "PhoneNumbers": ",".join(to), "SignName": self._cfg.sign_name, "TemplateCode": self._cfg.template_code,
             "OutId": msg.key[:OUT_ID_MAX_CHARS]}
        if msg.params:
            p["TemplateParam"] = json.dumps({k: cut(v, VAR_MAX_CHARS) for k, v in msg.params.items()},
                                            ensure_ascii=False, separators=(",", ":"))
        return p

    def send(self, msg: Message) -> SendResult:
        to = numbers(msg.to)
        if not to:
            return SendResult(False, detail="no phone number to send to")
        if len(to) > MAX_NUMBERS:
            return SendResult(False, detail=f"{len(to)} numbers: SendSms takes at most {MAX_NUMBERS}")
        secret = self._cfg.access_key_secret.get_secret_value()
        params = self.params(msg, to)
        params["Signature"] = sign(params, secret, "POST")
        body = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items()).encode("ascii")
        reply = exchange("POST", self._cfg.base_url, body,
                         {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, self._cfg.timeout_s)
        result = read(reply, secret)
        log.debug("%s %s: %s %s", self.kind, self.name, result.provider_code or "-", result.detail)
        return result


def read(reply: Reply, secret: str) -> SendResult:
    """What Aliyun's answer means: {"Code": "OK", "BizId": ...} or {"Code": "<error>", "Message": ...}, the same
    shape on an HTTP error (SignatureDoesNotMatch comes with 400)."""
    answer = reply.json()
    code = answer.get("Code") if answer else None
    if reply.status == 0 or not isinstance(code, str):
        return http_failure(reply, secret) or SendResult(False, retry=True, detail="unreadable answer")
    message = str(answer.get("Message", "")).split(" server string to sign")[0]  # the rest echoes our request
    request_id = answer.get("RequestId", "-")
    if code == "OK":
        return SendResult.delivered("OK", scrub(f"BizId {answer.get('BizId', '-')} RequestId {request_id}", secret))
    detail = scrub(f"{code} {message} RequestId {request_id}", secret)
    if code.startswith(CHANNEL_THROTTLED):
        return SendResult(False, retry=True, throttled=True, retry_after_s=1.0, provider_code=code, detail=detail)
    if code in QUOTA:  # nothing more goes out today (this month): hold the channel, let the next channel take it
        return SendResult(False, throttled=True, provider_code=code, detail=detail)
    if code == NUMBER_LIMIT:  # this number's own limit: worth waiting out a minute, not an hour or a day
        wait = next((s for k, s in NUMBER_WAIT_S.items() if k in message), 60.0)
        if wait > 60.0:  # an alarm an hour late is no alarm: the route's next channel takes it now
            return SendResult(False, provider_code=code, detail=detail)
        return SendResult(False, retry=True, retry_after_s=wait, provider_code=code, detail=detail)
    return SendResult(False, retry=code in TRANSIENT or reply.status >= 500, provider_code=code, detail=detail)
