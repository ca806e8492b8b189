"""The uplink's durable queue: every batch for the platform is a row before anything is sent.

A batch is the platform records of one kind (`readings` or `events`) for one platform gateway, keyed by
(kind, gateway, ts): for readings `ts` is the sampling instant (a part number follows when a gateway's points
fill more than one request), for events the first event's time and its seq in the alert event log (two alarm
changes may share a second). Building a batch again (the same slot after a restart, an event read twice) writes
nothing, so a replay after an outage is idempotent by timestamp on our side; the platform's side is idempotent
by (point, ts) as well, which covers the one duplicate at-least-once allows: a batch the platform took whose
answer never came is sent again.

With the batches, in the same transaction, go how far the alert event log has been read (`cursor`, like the
notification outbox), the last sampling instants built, and what the platform was last told about each alert
(its level), so a restart neither loses nor repeats a batch, an alarm or a return to normal.

States: pending (to send; `next_try` after a failed attempt), sent, failed (rejected by the platform for good:
kept with its reply, shown in health, `requeue_failed()` sends them again after a mapping is fixed).
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from ingest.sqlite import connect, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS uplink_batches (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, gateway TEXT NOT NULL, ts TEXT NOT NULL,
    records TEXT NOT NULL, n INTEGER NOT NULL, created_at REAL NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL, sent_at REAL, last_error TEXT, reply_code TEXT,
    UNIQUE (kind, gateway, ts)
);
CREATE INDEX IF NOT EXISTS uplink_batches_lane ON uplink_batches(state, gateway, kind, id);
CREATE TABLE IF NOT EXISTS uplink_state (name TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS uplink_alarms (
    alert_id INTEGER PRIMARY KEY, point TEXT NOT NULL, rule TEXT NOT NULL, level INTEGER NOT NULL,
    tier INTEGER NOT NULL
);
"""


@dataclass
class Batch:
    kind: str               # readings | events
    gateway: str            # the platform gateway code
    ts: str                 # the dedup key's time part (see the module docstring)
    records: list[dict]     # platform records, as the format built them
    created_at: float
    id: int | None = None
    state: str = "pending"
    attempts: int = 0
    next_try: float = 0.0
    last_error: str | None = None


@dataclass(frozen=True)
class Told:
    """What the platform was last told about one alert."""

    point: str
    rule: str
    level: int
    tier: int


class UplinkQueue:
    def __init__(self, path: str | Path, synchronous: str = "NORMAL"):
        self._db = connect(path, synchronous)
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()

    # --- filling ---------------------------------------------------------------------------------------------
    def state(self) -> dict[str, float]:
        with self._lock:
            return dict(self._db.execute("SELECT name, value FROM uplink_state").fetchall())

    def told(self) -> dict[int, Told]:
        with self._lock:
            rows = self._db.execute("SELECT alert_id, point, rule, level, tier FROM uplink_alarms").fetchall()
        return {a: Told(p, r, lv, t) for a, p, r, lv, t in rows}

    def commit(self, batches: list[Batch], state: dict[str, float] | None = None,
               told: dict[int, Told | None] | None = None) -> int:
        """Writes the batches not written before (by key), the state and what the platform is told, in one
        transaction. Returns how many batches were new."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                new = 0
                for b in batches:
                    cur = self._db.execute(
                        "INSERT OR IGNORE INTO uplink_batches(kind, gateway, ts, records, n, created_at, next_try) "
                        "VALUES (?,?,?,?,?,?,?)", (b.kind, b.gateway, b.ts, json.dumps(b.records, ensure_ascii=False),
                                                   len(b.records), b.created_at, b.created_at))
                    new += cur.rowcount
                for name, value in (state or {}).items():
                    self._db.execute("INSERT INTO uplink_state(name, value) VALUES (?, ?) "
                                     "ON CONFLICT(name) DO UPDATE SET value=excluded.value", (name, value))
                for alert_id, t in (told or {}).items():
                    if t is None:
                        self._db.execute("DELETE FROM uplink_alarms WHERE alert_id=?", (alert_id,))
                    else:
                        self._db.execute("INSERT OR REPLACE INTO uplink_alarms(alert_id, point, rule, level, tier) "
                                         "VALUES (?,?,?,?,?)", (alert_id, t.point, t.rule, t.level, t.tier))
                self._db.execute("COMMIT")
                return new
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # --- draining --------------------------------------------------------------------------------------------
    def lanes(self) -> list[tuple[str, str]]:
        """(gateway, kind) with batches pending, events first: an alarm never waits behind a readings backlog."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT gateway, kind FROM uplink_batches WHERE state='pending'").fetchall()
        return sorted(rows, key=lambda r: (r[1] != "events", r[0]))

    def pending(self, gateway: str, kind: str, limit: int = 2000) -> list[Batch]:
        """One lane's pending batches in the order they were made."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, ts, records, created_at, attempts, next_try, last_error FROM uplink_batches "
                "WHERE state='pending' AND gateway=? AND kind=? ORDER BY id LIMIT ?", (gateway, kind, limit)).fetchall()
        return [Batch(kind, gateway, ts, json.loads(r), c, i, "pending", a, nt, e) for i, ts, r, c, a, nt, e in rows]

    def mark_sent(self, ids: list[int], at: float, code: str) -> None:
        self._set_many("UPDATE uplink_batches SET state='sent', attempts=attempts+1, sent_at=?, reply_code=?, "
                       "last_error=NULL WHERE id=?", ids, (at, code))

    def mark_retry(self, ids: list[int], next_try: float, error: str, code: str) -> None:
        self._set_many("UPDATE uplink_batches SET attempts=attempts+1, next_try=?, last_error=?, reply_code=? "
                       "WHERE id=?", ids, (next_try, error, code))

    def mark_failed(self, ids: list[int], error: str, code: str) -> None:
        self._set_many("UPDATE uplink_batches SET state='failed', attempts=attempts+1, last_error=?, reply_code=? "
                       "WHERE id=?", ids, (error, code))

    def requeue_failed(self, now: float) -> int:
        """Batches the platform rejected go again (after their mapping or the platform was fixed)."""
        with self._lock:
            return self._db.execute("UPDATE uplink_batches SET state='pending', next_try=? WHERE state='failed'",
                                    (now,)).rowcount

    def prune(self, sent_before: float) -> int:
        """Sent batches are kept a while for inspection, then dropped (the readings stay in the store)."""
        with self._lock:
            return self._db.execute("DELETE FROM uplink_batches WHERE state='sent' AND sent_at < ?",
                                    (sent_before,)).rowcount

    def _set_many(self, sql: str, ids: list[int], before: tuple = ()) -> None:
        with self._lock, transaction(self._db):
            self._db.executemany(sql, [(*before, i) for i in ids])

    # --- reading ---------------------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("SELECT state, count(*) FROM uplink_batches GROUP BY state").fetchall())

    def oldest_pending(self) -> float | None:
        with self._lock:
            return self._db.execute("SELECT min(created_at) FROM uplink_batches WHERE state='pending'").fetchone()[0]

    def rows(self, where: str = "", args: tuple = ()) -> list[dict]:
        with self._lock:
            cur = self._db.execute(f"SELECT * FROM uplink_batches {where} ORDER BY id", args)
            names = [c[0] for c in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    def close(self) -> None:
        self._db.close()
