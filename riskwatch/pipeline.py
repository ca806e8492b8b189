"""The pipeline, read top to bottom: messages -> decode -> commit -> ack -> detect -> alert -> push.

The store and the alert book are written from one writer thread, so the event loop never waits on a disk
sync and SQLite sees a single writer. A message is acknowledged to the broker only after its commit.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from alerting.book import AlertBook, AlertEvent
from config.model import Plant
from detectors.finding import Detector, Finding
from detectors.stale import StaleDetector
from detectors.threshold import ThresholdDetector
from ingest.mqtt import Message
from ingest.payload import Decoder, Reading, Reason, Rejected
from ingest.store import ReadingStore

log = logging.getLogger("riskwatch.pipeline")

DETECT_QUEUE_BATCHES = 8


class Sink(Protocol):
    """Where the pipeline's results go (the API's websocket hub)."""

    def alert_events(self, events: list[AlertEvent]) -> None: ...
    def values(self, readings: list[Reading]) -> None: ...


@dataclass
class Counters:
    messages: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_by_reason: Counter = field(default_factory=Counter)
    store_errors: int = 0
    last_commit_at: float | None = None


def default_detectors(plant: Plant, started: float) -> list[Detector]:
    points = plant.point_map()
    return [ThresholdDetector(points), StaleDetector(points, started)]


class Pipeline:
    def __init__(self, plant: Plant, store: ReadingStore, book: AlertBook, detectors: list[Detector], sink: Sink,
                 clock: Callable[[], float] = time.time):
        self.plant = plant
        self.store = store
        self.book = book
        self.detectors = detectors
        self.sink = sink
        self.clock = clock
        self.counters = Counters()
        self.decoder = Decoder(plant.point_map(), plant.ingest, plant.broker.topic_prefix, plant.site)
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="riskwatch-writer")
        for (point, rule), tier in book.open_tiers().items():
            for d in detectors:
                d.assume(point, rule, tier)

    async def consume(self, source) -> None:
        """Runs until cancelled: every batch is committed, then acknowledged, then detected. Detection of one
        batch overlaps the commit of the next (the writer is a thread); a full queue holds back the acks, so the
        broker stops sending rather than memory growing."""
        committed: asyncio.Queue[list[Reading]] = asyncio.Queue(maxsize=DETECT_QUEUE_BATCHES)
        detecting = asyncio.create_task(self._detect_in_order(committed))
        try:
            async for batch in source.batches():
                readings = await self.commit(batch)
                source.ack(batch)
                await committed.put(readings)
        finally:
            detecting.cancel()

    async def _detect_in_order(self, committed: asyncio.Queue) -> None:
        while True:
            readings = await committed.get()
            try:
                await self.detect(readings)
            except Exception:  # stored and acknowledged already; the next batch is detected as usual
                log.exception("detection failed on a batch of %d readings", len(readings))

    async def commit(self, batch: list[Message]) -> list[Reading]:
        now = self.clock()
        readings: list[Reading] = []
        rejects: list[Rejected] = []
        for m in batch:
            try:
                self.decoder.decode(m.topic, m.payload, now, readings, rejects)
            except Exception as e:  # a decoder bug must cost one message, never the pipeline
                log.exception("decoder failed on a message from %s", m.topic)
                rejects.append(Rejected(Reason.BAD_SHAPE, f"could not decode: {type(e).__name__}", m.topic,
                                        m.payload[:1024]))
        loop = asyncio.get_running_loop()
        delay = 0.5
        while True:
            try:
                result = await loop.run_in_executor(self.writer, self.store.write, readings, rejects, now)
                break
            except Exception:  # disk full, locked database...: keep the batch unacknowledged and try again
                self.counters.store_errors += 1
                log.exception("store write failed; retrying in %.1f s (messages stay unacknowledged)", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
        c = self.counters
        c.messages += len(batch)
        c.accepted += result.inserted
        c.duplicates += result.duplicates
        c.rejected += result.rejected
        for r in rejects:
            c.rejected_by_reason[r.reason.value] += 1
        c.last_commit_at = now
        return readings

    async def detect(self, readings: list[Reading]) -> None:
        if not readings:
            return
        by_point: dict[str, list[Reading]] = defaultdict(list)
        for r in readings:
            by_point[r.point].append(r)
        findings: list[Finding] = []
        for point, rows in by_point.items():
            rows.sort(key=lambda r: r.ts_ms)
            ts = np.fromiter((r.ts_ms for r in rows), float, len(rows)) / 1000.0
            values = np.fromiter((r.value for r in rows), float, len(rows))
            for d in self.detectors:
                findings.extend(d.feed(point, ts, values))
        await self._raise(findings)
        self.sink.values(readings)

    async def tick(self, now: float | None = None) -> None:
        """Time passes: detectors that watch for silence get their say."""
        now = self.clock() if now is None else now
        findings = [f for d in self.detectors for f in d.tick(now)]
        await self._raise(findings)

    async def _raise(self, findings: list[Finding]) -> None:
        if findings:
            events = await asyncio.get_running_loop().run_in_executor(self.writer, self.book.apply, findings)
            self.sink.alert_events(events)

    async def run_ticks(self, period_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(period_s)
            try:
                await self.tick()
            except Exception:
                log.exception("tick failed; the next one will try again")

    def close(self) -> None:
        self.writer.shutdown(wait=True)
