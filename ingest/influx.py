"""A copy of every accepted reading in InfluxDB, through a local spool: the pipeline never waits on the network.

    store = ForwardedStore(SQLiteStore(plant.store.path), plant.influx, plant)   # same interface, one line

`ForwardedStore.write` commits to SQLite first (the reading store stays the truth), then appends the readings to
the spool (ingest/spool.py): one local transaction on the pipeline's writer thread. A forwarder thread drains the
spool in order, in batches of line protocol (gzip, ms precision), and deletes a batch only once the server
answered 2xx. A crash between commit and append loses nothing: the message was not acknowledged yet, the broker
delivers it again and the store's duplicate is spooled again. A crash between send and delete re-sends the batch,
which InfluxDB overwrites (same series, same timestamp): nothing is stored twice.

What the server answers decides what happens next:
- no answer, a timeout, 429 or 5xx: the same batch again after a backoff (0.5 s doubling to max_backoff_s).
- 400, 413, 422 (the data): the batch is halved until the refused lines stand alone; each is kept in the spool's
  `dead` table and counted, and the rest go through. A 400 on DEAD_STREAK lines in a row, none accepted, is the
  server refusing everything (its settings), and is treated as below.
- 401, 403, 404 and other 4xx (the configuration: token, org, bucket): nothing is dropped; the spool keeps
  filling, the forwarder retries every max_backoff_s and `stats()` says `refused` with the status.
"""
from __future__ import annotations

import gzip
import logging
import random
import threading
import time
from typing import Any, Callable

from config.influx import PLACEHOLDER, InfluxConfig
from config.model import Plant
from ingest.payload import Reading, Rejected
from ingest.spool import Batch, Spool, StoreRanges
from ingest.store import WriteResult

log = logging.getLogger("riskwatch.influx")

DATA_ERRORS = {400, 413, 422}  # the lines themselves: halve the batch to find them
RETRYABLE = {408, 425, 429}  # and every 5xx: the server will take the same batch later
DEAD_STREAK = 10  # lines refused (400) in a row with none accepted: the server refuses everything, not these


class LineLayout:
    """How a reading becomes a line: `{measurement},{tags} {field}={value} {ts_ms}`, tags sorted by key."""

    def __init__(self, config: InfluxConfig, plant: Plant):
        self.field = config.field
        self.config = config
        self.site = plant.site
        areas = plant.area_map()
        self._prefix: dict[str, str] = {}
        for p in plant.points:
            area = areas.get(p.area)
            tags = {"point": p.id, "site": plant.site, "area": p.area, "unit": p.unit, "kind": p.kind,
                    "sector": area.sector.value if area else None,
                    "gateway": p.gateway or (area.gateway if area else None)}
            self._prefix[p.id] = self._line_prefix(tags)

    def _line_prefix(self, tags: dict[str, str | None]) -> str:
        measurement = PLACEHOLDER.sub(lambda m: tags.get(m.group(1)) or "", self.config.measurement)
        kept = sorted((k, v) for k, v in tags.items() if k in self.config.tags and v)  # an empty tag is no tag
        return _escape(measurement, ", ") + "".join(f",{_escape(k, ',= ')}={_escape(v, ',= ')}" for k, v in kept)

    def prefix(self, point: str) -> str:
        found = self._prefix.get(point)
        if found is None:  # a point no longer in the plant file, still in the spool
            found = self._prefix[point] = self._line_prefix({"point": point, "site": self.site})
        return found

    def body(self, rows: list[tuple[str, int, float]]) -> bytes:
        prefix, field = self.prefix, self.field
        return "\n".join(f"{prefix(p)} {field}={float(v)!r} {t}" for p, t, v in rows).encode()


def _escape(text: str, special: str) -> str:
    text = text.replace("\n", " ")  # a newline would end the line
    for ch in special:
        text = text.replace(ch, "\\" + ch)
    return text


class Refused(Exception):
    """The server refuses us, not the data (token, org, bucket): retried slowly, never dropped."""

    def __init__(self, status: int | None, message: str):
        super().__init__(message)
        self.status = status


class Transient(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class BadLines(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class InfluxWriter:
    """One write request through influxdb-client (v2 write API), its answer sorted into what to do next."""

    def __init__(self, config: InfluxConfig):
        from influxdb_client import InfluxDBClient, WriteService  # only a plant that forwards needs it

        self.config = config
        self._secret = config.token.get_secret_value()
        # retries=False: our loop retries, with the spool behind it; debug stays off (it would log the token);
        # gzip is ours, at level 3: the client's level 9 costs 17x the CPU for 30 % fewer bytes
        self._client = InfluxDBClient(config.url, self._secret, timeout=int(config.timeout_s * 1000),
                                      enable_gzip=False, org=config.org or None, verify_ssl=config.verify_ssl,
                                      retries=False)
        self._service = WriteService(self._client.api_client)

    def write(self, body: bytes) -> None:
        from influxdb_client.rest import ApiException

        encoding = "identity"
        if self.config.gzip:
            body, encoding = gzip.compress(body, compresslevel=3, mtime=0), "gzip"
        try:
            self._service.post_write(org=self.config.org, bucket=self.config.bucket, body=body, precision="ms",
                                     content_encoding=encoding, content_type="text/plain; charset=utf-8")
        except ApiException as e:
            status = e.status or 0
            message = self.redact(f"HTTP {status} {e.reason or ''}: {_short(e.body)}".strip())
            if status in DATA_ERRORS:
                raise BadLines(status, message) from None
            if status in RETRYABLE or status >= 500 or status == 0:
                raise Transient(message, _seconds(e.headers)) from None
            raise Refused(status, message) from None
        except Exception as e:  # urllib3: refused, reset, timed out, TLS...
            raise Transient(self.redact(f"{type(e).__name__}: {e}")) from None

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except Exception:
            return False

    def redact(self, text: str) -> str:
        """No secret in a log line or in stats, whatever a library put in its message."""
        return text.replace(self._secret, "***") if self._secret else text

    def close(self) -> None:
        self._client.close()


def _short(body: Any) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    return " ".join(text.split())[:300]


def _seconds(headers: Any) -> float | None:
    try:
        return float(headers.get("Retry-After")) if headers and headers.get("Retry-After") else None
    except (TypeError, ValueError):  # an HTTP date: our own backoff will do
        return None


class InfluxForwarder:
    """Drains the spool to InfluxDB on its own thread, oldest first; `stats()` is for health."""

    def __init__(self, config: InfluxConfig, spool: Spool, layout: LineLayout, ranges: StoreRanges,
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.spool = spool
        self.layout = layout
        self.ranges = ranges
        self.writer = InfluxWriter(config)
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="riskwatch-influx", daemon=True)
        self._lock = threading.Lock()
        self.sent = 0
        self.requests = 0
        self.failures = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_sent_at: float | None = None
        self.connected = False
        self.refused_status: int | None = None
        self._failing_since: float | None = None
        self._dead_streak = 0

    def start(self) -> "InfluxForwarder":
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float | None = None) -> None:
        """Stops after the request in flight; what is unsent stays in the spool for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(self.config.timeout_s + 5 if timeout_s is None else timeout_s)
        self.writer.close()

    def stats(self) -> dict:
        now = self.clock()
        with self._lock:
            mine = {"connected": self.connected, "sent": self.sent, "requests": self.requests,
                    "failures": self.failures, "last_error": self.last_error,
                    "last_error_age_s": None if self.last_error_at is None else round(now - self.last_error_at, 1),
                    "last_sent_age_s": None if self.last_sent_at is None else round(now - self.last_sent_at, 1),
                    "failing_for_s": None if self._failing_since is None else round(now - self._failing_since, 1),
                    "refused": self.refused_status is not None, "refused_status": self.refused_status,
                    "alive": self._thread.is_alive()}
        return {**self.spool.snapshot(now), **mine}

    def _run(self) -> None:
        self.connected = self.writer.ping()  # known before the first reading needs sending
        delay = 0.5
        while not self._stop.is_set():
            try:
                batch = self.spool.next_batch(self.config.batch_size, self.ranges)
                if batch is None or self._young(batch):
                    self._wake.wait(self.config.flush_interval_s)
                    self._wake.clear()
                    continue
                if batch.rows:  # (a refill range can turn out empty: nothing to send, only to mark done)
                    self._send(batch.rows)
                self.spool.done(batch)
                if batch.rows:
                    self._recovered()
                delay = 0.5
            except (Transient, Refused) as e:
                wait = self._failed(e, delay)
                delay = min(delay * 2, self.config.max_backoff_s)
                self._stop.wait(wait)
            except Exception as e:  # the spool's disk, or our bug: keep trying, loudly, never spin
                log.exception("influx forwarder: unexpected error; retrying in %.0f s", self.config.max_backoff_s)
                with self._lock:
                    self.failures += 1
                    self.last_error, self.last_error_at = f"{type(e).__name__}: {e}", self.clock()
                self._stop.wait(self.config.max_backoff_s)

    def _young(self, batch: Batch) -> bool:
        """A partial batch waits for more, at most flush_interval_s after its oldest reading was spooled."""
        return (len(batch) < self.config.batch_size and batch.first_queued_at is not None
                and self.clock() - batch.first_queued_at < self.config.flush_interval_s)

    def _send(self, rows: list[tuple[str, int, float]]) -> None:
        """Sends rows, halving on a refusal of the data until each refused line stands alone and is buried."""
        try:
            with self._lock:
                self.requests += 1
            self.writer.write(self.layout.body(rows))
        except BadLines as e:
            if len(rows) > 1:
                half = len(rows) // 2
                self._send(rows[:half])
                self._send(rows[half:])
                return
            self._dead_streak += 1
            # a 400 on every line is the server's settings, not our data; 413 and 422 (beyond the bucket's
            # retention) are always about the line itself, and must not hold up the lines behind it
            if e.status == 400 and self._dead_streak > DEAD_STREAK:
                raise Refused(e.status, f"every line refused, {e}") from None
            dead = self.spool.totals["dead"]
            if dead < 10 or dead % 1000 == 0:  # a stream of bad lines must not flood the log
                log.error("influx refused one line for itself (%s); kept in the spool's dead table (%d so far): %s",
                          e, dead + 1, self.layout.body(rows).decode())
            self.spool.bury(rows, e.status, str(e))
            return
        self._dead_streak = 0
        with self._lock:
            self.sent += len(rows)
            self.last_sent_at = self.clock()

    def _failed(self, e: Transient | Refused, delay: float) -> float:
        now = self.clock()
        refused = isinstance(e, Refused)
        wait = self.config.max_backoff_s if refused else min(
            self.config.max_backoff_s, e.retry_after if e.retry_after else delay * random.uniform(0.8, 1.2))
        with self._lock:
            changed = str(e) != self.last_error or (refused and self.refused_status != e.status)
            first = self._failing_since is None
            self.failures += 1
            self.connected = False
            self.last_error, self.last_error_at = str(e), now
            self.refused_status = e.status if refused else None
            if first:
                self._failing_since = now
        if first or changed:  # once per kind of failure, not once per retry
            (log.error if refused else log.warning)(
                "influx write failed (%s); readings stay in the spool (%d), retrying every %g s at most",
                e, self.spool.rows, self.config.max_backoff_s)
        return wait

    def _recovered(self) -> None:
        with self._lock:
            was = self._failing_since
            self.connected = True
            self.refused_status = None
            self._failing_since = None
        if was is not None:
            log.warning("influx writes succeed again after %.0f s; back-filling %d spooled readings in order",
                        self.clock() - was, self.spool.rows)


class ForwardedStore:
    """A reading store that also forwards what it accepts to InfluxDB; everything else is the wrapped store's."""

    def __init__(self, store: Any, config: InfluxConfig, plant: Plant):
        self._store = store
        self.config = config
        self.spool = Spool(config.spool_file(store.path), config.spool_max_rows, config.near_full_fraction)
        self.ranges = StoreRanges(store.path)
        self.forwarder = InfluxForwarder(config, self.spool, LineLayout(config, plant), self.ranges).start()

    def write(self, readings: list[Reading], rejects: list[Rejected], received_at: float) -> WriteResult:
        result = self._store.write(readings, rejects, received_at)
        if result.conflicting:  # a second value for a stored instant was not stored: not forwarded either
            skip = {id(r) for r in result.conflicting}
            readings = [r for r in readings if id(r) not in skip]
        # duplicates go too: one may be the redelivery of a batch whose spool append a crash cut short
        self.spool.append(readings, received_at)
        if self.spool.rows >= self.config.batch_size:
            self.forwarder.wake()
        return result

    def stats(self) -> dict:
        return self.forwarder.stats()

    def close(self) -> None:
        self.forwarder.stop()
        self.ranges.close()
        self.spool.close()
        self._store.close()

    def __getattr__(self, name: str) -> Any:
        if name == "_store":  # not set yet (a failed __init__): no recursion
            raise AttributeError(name)
        return getattr(self._store, name)
