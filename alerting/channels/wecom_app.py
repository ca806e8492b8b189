"""企业微信应用消息 (WeCom application message) to user ids: gettoken, then message/send with the token.

From the WeCom docs: gettoken (developer.work.weixin.qq.com/document/path/91039) answers an access_token valid
for expires_in seconds (normally 7200) that must be cached, since calling gettoken often is itself throttled, and
that WeCom may invalidate early; message/send (document/path/90236) takes text.content of at most 2048 bytes
(longer is cut by WeCom, so it is cut here first, on a character boundary), sends to the users that exist and
names the others in `invaliduser`, and fails with 81013 when none exist. With enable_duplicate_check the same
request JSON within duplicate_check_interval is delivered once: a retry after a lost answer does not ring twice.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Callable

from alerting.channels.base import Message, SendResult
from alerting.channels.wire import cut_utf8, errcode_result, exchange, http_failure, json_body, with_query
from config.channels import WecomApp

log = logging.getLogger("riskwatch.alerting.channels")

MAX_BYTES = 2048
TITLE_ROOM = 256
EARLY_S = 300                            # renew the token 5 minutes before WeCom says it expires
STALE_TOKEN = frozenset({"40014", "42001"})  # invalid / expired access_token: fetch a new one and send again, once
THROTTLED = frozenset({45009, 45033})    # api freq out of limit / too many concurrent calls
TRANSIENT = frozenset({-1})              # system busy
# 40001 (invalid secret), 40013 (invalid corpid), 81013 (no valid recipient) and the rest are for good


class WecomAppChannel:
    kind = "wecom_app"

    def __init__(self, cfg: WecomApp, clock: Callable[[], float] = time.monotonic):
        self.name = cfg.name
        self.per_minute = cfg.per_minute
        self.max_chars = (MAX_BYTES - TITLE_ROOM) // 3
        self._cfg = cfg
        self._clock = clock
        self._lock = threading.Lock()    # the notifier sends from several threads: one gettoken for all of them
        self._token: str | None = None
        self._token_until = 0.0

    def __repr__(self) -> str:
        return f"WecomAppChannel(name={self.name!r}, corp_id={self._cfg.corp_id!r}, agent_id={self._cfg.agent_id})"

    def payload(self, msg: Message) -> dict:
        return {"touser": "|".join(msg.to), "msgtype": "text", "agentid": self._cfg.agent_id,
                "text": {"content": cut_utf8(f"{msg.title}\n{msg.text}", MAX_BYTES)},
                "safe": 0, "enable_duplicate_check": 1, "duplicate_check_interval": 1800}

    def send(self, msg: Message) -> SendResult:
        if not msg.to:
            return SendResult(False, detail="no recipients: a WeCom app message needs user ids")
        body = json_body(self.payload(msg))
        result = self._post(body)
        if result.provider_code in STALE_TOKEN:  # _post has dropped the token: the next one is fetched anew
            result = self._post(body)
            if result.provider_code in STALE_TOKEN:  # a token fresh from gettoken refused: WeCom's trouble, not ours
                result = replace(result, retry=True)
        log.debug("%s %s: %s %s", self.kind, self.name, result.provider_code or "-", result.detail)
        return result

    def _post(self, body: bytes) -> SendResult:
        token = self._access_token()
        if isinstance(token, SendResult):
            return token
        url = with_query(f"{self._cfg.base_url}/message/send", access_token=token)
        reply = exchange("POST", url, body, {"Content-Type": "application/json; charset=utf-8"}, self._cfg.timeout_s)
        secrets = (self._cfg.corp_secret.get_secret_value(), token)
        if (failure := http_failure(reply, *secrets)) is not None:
            return failure
        answer = reply.json()
        result = errcode_result(answer, THROTTLED, TRANSIENT, *secrets)
        if result.provider_code in STALE_TOKEN:
            self._forget(token)
        elif result.ok and answer.get("invaliduser"):
            result = replace(result, detail=f"{result.detail}; invaliduser={answer['invaliduser']}")
        return result

    def _access_token(self) -> str | SendResult:
        with self._lock:
            if self._token and self._clock() < self._token_until:
                return self._token
            secret = self._cfg.corp_secret.get_secret_value()
            url = with_query(f"{self._cfg.base_url}/gettoken", corpid=self._cfg.corp_id, corpsecret=secret)
            reply = exchange("GET", url, timeout_s=self._cfg.timeout_s)
            answer = reply.json()
            token, expires_in = (answer or {}).get("access_token"), (answer or {}).get("expires_in")
            failed = http_failure(reply, secret)
            if failed is None and not (isinstance(token, str) and token and isinstance(expires_in, int)):
                failed = errcode_result(answer, THROTTLED, TRANSIENT, secret)
                if failed.ok:  # errcode 0 without a token
                    failed = SendResult(False, retry=True, provider_code="0", detail="no access_token")
            if failed is not None:
                return replace(failed, detail=f"gettoken: {failed.detail}")
            self._token, self._token_until = token, self._clock() + expires_in - EARLY_S
            return token

    def _forget(self, token: str) -> None:
        with self._lock:
            if self._token == token:  # another thread may already have fetched a fresh one
                self._token = None
