"""腾讯云短信 (Tencent Cloud SMS) SendSms, API 3.0 version 2021-01-11, signed with TC3-HMAC-SHA256.

From the Tencent Cloud docs. SendSms (cloud.tencent.com/document/api/382/55981): up to 200 numbers in E.164
(+8613...), SmsSdkAppId, an approved SignName and TemplateId, TemplateParamSet filling the template's {1}, {2}, ...
in order, SessionContext (< 512 bytes) handed back as it came; the answer has one SendStatus per number, Code "Ok"
or that number's error, or an Error for the whole request. Signature v3 (signature-process-demo, sms/signature-v3):
a canonical request of method, path, query, the content-type and host headers and the SHA-256 of the body; a
string to sign of the algorithm, the timestamp, the scope date/sms/tc3_request and that request's SHA-256; a key
derived from "TC3" + SecretKey through the date, the service and "tc3_request". The timestamp may be at most five
minutes off Tencent's clock (AuthFailure.SignatureExpire).
Limits (body template review standards, security FAQ): an enterprise-verified account has no per-variable limit
(a personal one: 12 characters), the whole message at most 500 characters; the default frequency limit is the same
content to one number once in 30 s and a few messages per number a day, which a duty roster must raise in the
console. LimitExceeded.PhoneNumber* is one number's own limit and does not hold the channel for everyone else.
A partial answer (some numbers "Ok", others not) is reported as such: `delivered_to` names the recipients, as the
message gave them, whose number came back "Ok", and retry / throttle / failure is judged on the failed numbers
alone, so a retry never texts a phone that already has the alarm.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from datetime import datetime, timezone
from typing import Callable
from urllib.parse import urlsplit

from alerting.channels.base import Message, SendResult, masked
from alerting.channels.wire import ELLIPSIS, Reply, exchange, http_failure, json_body, scrub
from config.channels import TencentSms

log = logging.getLogger("riskwatch.alerting.channels")

VERSION = "2021-01-11"
SERVICE = "sms"
CONTENT_TYPE = "application/json; charset=utf-8"
MAX_NUMBERS = 200
VAR_MAX_CHARS = 60        # 5 variables of 60 leave room within 500 for the signature and the template's own words
SESSION_MAX_BYTES = 511
SMS_MAX_CHARS = 500
NUMBER_WAIT_S = {"LimitExceeded.PhoneNumberThirtySecondLimit": 30.0}  # a number's longer limits are not waited out
CHANNEL_THROTTLED = ("RequestLimitExceeded",)        # the API's own rate limit: hold the channel a second
QUOTA = ("LimitExceeded.AppDailyLimit", "LimitExceeded.DailyLimit", "LimitExceeded.AppGlobalDailyLimit",
         "LimitExceeded.AppMainlandChinaDailyLimit")  # the application's daily cap: hold the channel, next one
TRANSIENT = ("InternalError",)
# AuthFailure.*, InvalidParameter*, FailedOperation.* (unapproved sign or template, blacklisted number, no balance),
# LimitExceeded.PhoneNumberCountLimit (over 200 numbers), UnauthorizedOperation.* and the rest are for good


def e164(number: str) -> str:
    """A mainland number as E.164; anything else as it came (Tencent answers IncorrectPhoneNumber for it).

    >>> [e164(n) for n in ("13800001234", "138 0000 1234", "8613800001234", "008613800001234", "+8613800001234")]
    ['+8613800001234', '+8613800001234', '+8613800001234', '+8613800001234', '+8613800001234']
    """
    n = "".join(c for c in number if c not in " -")
    m = re.fullmatch(r"(?:\+86|0086|86)?(1\d{10})", n)
    return f"+86{m.group(1)}" if m else n


def cut(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[:max_chars - 1] + ELLIPSIS


def sign(secret_key: str, timestamp: int, method: str, url: str, body: bytes) -> tuple[str, str]:
    """(credential scope, signature) of a TC3-HMAC-SHA256 request with signed headers content-type and host."""
    parts = urlsplit(url)
    date = datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")
    canonical = "\n".join([method, parts.path or "/", parts.query,
                           f"content-type:{CONTENT_TYPE}\nhost:{parts.netloc.lower()}\n", "content-type;host",
                           hashlib.sha256(body).hexdigest()])
    scope = f"{date}/{SERVICE}/tc3_request"
    to_sign = "\n".join(["TC3-HMAC-SHA256", str(timestamp), scope,
                         hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    key = f"TC3{secret_key}".encode("utf-8")
    for part in (date, SERVICE, "tc3_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return scope, hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


class TencentSmsChannel:
    kind = "tencent_sms"

    def __init__(self, cfg: TencentSms, clock: Callable[[], float] = time.time):
        self.name = cfg.name
        self.per_minute = cfg.per_minute  # Tencent's limits are per number (30 s, hour, day), set in its console
        self.max_chars = SMS_MAX_CHARS   # the text itself is not sent: the approved template is, with msg.params
        self._cfg = cfg
        self._clock = clock

    def __repr__(self) -> str:
        return (f"TencentSmsChannel(name={self.name!r}, secret_id={self._cfg.secret_id!r}, "
                f"sdk_app_id={self._cfg.sdk_app_id!r}, template_id={self._cfg.template_id!r})")

    def payload(self, msg: Message, to: list[str]) -> dict:
        missing = [p for p in self._cfg.template_params if not msg.params.get(p)]
        if missing:  # Tencent refuses an empty variable: a dash keeps the alarm going out
            log.warning("%s %s: message %s has no %s", self.kind, self.name, msg.key, ", ".join(missing))
        context = msg.key.encode("utf-8")[:SESSION_MAX_BYTES].decode("utf-8", errors="ignore")
        return {"PhoneNumberSet": to, "SmsSdkAppId": self._cfg.sdk_app_id, "SignName": self._cfg.sign_name,
                "TemplateId": self._cfg.template_id,
                "TemplateParamSet": [cut(msg.params.get(p) or "-", VAR_MAX_CHARS) for p in self._cfg.template_params],
                "SessionContext": context}

    def send(self, msg: Message) -> SendResult:
        given: dict[str, tuple[str, ...]] = {}  # E.164 -> the recipients as the message gave them
        for n in msg.to:
            if n.strip():
                given[e164(n)] = given.get(e164(n), ()) + (n,)
        to = list(given)
        if not to:
            return SendResult(False, detail="no phone number to send to")
        if len(to) > MAX_NUMBERS:
            return SendResult(False, detail=f"{len(to)} numbers: SendSms takes at most {MAX_NUMBERS}")
        secret = self._cfg.secret_key.get_secret_value()
        body = json_body(self.payload(msg, to))
        timestamp = int(self._clock())
        scope, signature = sign(secret, timestamp, "POST", self._cfg.base_url, body)
        headers = {"Content-Type": CONTENT_TYPE, "Host": urlsplit(self._cfg.base_url).netloc.lower(),
                   "X-TC-Action": "SendSms", "X-TC-Version": VERSION, "X-TC-Timestamp": str(timestamp),
                   "X-TC-Region": self._cfg.region,
                   "Authorization": f"TC3-HMAC-SHA256 Credential={self._cfg.secret_id}/{scope}, "
                                    f"SignedHeaders=content-type;host, Signature={signature}"}
        result = read(exchange("POST", self._cfg.base_url, body, headers, self._cfg.timeout_s), secret, given)
        log.debug("%s %s: %s %s", self.kind, self.name, result.provider_code or "-", result.detail)
        return result


def read(reply: Reply, secret: str, given: dict[str, tuple[str, ...]] | None = None) -> SendResult:
    """What Tencent's answer means: {"Response": {"SendStatusSet": [...]}} or {"Response": {"Error": {...}}}.
    `given` maps each number sent (E.164) to the recipients it came from, so who got it is said in their terms."""
    given = given or {}
    answer = reply.json()
    response = answer.get("Response") if answer else None
    if reply.status == 0 or not isinstance(response, dict):
        return http_failure(reply, secret) or SendResult(False, retry=True, detail="unreadable answer")
    request_id = response.get("RequestId", "-")
    error = response.get("Error")
    if isinstance(error, dict):
        code = str(error.get("Code", ""))
        return _failure(code, scrub(f"{code} {error.get('Message', '')} RequestId {request_id}", secret))
    statuses = [s for s in response.get("SendStatusSet") or [] if isinstance(s, dict)]
    if not statuses:
        return SendResult(False, retry=True, detail=scrub(f"no SendStatusSet RequestId {request_id}", secret))
    failed = [s for s in statuses if s.get("Code") != "Ok"]
    got = tuple(r for s in statuses if s.get("Code") == "Ok" for r in given.get(str(s.get("PhoneNumber", "")), ()))
    if not failed:
        serials = ",".join(str(s.get("SerialNo", "-")) for s in statuses)
        return SendResult.delivered("Ok", scrub(f"{len(statuses)} sent, SerialNo {serials} RequestId {request_id}"),
                                    got)
    outcomes = [_failure(str(s.get("Code", "")), "") for s in failed]
    named = "; ".join(f"{masked(str(s.get('PhoneNumber', '')))} {s.get('Code')} {s.get('Message', '')}" for s in failed)
    waits = [o.retry_after_s for o in outcomes if o.retry_after_s]
    return SendResult(False, retry=all(o.retry for o in outcomes), throttled=any(o.throttled for o in outcomes),
                      retry_after_s=max(waits) if waits else None, provider_code=outcomes[0].provider_code,
                      detail=scrub(f"{len(statuses) - len(failed)}/{len(statuses)} sent; failed: {named} "
                                   f"RequestId {request_id}", secret), delivered_to=got)


def _failure(code: str, detail: str) -> SendResult:
    if code.startswith(CHANNEL_THROTTLED):
        return SendResult(False, retry=True, throttled=True, retry_after_s=1.0, provider_code=code, detail=detail)
    if code.startswith(QUOTA):
        return SendResult(False, throttled=True, provider_code=code, detail=detail)
    if code in NUMBER_WAIT_S:
        return SendResult(False, retry=True, retry_after_s=NUMBER_WAIT_S[code], provider_code=code, detail=detail)
    return SendResult(False, retry=code.startswith(TRANSIENT), provider_code=code, detail=detail)
