"""What a province's format is: the contract between the uplink sender and one published platform interface.

The sender (alerting/uplink/sender.py) knows riskwatch: which points, which instants, which alarm changes, the
durable queue and retries. A format knows one platform's wire and nothing else: its code for an alarm level, its
record for one reading and for one alarm change, how a batch of records is wrapped into a request (envelope,
encryption, URL) and what the platform's reply means. Adding a province is one more module beside hebei.py with
a class that follows `Format`, its name in `FORMATS` (alerting/uplink/__init__.py) and in the `province`
setting (config/uplink.py), e.g.:

    class JiangsuFormat:                       # alerting/uplink/jiangsu.py
        name = "jiangsu"
        def __init__(self, cfg): ...           # its key, codes, endpoints
        def level(self, rule, tier): ...       # its alarm codes (0 = normal)
        def reading(self, s): ...              # {"pointId": s.code, "time": ..., "value": ...}
        def alarm(self, a): ...                # its alarm record
        def request(self, kind, gateway, records): ...  # Request(url, body, headers): signed, encrypted, ...
        def outcome(self, reply): ...          # Outcome: sent / retry / rejected for good
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol

from alerting.channels.wire import Reply
from config.model import Tier

KINDS = ("events", "readings")  # the two batch kinds: alarm changes (sent at once) and real-time readings


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading as the platform will get it."""

    code: str          # the platform point code
    ts: float          # the reading's own timestamp, seconds since the epoch
    value: float
    decimals: int


@dataclass(frozen=True, slots=True)
class AlarmChange:
    """A change of what the platform should show for one alert: a new level, or back to normal (level 0)."""

    code: str          # the platform point code
    name: str          # the point's name (Chinese)
    unit: str
    ts: float
    value: float | None
    rule: str          # riskwatch rule: high | low | stale | ...
    tier: Tier         # riskwatch tier now (NORMAL: back to normal on the platform)
    level: int         # the format's own code for it, from Format.level (0 = normal)
    limit: float | None  # the limit crossed, or on a return to normal the one last reported
    decimals: int
    reason: str = ""   # riskwatch's Chinese reason, for rules without a single limit


@dataclass(frozen=True, slots=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    retry: bool = False  # transient: the same batch again later; ok and retry both false: rejected for good
    code: str = ""       # the platform's own code, or the HTTP status
    detail: str = ""     # one line for the operator; never a key


class Format(Protocol):
    name: str

    def level(self, rule: str, tier: Tier) -> int: ...
    def reading(self, s: Sample) -> dict: ...
    def alarm(self, a: AlarmChange) -> dict: ...
    def request(self, kind: str, gateway: str, records: list[dict]) -> Request: ...
    def outcome(self, reply: Reply) -> Outcome: ...


def utc_offset(text: str) -> timezone:
    """'+08:00' -> a fixed zone (Beijing keeps no daylight saving)."""
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def local_time(ts: float, tz: timezone) -> str:
    """YYYY-MM-DD HH:mm:ss in the platform's zone, to the second (the published ts format).

    >>> local_time(1732320000.9, utc_offset("+08:00"))
    '2024-11-23 08:00:00'
    """
    return datetime.fromtimestamp(int(ts // 1), tz).strftime("%Y-%m-%d %H:%M:%S")
