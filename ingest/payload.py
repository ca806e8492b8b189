"""Topic layout and payload decoding: MQTT messages in, accepted readings and rejections (with reasons) out.

Topics (prefix default `rw/v1`):
  {prefix}/{site}/point/{point_id}      one reading:      {"ts": 1732300000.5, "value": 23.4}
  {prefix}/{site}/gateway/{gateway_id}  a gateway batch:  {"ts": 1732300000.5,
                                                            "readings": [{"point": "a.b", "value": 1.0,
                                                                          "ts": 1732300000.5}, ...]}
`ts` is seconds since the Unix epoch (UTC) or an ISO-8601 string with a zone; in a batch a reading without its
own `ts` takes the batch's. Values are JSON numbers (booleans are read as 0/1 for status points).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from config.model import IngestConfig, Point


class Reason(str, Enum):
    OVERSIZED = "oversized"
    MALFORMED_JSON = "malformed_json"
    BAD_TOPIC = "bad_topic"
    BAD_SHAPE = "bad_shape"
    UNKNOWN_POINT = "unknown_point"
    WRONG_TYPE = "wrong_type"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    TS_FUTURE = "ts_future"
    TS_PAST = "ts_past"
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    STORE_ERROR = "store_error"


KEPT_PAYLOAD_BYTES = 65_536  # of a rejected message's payload, kept for whoever investigates it


@dataclass(slots=True)
class Reading:
    point: str
    ts_ms: int
    value: float
    received_ms: int = field(default=0, compare=False)  # when riskwatch received it; 0 = unknown


@dataclass(slots=True)
class Rejected:
    reason: Reason
    detail: str
    topic: str
    payload: bytes
    point: str | None = None
    value: float | None = None  # the rejected value, where it was a number (a sensor reading out of its range)
    digest: bytes = field(init=False)

    def __post_init__(self) -> None:
        # JSON can carry lone surrogates ("\ud800"): text that no database or log can encode
        self.detail, self.topic = _printable(self.detail), _printable(self.topic)
        self.point = None if self.point is None else _printable(self.point)
        h = hashlib.sha1(self.topic.encode())
        h.update(b"\0" + (self.point or "").encode() + b"\0" + self.reason.value.encode() + b"\0" + self.payload)
        self.digest = h.digest()  # a redelivered bad message is kept once
        self.payload = self.payload[:KEPT_PAYLOAD_BYTES]


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def point_topic(prefix: str, site: str, point_id: str) -> str:
    return f"{prefix}/{site}/point/{point_id}"


def gateway_topic(prefix: str, site: str, gateway_id: str) -> str:
    return f"{prefix}/{site}/gateway/{gateway_id}"


def encode_reading(ts: float, value: float) -> bytes:
    return json.dumps({"ts": round(ts, 3), "value": value}, separators=(",", ":")).encode()


def encode_batch(readings: list[tuple[str, float, float]]) -> bytes:
    """readings: (point_id, ts, value)."""
    body = [{"point": p, "ts": round(ts, 3), "value": v} for p, ts, v in readings]
    return json.dumps({"readings": body}, separators=(",", ":")).encode()


class Decoder:
    """Turns one MQTT message into readings and rejections. Needs `now` (seconds) for the timestamp window."""

    def __init__(self, points: dict[str, Point], rules: IngestConfig, prefix: str, site: str):
        self.points = points
        self.rules = rules
        self.base = f"{prefix}/{site}/"

    def decode(self, topic: str, payload: bytes, now: float, out: list[Reading], rejects: list[Rejected]) -> None:
        if len(payload) > self.rules.max_message_bytes:
            rejects.append(Rejected(Reason.OVERSIZED, f"{len(payload)} bytes > limit {self.rules.max_message_bytes}",
                                    topic, payload))
            return
        if not topic.startswith(self.base):
            rejects.append(Rejected(Reason.BAD_TOPIC, f"topic outside {self.base}#", topic, payload))
            return
        kind, _, name = topic[len(self.base):].partition("/")
        if kind not in ("point", "gateway") or not name or "/" in name:
            rejects.append(Rejected(Reason.BAD_TOPIC, "expected .../point/<id> or .../gateway/<id>", topic, payload))
            return
        try:
            body = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as e:
            rejects.append(Rejected(Reason.MALFORMED_JSON, str(e)[:200], topic, payload))
            return
        if not isinstance(body, dict):
            rejects.append(Rejected(Reason.BAD_SHAPE, "payload must be a JSON object", topic, payload))
            return
        if kind == "point":
            self._one(name, body, None, topic, payload, now, out, rejects)
            return
        items = body.get("readings")
        if not isinstance(items, list):
            rejects.append(Rejected(Reason.BAD_SHAPE, "gateway payload needs a list 'readings'", topic, payload))
            return
        default_ts = body.get("ts")
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("point"), str):
                rejects.append(Rejected(Reason.BAD_SHAPE, "each reading needs a string 'point'", topic,
                                        json.dumps(item, default=str).encode()[:1024]))
                continue
            self._one(item["point"], item, default_ts, topic, None, now, out, rejects)

    def _one(self, point_id: str, body: dict, default_ts, topic: str, payload: bytes | None, now: float,
             out: list[Reading], rejects: list[Rejected]) -> None:
        def reject(reason: Reason, detail: str, value: float | None = None) -> None:
            raw = payload if payload is not None else json.dumps(body, default=str).encode()[:1024]
            rejects.append(Rejected(reason, detail, topic, raw, point_id, value))

        point = self.points.get(point_id)
        if point is None:
            return reject(Reason.UNKNOWN_POINT, f"point {point_id!r} is not configured")
        value = body.get("value")
        lo, hi = point.range
        if isinstance(value, bool):
            if (lo, hi) != (0, 1):
                return reject(Reason.WRONG_TYPE, "true/false is only for status points (range [0, 1])")
            value = float(value)
        if not isinstance(value, (int, float)):
            return reject(Reason.WRONG_TYPE, f"value must be a number, got {type(value).__name__}")
        try:
            value = float(value)
        except OverflowError:
            return reject(Reason.NOT_FINITE, "value is too large to be a number")
        if not math.isfinite(value):
            return reject(Reason.NOT_FINITE, f"value is {value}")
        if not lo <= value <= hi:
            return reject(Reason.OUT_OF_RANGE, f"value {value} outside physical range [{lo}, {hi}] {point.unit}", value)
        ts = parse_ts(body.get("ts", default_ts))
        if ts is None:
            return reject(Reason.WRONG_TYPE, "ts must be epoch seconds or an ISO-8601 time with a zone")
        if ts > now + self.rules.max_future_s:
            return reject(Reason.TS_FUTURE, f"ts is {ts - now:.0f} s in the future (limit {self.rules.max_future_s:.0f} s)")
        if ts < now - self.rules.max_past_s:
            return reject(Reason.TS_PAST, f"ts is {now - ts:.0f} s in the past (limit {self.rules.max_past_s:.0f} s)")
        out.append(Reading(point_id, int(round(ts * 1000)), value, int(now * 1000)))


def parse_ts(raw) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        try:
            raw = float(raw)
        except OverflowError:
            return None
        return raw if math.isfinite(raw) else None
    if isinstance(raw, str):
        try:
            dt = datetime.fromisoformat(raw)
        except ValueError:
            return None
        return dt.timestamp() if dt.tzinfo is not None else None
    return None
