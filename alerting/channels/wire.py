"""The HTTP plumbing the channel modules share: one exchange with a timeout, what a status means to the notifier,
UTF-8 byte budgets, and scrubbing secrets out of anything an operator will read.

A network failure is an answer here, not an exception: `exchange` returns `Reply(status=0, error=...)`, so a
channel reads every outcome the same way. Redirects are not followed: a robot URL carries its key in the query,
and a redirect must not carry it to another host.
"""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from http.client import HTTPException
from urllib.parse import quote, urlencode

from alerting.channels.base import SendResult

ELLIPSIS = "…"
MAX_ANSWER = 1 << 20  # bytes read of an answer: a provider's is a few hundred


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the 3xx comes back as a reply, and is read as a permanent failure


_opener = urllib.request.build_opener(_NoRedirect)


@dataclass(frozen=True)
class Reply:
    status: int                 # HTTP status; 0: no answer came (refused, reset, timed out); -1: not sent (bad URL)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    error: str = ""             # why no answer came: the exception's class and reason, never the URL

    def json(self) -> dict | None:
        try:
            data = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def exchange(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
             timeout_s: float = 10.0) -> Reply:
    try:
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    except ValueError as e:  # its message quotes the URL, key and all: scrubbed by whoever reads it
        return Reply(-1, error=f"invalid URL: {e}")
    try:
        with _opener.open(req, timeout=timeout_s) as r:
            return Reply(r.status, r.read(MAX_ANSWER), {k.lower(): v for k, v in r.headers.items()})
    except urllib.error.HTTPError as e:  # a non-2xx answer is still an answer
        with e:
            return Reply(e.code, e.read(MAX_ANSWER), {k.lower(): v for k, v in (e.headers or {}).items()})
    except urllib.error.URLError as e:
        return Reply(0, error=_why(e.reason))
    except (OSError, HTTPException) as e:  # timeouts while reading, resets, a server that hung up
        return Reply(0, error=_why(e))


def _why(reason: object) -> str:
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(reason, BaseException):
        text = getattr(reason, "strerror", None) or str(reason)
        return f"{type(reason).__name__}: {text}" if text else type(reason).__name__
    return str(reason)


def with_query(base_url: str, **params: str | int) -> str:
    """base_url with the parameters appended, percent-encoded (a DingTalk sign's "+" and "/" included)."""
    return base_url + ("&" if "?" in base_url else "?") + urlencode(params)


def json_body(payload: dict) -> bytes:
    """Compact UTF-8 JSON: Chinese as itself (3 bytes a character), not as \\uXXXX escapes (6)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def http_failure(reply: Reply, *secrets: str) -> SendResult | None:
    """What a reply means when the provider's own answer could not be read from it: None for a 2xx (read the
    body), else the failure. No answer / 5xx -> retry; 429 -> throttled, with Retry-After; other -> permanent."""
    if reply.status <= 0:  # not sent at all is a configuration error: sending again cannot help
        why = f"{'no answer' if reply.status == 0 else 'not sent'}: {reply.error}"
        return SendResult(False, retry=reply.status == 0, detail=scrub(why, *secrets))
    if 200 <= reply.status < 300:
        return None
    body = reply.body[:4096].decode("utf-8", "replace")  # scrubbed whole, then shortened: half a secret hides
    code, text = str(reply.status), scrub(f"HTTP {reply.status} {body}", *secrets)
    if reply.status == 429:
        return SendResult(False, retry=True, throttled=True, retry_after_s=retry_after(reply.headers),
                          provider_code=code, detail=text)
    return SendResult(False, retry=reply.status >= 500, provider_code=code, detail=text)


def retry_after(headers: dict[str, str]) -> float | None:
    """Retry-After as seconds, from either of its forms (delta-seconds or an HTTP date)."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def cut_utf8(text: str, max_bytes: int) -> str:
    """Text that fits max_bytes of UTF-8, cut on a character boundary and ending with "…" when cut.

    >>> cut_utf8("一号深井铸造", 10)
    '一号…'
    >>> cut_utf8("短", 10)
    '短'
    """
    if utf8_len(text) <= max_bytes:
        return text
    room = max_bytes - utf8_len(ELLIPSIS)
    kept = text.encode("utf-8")[:max(room, 0)].decode("utf-8", errors="ignore")  # drops a split character
    return kept + ELLIPSIS


def scrub(text: str, *secrets: str) -> str:
    """One line for an operator: secrets replaced, whitespace folded, at most 300 characters."""
    for s in secrets:
        if s:
            text = text.replace(s, "***").replace(quote(s, safe=""), "***")
    return " ".join(text.split())[:300]


def errcode_result(answer: dict | None, throttled: frozenset[int], transient: frozenset[int], *secrets: str,
                   throttle_wait_s: float | None = None) -> SendResult:
    """The answer WeCom and DingTalk both give, {"errcode": 0, "errmsg": "ok"}: 0 is delivered; a throttled
    code holds the channel; a transient one (system busy) retries; any other code is for good (bad key, bad
    signature, bad request: sending it again cannot help)."""
    if answer is None or not isinstance(answer.get("errcode"), int):
        return SendResult(False, retry=True, detail="unreadable answer")
    code = answer["errcode"]
    detail = scrub(f"errcode {code} {answer.get('errmsg', '')}", *secrets)
    if code == 0:
        return SendResult.delivered("0", detail)
    if code in throttled:
        return SendResult(False, retry=True, throttled=True, retry_after_s=throttle_wait_s, provider_code=str(code),
                          detail=detail)
    return SendResult(False, retry=code in transient, provider_code=str(code), detail=detail)
