"""A generic webhook: the notification as JSON, signed with HMAC-SHA256 when a secret is set.

    POST url
    Content-Type: application/json; charset=utf-8
    Idempotency-Key: <msg.key>                       (the same on every retry: the receiver drops repeats)
    X-Riskwatch-Timestamp: <unix seconds>            (with a secret)
    X-Riskwatch-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>

    {"key": "rw-42", "tier": "red", "title": "【红色预警】...", "text": "...", "to": [...], "params": {...},
     "sent_at": "2025-01-01T08:00:00+00:00"}

A receiver verifies the signature over the raw body bytes and rejects a timestamp far from its own clock, so a
captured request cannot be replayed later. 2xx is delivered; 429 is throttled (Retry-After honoured); 5xx or no
answer is retried; any other status is for good.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import time
from datetime import datetime, timezone
from typing import Callable

from alerting.channels.base import Message, SendResult
from alerting.channels.wire import exchange, http_failure, json_body
from config.channels import Webhook

log = logging.getLogger("riskwatch.alerting.channels")

MAX_CHARS = 65_536  # no provider limit: a bound so a digest stays a message, not a dump


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookChannel:
    kind = "webhook"

    def __init__(self, cfg: Webhook, clock: Callable[[], float] = time.time):
        self.name = cfg.name
        self.per_minute = cfg.per_minute
        self.max_chars = MAX_CHARS
        self._cfg = cfg
        self._clock = clock

    def __repr__(self) -> str:
        return f"WebhookChannel(name={self.name!r}, signed={self._cfg.secret is not None})"

    @staticmethod
    def payload(msg: Message, now: float) -> dict:
        sent_at = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds")
        return {"key": msg.key, "tier": msg.tier.label, "title": msg.title, "text": msg.text, "to": list(msg.to),
                "params": dict(msg.params), "sent_at": sent_at}

    def send(self, msg: Message) -> SendResult:
        now = self._clock()
        body = json_body(self.payload(msg, now))
        headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": msg.key}
        secret = self._cfg.secret.get_secret_value() if self._cfg.secret else ""
        if secret:
            timestamp = str(int(now))
            headers["X-Riskwatch-Timestamp"] = timestamp
            headers["X-Riskwatch-Signature"] = signature(secret, timestamp, body)
        reply = exchange("POST", self._cfg.url, body, headers, self._cfg.timeout_s)
        result = http_failure(reply, secret) or SendResult.delivered(str(reply.status), f"HTTP {reply.status}")
        log.debug("%s %s: %s %s", self.kind, self.name, result.provider_code or "-", result.detail)
        return result
