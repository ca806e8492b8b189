"""The websocket hub: fans alert events out at once and live values at most once per interval per point.

Every client has a bounded queue; a client too slow to keep up is disconnected rather than allowed to hold
memory, and catches up from the durable event log when it reconnects with its last sequence number.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from alerting.book import AlertEvent
from ingest.payload import Reading

log = logging.getLogger("riskwatch.api")

QUEUE_LIMIT = 2000


class Client:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_LIMIT)
        self.dropped = False


class Hub:
    def __init__(self, loop: asyncio.AbstractEventLoop | None = None):
        self.clients: set[Client] = set()
        self.seq = 0
        self._values: dict[str, tuple[int, float]] = {}
        self._loop = loop

    def bind(self, loop: asyncio.AbstractEventLoop, seq: int) -> None:
        self._loop = loop
        self.seq = seq

    # --- fed by the pipeline (on the event loop) ---------------------------------------------------------------
    def alert_events(self, events: list[AlertEvent]) -> None:
        for ev in events:
            self.seq = max(self.seq, ev.seq)
            self._send({"type": "alert_event", "seq": ev.seq, "event": ev.to_json()})

    def values(self, readings: list[Reading]) -> None:
        latest = self._values
        for r in readings:  # hot path: tuples here, dicts only at the (throttled) flush
            cur = latest.get(r.point)
            if cur is None or r.ts_ms >= cur[0]:
                latest[r.point] = (r.ts_ms, r.value)

    def suppressions(self, open_now: list[dict[str, Any]]) -> None:
        """What is shelved, out of service or suppressed by design, after a change."""
        self._send({"type": "suppressions", "seq": self.seq, "suppressions": open_now})

    def health(self, message: dict[str, Any]) -> None:
        self._send({"type": "health", "seq": self.seq, **message})

    def flush_values(self) -> None:
        if self._values and self.clients:
            self._send({"type": "values", "seq": self.seq,
                        "values": {p: {"ts": t / 1000, "value": v} for p, (t, v) in self._values.items()}})
        self._values = {}

    # --- clients ------------------------------------------------------------------------------------------------
    def join(self) -> Client:
        c = Client()
        self.clients.add(c)
        return c

    def leave(self, c: Client) -> None:
        self.clients.discard(c)

    def _send(self, msg: dict[str, Any]) -> None:
        for c in list(self.clients):
            try:
                c.queue.put_nowait(msg)
            except asyncio.QueueFull:
                log.warning("a websocket client fell %d messages behind; disconnecting it", QUEUE_LIMIT)
                c.dropped = True
                self.clients.discard(c)
