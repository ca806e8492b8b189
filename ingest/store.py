"""The reading store: a small interface, and SQLite (WAL) as the embedded default.

Readings live in one clustered table keyed by (point, ts): a redelivered reading is ignored by the key itself,
and a point's history over a range is one contiguous read. Rejected inputs are kept with their reason.
Per-minute and per-hour rollups and retention live in ingest/rollup.py; maintain() runs them on the writer.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ingest.payload import Reading, Reason, Rejected
from ingest.sqlite import connect
from ingest.rollup import Progress, Rollups, last_rolled, read_history

SCHEMA = """
CREATE TABLE IF NOT EXISTS point_ids (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS readings (
    point INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
    PRIMARY KEY (point, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY, received_at REAL NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL,
    topic TEXT NOT NULL, point TEXT, payload BLOB NOT NULL, digest BLOB NOT NULL UNIQUE
);
"""


@dataclass(slots=True)
class WriteResult:
    inserted: int
    duplicates: int  # true copies of stored readings (redeliveries)
    rejected_by_reason: dict[str, int]  # rejections kept by this write (a redelivered one is kept once)
    conflicting: list[Reading] = field(default_factory=list)  # other values for a stored (point, ts): rejected

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


@dataclass(slots=True)
class History:
    point: str
    bucket_s: float  # 0 = raw readings; else each row's span (whole minutes or hours when read from rollups)
    rows: list[tuple]  # raw: (ts, value); bucketed: (ts, min, max, mean, count)


class ReadingStore(Protocol):
    """What the pipeline needs from a store; an InfluxDB backend implements the same."""

    def write(self, readings: list[Reading], rejects: list[Rejected], received_at: float) -> WriteResult: ...
    def latest(self) -> dict[str, tuple[int, float]]: ...
    def history(self, point: str, start_ms: int, end_ms: int, max_points: int = 2000) -> History: ...
    def rejected(self, limit: int = 100, reason: str | None = None) -> list[dict]: ...
    def close(self) -> None: ...


class SQLiteStore:
    """Writes come from one thread (the pipeline's writer); reads may come from any thread."""

    def __init__(self, path: str | Path, synchronous: str = "NORMAL", *, raw_retention_days: float | None = 180,
                 rollup_1m_retention_days: float | None = 730, rollup_1h_retention_days: float | None = None):
        self.path = str(path)
        self._db = self._connect(synchronous)
        self._db.executescript(SCHEMA)
        self._rollups = Rollups(self._db, raw_retention_days, rollup_1m_retention_days, rollup_1h_retention_days)
        self._ids: dict[str, int] = dict(self._db.execute("SELECT name, id FROM point_ids"))
        self._latest: dict[str, tuple[int, float]] = {}
        self._latest_lock = threading.Lock()
        for name, pid in self._ids.items():
            row = self._db.execute("SELECT ts, value FROM readings WHERE point=? ORDER BY ts DESC LIMIT 1", (pid,)).fetchone()
            row = row or last_rolled(self._db, pid)  # a point silent past the raw retention
            if row:
                self._latest[name] = tuple(row)
        self._local = threading.local()

    def _connect(self, synchronous: str = "NORMAL") -> sqlite3.Connection:
        return connect(self.path, synchronous)

    def _reader(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    def _point_id(self, name: str) -> int:
        pid = self._ids.get(name)
        if pid is None:
            pid = self._db.execute("INSERT INTO point_ids(name) VALUES (?) ON CONFLICT(name) DO UPDATE SET name=name "
                                   "RETURNING id", (name,)).fetchone()[0]
            self._ids[name] = pid
        return pid

    def write(self, readings: list[Reading], rejects: list[Rejected], received_at: float) -> WriteResult:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            result = self._insert(readings, rejects, received_at)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._ids = dict(db.execute("SELECT name, id FROM point_ids"))  # ids made in the rollback are gone
            raise
        with self._latest_lock:
            for r in readings:
                cur = self._latest.get(r.point)
                if cur is None or r.ts_ms >= cur[0]:
                    self._latest[r.point] = (r.ts_ms, r.value)
        return result

    def check(self, readings: list[Reading], rejects: list[Rejected]) -> None:
        """Raises if these could not be written; writes nothing (for finding the one message that cannot)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            self._insert(readings, rejects, 0.0)
        finally:
            db.execute("ROLLBACK")
            self._ids = dict(db.execute("SELECT name, id FROM point_ids"))

    def _insert(self, readings: list[Reading], rejects: list[Rejected], received_at: float) -> WriteResult:
        db = self._db
        rows = [(self._point_id(r.point), r.ts_ms, r.value) for r in readings]
        before = db.total_changes
        db.executemany("INSERT OR IGNORE INTO readings(point, ts, value) VALUES (?,?,?)", rows)
        inserted = db.total_changes - before
        self._rollups.mark_late(rows)
        conflicting: list[Reading] = []
        if inserted < len(rows):  # rare (redelivery): a true copy, or another value for the same instant?
            rejects = list(rejects)
            for r, (pid, ts, value) in zip(readings, rows):
                stored = db.execute("SELECT value FROM readings WHERE point=? AND ts=?", (pid, ts)).fetchone()[0]
                if stored != value:
                    conflicting.append(r)
                    rejects.append(Rejected(Reason.CONFLICTING_DUPLICATE,
                                            f"stored {stored}, received {value} for the same timestamp", "",
                                            json.dumps({"point": r.point, "ts_ms": ts, "value": value}).encode(),
                                            r.point))
        kept: dict[str, int] = {}
        for r in rejects:  # one by one: rare, and each kept rejection is counted under its own reason
            cur = db.execute(
                "INSERT OR IGNORE INTO rejected(received_at, reason, detail, topic, point, payload, digest) "
                "VALUES (?,?,?,?,?,?,?)", (received_at, r.reason.value, r.detail, r.topic, r.point, r.payload, r.digest))
            if cur.rowcount:
                kept[r.reason.value] = kept.get(r.reason.value, 0) + 1
        return WriteResult(inserted, len(readings) - inserted - len(conflicting), kept, conflicting)

    def maintain(self, now_ms: int, budget: int = 200_000) -> bool:
        """Rollups and retention (ingest/rollup.py), from the writer thread; True while work is left."""
        return self._rollups.maintain(now_ms, budget).more

    def maintain_progress(self, now_ms: int, budget: int = 200_000) -> Progress:
        """maintain(), telling what it did (for the benchmark and the tests)."""
        return self._rollups.maintain(now_ms, budget)

    def latest(self) -> dict[str, tuple[int, float]]:
        with self._latest_lock:
            return dict(self._latest)

    def count(self, point: str | None = None) -> int:
        if point is None:
            return self._reader().execute("SELECT count(*) FROM readings").fetchone()[0]
        pid = self._ids.get(point)
        return 0 if pid is None else self._reader().execute(
            "SELECT count(*) FROM readings WHERE point=?", (pid,)).fetchone()[0]

    def history(self, point: str, start_ms: int, end_ms: int, max_points: int = 2000) -> History:
        """Raw readings if at most max_points, else buckets of (ts, min, max, mean, count): from raw over a short
        range, from the minute or hour rollups over a long one (plus the raw tail not rolled up yet)."""
        pid = self._ids.get(point)
        if pid is None:
            return History(point, 0, [])
        db = self._reader()
        db.execute("BEGIN")  # one snapshot: the watermark and the rows it splits must agree
        try:
            bucket_ms, rows = read_history(db, pid, start_ms, end_ms, max_points)
        finally:
            db.execute("COMMIT")
        return History(point, bucket_ms / 1000, rows)

    def readings(self, point: str, start_ms: int = 0, end_ms: int = 2**62) -> list[tuple[int, float]]:
        pid = self._ids.get(point)
        if pid is None:
            return []
        return self._reader().execute("SELECT ts, value FROM readings WHERE point=? AND ts BETWEEN ? AND ? ORDER BY ts",
                                      (pid, start_ms, end_ms)).fetchall()

    def rejected(self, limit: int = 100, reason: str | None = None) -> list[dict]:
        sql = "SELECT id, received_at, reason, detail, topic, point, payload FROM rejected"
        args: tuple = ()
        if reason:
            sql += " WHERE reason=?"
            args = (reason,)
        rows = self._reader().execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [{"id": i, "received_at": t, "reason": r, "detail": d, "topic": tp, "point": p,
                 "payload": bytes(pl).decode("utf-8", "replace")} for i, t, r, d, tp, p, pl in rows]

    def rejected_counts(self) -> dict[str, int]:
        return dict(self._reader().execute("SELECT reason, count(*) FROM rejected GROUP BY reason"))

    def close(self) -> None:
        self._db.close()
