"""Runs riskwatch: the one place where ingest, detectors, alerting and the API are put together."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Callable

import uvicorn

from alerting import channels as channel_modules
from alerting import notify
from alerting.book import AlertBook
from alerting.outbox import Outbox
from alerting.uplink import sender as uplink_sender
from alerting.uplink.queue import UplinkQueue
from api.app import ApiContext, create_app
from api.hub import Hub
from api.models import BrokerHealth, Health, ReadingsHealth
from config.model import Plant
from ingest.broker import ensure_free
from ingest.influx import ForwardedStore
from ingest.mqtt import MqttSource
from ingest.store import SQLiteStore
from riskwatch.pipeline import Pipeline, default_detectors

log = logging.getLogger("riskwatch")

HEARTBEAT_S = 2.0


async def run(plant: Plant, on_ready: Callable[[], None] | None = None,
              background: list[Callable[[], asyncio.Future]] | None = None) -> None:
    """Serves until SIGINT/SIGTERM. `background`: extra coroutines to run alongside (the demo's simulator)."""
    ensure_free(plant.api.host, plant.api.port, "--port")
    store = SQLiteStore(plant.store.path, plant.store.synchronous,
                        raw_retention_days=plant.store.raw_retention_days,
                        rollup_1m_retention_days=plant.store.rollup_1m_retention_days,
                        rollup_1h_retention_days=plant.store.rollup_1h_retention_days)
    if plant.influx is not None:  # every accepted reading also goes to InfluxDB, through a local spool
        store = ForwardedStore(store, plant.influx, plant)
    book = AlertBook.for_plant(plant, plant.store.path, plant.store.synchronous)
    hub = Hub()
    hub.bind(asyncio.get_running_loop(), book.last_seq())
    last_seen = {p: ts / 1000 for p, (ts, _) in store.latest().items()}
    pipeline = Pipeline(plant, store, book, default_detectors(plant, time.time(), last_seen), hub)
    channels = {c.name: channel_modules.build(c) for c in plant.notify.channels}
    outbox = Outbox(plant.store.path, plant.store.synchronous,
                    {c.name for c in plant.notify.channels if c.kind in channel_modules.IDEMPOTENT})
    if outbox.unknown_after_restart:
        log.warning("%d notifications were being sent when riskwatch stopped; not sent again (providers are not "
                    "idempotent): see state 'unknown' in the outbox", outbox.unknown_after_restart)
    planner = notify.Planner(plant, book, outbox)
    dispatcher = notify.Dispatcher(outbox, channels, plant.notify.max_attempts)
    source = MqttSource(plant.broker, plant.site, plant.ingest.batch_max)
    uplink = uplink_queue = None
    if plant.uplink is not None and plant.uplink.enabled:
        uplink_queue = UplinkQueue(plant.store.path, plant.store.synchronous)
        uplink = uplink_sender.Sender(plant, plant.uplink, store, book, uplink_queue)

    def health() -> Health:
        c = pipeline.counters
        now = time.time()
        influx = store.stats() if isinstance(store, ForwardedStore) else None
        problems = [code for bad, code in (
            (not source.connected, "broker_down"),
            (not source.alive, "mqtt_thread_stopped"),
            (c.last_store_error_at is not None and now - c.last_store_error_at < 60, "store_failing"),
            (c.last_book_error_at is not None and now - c.last_book_error_at < 60, "alert_book_failing"),
            (source.backlog > 10 * plant.ingest.batch_max, "ingest_behind"),
            (dispatcher.stats["undelivered_1h"] > 0, "notifications_undelivered"),
            (dispatcher.stats["late"] > 0, "notifications_late"),
            (influx is not None and influx["near_full"], "influx_spool_near_full"),
            (influx is not None and (influx["refused"] or (influx["failing_for_s"] or 0) > 60 or not influx["alive"]),
             "influx_failing"),
            (uplink is not None and uplink.stats["rejected"] > 0, "uplink_rejected"),
            (uplink is not None and (uplink.stats["oldest_age_s"] or 0) > 2 * plant.uplink.period_s,
             "uplink_behind")) if bad]
        return Health(status="degraded" if problems else "ok", problems=problems,
                      broker=BrokerHealth(connected=source.connected, address=source.address,
                                          connects=source.connects, last_error=source.last_error),
                      readings=ReadingsHealth(messages=c.messages, accepted=c.accepted, duplicates=c.duplicates,
                                              rejected=c.rejected, rejected_by_reason=dict(c.rejected_by_reason),
                                              backlog=source.backlog, store_errors=c.store_errors,
                                              last_commit_age_s=None if c.last_commit_at is None
                                              else round(now - c.last_commit_at, 1)),
                      alerts=book.counts_by_tier(), notifications=dispatcher.stats["by_state"],
                      suppressed=len(book.suppressions.open), influx=influx,  # (no lock: a len)
                      uplink=dict(uplink.stats) if uplink else None)

    app = create_app(ApiContext(plant, store, book, hub, health, pipeline.in_writer))
    server = uvicorn.Server(uvicorn.Config(app, host=plant.api.host, port=plant.api.port, log_level="warning",
                                           access_log=False, ws_ping_interval=20, ws_ping_timeout=20))

    async def push_values() -> None:
        while True:
            await asyncio.sleep(plant.api.value_push_interval_s)
            hub.flush_values()

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            h = health()
            hub.health({"ts": time.time(), "broker_connected": source.connected, "status": h.status,
                        "problems": h.problems})

    async def announce() -> None:
        while not server.started:
            await asyncio.sleep(0.05)
        if on_ready:
            on_ready()

    async with source:
        tasks = [asyncio.create_task(c) for c in (pipeline.consume(source), pipeline.run_ticks(source), push_values(),
                                                  heartbeat(), announce(), notify.run(planner, dispatcher))]
        tasks += [asyncio.create_task(make()) for make in background or []]
        if uplink is not None:
            tasks.append(asyncio.create_task(uplink_sender.run(uplink)))
        try:
            await server.serve()
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            pipeline.close()
            if uplink_queue is not None:
                uplink_queue.close()
            outbox.close()
            book.close()
            store.close()
