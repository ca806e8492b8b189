"""阿里云短信 (Aliyun Dysmsapi) SendSms, version 2017-05-25, RPC style, signed with signature v3 (ACS3-HMAC-SHA256,
the default) or the older RPC signature v1 (HMAC-SHA1).

From the Aliyun docs. SendSms (help.aliyun.com/document_detail/55284): up to 1000 comma-separated PhoneNumbers
(+/+86/0086/86 or no prefix), an approved SignName and TemplateCode, TemplateParam as a JSON object of strings, and
OutId (< 256 characters), which comes back in the delivery receipts. SendSms is not idempotent: OutId only lets a
resend be traced, Aliyun does not deduplicate on it. A template variable takes at most 35 characters unless that
limit was lifted for the template (document_detail/3041859); the whole message at most 500.
Signature v1 (the RPC signature mechanism, document_detail/172849): every parameter but Signature sorted by name,
names and values percent-encoded as RFC 3986 (A-Z a-z 0-9 - _ . ~ as they are, space %20, * %2A), then
StringToSign = METHOD & %2F & encode(query), HMAC-SHA1 keyed with the secret + "&", base64.
Signature v3 ("V3 request body & signature mechanism", help.aliyun.com/zh/sdk/product-overview/
v3-request-structure-and-signature, document_detail/2593177): the action, version, time (x-acs-date, within 15
minutes), a nonce and the body's SHA-256 travel as x-acs-* headers; SendSms's parameters are "in": "query", so they
go in the query string and the body is empty (the doc's FAQ signs a SendSms so; query parameters put in the body
are a cause of SignatureDoesNotMatch it names). CanonicalRequest = METHOD \\n path \\n the query sorted and encoded
as for v1 \\n "name:value\\n" for host, content-type and every x-acs-* header (lower-case, trimmed, sorted) \\n
their names joined by ";" \\n the body's hex SHA-256; StringToSign = "ACS3-HMAC-SHA256\\n" + hex SHA-256 of it;
Signature = hex HMAC-SHA256 keyed with the secret itself; Authorization = "ACS3-HMAC-SHA256 Credential=<key id>,
SignedHeaders=<names>,Signature=<hex>". `authorization` reproduces the doc's worked example ("Fixed parameter values").
Flow control (document_detail/2881383): a notification to one number with one signature and template at most
50 times a day by default, more gives isv.BUSINESS_LIMIT_CONTROL ("触发分钟级/小时级/天级流控"); that limit is per
number, so it does not hold the channel for everyone else. Throttling.* is the API's own rate limit and does.

One number spoils the request for everyone. SendSms answers one Code for the whole request (one BizId when it is
accepted; per-number results only come later, in the delivery receipts), and a request refused is refused for every
number in it: one mistyped number (isv.MOBILE_NUMBER_ILLEGAL) or one phone over its own limit
(isv.BUSINESS_LIMIT_CONTROL) would keep the alarm from every other phone on the roster, and Aliyun does not say which
number it was. So when a request to several numbers is refused with such a per-number code, nothing went out, and
the channel asks again number by number: each good phone gets its one SMS now, the refused ones are named (masked)
and judged on their own codes, and the result says who got it (`delivered_to`), so the notifier retries or hands
over only the others. Sending every alarm number by number would spend one request per phone (and Aliyun's API
rate limit) every time for nothing while the roster is clean; splitting only after such a refusal keeps one request
per alarm normally. If, while asking number by
number, Aliyun refuses for a reason that is not one number's (its API rate limit, the account's quota, a system
error, no answer), the numbers not asked yet are not sent: they share that result and are decided again later.
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
from urllib.parse import quote, urlsplit

from alerting.channels.base import Message, SendResult, masked
from alerting.channels.wire import ELLIPSIS, Reply, exchange, http_failure, scrub
from config.channels import AliyunSms

log = logging.getLogger("riskwatch.alerting.channels")

VERSION = "2017-05-25"
ACTION = "SendSms"
V3_ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_NUMBERS = 1000
VAR_MAX_CHARS = 35
OUT_ID_MAX_CHARS = 255
SMS_MAX_CHARS = 500
CHANNEL_THROTTLED = ("Throttling",)    # the API's own rate limit (Throttling.User, Throttling.Api): hold the channel
QUOTA = frozenset({"isv.DAY_LIMIT_CONTROL", "isv.MONTH_LIMIT_CONTROL"})  # the account's own daily/monthly cap
NUMBER_LIMIT = "isv.BUSINESS_LIMIT_CONTROL"
NUMBER_WAIT_S = {"分钟级": 60.0, "小时级": 3600.0, "天级": 86400.0}
PER_NUMBER = frozenset({"isv.MOBILE_NUMBER_ILLEGAL", NUMBER_LIMIT})  # one number's fault, not the request's
TRANSIENT = frozenset({"isp.SYSTEM_ERROR", "ServiceUnavailable", "InternalError", "SignatureNonceUsed"})
# isv.MOBILE_NUMBER_ILLEGAL, isv.SMS_TEMPLATE_ILLEGAL, isv.SMS_SIGNATURE_ILLEGAL, SignatureDoesNotMatch,
# IncompleteSignature, InvalidAccessKeyId.NotFound, InvalidTimeStamp.Expired (a wrong clock) and every other code
# are for good


def percent_encode(text: str) -> str:
    """RFC 3986 percent-encoding as Aliyun signs with it (both signature versions).

    >>> percent_encode("1号 深井*铸造~A/B")
    '1%E5%8F%B7%20%E6%B7%B1%E4%BA%95%2A%E9%93%B8%E9%80%A0~A%2FB'
    """
    return quote(text, safe="~")


def canonical_query(params: dict[str, str]) -> str:
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))


def sign(params: dict[str, str], secret: str, method: str = "POST") -> str:
    """Signature v1 of a request's parameters (Signature itself not among them).

    The worked example of Aliyun's signature docs (AccessKey secret "testsecret"):
    >>> sign({"TimeStamp": "2016-02-23T12:46:24Z", "Format": "XML", "AccessKeyId": "testid",
    ...       "Action": "DescribeRegions", "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
    ...       "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "Version": "2014-05-26"}, "testsecret", "GET")
    'CT9X0VtwR86fNWSnsc6v8YGOjuE='
    """
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"
    return base64.b64encode(hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


def canonical_request(method: str, path: str, query: dict[str, str], headers: dict[str, str],
                      payload_sha256: str) -> tuple[str, str]:
    """(CanonicalRequest, SignedHeaders) of signature v3: host, content-type and the x-acs-* headers are signed."""
    signed = {k.lower(): v.strip() for k, v in headers.items()
              if k.lower() in ("host", "content-type") or k.lower().startswith("x-acs-")}
    names = sorted(signed)
    canonical_path = "/".join(percent_encode(part) for part in (path or "/").split("/"))
    lines = [method.upper(), canonical_path, canonical_query(query), "".join(f"{k}:{signed[k]}\n" for k in names),
             ";".join(names), payload_sha256]
    return "\n".join(lines), ";".join(names)


def authorization(key_id: str, secret: str, method: str, path: str, query: dict[str, str],
                  headers: dict[str, str]) -> str:
    """The Authorization header of signature v3; `headers` carries x-acs-content-sha256 (the body's SHA-256).

    The worked example of Aliyun's v3 docs ("Fixed parameter values"), whose canonical request hashes to 7ea06492...:
    >>> headers = {"host": "ecs.cn-shanghai.aliyuncs.com", "x-acs-action": "RunInstances",
    ...            "x-acs-version": "2014-05-26", "x-acs-date": "2023-10-26T10:22:32Z",
    ...            "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d", "x-acs-content-sha256": EMPTY_SHA256}
    >>> query = {"ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd", "RegionId": "cn-shanghai"}
    >>> hashlib.sha256(canonical_request("POST", "/", query, headers, EMPTY_SHA256)[0].encode()).hexdigest()
    '7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259'
    >>> authorization("YourAccessKeyId", "YourAccessKeySecret", "POST", "/", query, headers).split(",")
    ... # doctest: +NORMALIZE_WHITESPACE
    ['ACS3-HMAC-SHA256 Credential=YourAccessKeyId',
     'SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version',
     'Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0']
    """
    canonical, names = canonical_request(method, path, query, headers, headers["x-acs-content-sha256"])
    to_sign = f"{V3_ALGORITHM}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"
    signature = hmac.new(secret.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{V3_ALGORITHM} Credential={key_id},SignedHeaders={names},Signature={signature}"


def cut(text: str, max_chars: int) -> str:
    """At most max_chars characters (not bytes: Aliyun counts a Chinese character as one), "…" when cut."""
    return text if len(text) <= max_chars else text[:max_chars - 1] + ELLIPSIS


def numbers(to: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The recipients' numbers without spaces or dashes, each once, in order, with the recipients (as the message
    gave them) each stands for."""
    out: dict[str, tuple[str, ...]] = {}
    for given in to:
        n = "".join(c for c in given if c not in " -")
        if n:
            out[n] = out.get(n, ()) + (given,)
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
                f"sign_name={self._cfg.sign_name!r}, template_code={self._cfg.template_code!r}, "
                f"signature={self._cfg.signature!r})")

    def sms_params(self, msg: Message, to: list[str]) -> dict[str, str]:
        """SendSms's own parameters."""
        p = {"PhoneNumbers": ",".join(to), "SignName": self._cfg.sign_name, "TemplateCode": self._cfg.template_code,
             "OutId": msg.key[:OUT_ID_MAX_CHARS]}
        if msg.params:
            p["TemplateParam"] = json.dumps({k: cut(v, VAR_MAX_CHARS) for k, v in msg.params.items()},
                                            ensure_ascii=False, separators=(",", ":"))
        return p

    def send(self, msg: Message) -> SendResult:
        given = numbers(msg.to)
        to = list(given)
        if not to:
            return SendResult(False, detail="no phone number to send to")
        if len(to) > MAX_NUMBERS:
            return SendResult(False, detail=f"{len(to)} numbers: SendSms takes at most {MAX_NUMBERS}")
        result = self._request(msg, to)
        if result.ok:
            result = SendResult.delivered(result.provider_code, result.detail, msg.to)
        elif len(to) > 1 and result.provider_code in PER_NUMBER:  # refused for everyone because of one number
            log.info("%s %s: %s for %d numbers; sending number by number", self.kind, self.name,
                     result.provider_code, len(to))
            result = self._one_by_one(msg, given)
        log.debug("%s %s: %s %s", self.kind, self.name, result.provider_code or "-", result.detail)
        return result

    def _one_by_one(self, msg: Message, given: dict[str, tuple[str, ...]]) -> SendResult:
        """Each number on its own; a refusal that is not one number's stops it (the rest share that answer)."""
        outcomes: dict[str, SendResult] = {}
        stop: SendResult | None = None
        for n in given:
            outcomes[n] = stop or self._request(msg, [n])
            if stop is None and not outcomes[n].ok and outcomes[n].provider_code not in PER_NUMBER:
                stop = outcomes[n]
        got = tuple(r for n, o in outcomes.items() if o.ok for r in given[n])
        failed = {n: o for n, o in outcomes.items() if not o.ok}
        if not failed:
            return SendResult.delivered("OK", f"{len(outcomes)} sent one by one", got)
        waits = [o.retry_after_s for o in failed.values() if o.retry_after_s]
        first = next(iter(failed.values()))
        named = "; ".join(f"{masked(n)} {o.provider_code or o.detail}" for n, o in failed.items())
        return SendResult(False, retry=all(o.retry for o in failed.values()),
                          throttled=any(o.throttled for o in failed.values()),
                          retry_after_s=max(waits) if waits else None, provider_code=first.provider_code,
                          detail=scrub(f"{len(outcomes) - len(failed)}/{len(outcomes)} sent one by one; failed: "
                                       f"{named}; {first.detail}"), delivered_to=got)

    def _request(self, msg: Message, to: list[str]) -> SendResult:
        """One SendSms request, signed as configured."""
        secret = self._cfg.access_key_secret.get_secret_value()
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock()))
        nonce = uuid.uuid4().hex
        if self._cfg.signature == "v1":
            params = {"Format": "JSON", "Version": VERSION, "AccessKeyId": self._cfg.access_key_id,
                      "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": nonce,
                      "Timestamp": now, "Action": ACTION, **self.sms_params(msg, to)}
            params["Signature"] = sign(params, secret, "POST")
            body = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items()).encode("ascii")
            reply = exchange("POST", self._cfg.base_url, body,
                             {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, self._cfg.timeout_s)
            return read(reply, secret)
        parts = urlsplit(self._cfg.base_url)
        query = self.sms_params(msg, to)
        headers = {"host": parts.netloc.lower(), "x-acs-action": ACTION, "x-acs-version": VERSION, "x-acs-date": now,
                   "x-acs-signature-nonce": nonce, "x-acs-content-sha256": EMPTY_SHA256}
        headers["Authorization"] = authorization(self._cfg.access_key_id, secret, "POST", parts.path or "/", query,
                                                 headers)
        url = f"{parts.scheme}://{parts.netloc}{parts.path or '/'}?{canonical_query(query)}"
        reply = exchange("POST", url, None, headers, self._cfg.timeout_s)  # no body: no content-type to sign
        return read(reply, secret)


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
