"""The pipeline, read top to bottom: messages -> decode -> commit -> detect -> alert -> ack -> push.

The store and the alert book are written from one writer thread, so the event loop never waits on a disk
sync and SQLite sees a single writer. A message is acknowledged to the broker only after its readings are
committed AND detected AND their findings are in the alert book: a crash anywhere before that means the broker
delivers it again, the store ignores the copy, and the detectors see it again. Detection of one batch overlaps
the commit of the next.
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
from detectors.frame import Frame
from detectors.anomaly.detector import AnomalyDetector
from detectors.composite import CompositeDetector
from detectors.health import HealthDetector, RedundancyDetector
from detectors.rate import RateDetector
from detectors.stale import StaleDetector
from detectors.threshold import ThresholdDetector
from detectors.trend import ForecastDetector
from ingest.mqtt import Message
from ingest.payload import Decoder, Reading, Reason, Rejected
from ingest.store import ReadingStore

log = logging.getLogger("riskwatch.pipeline")

DETECT_QUEUE_BATCHES = 8
POISON_AFTER = 3  # failed attempts before a batch is written message by message


class Sink(Protocol):
    """Where the pipeline's results go (the API's websocket hub)."""

    def alert_events(self, events: list[AlertEvent]) -> None: ...
    def values(self, readings: list[Reading]) -> None: ...
    def suppressions(self, open_now: list[dict]) -> None: ...


@dataclass
class Counters:
    messages: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_by_reason: Counter = field(default_factory=Counter)
    store_errors: int = 0
    last_store_error_at: float | None = None
    book_errors: int = 0
    last_book_error_at: float | None = None
    detect_errors: int = 0
    last_commit_at: float | None = None


def default_detectors(plant: Plant, started: float, last_seen: dict[str, float] | None = None) -> list[Detector]:
    points = plant.point_map()
    gateways = {g: [p.id for p in pts] for g, pts in plant.gateways().items()}
    return [ThresholdDetector(points), RateDetector(points), ForecastDetector(points), HealthDetector(points),
            AnomalyDetector({k: p for k, p in points.items() if p.anomaly}),
            StaleDetector(points, started, last_seen, gateways), RedundancyDetector(points), CompositeDetector(plant)]


def detect_groups(detectors: list[Detector], groups: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
                  bulk: bool | None = None) -> list[Finding]:
    """Runs each point's readings (point, reading times, arrival times, values) through every detector, in
    time order. Live and `riskwatch eval` both detect through here. Status points go first, so a limit that
    applies only while a process runs sees that process's state for the same moment. Joint detectors
    (composite rules, gateways) come last and see the whole batch and what the others found in it.

    A batch of many points (`bulk` None: at least BULK_AT; True: always; False: never) is first offered whole to
    each detector that can settle the points it cannot move (detectors/frame.py); only the rest are fed one by
    one. The findings and the detectors' states are the same either way (tests/test_frame.py holds them to it)."""
    status = set().union(*(getattr(d, "status_points", ()) for d in detectors))
    single = [d for d in detectors if not getattr(d, "joint", False)]
    joint = [d for d in detectors if getattr(d, "joint", False)]
    findings: list[Finding] = []
    judged = []
    keep = judged.append
    if status:  # (a stable sort: status points first, the rest in the order given)
        first: list = []
        rest: list = []
        for g in groups:
            (first if g[0] in status else rest).append(g)
        groups = first + rest
    live = []
    for point, ts, arrived, values in groups:
        if not len(ts):
            continue
        # a reading stamped ahead of its arrival is judged at its arrival: a fast device clock must not push a
        # detector's notion of time into the future and make it skip the readings that follow
        if ts is not arrived:  # (the same array, as in a replay: nothing to take the minimum of)
            ts = np.minimum(ts, arrived)
        keep((point, ts, values))
        live.append((point, ts, arrived, values))
    if live and (bulk or (bulk is None and len(live) >= BULK_AT)):
        todo = _settle(single, live)
    else:  # a detector's `fed_points`, if it has them, are the only points whose feed() does anything
        feeds = [(d.feed, d.clock == "arrival", getattr(d, "fed_points", None)) for d in single]
        todo = [(g, [(f, a) for f, a, fed in feeds if fed is None or g[0] in fed]) for g in live]
    for (point, ts, arrived, values), feeds in todo:
        for feed, by_arrival in feeds:
            found = feed(point, arrived if by_arrival else ts, values)
            if found:
                findings += found
    findings.sort(key=lambda f: f.ts)
    for d in joint:
        more = d.feed_joint(judged, findings)
        if more:
            findings = sorted(findings + more, key=lambda f: f.ts)
    return findings


BULK_AT = 32  # points in a batch from which settling them in bulk first pays


def _settle(single: list[Detector], live: list) -> list:
    """Each detector settles what it can of the batch in bulk; returns (group, feeds still to call) for the
    groups some detector must still be fed, in the batch's order (each point's detectors in their order)."""
    frame = Frame(live)
    need = []
    for d in single:
        settle = getattr(d, "settle", None)
        if settle is not None:
            left = ~settle(frame)
        else:
            fed = getattr(d, "fed_points", None)
            left = frame.membership(fed) if fed is not None else np.ones(frame.size, bool)
        need.append(left)
    feeds = [(d.feed, d.clock == "arrival") for d in single]
    codes = (np.stack(need).T.astype(np.int64) << np.arange(len(single))).sum(axis=1)  # which detectors, as bits
    by_code: dict[int, list] = {}
    todo = []
    for i in np.flatnonzero(codes).tolist():
        code = int(codes[i])
        chosen = by_code.get(code)
        if chosen is None:
            chosen = by_code[code] = [f for k, f in enumerate(feeds) if code >> k & 1]
        todo.append((live[i], chosen))
    return todo


def tick_all(detectors: list[Detector], now: float) -> list[Finding]:
    """Time passes with no reading (silence, durations): per-point detectors first, then the joint ones, which
    see what the others found on this tick."""
    findings = [f for d in detectors if not getattr(d, "joint", False) for f in d.tick(now)]
    for d in detectors:
        if getattr(d, "joint", False):
            findings += d.tick(now, findings)
    return sorted(findings, key=lambda f: f.ts)


class LineWatch:
    """Status points (production on, casting active) as the alert book needs them: each change, in time order.
    A status never heard from counts as running, as the detectors read it."""

    def __init__(self, plant: Plant):
        self.status = {p.active_when for p in plant.points if p.active_when}
        self.running: dict[str, bool] = {}

    def changes(self, groups: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> list[tuple[str, bool, float]]:
        out = []
        for point, ts, _, values in groups:
            if point in self.status:
                for t, on in zip(ts.tolist(), (values >= 0.5).tolist()):
                    if self.running.get(point) != on:
                        self.running[point] = on
                        out.append((point, on, t))
        return out


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
        self.lines = LineWatch(plant)
        self._suppressions_shown = book.suppressions.version  # (a wall that connects is sent them all anyway)
        for (point, rule), tier in book.open_tiers().items():
            for d in detectors:
                d.assume(point, rule, tier)

    async def consume(self, source) -> None:
        """Runs until cancelled. A full detection queue holds back acks, so the broker stops sending (its
        receive maximum) rather than memory growing."""
        committed: asyncio.Queue = asyncio.Queue(maxsize=DETECT_QUEUE_BATCHES)
        detecting = asyncio.create_task(self._detect_then_ack(committed, source))
        try:
            async for batch in source.batches():
                readings, out_of_range = await self.commit(batch)
                await committed.put((batch, readings, out_of_range))
        finally:
            detecting.cancel()  # what was not acknowledged yet is delivered again on the next start

    async def _detect_then_ack(self, committed: asyncio.Queue, source) -> None:
        while True:
            batch, readings, out_of_range = await committed.get()
            try:
                await self.detect(readings, out_of_range)
            except Exception:  # a detector bug: the readings are stored; redelivering them would loop forever
                self.counters.detect_errors += 1
                log.exception("detection failed on a batch of %d readings", len(readings))
            source.ack(batch)

    async def commit(self, batch: list[Message]) -> tuple[list[Reading], list[Rejected]]:
        """Stores a batch; returns its readings to detect and its out-of-range rejects (a sensor-health sign)."""
        now = self.clock()
        readings, rejects = self._decode(batch, now)
        delay, attempts = 0.5, 0
        while True:
            try:
                result = await self.in_writer(self.store.write, readings, rejects, now)
                break
            except Exception:  # disk full, locked database...: the batch stays unacknowledged
                self.counters.store_errors += 1
                self.counters.last_store_error_at = now
                attempts += 1
                log.exception("store write failed (attempt %d); retrying in %.1f s", attempts, delay)
                if attempts == POISON_AFTER:
                    readings, rejects = await self._isolate_poison(batch, now)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
        c = self.counters
        c.messages += len(batch)
        c.accepted += result.inserted
        c.duplicates += result.duplicates
        for reason, n in result.rejected_by_reason.items():
            c.rejected += n
            c.rejected_by_reason[reason] += n
        c.last_commit_at = now
        if result.conflicting:  # a second value for a stored (point, ts) is not what the plant measured
            skip = {id(r) for r in result.conflicting}
            readings = [r for r in readings if id(r) not in skip]
        return readings, [j for j in rejects if j.reason == Reason.OUT_OF_RANGE and j.point]

    def _decode(self, batch: list[Message], now: float) -> tuple[list[Reading], list[Rejected]]:
        readings: list[Reading] = []
        rejects: list[Rejected] = []
        for m in batch:
            try:
                self.decoder.decode(m.topic, m.payload, now, readings, rejects)
            except Exception as e:  # a decoder bug must cost one message, never the pipeline
                log.exception("decoder failed on a message from %s", m.topic)
                rejects.append(Rejected(Reason.BAD_SHAPE, f"could not decode: {type(e).__name__}", m.topic,
                                        m.payload))
        return readings, rejects

    async def _isolate_poison(self, batch: list[Message], now: float) -> tuple[list[Reading], list[Rejected]]:
        """A batch that keeps failing may hold one message the store cannot take: write the messages one by
        one and keep each one that fails as rejected, so one bad message cannot stop the plant's data."""
        readings: list[Reading] = []
        rejects: list[Rejected] = []
        for m in batch:
            r, j = self._decode([m], now)
            try:
                await self.in_writer(self.store.check, r, j)
                readings += r
                rejects += j
            except Exception as e:
                log.error("message on %s cannot be stored (%s); keeping it as rejected", m.topic, e)
                rejects.append(Rejected(Reason.STORE_ERROR, f"{type(e).__name__}: {e}", m.topic, m.payload))
        return readings, rejects

    async def detect(self, readings: list[Reading], out_of_range: list[Rejected] = ()) -> None:
        now = self.clock()
        bad = [f for j in out_of_range for d in self.detectors if hasattr(d, "rejected")
               for f in d.rejected(j.point, now, j.value, j.detail)]
        if bad:
            await self._raise(bad)
        if not readings:
            return
        by_point: dict[str, list[Reading]] = defaultdict(list)
        for r in readings:
            by_point[r.point].append(r)
        groups = []
        for point, rows in by_point.items():
            rows.sort(key=lambda r: r.ts_ms)
            n = len(rows)
            arrived = np.fromiter((r.received_ms or r.ts_ms for r in rows), float, n) / 1000.0
            ts = np.fromiter((r.ts_ms for r in rows), float, n) / 1000.0
            groups.append((point, ts, arrived, np.fromiter((r.value for r in rows), float, n)))
        changes = self.lines.changes(groups)
        if changes:  # before the findings: a stop suppresses the process alarms its own findings then clear
            await self._book(self.book.line_state, changes)
        await self._raise(detect_groups(self.detectors, groups))
        self.sink.values(readings)

    async def tick(self, now: float | None = None) -> None:
        """Time passes: detectors that watch for silence get their say."""
        now = self.clock() if now is None else now
        await self._raise(tick_all(self.detectors, now))
        await self._book(self.book.tick, now)  # shelving expires, chattering settles, loop steps go overdue

    async def _raise(self, findings: list[Finding]) -> None:
        """Findings are never dropped: detectors report a change once, so a failed write is retried."""
        if findings:
            await self._book(self.book.apply, findings)

    async def _book(self, write, *args) -> None:
        delay = 0.5
        while True:
            try:
                events = await self.in_writer(write, *args)
                break
            except Exception:
                self.counters.book_errors += 1
                self.counters.last_book_error_at = self.clock()
                log.exception("alert book write failed; retrying in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
        self.sink.alert_events(events)
        # shelves and out-of-service records that ran out, lines that stopped or started, gateways lost or back:
        # every wall is told the open suppressions again (one that ends with no alarm under it has no event)
        version = self.book.suppressions.version
        if version != self._suppressions_shown:
            self._suppressions_shown = version
            self.sink.suppressions([x.to_json() for x in self.book.open_suppressions()])

    async def run_ticks(self, source, period_s: float = 1.0, settle_s: float = 10.0) -> None:
        """Silence is judged once the broker has handed over what it queued while we were away (or after
        settle_s, if it never answers: then every point is silent as far as anyone can tell)."""
        started = time.monotonic()
        while time.monotonic() - started < settle_s and not (source.connected and source.backlog == 0):
            await asyncio.sleep(0.1)
        maintain = getattr(self.store, "maintain", None)  # rollups and retention, where the store keeps them
        next_maintain = 0.0
        while True:
            await asyncio.sleep(period_s)
            try:
                await self.tick()
            except Exception:
                log.exception("tick failed; the next one will try again")
            if maintain is not None and time.monotonic() >= next_maintain:
                more = False
                try:  # through the writer, in its order: SQLite keeps one writer; a budgeted step, never long
                    more = await self.in_writer(maintain, int(self.clock() * 1000))
                except Exception:
                    log.exception("store maintenance failed; the next one will try again")
                next_maintain = time.monotonic() + (0 if more else self.plant.store.maintain_interval_s)

    async def in_writer(self, fn, *args):
        """Runs a write on the pipeline's writer thread: everything written to the database, in one order."""
        return await asyncio.get_running_loop().run_in_executor(self.writer, fn, *args)

    def close(self) -> None:
        self.writer.shutdown(wait=True)
