"""The store-and-forward spool: readings waiting for InfluxDB, in arrival order, on local disk (SQLite, WAL).

Two threads use it, each through its own connection: the pipeline's writer appends (one short transaction per
batch, no fsync in WAL mode), the forwarder reads the head, sends it and deletes it once acknowledged. Only a
prefix of the queue is ever deleted, so the ids that remain are contiguous and "up to id N" is the whole receipt
(plain rowids, not AUTOINCREMENT, which costs 40 % of an append: an id is reused only once the queue is empty,
and only the forwarder deletes, so no receipt can cover a row it did not send).

When the queue holds `max_rows`, readings are no longer copied: each point's missed time range is recorded in
`gaps` instead (one row per point, however long the outage). Once the queue has drained, the forwarder moves the
gaps to `refill` in one transaction and re-reads those ranges from the reading store, which holds every accepted
reading; readings arriving from then on are queued again, behind the refill. So the order is kept (queue, then
the gap, then what came after), nothing is dropped, and InfluxDB's overwrite on (series, timestamp) makes the
readings of a range that were already sent harmless copies.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ingest.payload import Reading
from ingest.sqlite import connect

log = logging.getLogger("riskwatch.influx")

SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY, point TEXT NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
    queued_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS gaps (
    point TEXT PRIMARY KEY, first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL, missed INTEGER NOT NULL,
    since REAL NOT NULL);
CREATE TABLE IF NOT EXISTS refill (
    point TEXT PRIMARY KEY, next_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL, missed INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY, point TEXT NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL, status INTEGER,
    error TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS totals (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
"""
# totals: gap_readings (readings not queued but recorded in gaps), refilled (readings re-read from the store
# and sent), dead (lines the server refused for themselves)


@dataclass(slots=True)
class Batch:
    """Rows to send, (point, ts_ms, value) in order, and what to mark done once the server has them."""

    rows: list[tuple[str, int, float]]
    last_id: int | None = None  # queue rows up to this id
    refill: list[tuple[str, int, bool]] = field(default_factory=list)  # (point, last ts sent, range finished)
    first_queued_at: float | None = None

    def __len__(self) -> int:
        return len(self.rows)


class StoreRanges:
    """Reads a point's stored readings over a range from the reading store's SQLite file (read-only)."""

    def __init__(self, store_path: str):
        self._db = sqlite3.connect(f"file:{Path(store_path).resolve()}?mode=ro", uri=True, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=10000")

    def __call__(self, point: str, start_ms: int, end_ms: int, limit: int) -> list[tuple[int, float]]:
        return self._db.execute(
            "SELECT r.ts, r.value FROM readings r JOIN point_ids p ON p.id = r.point WHERE p.name = ? "
            "AND r.ts BETWEEN ? AND ? ORDER BY r.ts LIMIT ?", (point, start_ms, end_ms, limit)).fetchall()

    def close(self) -> None:
        self._db.close()


class Spool:
    def __init__(self, path: str | Path, max_rows: int, near_full_fraction: float = 0.8):
        self.path = str(path)
        self.max_rows = max_rows
        self.near_full_rows = max(1, int(max_rows * near_full_fraction))
        self._w = self._connect()  # the pipeline's writer thread
        self._f = self._connect()  # the forwarder thread
        self._w.executescript(SCHEMA)
        self._lock = threading.Lock()
        self.rows = self._w.execute("SELECT count(*) FROM queue").fetchone()[0]  # once, at start; then counted
        head = self._w.execute("SELECT queued_at FROM queue ORDER BY id LIMIT 1").fetchone()
        self.head_at: float | None = head[0] if head else None
        self.gap_points = self._w.execute("SELECT count(*) FROM gaps").fetchone()[0]
        self.refill_points = self._w.execute("SELECT count(*) FROM refill").fetchone()[0]
        self.totals: dict[str, int] = {"gap_readings": 0, "refilled": 0, "dead": 0,
                                       **dict(self._w.execute("SELECT name, n FROM totals"))}
        self.append_errors = 0
        self.last_append_error: str | None = None
        self._unsaved: dict[str, list[int]] = {}  # gaps an append could not record yet: point -> [first, last, n]

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path)

    # -- the writer's side -------------------------------------------------------------------------------------

    def append(self, readings: list[Reading], queued_at: float) -> None:
        """Queues readings, or records them as gaps; never raises (a failing spool must not stop the pipeline):
        what it could not write is kept as a gap in memory and recorded with the next append that works."""
        if not readings:
            return
        db = self._w
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                gap_open = bool(self._unsaved) or db.execute("SELECT EXISTS(SELECT 1 FROM gaps)").fetchone()[0]
                room = 0 if gap_open else max(0, self.max_rows - self.rows)  # gap open: queue nothing, keep order
                queued, missed = readings[:room], readings[room:]
                if queued:
                    db.executemany("INSERT INTO queue(point, ts, value, queued_at) VALUES (?,?,?,?)",
                                   [(r.point, r.ts_ms, r.value, queued_at) for r in queued])
                ranges = _ranges(missed, self._unsaved)
                if ranges:
                    db.executemany(
                        "INSERT INTO gaps(point, first_ts, last_ts, missed, since) VALUES (?,?,?,?,?) "
                        "ON CONFLICT(point) DO UPDATE SET first_ts = min(first_ts, excluded.first_ts), "
                        "last_ts = max(last_ts, excluded.last_ts), missed = missed + excluded.missed",
                        [(p, a, b, n, queued_at) for p, (a, b, n) in ranges.items()])
                    missed_n = sum(n for _, _, n in ranges.values())
                    self._add_total(db, "gap_readings", missed_n)
                    gap_points = db.execute("SELECT count(*) FROM gaps").fetchone()[0]
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except Exception as e:
            first = not self._unsaved  # logged once per failing spell, not once per batch
            self._remember_unsaved(readings)
            with self._lock:
                self.append_errors += 1
                self.last_append_error = f"{type(e).__name__}: {e}"
            if first:
                log.error("influx spool: could not append %d readings (%s); kept as gaps in memory, to record and "
                          "back-fill from the store once the spool can be written", len(readings), e)
            return
        with self._lock:
            if queued:
                before, self.rows = self.rows, self.rows + len(queued)
                if self.head_at is None:
                    self.head_at = queued_at
                if before < self.near_full_rows <= self.rows:
                    log.warning("influx spool near full: %d of %d readings waiting (the server is unreachable, "
                                "refusing, or slower than the plant)", self.rows, self.max_rows)
            if ranges:
                if not gap_open:
                    log.warning("influx spool full (%d readings): recording gaps to back-fill from the store",
                                self.rows)
                self.gap_points = gap_points
                self.totals["gap_readings"] += missed_n
            self._unsaved.clear()

    def _remember_unsaved(self, readings: list[Reading]) -> None:
        for p, (a, b, n) in _ranges(readings, {}).items():
            cur = self._unsaved.get(p)
            self._unsaved[p] = [a, b, n] if cur is None else [min(cur[0], a), max(cur[1], b), cur[2] + n]

    # -- the forwarder's side ----------------------------------------------------------------------------------

    def next_batch(self, limit: int, ranges: StoreRanges) -> Batch | None:
        """The head of the line: a refill in progress first, then the queue, then gaps that can be refilled."""
        if self.refill_points or self._take_gaps():
            return self._refill_batch(limit, ranges)
        rows = self._f.execute("SELECT id, point, ts, value, queued_at FROM queue ORDER BY id LIMIT ?",
                               (limit,)).fetchall()
        if not rows:
            return None
        return Batch([(p, t, v) for _, p, t, v, _ in rows], last_id=rows[-1][0], first_queued_at=rows[0][4])

    def _take_gaps(self) -> bool:
        """Once the queue is empty, the gaps become a refill in one step; readings after it queue again."""
        db = self._f
        if not self.gap_points:
            return False
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("SELECT EXISTS(SELECT 1 FROM queue)").fetchone()[0]:
                db.execute("ROLLBACK")
                return False
            db.execute("INSERT INTO refill(point, next_ts, last_ts, missed) SELECT point, first_ts, last_ts, missed "
                       "FROM gaps WHERE true ON CONFLICT(point) DO UPDATE SET next_ts = min(next_ts, "
                       "excluded.next_ts), last_ts = max(last_ts, excluded.last_ts), missed = missed + excluded.missed")
            taken = db.execute("DELETE FROM gaps").rowcount
            refill = db.execute("SELECT count(*) FROM refill").fetchone()[0]
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        with self._lock:
            self.gap_points = 0
            self.refill_points = refill
        log.info("influx spool drained: back-filling the gaps of %d points from the store", taken)
        return refill > 0

    def _refill_batch(self, limit: int, ranges: StoreRanges) -> Batch | None:
        rows: list[tuple[str, int, float]] = []
        marks: list[tuple[str, int, bool]] = []
        for point, next_ts, last_ts in self._f.execute("SELECT point, next_ts, last_ts FROM refill ORDER BY point"
                                                        ).fetchall():
            want = limit - len(rows)
            if want <= 0:
                break
            got = ranges(point, next_ts, last_ts, want)
            rows += [(point, t, v) for t, v in got]
            marks.append((point, got[-1][0] if got else last_ts, len(got) < want))
        return Batch(rows, refill=marks) if marks else None

    def done(self, batch: Batch) -> None:
        """The server has every row of the batch (or refused some for themselves, kept in `dead`)."""
        db = self._f
        db.execute("BEGIN IMMEDIATE")
        try:
            deleted = 0
            if batch.last_id is not None:
                deleted = db.execute("DELETE FROM queue WHERE id <= ?", (batch.last_id,)).rowcount
            for point, last_ts, finished in batch.refill:
                if finished:
                    db.execute("DELETE FROM refill WHERE point = ?", (point,))
                else:
                    db.execute("UPDATE refill SET next_ts = ? WHERE point = ?", (last_ts + 1, point))
            if batch.refill:
                self._add_total(db, "refilled", len(batch.rows))
            head = db.execute("SELECT queued_at FROM queue ORDER BY id LIMIT 1").fetchone()
            refill = db.execute("SELECT count(*) FROM refill").fetchone()[0]
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        with self._lock:
            self.rows -= deleted
            self.head_at = head[0] if head else None
            self.refill_points = refill
            if batch.refill:
                self.totals["refilled"] += len(batch.rows)

    def bury(self, rows: list[tuple[str, int, float]], status: int | None, error: str) -> None:
        """Keeps lines the server refused for what they are (a 400 on that line), so they cannot block the rest."""
        now = time.time()
        db = self._f
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO dead(point, ts, value, status, error, at) VALUES (?,?,?,?,?,?)",
                           [(p, t, v, status, error[:500], now) for p, t, v in rows])
            self._add_total(db, "dead", len(rows))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        with self._lock:
            self.totals["dead"] += len(rows)

    def dead(self, limit: int = 100) -> list[dict]:
        rows = self._f.execute("SELECT point, ts, value, status, error, at FROM dead ORDER BY id DESC LIMIT ?",
                               (limit,)).fetchall()
        return [dict(zip(("point", "ts_ms", "value", "status", "error", "at"), r)) for r in rows]

    @staticmethod
    def _add_total(db: sqlite3.Connection, name: str, n: int) -> None:
        db.execute("INSERT INTO totals(name, n) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET n = n + excluded.n",
                   (name, n))

    # -- both ----------------------------------------------------------------------------------------------------

    def snapshot(self, now: float | None = None) -> dict:
        """From memory: health must not wait on a disk."""
        now = time.time() if now is None else now
        with self._lock:
            gap_open = bool(self.gap_points or self._unsaved)
            return {"spooled": self.rows, "spool_max_rows": self.max_rows,
                    "oldest_spooled_age_s": None if self.head_at is None else round(max(0.0, now - self.head_at), 1),
                    "near_full": self.rows >= self.near_full_rows or gap_open, "full": gap_open,
                    "gap_points": self.gap_points + len(self._unsaved), "backfill_points": self.refill_points,
                    "gap_readings": self.totals["gap_readings"], "backfilled": self.totals["refilled"],
                    "dead_lines": self.totals["dead"], "spool_errors": self.append_errors,
                    "last_spool_error": self.last_append_error}

    def close(self) -> None:
        self._w.close()
        self._f.close()


def _ranges(readings: list[Reading], carried: dict[str, list[int]]) -> dict[str, tuple[int, int, int]]:
    """Each point's (first ts, last ts, count) among these readings, merged with the carried ones."""
    out: dict[str, list[int]] = {p: list(v) for p, v in carried.items()}
    for r in readings:
        cur = out.get(r.point)
        if cur is None:
            out[r.point] = [r.ts_ms, r.ts_ms, 1]
        else:
            cur[0] = min(cur[0], r.ts_ms)
            cur[1] = max(cur[1], r.ts_ms)
            cur[2] += 1
    return {p: (a, b, n) for p, (a, b, n) in out.items()}
