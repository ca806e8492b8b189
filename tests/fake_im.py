"""Loopback stand-ins for the IM providers: real HTTP servers on 127.0.0.1 that check each request the way the
provider does (path, query, signature, JSON shape and types, size limits) and answer the way it does, error and
throttling replies included. Each keeps what it received, so a test can read the exact wire format.

A test can switch a fake into a failure mode: `down()` (HTTP 502 from a gateway), `down("refused")` (nothing
listens on the port), `busy()` (the provider's own "system busy" answer), `slow(s)` (answers after s seconds),
or script the next answer with `answer_next(...)`. `advance(s)` moves the fake's clock, for rate windows and token
expiry. Where a provider silently degrades instead of refusing (WeCom cutting an app text, DingTalk not @-ing a
mobile missing from the text), the fake answers as the provider does and writes a note on the request, so a test
can assert there was none.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

import pytest

from config.channels import DingtalkRobot, Webhook, WecomApp, WecomRobot
from loopback import LoopbackHTTP

WECOM_KEY = "5c1f0e3a-7b2d-4e9a-9d41-0f6b2a8c3e7d"
WECOM_CORP_ID = "ww6a1b2c3d4e5f6071"
WECOM_CORP_SECRET = "Qm3vT8xK2pL9rW4yZ7bN1cF6hJ0dS5gA-uE8iO3kM2n"
WECOM_AGENT_ID = 1000002
WECOM_USERS = {"zhangwei", "liqiang", "wangfang"}
DINGTALK_TOKEN = "f3a9c2e17b4d8a6e0c5f1b9d3e7a2c4f6b8d0e2a4c6e8f0a1b3d5f7a9c1e3b5d"
DINGTALK_SECRET = "SEC7d1e4b9a2c6f0e3d8b5a1c7e9f2d4b6a8c0e1f3a5b7d9c2e4f6a8b0d1c3e5"
WEBHOOK_SECRET = "whsec-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
SECRETS = (WECOM_KEY, WECOM_CORP_SECRET, DINGTALK_TOKEN, DINGTALK_SECRET, WEBHOOK_SECRET)


class Answer(NamedTuple):
    status: int
    body: dict | bytes
    headers: dict = {}


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]     # names lower-cased
    body: bytes
    raw_query: str = ""         # as it came, before percent-decoding
    answer: Answer | None = None
    delivered: bool = False     # reached the group / the users
    notes: list[str] = field(default_factory=list)  # what the provider did silently instead of refusing

    @property
    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def json_object(self) -> dict | None:
        try:
            data = self.json
        except (UnicodeDecodeError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values and len(values) == 1 else None


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_str_list(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


class _Window:
    """At most n accepted in any 60 seconds of the fake's clock."""

    def __init__(self, n: int | None, now):
        self.n, self.now, self.times = n, now, deque()

    def admit(self) -> bool:
        t = self.now()
        while self.times and self.times[0] <= t - 60:
            self.times.popleft()
        if self.n is not None and len(self.times) >= self.n:
            return False
        self.times.append(t)
        return True


class FakeProvider(LoopbackHTTP):
    busy_answer = Answer(200, {"errcode": -1, "errmsg": "system busy"})

    def __init__(self):
        self.received: list[Received] = []
        self.mode = "up"
        self.port = 0
        self._slow_s = 0.0
        self._scripted: list[tuple[str | None, Answer]] = []
        self._lock = threading.RLock()
        self._offset = 0.0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def delivered(self) -> list[Received]:
        return [r for r in self.received if r.delivered]

    def now(self) -> float:
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    def down(self, how: str = "502") -> None:
        if how == "refused":
            self._close()
        self.mode = "down" if how == "502" else how

    def up(self) -> None:
        if self._server is None:
            self._listen()
        self.mode = "up"

    def busy(self) -> None:
        self.mode = "busy"

    def slow(self, seconds: float) -> None:
        self.mode, self._slow_s = "slow", seconds

    def answer_next(self, body: dict, status: int = 200, path: str | None = None) -> None:
        self._scripted.append((path, Answer(status, body)))

    def handle(self, r: Received) -> Answer:
        raise NotImplementedError

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        url = urlsplit(h.path)
        r = Received(h.command, url.path, parse_qs(url.query, keep_blank_values=True),
                     {k.lower(): v for k, v in h.headers.items()}, body, url.query)
        if self.mode == "slow":
            time.sleep(self._slow_s)
        with self._lock:
            self.received.append(r)
            scripted = next((s for s in self._scripted if s[0] in (None, r.path)), None)
            if self.mode == "down":
                r.answer = Answer(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                                  {"Content-Type": "text/html"})
            elif self.mode == "busy":
                r.answer = self.busy_answer
            elif scripted:
                self._scripted.remove(scripted)
                r.answer = scripted[1]
            else:
                r.answer = self.handle(r)
        status, answer, headers = r.answer
        payload = answer if isinstance(answer, bytes) else json.dumps(answer, ensure_ascii=False).encode("utf-8")
        h.send_response(status)
        headers = {"Content-Type": "application/json; charset=UTF-8", **headers}
        for name, value in headers.items():
            h.send_header(name, str(value))
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)


def _wecom(code: int, msg: str, **extra) -> Answer:
    if code:  # WeCom's errmsg names a hint and where to look the code up
        msg = (f"{msg}, hint: [{secrets.randbelow(10**18)}], from ip: 127.0.0.1, "
               f"more info at https://open.work.weixin.qq.com/devtool/query?e={code}")
    return Answer(200, {"errcode": code, "errmsg": msg, **extra})


class FakeWecomRobot(FakeProvider):
    """企业微信群机器人: POST /cgi-bin/webhook/send?key=KEY."""

    def __init__(self, key: str = WECOM_KEY, per_minute: int = 20):
        super().__init__()
        self.key, self.path = key, "/cgi-bin/webhook/send"
        self.window = _Window(per_minute, self.now)

    def config(self, **overrides) -> WecomRobot:
        fields = {"name": "duty-wecom", "kind": "wecom_robot", "key": self.key, "base_url": self.base + self.path}
        return WecomRobot(**{**fields, **overrides})

    def handle(self, r: Received) -> Answer:
        if r.method != "POST" or r.path != self.path:
            return Answer(404, b"404 page not found", {"Content-Type": "text/plain"})
        if r.param("key") != self.key:
            return _wecom(93000, "invalid webhook url")
        msg = r.json_object()
        if msg is None:
            return _wecom(40058, "invalid Request Parameter, Warning: wrong json format.")
        kind = msg.get("msgtype")
        if kind not in ("text", "markdown"):
            return _wecom(40008, "invalid message type")
        part, limit = msg.get(kind), 4096 if kind == "markdown" else 2048
        if not isinstance(part, dict) or not isinstance(part.get("content"), str):
            return _wecom(40058, f"{kind}.content missing. invalid Request Parameter")
        if not part["content"]:
            return _wecom(44004, "empty content")
        if len(part["content"].encode("utf-8")) > limit:
            return _wecom(40058, f"{kind}.content exceed max length {limit}. invalid Request Parameter")
        for name in ("mentioned_list", "mentioned_mobile_list"):
            if name in part and not _is_str_list(part[name]):
                return _wecom(40058, f"{kind}.{name} invalid. invalid Request Parameter")
            if name in part and kind == "markdown" and part[name]:
                r.notes.append(f"markdown ignores {name}: nobody is @-ed")
        if not self.window.admit():
            return _wecom(45009, "api freq out of limit")
        r.delivered = True
        return _wecom(0, "ok")


class FakeWecomApp(FakeProvider):
    """企业微信应用消息: GET /cgi-bin/gettoken, POST /cgi-bin/message/send?access_token=TOKEN."""

    TOKEN_S = 7200

    def __init__(self, users: set[str] = WECOM_USERS):
        super().__init__()
        self.corp_id, self.corp_secret, self.agent_id = WECOM_CORP_ID, WECOM_CORP_SECRET, WECOM_AGENT_ID
        self.users = users
        self.tokens: dict[str, float] = {}   # token -> when it expires on the fake's clock
        self.gettoken_calls = 0
        self._sent_json: dict[str, float] = {}  # request JSON -> when it was last delivered, for the duplicate check

    def config(self, **overrides) -> WecomApp:
        fields = {"name": "duty-wecom-app", "kind": "wecom_app", "corp_id": self.corp_id,
                  "corp_secret": self.corp_secret, "agent_id": self.agent_id, "base_url": self.base + "/cgi-bin"}
        return WecomApp(**{**fields, **overrides})

    def expire_tokens(self) -> None:
        """WeCom may invalidate a token before expires_in says (its docs tell clients to handle it)."""
        self.tokens = {t: self.now() for t in self.tokens}

    def handle(self, r: Received) -> Answer:
        if r.method == "GET" and r.path == "/cgi-bin/gettoken":
            return self._gettoken(r)
        if r.method == "POST" and r.path == "/cgi-bin/message/send":
            return self._send(r)
        return Answer(404, b"404 page not found", {"Content-Type": "text/plain"})

    def _gettoken(self, r: Received) -> Answer:
        self.gettoken_calls += 1
        corpid, secret = r.param("corpid"), r.param("corpsecret")
        if not corpid:
            return _wecom(41002, "corpid missing")
        if corpid != self.corp_id:
            return _wecom(40013, "invalid corpid")
        if not secret:
            return _wecom(41004, "corpsecret missing")
        if secret != self.corp_secret:
            return _wecom(40001, "invalid credential")
        token = secrets.token_urlsafe(48)
        self.tokens[token] = self.now() + self.TOKEN_S
        return _wecom(0, "ok", access_token=token, expires_in=self.TOKEN_S)

    def _send(self, r: Received) -> Answer:
        token = r.param("access_token")
        if not token:
            return _wecom(41001, "access_token missing")
        if token not in self.tokens:
            return _wecom(40014, "invalid access_token")
        if self.now() >= self.tokens[token]:
            return _wecom(42001, "access_token expired")
        msg = r.json_object()
        if msg is None:
            return _wecom(40058, "invalid Request Parameter, Warning: wrong json format.")
        if msg.get("msgtype") != "text":
            return _wecom(40008, "invalid message type")
        if not _is_int(msg.get("agentid")) or msg["agentid"] != self.agent_id:
            return _wecom(40056, "invalid agentid")
        text = msg.get("text")
        if not isinstance(text, dict) or not isinstance(text.get("content"), str):
            return _wecom(40058, "text.content missing. invalid Request Parameter")
        if not text["content"]:
            return _wecom(44004, "empty content")
        for name, allowed in (("safe", (0, 1, 2)), ("enable_duplicate_check", (0, 1))):
            if name in msg and not (_is_int(msg[name]) and msg[name] in allowed):
                return _wecom(40058, f"{name} invalid. invalid Request Parameter")
        interval = msg.get("duplicate_check_interval", 1800)
        if not (_is_int(interval) and 0 < interval <= 4 * 3600):
            return _wecom(40058, "duplicate_check_interval invalid. invalid Request Parameter")
        touser = msg.get("touser")
        if not isinstance(touser, str) or any(k in msg and not isinstance(msg[k], str) for k in ("toparty", "totag")):
            return _wecom(40058, "touser invalid. invalid Request Parameter")
        users = [u for u in touser.split("|") if u]
        invalid = [u.lower() for u in users if u.lower() not in self.users]
        if len(invalid) == len(users):
            return _wecom(81013, "user & party & tag all invalid")
        if len(text["content"].encode("utf-8")) > 2048:  # WeCom cuts, it does not refuse
            r.notes.append("text.content cut by WeCom at 2048 bytes")
        if msg.get("enable_duplicate_check") == 1:
            seen = self._sent_json.get(r.body.decode("utf-8"))
            if seen is not None and self.now() - seen < interval:
                r.notes.append("duplicate within duplicate_check_interval: not delivered again")
                return _wecom(0, "ok", msgid=secrets.token_hex(16))
            self._sent_json[r.body.decode("utf-8")] = self.now()
        r.delivered = True
        extra = {"invaliduser": "|".join(invalid)} if invalid else {}
        return _wecom(0, "ok", msgid=secrets.token_hex(16), **extra)


def dingtalk_sign(secret: str, timestamp: str) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}\n{secret}".encode("utf-8"), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


class FakeDingtalk(FakeProvider):
    """钉钉自定义机器人 with 加签: POST /robot/send?access_token=TOKEN&timestamp=MS&sign=SIGN."""

    busy_answer = Answer(200, {"errcode": -1, "errmsg": "系统繁忙"})
    MAX_BODY = 20_000
    THROTTLE_S = 600

    def __init__(self, per_minute: int = 20):
        super().__init__()
        self.token, self.secret, self.path = DINGTALK_TOKEN, DINGTALK_SECRET, "/robot/send"
        self.window = _Window(per_minute, self.now)
        self.throttled_until = 0.0

    def config(self, **overrides) -> DingtalkRobot:
        fields = {"name": "duty-dingtalk", "kind": "dingtalk_robot", "access_token": self.token,
                  "secret": self.secret, "base_url": self.base + self.path}
        return DingtalkRobot(**{**fields, **overrides})

    def handle(self, r: Received) -> Answer:
        if r.method != "POST" or r.path != self.path:
            return Answer(404, b"<html><body>404</body></html>", {"Content-Type": "text/html"})
        if r.param("access_token") != self.token:
            return _ding(300001, "token is not exist")
        timestamp, sign = r.param("timestamp"), r.param("sign")
        if timestamp is None or sign is None:
            return _ding(310000, "sign not match, more: [https://ding-doc.dingtalk.com/]")
        if not timestamp.isdigit() or abs(time.time() * 1000 - int(timestamp)) > 3600 * 1000:
            return _ding(310000, "invalid timestamp, more: [https://ding-doc.dingtalk.com/]")
        if not hmac.compare_digest(sign, dingtalk_sign(self.secret, timestamp)):
            return _ding(310000, "description:机器人发送签名不匹配;solution:请确认签名和生成签名的时间戳必须都放在调用的网址中，"
                                 "请确认机器人的密钥加密和填写正确;")
        if len(r.body) > self.MAX_BODY:
            return _ding(460101, "description: body 大小不合法;solution:请保持大小在 20000bytes 以内;")
        msg, shape_error = r.json_object(), _ding(40035, "缺少参数 json")
        if msg is None or msg.get("msgtype") not in ("text", "markdown"):
            return shape_error
        part = msg.get(msg["msgtype"])
        fields = ("title", "text") if msg["msgtype"] == "markdown" else ("content",)
        if not (isinstance(part, dict) and all(isinstance(part.get(k), str) and part[k] for k in fields)):
            return shape_error
        at = msg.get("at", {})
        if not (isinstance(at, dict) and _is_str_list(at.get("atMobiles", [])) and _is_str_list(at.get("atUserIds", []))
                and isinstance(at.get("isAtAll", False), bool)):
            return shape_error
        for mobile in at.get("atMobiles", []):
            if f"@{mobile}" not in part[fields[-1]]:
                r.notes.append(f"@{mobile} is not in the text: DingTalk does not @ them")
        if self.now() < self.throttled_until or not self.window.admit():
            self.throttled_until = max(self.throttled_until, self.now() + self.THROTTLE_S)
            return _ding(130101, "send too fast, exceed 20 times per minute")
        r.delivered = True
        return _ding(0, "ok")


def _ding(code: int, msg: str) -> Answer:
    return Answer(200, {"errcode": code, "errmsg": msg})


class FakeWebhook(FakeProvider):
    """A receiver of riskwatch's own webhook format (alerting/channels/webhook.py), verifying its signature."""

    busy_answer = Answer(429, {"error": "slow down"}, {"Retry-After": "7"})
    KEYS = {"key", "tier", "title", "text", "to", "params", "sent_at"}
    TIERS = {"normal", "blue", "yellow", "orange", "red"}
    MAX_SKEW_S = 300

    def __init__(self, secret: str | None = WEBHOOK_SECRET, per_minute: int | None = None):
        super().__init__()
        self.secret, self.path = secret, "/hooks/riskwatch"
        self.window = _Window(per_minute, self.now)
        self.seen_keys: set[str] = set()

    def config(self, **overrides) -> Webhook:
        fields = {"name": "plant-webhook", "kind": "webhook", "url": self.base + self.path, "secret": self.secret}
        return Webhook(**{**fields, **overrides})

    def handle(self, r: Received) -> Answer:
        if r.path != self.path:
            return Answer(404, {"error": "not found"})
        if r.method != "POST":
            return Answer(405, {"error": "POST only"}, {"Allow": "POST"})
        if r.headers.get("content-type", "").lower() != "application/json; charset=utf-8":
            return Answer(415, {"error": "Content-Type must be application/json; charset=utf-8"})
        if self.secret is not None:
            ts, sig = r.headers.get("x-riskwatch-timestamp", ""), r.headers.get("x-riskwatch-signature", "")
            if not ts.isdigit() or abs(time.time() - int(ts)) > self.MAX_SKEW_S:
                return Answer(401, {"error": "missing or stale X-Riskwatch-Timestamp"})
            mac = hmac.new(self.secret.encode("utf-8"), ts.encode("ascii") + b"." + r.body, hashlib.sha256)
            if not hmac.compare_digest(sig, "sha256=" + mac.hexdigest()):
                return Answer(401, {"error": "bad X-Riskwatch-Signature"})
        msg = r.json_object()
        if msg is None or set(msg) != self.KEYS:
            return Answer(400, {"error": f"the body must be a JSON object with exactly {sorted(self.KEYS)}"})
        if not (isinstance(msg["key"], str) and msg["key"] and msg["tier"] in self.TIERS
                and isinstance(msg["title"], str) and isinstance(msg["text"], str) and _is_str_list(msg["to"])
                and isinstance(msg["params"], dict) and all(isinstance(v, str) for v in msg["params"].values())
                and isinstance(msg["sent_at"], str)):
            return Answer(400, {"error": "a field has the wrong type"})
        try:
            if datetime.fromisoformat(msg["sent_at"]).tzinfo is None:
                raise ValueError
        except ValueError:
            return Answer(400, {"error": "sent_at must be ISO 8601 with an offset"})
        if r.headers.get("idempotency-key") != msg["key"]:
            return Answer(400, {"error": "Idempotency-Key must equal the body's key"})
        if msg["key"] in self.seen_keys:
            r.notes.append("repeat of an Idempotency-Key already delivered: dropped")
            return Answer(200, {"status": "duplicate"})
        if not self.window.admit():
            return Answer(429, {"error": "rate limited"}, {"Retry-After": "30"})
        self.seen_keys.add(msg["key"])
        r.delivered = True
        return Answer(200, {"status": "accepted"})


@pytest.fixture
def fake_wecom_robot():
    with FakeWecomRobot() as fake:
        yield fake


@pytest.fixture
def fake_wecom_app():
    with FakeWecomApp() as fake:
        yield fake


@pytest.fixture
def fake_dingtalk():
    with FakeDingtalk() as fake:
        yield fake


@pytest.fixture
def fake_webhook():
    with FakeWebhook() as fake:
        yield fake
