"""The SMS providers and an SMTP relay as real servers on loopback, checking what arrives as the provider does.

Each fake recomputes signatures from the secret with its own code, written from the provider's docs (not the
channel's), checks every parameter and header the provider checks, records what it accepted as the text a phone
or a mailbox would show, and answers as the provider answers, errors included: per-number and per-application
throttling, and two failure modes: "down" (the gateway's HTML 503) and "busy" (the provider's own "system error").
Every SMS a phone received is counted per number (`delivered`, national numbers): a test asks "how many did this
phone get", which is what a duty operator sees. Tencent answers per number (one SendStatus each, the good numbers
sent); Aliyun answers once for the whole request, so one bad or over-limit number refuses it for every number in it.
"""
from __future__ import annotations

import calendar
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from base64 import b64encode
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

import pytest

from config.channels import AliyunSms, TencentSms
from fake_smtp import FakeSmtp
from loopback import LoopbackHTTP

__all__ = ["FakeAliyunSms", "FakeTencentSms", "FakeSmtp", "Seen", "Sms", "aliyun", "tencent", "smtp"]

SIGN = "示范工厂"
ALIYUN_TEMPLATE = "SMS_276450001"
ALIYUN_TEXT = "${tier}预警（${state}）：${site}${area}${subject}，${reason}。请立即处置并在系统中确认。"
TENCENT_TEMPLATE = "1938201"
TENCENT_TEXT = "{1}{2}预警：{3}{4}，{5}。请立即处置并在系统中确认。"


@dataclass(frozen=True)
class Seen:
    """One request as it arrived."""
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass(frozen=True)
class Sms:
    """One accepted send: the numbers it went to and the text their phones show."""
    numbers: tuple[str, ...]
    text: str
    params: dict | list
    trace: str               # OutId / SessionContext as the request carried it
    request: dict = field(repr=False, default_factory=dict)


class _LoopbackHttp(LoopbackHTTP):
    """The provider on loopback; `answer` is the provider."""

    protocol_version = "HTTP/1.1"

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self.mode = "up"            # "down": the gateway's 503 page; "busy": the provider's own system error
        self.requests: list[Seen] = []
        self.accepted: list[Sms] = []
        self.delivered: Counter[str] = Counter()  # national number -> SMS that phone received
        self.errors: list[BaseException] = []  # the fake's own bugs: raised when it stops, not read as a 5xx
        self._lock = threading.Lock()

    def __exit__(self, exc_type, *exc):
        super().__exit__(exc_type, *exc)
        if self.errors and exc_type is None:
            raise AssertionError(f"the fake failed: {self.errors!r}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        seen = Seen(h.command, h.path, {k.lower(): v for k, v in h.headers.items()},
                    h.rfile.read(int(h.headers.get("Content-Length") or 0)))
        with self._lock:
            self.requests.append(seen)
            if self.mode == "down":
                status, ctype, data = 503, "text/html", b"<html><body><h1>503 Service Unavailable</h1></body></html>"
            else:
                try:
                    status, answer = self.answer(seen)
                except Exception as e:
                    self.errors.append(e)
                    status, answer = 500, {"error": repr(e)}
                ctype, data = "application/json;charset=utf-8", json.dumps(answer, ensure_ascii=False).encode()
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def answer(self, req: Seen) -> tuple[int, dict]:
        raise NotImplementedError

    def _over(self, log: deque, limit: int | None, window_s: float, now: float) -> bool:
        while log and log[0] <= now - window_s:
            log.popleft()
        return limit is not None and len(log) >= limit


def rfc3986(text: str) -> str:
    """Aliyun's percent-encoding, byte by byte as its docs describe it."""
    return "".join(chr(b) if chr(b).isascii() and (chr(b).isalnum() or chr(b) in "-_.~") else f"%{b:02X}"
                   for b in text.encode("utf-8"))


def mainland(number: str) -> str | None:
    """The 11-digit mainland mobile number in any prefix form both providers accept, else None."""
    m = re.fullmatch(r"(?:\+86|\+|0086|86)?(1[3-9]\d{9})", number)
    return m.group(1) if m else None


class FakeAliyunSms(_LoopbackHttp):
    """Dysmsapi SendSms 2017-05-25 with RPC signature v1 or signature v3 (ACS3-HMAC-SHA256), both accepted."""
    COMMON = ("Format", "Version", "AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce",
              "Timestamp", "Action", "Signature")
    V3_HEADERS = ("host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce",
                  "x-acs-content-sha256")

    def __init__(self, clock: Callable[[], float] = time.time, per_number_per_minute: int | None = None,
                 per_number_per_day: int | None = None, app_per_minute: int | None = None, var_max: int = 35):
        super().__init__(clock)
        self.key_id, self.secret = "LTAI5tRwDemoKey0001", "aLiYuN+Secret/0001~Qx7*Zk"
        self.keys = {self.key_id: self.secret}
        self.signs = {SIGN}
        self.templates = {ALIYUN_TEMPLATE: ALIYUN_TEXT}
        self.per_number_per_minute, self.per_number_per_day = per_number_per_minute, per_number_per_day
        self.app_per_minute, self.var_max = app_per_minute, var_max
        self._nonces: dict[str, float] = {}
        self._minute: dict[str, deque] = defaultdict(deque)
        self._day: dict[str, deque] = defaultdict(deque)
        self._app: deque = deque()

    def config(self, **kw) -> AliyunSms:
        return AliyunSms(**{"kind": "aliyun_sms", "name": "duty-sms", "access_key_id": self.key_id,
                            "access_key_secret": self.secret, "sign_name": SIGN, "template_code": ALIYUN_TEMPLATE,
                            "base_url": self.url, "timeout_s": 5.0, **kw})

    def string_to_sign(self, method: str, params: dict[str, str]) -> str:
        canonical = "&".join(f"{rfc3986(k)}={rfc3986(v)}" for k, v in sorted(params.items()) if k != "Signature")
        return f"{method}&{rfc3986('/')}&{rfc3986(canonical)}"

    def signature(self, method: str, params: dict[str, str], secret: str) -> str:
        sts = self.string_to_sign(method, params)
        return b64encode(hmac.new(f"{secret}&".encode(), sts.encode(), hashlib.sha1).digest()).decode()

    @staticmethod
    def v3_canonical_request(method: str, path: str, query: list[tuple[str, str]], headers: dict[str, str],
                             signed: list[str], body: bytes) -> str:
        """Signature v3's CanonicalRequest as the docs build it: the query pairs sorted by name (then value), each
        path segment, name and value RFC 3986-encoded, the signed headers lower-case and trimmed, the body's
        SHA-256 as it arrived (whatever x-acs-content-sha256 claims)."""
        uri = "/".join(rfc3986(part) for part in path.split("/"))
        pairs = "&".join(f"{rfc3986(k)}={rfc3986(v)}" for k, v in sorted(query))
        entries = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed)
        return "\n".join([method, uri, pairs, entries, ";".join(signed), hashlib.sha256(body).hexdigest()])

    @staticmethod
    def v3_signature(canonical: str, secret: str) -> str:
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
        return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def error(status: int, code: str, message: str) -> tuple[int, dict]:
        return status, {"RequestId": str(uuid.uuid4()).upper(), "Message": message, "Code": code,
                        "HostId": "dysmsapi.aliyuncs.com"}

    def answer(self, req: Seen) -> tuple[int, dict]:
        url, now = urlsplit(req.path), self.clock()
        if url.path != "/":
            return self.error(404, "InvalidAction.NotFound", "Specified api is not found.")
        if "authorization" in req.headers or any(k.startswith("x-acs-") for k in req.headers):
            return self.answer_v3(req, now)
        pairs = parse_qsl(url.query, keep_blank_values=True)
        if req.method == "POST":
            if not req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                return self.error(400, "InvalidParameter", "body must be application/x-www-form-urlencoded")
            try:
                pairs += parse_qsl(req.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
            except ValueError:  # raw UTF-8 or a malformed pair: not percent-encoded
                return self.error(400, "InvalidParameter", "the body is not a percent-encoded form")
        params = dict(pairs)
        if len(params) != len(pairs):
            return self.error(400, "InvalidParameter", "a parameter is repeated")
        for name in self.COMMON:
            if not params.get(name):
                return self.error(400, "MissingParameter", f"The input parameter \"{name}\" that is mandatory "
                                                           "for processing this request is not supplied.")
        fixed = {"Format": "JSON", "Version": "2017-05-25", "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0"}
        for name, value in fixed.items():
            if params[name] != value:
                return self.error(400, f"Invalid{name}", f"Specified parameter {name} is not valid.")
        if params["Action"] != "SendSms":
            return self.error(404, "InvalidAction.NotFound", "Specified api is not found.")
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", params["Timestamp"]):
            return self.error(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well "
                                                              "formatted.")
        if abs(now - calendar.timegm(time.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ"))) > 900:
            return self.error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        secret = self.keys.get(params["AccessKeyId"])
        if secret is None:
            return self.error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if not hmac.compare_digest(self.signature(req.method, params, secret), params["Signature"]):
            server_sts = self.string_to_sign(req.method, params)  # Aliyun echoes it to help debug the client
            return self.error(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation. "
                                                            f"server string to sign is:{server_sts}")
        return self.signed(params, params["SignatureNonce"], now)

    def answer_v3(self, req: Seen, now: float) -> tuple[int, dict]:
        """A v3 request: what is signed is in the headers, SendSms's parameters ("in": "query") in the query."""
        h, url = req.headers, urlsplit(req.path)
        auth = re.fullmatch(r"ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([a-z0-9;-]+),Signature=([0-9a-f]{64})",
                            h.get("authorization", ""))
        missing = [name for name in self.V3_HEADERS if not h.get(name)]
        if not auth or missing:
            return self.error(400, "IncompleteSignature", "The request signature does not conform to Aliyun "
                                                          "standards." + (f" missing {missing[0]}" if missing else ""))
        key_id, signed_headers, signature = auth.groups()
        signed = signed_headers.split(";")
        must = {name for name in h if name.startswith("x-acs-") or name in ("host", "content-type")}
        if signed != sorted(signed) or not must <= set(signed):  # every such header present must be signed
            return self.error(400, "IncompleteSignature", "The request signature does not conform to Aliyun "
                                                          "standards. SignedHeaders is not as required.")
        if h["x-acs-action"] != "SendSms":
            return self.error(404, "InvalidAction.NotFound", "Specified api is not found.")
        if h["x-acs-version"] != "2017-05-25":
            return self.error(400, "InvalidVersion", "Specified parameter Version is not valid.")
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", h["x-acs-date"]):
            return self.error(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well "
                                                              "formatted.")
        if abs(now - calendar.timegm(time.strptime(h["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ"))) > 900:
            return self.error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        secret = self.keys.get(key_id)
        if secret is None:
            return self.error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        query = parse_qsl(url.query, keep_blank_values=True)
        canonical = self.v3_canonical_request(req.method, url.path, query, h, signed, req.body)
        if h["x-acs-content-sha256"] != hashlib.sha256(req.body).hexdigest() or \
                not hmac.compare_digest(self.v3_signature(canonical, secret), signature):
            return self.error(400, "SignatureDoesNotMatch", "Specified signature does not match our calculation.")
        params = dict(query)
        if len(params) != len(query):
            return self.error(400, "InvalidParameter", "a parameter is repeated")
        return self.signed(params, h["x-acs-signature-nonce"], now)

    def signed(self, params: dict[str, str], nonce: str, now: float) -> tuple[int, dict]:
        """A request whose signature checked out, under either version."""
        self._nonces = {n: t for n, t in self._nonces.items() if t > now - 900}
        if nonce in self._nonces:
            return self.error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self._nonces[nonce] = now
        if self.mode == "busy":
            return self.error(200, "isp.SYSTEM_ERROR", "isp.SYSTEM_ERROR")
        if self._over(self._app, self.app_per_minute, 60, now):
            return self.error(400, "Throttling.User", "Request was denied due to user flow control.")
        self._app.append(now)
        return self.send_sms(params, now)

    def send_sms(self, p: dict[str, str], now: float) -> tuple[int, dict]:
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not p.get(name):
                return self.error(400, f"Missing{name}", f"{name} is mandatory for this action.")
        numbers = p["PhoneNumbers"].split(",")
        if len(numbers) > 1000:
            return self.error(200, "isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制")
        if any(mainland(n) is None for n in numbers):
            return self.error(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        if p["SignName"] not in self.signs:
            return self.error(200, "isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        template = self.templates.get(p["TemplateCode"])
        if template is None:
            return self.error(200, "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        try:
            values = json.loads(p.get("TemplateParam") or "{}")
        except ValueError:
            values = None
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            return self.error(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if any(name not in values for name in re.findall(r"\$\{(\w+)\}", template)):
            return self.error(200, "isv.TEMPLATE_MISSING_PARAMETERS", "模板变量缺少对应参数值")
        if any(len(v) > self.var_max for v in values.values()):
            return self.error(200, "isv.PARAM_LENGTH_LIMIT", "参数超出长度限制")
        if len(p.get("OutId", "")) >= 256:
            return self.error(200, "isv.INVALID_PARAMETERS", "参数格式错误")
        national = [mainland(n) for n in numbers]
        for n in national:
            if self._over(self._minute[n], self.per_number_per_minute, 60, now):
                return self.error(200, "isv.BUSINESS_LIMIT_CONTROL", f"触发分钟级流控Permits:{self.per_number_per_minute}")
            if self._over(self._day[n], self.per_number_per_day, 86400, now):
                return self.error(200, "isv.BUSINESS_LIMIT_CONTROL", f"触发天级流控Permits:{self.per_number_per_day}")
        for n in national:
            self._minute[n].append(now)
            self._day[n].append(now)
            self.delivered[n] += 1
        text = f"【{p['SignName']}】" + re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], template)
        self.accepted.append(Sms(tuple(national), text, values, p.get("OutId", ""), p))
        return 200, {"RequestId": str(uuid.uuid4()).upper(), "Message": "OK", "Code": "OK",
                     "BizId": f"{int(now * 1000) % 10**12:012d}{len(self.accepted):06d}^0"}


class FakeTencentSms(_LoopbackHttp):
    """SMS SendSms 2021-01-11 with TC3-HMAC-SHA256."""
    FIELDS = {"PhoneNumberSet", "SmsSdkAppId", "TemplateId", "SignName", "TemplateParamSet", "ExtendCode",
              "SessionContext", "SenderId"}
    REGIONS = {"ap-guangzhou", "ap-beijing", "ap-nanjing"}

    def __init__(self, clock: Callable[[], float] = time.time, same_text_per_30s: int | None = None,
                 per_number_per_day: int | None = None, app_per_minute: int | None = None,
                 var_max: int | None = None):
        super().__init__(clock)
        self.secret_id, self.secret_key = "AKIDrwDemo0000000000000000000000001", "tc3+Secret/Key~0001*Zk"
        self.keys = {self.secret_id: self.secret_key}
        self.app_id = "1400787878"
        self.signs = {SIGN}
        self.templates = {TENCENT_TEMPLATE: TENCENT_TEXT}
        self.blacklist: set[str] = set()
        self.same_text_per_30s, self.per_number_per_day = same_text_per_30s, per_number_per_day
        self.app_per_minute, self.var_max = app_per_minute, var_max  # var_max 12: a personal-verified account
        self._same: dict[tuple[str, str], deque] = defaultdict(deque)
        self._day: dict[str, deque] = defaultdict(deque)
        self._app: deque = deque()

    def config(self, **kw) -> TencentSms:
        return TencentSms(**{"kind": "tencent_sms", "name": "duty-sms-tc", "secret_id": self.secret_id,
                             "secret_key": self.secret_key, "sdk_app_id": self.app_id, "sign_name": SIGN,
                             "template_id": TENCENT_TEMPLATE, "base_url": self.url, "timeout_s": 5.0, **kw})

    @staticmethod
    def error(code: str, message: str) -> tuple[int, dict]:
        return 200, {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}}

    def expected_signature(self, req: Seen, secret_key: str, date: str, signed: list[str], timestamp: str) -> str:
        url = urlsplit(req.path)
        headers = "".join(f"{name}:{req.headers.get(name, '').strip().lower()}\n" for name in signed)
        canonical = "\n".join([req.method, url.path, url.query, headers, ";".join(signed),
                               hashlib.sha256(req.body).hexdigest()])
        to_sign = "\n".join(["TC3-HMAC-SHA256", timestamp, f"{date}/sms/tc3_request",
                             hashlib.sha256(canonical.encode()).hexdigest()])
        k_date = hmac.new(("TC3" + secret_key).encode(), date.encode(), hashlib.sha256).digest()
        k_service = hmac.new(k_date, b"sms", hashlib.sha256).digest()
        k_signing = hmac.new(k_service, b"tc3_request", hashlib.sha256).digest()
        return hmac.new(k_signing, to_sign.encode(), hashlib.sha256).hexdigest()

    def answer(self, req: Seen) -> tuple[int, dict]:
        h, now = req.headers, self.clock()
        if req.method != "POST" or urlsplit(req.path).path != "/":
            return self.error("InvalidParameter", "POST / with a JSON body is what this fake speaks")
        if not h.get("content-type", "").startswith("application/json"):
            return self.error("InvalidParameter", "Content-Type must be application/json")
        for header, name in (("x-tc-action", "Action"), ("x-tc-version", "Version"), ("x-tc-region", "Region"),
                             ("x-tc-timestamp", "Timestamp"), ("authorization", "Authorization"), ("host", "Host")):
            if not h.get(header):
                return self.error("MissingParameter", f"The request is missing a required parameter `{name}`.")
        if h["x-tc-action"] != "SendSms":
            return self.error("InvalidAction", f"The action `{h['x-tc-action']}` is not found.")
        if h["x-tc-version"] != "2021-01-11":
            return self.error("NoSuchVersion", f"The version `{h['x-tc-version']}` is not found.")
        if h["x-tc-region"] not in self.REGIONS:
            return self.error("UnsupportedRegion", f"The region `{h['x-tc-region']}` is not supported.")
        if not h["x-tc-timestamp"].isdigit():
            return self.error("InvalidParameter", "Timestamp must be seconds since the epoch.")
        if abs(now - int(h["x-tc-timestamp"])) > 300:
            return self.error("AuthFailure.SignatureExpire", "Signature expired. Timestamp and server time cannot "
                                                             "differ by more than 5 minutes.")
        auth = re.fullmatch(r"TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d\d-\d\d)/(\w+)/tc3_request, "
                            r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})", h["authorization"])
        if not auth:
            return self.error("AuthFailure.InvalidAuthorization", "Authorization in the request header is invalid.")
        secret_id, date, service, signed_headers, signature = auth.groups()
        signed = signed_headers.split(";")
        if not {"content-type", "host"} <= set(signed) or signed != sorted(signed):
            return self.error("AuthFailure.InvalidAuthorization", "SignedHeaders must list content-type and host.")
        secret_key = self.keys.get(secret_id)
        if secret_key is None:
            return self.error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        day = time.strftime("%Y-%m-%d", time.gmtime(int(h["x-tc-timestamp"])))
        expected = self.expected_signature(req, secret_key, day, signed, h["x-tc-timestamp"])
        if service != "sms" or date != day or not hmac.compare_digest(expected, signature):
            return self.error("AuthFailure.SignatureFailure", "The provided credentials could not be validated. "
                                                              "Please check your signature is correct.")
        if self.mode == "busy":
            return self.error("InternalError.Timeout", "请求下发短信超时")
        if self._over(self._app, self.app_per_minute, 60, now):
            return self.error("RequestLimitExceeded", "Your current request times exceeds the frequency limit.")
        self._app.append(now)
        try:
            body = json.loads(req.body.decode("utf-8"))
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self.error("FailedOperation.FailResolvePacket", "请求包解析失败")
        return self.send_sms(body, now)

    def send_sms(self, b: dict, now: float) -> tuple[int, dict]:
        unknown = sorted(set(b) - self.FIELDS)
        if unknown:
            return self.error("UnknownParameter", f"The parameter `{unknown[0]}` is not recognized.")
        for name in ("PhoneNumberSet", "SmsSdkAppId", "TemplateId", "SignName"):
            if not b.get(name):
                return self.error("MissingParameter", f"The request is missing a required parameter `{name}`.")
        phones, values = b["PhoneNumberSet"], b.get("TemplateParamSet", [])
        if not all(isinstance(x, str) for x in [*phones, *values, b.get("SessionContext", "")]):
            return self.error("InvalidParameter", "PhoneNumberSet, TemplateParamSet and SessionContext are strings")
        if len(phones) > 200:
            return self.error("LimitExceeded.PhoneNumberCountLimit", "单次提交的手机号个数超过200个")
        if b["SmsSdkAppId"] != self.app_id:
            return self.error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId不存在")
        if b["SignName"] not in self.signs:
            return self.error("FailedOperation.SignatureIncorrectOrUnapproved", "签名未审批或格式错误")
        template = self.templates.get(b["TemplateId"])
        if template is None:
            return self.error("FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批或内容不匹配")
        if len(values) != len(re.findall(r"\{\d+\}", template)):
            return self.error("FailedOperation.TemplateParamSetNotMatchApprovedTemplate", "请求内容与审核通过的模板内容不匹配")
        if self.var_max is not None and any(len(v) > self.var_max for v in values):
            return self.error("InvalidParameterValue.TemplateParameterLengthLimit", "单个模板变量字符数超过12个")
        text = f"【{b['SignName']}】" + re.sub(r"\{(\d+)\}", lambda m: values[int(m.group(1)) - 1], template)
        if len(text) > 500:
            return self.error("InvalidParameterValue.ContentLengthLimit", "请求的短信内容太长")
        if len(b.get("SessionContext", "").encode()) >= 512:
            return self.error("InvalidParameterValue", "SessionContext 长度需小于512字节")
        statuses, sent = [], []
        for phone in phones:
            code, message, n = "Ok", "send success", mainland(phone)
            if n is None or phone.startswith("+") and not phone.startswith("+86"):
                code, message = "InvalidParameterValue.IncorrectPhoneNumber", "手机号格式错误"
            elif n in self.blacklist:
                code, message = "FailedOperation.PhoneNumberInBlacklist", "手机号在免打扰名单库中"
            elif self._over(self._same[(n, text)], self.same_text_per_30s, 30, now):
                code, message = "LimitExceeded.PhoneNumberThirtySecondLimit", "单个手机号30秒内下发短信条数超过设定的上限"
            elif self._over(self._day[n], self.per_number_per_day, 86400, now):
                code, message = "LimitExceeded.PhoneNumberDailyLimit", "单个手机号日下发短信条数超过设定的上限"
            else:
                self._same[(n, text)].append(now)
                self._day[n].append(now)
                self.delivered[n] += 1
                sent.append(n)
            statuses.append({"SerialNo": f"3369:{uuid.uuid4().int % 10**20:020d}" if code == "Ok" else "",
                             "PhoneNumber": phone, "Fee": -(-len(text) // 67) if len(text) > 70 else 1,
                             "SessionContext": b.get("SessionContext", ""), "Code": code, "Message": message,
                             "IsoCode": "CN" if n else "DEF"})
        if sent:
            self.accepted.append(Sms(tuple(sent), text, list(values), b.get("SessionContext", ""), b))
        return 200, {"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}}


@pytest.fixture
def aliyun():
    with FakeAliyunSms() as fake:
        yield fake


@pytest.fixture
def tencent():
    with FakeTencentSms() as fake:
        yield fake


@pytest.fixture
def smtp():
    with FakeSmtp() as fake:
        yield fake
