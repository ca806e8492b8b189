"""The durable outbox: every notification decided is a row before anything is sent.

A decision is written once (its `dedup` key is unique: a restart that decides again changes nothing), together
with how far the alert event log has been read, in one transaction. A row is marked `sending` (committed) before
its provider is called and `sent` after: a restart finds every `pending` row still to send, and a row caught in
`sending` is one whose provider call may or may not have gone out. SMS providers are not idempotent, so such a row
is NOT sent again: it becomes `unknown` (counted, shown in health) - unless its channel deduplicates on our key
(the generic webhook's Idempotency-Key), where sending again is safe and it goes back to `pending`.

A message that reached some of its recipients and not others (an SMS provider answers per number) is settled in
one transaction: its row becomes `sent`, with `provider_code` "partial:<code>" and `last_error` saying who did not
get it (masked, as the channel wrote it), and a new row for only those others (dedup "<dedup>~rest<attempt>", same
alert, kind, tier, texts and route) is written pending with its backoff, or failed and handed to the route's next
channel. A crash before that commit leaves the row in `sending` (so `unknown`, never sent again); after it, the new
row is an ordinary row: nobody is sent the message twice and nobody is dropped.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from config.model import Tier
from ingest.sqlite import connect, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY, dedup TEXT NOT NULL UNIQUE, alert_id INTEGER, kind TEXT NOT NULL,
    channel TEXT NOT NULL, recipients TEXT NOT NULL, tier INTEGER NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL,
    params TEXT NOT NULL, created_at REAL NOT NULL, not_before REAL NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, provider_code TEXT, sent_at REAL, merged_into INTEGER,
    route TEXT NOT NULL DEFAULT '[]'  -- the channels still to fall back on, in order
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications(state, not_before);
CREATE TABLE IF NOT EXISTS notify_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
"""


@dataclass
class Note:
    """One notification: a message for some recipients on one channel."""

    dedup: str
    alert_id: int | None
    kind: str  # raised | tier_up | escalated | repeat | cleared | test
    channel: str
    recipients: tuple[str, ...]
    tier: Tier
    title: str
    text: str
    params: dict[str, str]
    not_before: float
    route: tuple[str, ...] = ()  # fallback channels after this one
    id: int | None = None
    state: str = "pending"
    attempts: int = 0
    last_error: str | None = None
    provider_code: str | None = None
    created_at: float | None = None  # when the message was decided (default: not_before); a rest row keeps its own


class Outbox:
    def __init__(self, path: str | Path, synchronous: str = "NORMAL", idempotent_channels: set[str] = frozenset()):
        self._db = connect(path, synchronous)
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()
        self.unknown_after_restart = self._recover(idempotent_channels)

    def _recover(self, idempotent: set[str]) -> int:
        """Rows caught mid-send by a crash: sent again only where the provider deduplicates on our key."""
        with self._lock:
            rows = self._db.execute("SELECT id, channel FROM notifications WHERE state='sending'").fetchall()
            for nid, channel in rows:
                self._db.execute("UPDATE notifications SET state=?, last_error=? WHERE id=?",
                                 ("pending" if channel in idempotent else "unknown",
                                  "riskwatch stopped while this was being sent", nid))
            return sum(1 for _, c in rows if c not in idempotent)

    # --- decisions -------------------------------------------------------------------------------------------
    def cursor(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT seq FROM notify_cursor WHERE id=1").fetchone()
            return row[0] if row else 0

    def decide(self, notes: list[Note], cursor: int | None = None) -> int:
        """Writes the decisions not written before (by dedup key) and, with them, the event-log cursor. Returns
        how many were new."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                new = sum(self._insert(n) for n in notes)
                if cursor is not None:
                    self._db.execute("INSERT INTO notify_cursor(id, seq) VALUES (1, ?) "
                                     "ON CONFLICT(id) DO UPDATE SET seq=excluded.seq", (cursor,))
                self._db.execute("COMMIT")
                return new
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _insert(self, n: Note) -> int:
        """Writes one row as the note stands (state, attempts, error) unless its dedup key exists; inside a
        transaction the caller holds."""
        cur = self._db.execute(
            "INSERT OR IGNORE INTO notifications(dedup, alert_id, kind, channel, recipients, tier, title, text, "
            "params, created_at, not_before, state, route, attempts, last_error, provider_code) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (n.dedup, n.alert_id, n.kind, n.channel, json.dumps(list(n.recipients)), int(n.tier), n.title, n.text,
             json.dumps(n.params, ensure_ascii=False), n.not_before if n.created_at is None else n.created_at,
             n.not_before, n.state, json.dumps(list(n.route)), n.attempts, n.last_error, n.provider_code))
        return cur.rowcount

    def decided(self, prefix: str) -> set[str]:
        """The dedup keys already decided that start with prefix (an alert's escalations, repeats)."""
        with self._lock:
            rows = self._db.execute("SELECT dedup FROM notifications WHERE dedup >= ? AND dedup < ?",
                                    (prefix, prefix + "\uffff")).fetchall()
            return {r[0] for r in rows}

    # --- sending ---------------------------------------------------------------------------------------------
    def due(self, now: float, limit: int = 500) -> list[Note]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, dedup, alert_id, kind, channel, recipients, tier, title, text, params, not_before, route, "
                "state, attempts, last_error, provider_code, created_at FROM notifications "
                "WHERE state='pending' AND not_before <= ? ORDER BY tier DESC, id LIMIT ?", (now, limit)).fetchall()
        return [Note(d, a, k, c, tuple(json.loads(r)), Tier(t), ti, tx, json.loads(p), nb, tuple(json.loads(rt)),
                     i, st, at, le, pc, ca) for i, d, a, k, c, r, t, ti, tx, p, nb, rt, st, at, le, pc, ca in rows]

    def mark_sending(self, ids: list[int]) -> None:
        self._set_many("UPDATE notifications SET state='sending', attempts=attempts+1 WHERE id=?", ids)

    def mark_sent(self, ids: list[int], at: float, code: str) -> None:
        self._set_many("UPDATE notifications SET state='sent', sent_at=?, provider_code=?, last_error=NULL "
                       "WHERE id=?", ids, (at, code))

    def mark_retry(self, ids: list[int], not_before: float, error: str, code: str) -> None:
        self._set_many("UPDATE notifications SET state='pending', not_before=?, last_error=?, provider_code=? "
                       "WHERE id=?", ids, (not_before, error, code))

    def mark_failed(self, ids: list[int], error: str, code: str, fallback: Note | None = None) -> None:
        """Failed for good on this channel; `fallback`, the row for the route's next channel, in the same
        transaction (a crash cannot leave a failed row that nobody takes over)."""
        with self._lock, transaction(self._db):
            self._db.executemany("UPDATE notifications SET state='failed', last_error=?, provider_code=? WHERE id=?",
                                 [(error, code, i) for i in ids])
            if fallback is not None:
                self._insert(fallback)

    def mark_partial(self, nid: int, at: float, code: str, error: str, rest: Note,
                     fallback: Note | None = None) -> None:
        """Row `nid` reached some of its recipients: it is `sent` (code and error say it was partial and who did
        not get it), and `rest`, the others' own row (pending with its backoff, or failed with `fallback` taking it
        on the route's next channel), is written in the same transaction."""
        with self._lock, transaction(self._db):
            self._db.execute("UPDATE notifications SET state='sent', sent_at=?, provider_code=?, last_error=? "
                             "WHERE id=?", (at, code, error, nid))
            self._insert(rest)
            if fallback is not None:
                self._insert(fallback)

    def mark_merged(self, ids: list[int], into: int) -> None:
        self._set_many("UPDATE notifications SET state='merged', merged_into=? WHERE id=?", ids, (into,))

    def _set_many(self, sql: str, ids: list[int], before: tuple = ()) -> None:
        with self._lock, transaction(self._db):
            self._db.executemany(sql, [(*before, i) for i in ids])

    # --- reading ---------------------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("SELECT state, count(*) FROM notifications GROUP BY state").fetchall())

    def undelivered_since(self, since: float) -> int:
        """Rows decided since then that failed on their last channel (no fallback left) or were lost in a crash."""
        with self._lock:
            return self._db.execute("SELECT count(*) FROM notifications WHERE created_at >= ? AND (state='unknown' "
                                    "OR (state='failed' AND route='[]'))", (since,)).fetchone()[0]

    def late(self, now: float, older_than_s: float = 300.0) -> int:
        """Rows still not sent this long after they were decided (a provider down, a channel held)."""
        with self._lock:
            return self._db.execute("SELECT count(*) FROM notifications WHERE state IN ('pending', 'sending') "
                                    "AND created_at < ?", (now - older_than_s,)).fetchone()[0]

    def rows(self, where: str = "", args: tuple = ()) -> list[dict]:
        with self._lock:
            cur = self._db.execute(f"SELECT * FROM notifications {where} ORDER BY id", args)
            names = [c[0] for c in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    def close(self) -> None:
        self._db.close()
