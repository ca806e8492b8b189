"""钉钉自定义机器人 (DingTalk custom group robot) with 加签 signing, sending markdown that @-s people by mobile.

From the DingTalk custom robot docs (open.dingtalk.com/document/orgapp/custom-robot-access, 自定义机器人安全设置):
`timestamp` is the sender's time in milliseconds, within one hour of DingTalk's; `sign` is
Base64(HmacSHA256(key=secret, msg=f"{timestamp}\\n{secret}")), URL-encoded, both in the query beside
access_token. A mobile in at.atMobiles is only @-ed where the text itself contains "@mobile". Each robot may send
20 messages a minute; past that DingTalk answers 130101 and throttles the robot for 10 minutes.

Size: the docs give no markdown limit; DingTalk's own refusal bounds the whole request body: errcode 460101
"body 大小不合法;solution:请保持大小在 20000bytes 以内" (quoted in github.com/feiyu563/PrometheusAlert/issues/318).
So the serialized body is kept within 20,000 bytes, cutting the text, never the @ mentions.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from typing import Callable

from alerting.channels.base import Message, SendResult
from alerting.channels.wire import cut_utf8, errcode_result, exchange, http_failure, json_body, utf8_len, with_query
from config.channels import DingtalkRobot

log = logging.getLogger("riskwatch.alerting.channels")

MAX_BODY_BYTES = 20_000
TITLE_BYTES = 256
THROTTLED = frozenset({130101})   # send too fast, exceed 20 times per minute
THROTTLE_WAIT_S = 600.0           # "如果超过20条,会限流10分钟"
TRANSIENT = frozenset({-1})       # system busy
# 310000 (sign not match, invalid timestamp, keyword or IP not allowed), 300001 (token is not exist), 460101 (body
# too large) and the rest are for good


def sign(secret: str, timestamp_ms: int) -> str:
    """The 加签 signature before URL-encoding (the query encoder does that)."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class DingtalkRobotChannel:
    kind = "dingtalk_robot"

    def __init__(self, cfg: DingtalkRobot, clock: Callable[[], float] = time.time):
        self.name = cfg.name
        self.per_minute = cfg.per_minute or 20
        self.max_chars = (MAX_BODY_BYTES - 1024) // 3  # room for the title, @ mentions and JSON around the text
        self._cfg = cfg
        self._clock = clock

    def __repr__(self) -> str:
        return f"DingtalkRobotChannel(name={self.name!r})"

    def payload(self, msg: Message) -> dict:
        title = cut_utf8(msg.title, TITLE_BYTES)
        mentions = "\n\n" + " ".join(f"@{m}" for m in msg.to) if msg.to else ""
        text = msg.text
        for _ in range(8):  # each pass cuts the excess; JSON escapes only make the first cut fall short
            body = {"msgtype": "markdown", "markdown": {"title": title, "text": f"### {title}\n\n{text}{mentions}"},
                    "at": {"atMobiles": list(msg.to), "isAtAll": False}}
            excess = len(json_body(body)) - MAX_BODY_BYTES
            if excess <= 0:
                break
            text = cut_utf8(text, max(utf8_len(text) - excess, 0))
        return body

    def send(self, msg: Message) -> SendResult:
        token, secret = self._cfg.access_token.get_secret_value(), self._cfg.secret.get_secret_value()
        timestamp = int(self._clock() * 1000)
        url = with_query(self._cfg.base_url, access_token=token, timestamp=timestamp, sign=sign(secret, timestamp))
        reply = exchange("POST", url, json_body(self.payload(msg)), {"Content-Type": "application/json; charset=utf-8"},
                         self._cfg.timeout_s)
        secrets = (token, secret)
        result = http_failure(reply, *secrets) or errcode_result(reply.json(), THROTTLED, TRANSIENT, *secrets,
                                                                 throttle_wait_s=THROTTLE_WAIT_S)
        log.debug("%s %s: %s %s", self.kind, self.name, result.provider_code or "-", result.detail)
        return result
