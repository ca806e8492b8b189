"""Per-minute and per-hour rollups of the readings, retention, and history at the resolution a range needs.

A persisted watermark W splits time: every minute before W is rolled up into `rollup_1m` (and its hour into
`rollup_1h`); readings from W on are read raw. A reading that arrives older than W marks its (point, minute)
dirty in the same transaction that stores it, and the next maintain() rolls that minute (and its hour) again.
Raw readings, then minutes, then hours are deleted past their retention, never beyond what is rolled up.
Every step is one short transaction that also moves its watermark or floor: a crash leaves consistent data and
the next maintain() carries on. Alerts, events and anything else in the database are never touched here.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
ROLL_LAG_MS = 60_000  # a minute is rolled a minute after it ends: a slightly late reading is no re-roll
TX_ROWS = 50_000  # rows read or deleted per transaction, so the WAL and a crash's loss stay small

SCHEMA = """
CREATE TABLE IF NOT EXISTS rollup_1m (
    point INTEGER NOT NULL, bucket INTEGER NOT NULL, min_v REAL NOT NULL, max_v REAL NOT NULL,
    sum_v REAL NOT NULL, n INTEGER NOT NULL, last_ts INTEGER NOT NULL, last_v REAL NOT NULL,
    PRIMARY KEY (point, bucket)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_1h (
    point INTEGER NOT NULL, bucket INTEGER NOT NULL, min_v REAL NOT NULL, max_v REAL NOT NULL,
    sum_v REAL NOT NULL, n INTEGER NOT NULL, last_ts INTEGER NOT NULL, last_v REAL NOT NULL,
    PRIMARY KEY (point, bucket)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_dirty (point INTEGER NOT NULL, minute INTEGER NOT NULL,
    PRIMARY KEY (point, minute)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_state (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""
# rollup_state: watermark (minutes before it are rolled up); raw_floor, rollup_1m_floor, rollup_1h_floor (rows
# before them have been deleted; 0 = nothing deleted yet)

COLUMNS = "point, bucket, min_v, max_v, sum_v, n, last_ts, last_v"
# one aggregate per (point, slot of `size` ms), from raw readings or from minutes; `src` is a FROM clause
# (not named `bucket`: GROUP BY would take the minute table's own column of that name)
RAW_AGG = ("SELECT r.point AS point, r.ts - r.ts % {size} AS slot, min(r.value) AS lo, max(r.value) AS hi, "
           "sum(r.value) AS s, count(*) AS n, max(r.ts) AS lt FROM {src} GROUP BY r.point, slot")
RAW_LAST = "JOIN readings l ON l.point = g.point AND l.ts = g.lt", "l.value"
MIN_AGG = ("SELECT r.point AS point, r.bucket - r.bucket % {size} AS slot, min(r.min_v) AS lo, max(r.max_v) AS hi, "
           "sum(r.sum_v) AS s, sum(r.n) AS n, max(r.last_ts) AS lt FROM {src} GROUP BY r.point, slot")
MIN_LAST = f"JOIN rollup_1m l ON l.point = g.point AND l.bucket = g.lt - g.lt % {MINUTE_MS}", "l.last_v"
ALL_POINTS = "{table} r WHERE r.point IN (SELECT id FROM point_ids) AND r.{col} >= :a AND r.{col} < :b"
ONE_POINT = "{table} r WHERE r.point = :pid AND r.{col} >= :a AND r.{col} < :b"
MERGE = (" ON CONFLICT(point, bucket) DO UPDATE SET min_v = min(min_v, excluded.min_v), "
         "max_v = max(max_v, excluded.max_v), sum_v = sum_v + excluded.sum_v, n = n + excluded.n, "
         "last_v = CASE WHEN excluded.last_ts >= last_ts THEN excluded.last_v ELSE last_v END, "
         "last_ts = max(last_ts, excluded.last_ts)")


def _upsert(dst: str, from_raw: bool, size: int, src: str, merge: bool) -> str:
    """INSERT of aggregates into dst: replacing what is there, or merged into it (for data it has not seen)."""
    agg, (join, last) = (RAW_AGG, RAW_LAST) if from_raw else (MIN_AGG, MIN_LAST)
    select = (f"SELECT g.point, g.slot, g.lo, g.hi, g.s, g.n, g.lt, {last} "
              f"FROM ({agg.format(size=size, src=src)}) g {join}")
    if merge:
        return f"INSERT INTO {dst}({COLUMNS}) {select} WHERE true" + MERGE  # (WHERE: so ON is not read as a join's)
    return f"INSERT OR REPLACE INTO {dst}({COLUMNS}) {select}"


def _src(table: str, one_point: bool) -> str:
    return (ONE_POINT if one_point else ALL_POINTS).format(table=table, col="ts" if table == "readings" else "bucket")


ROLL_MINUTES = _upsert("rollup_1m", True, MINUTE_MS, _src("readings", False), merge=False)
MERGE_HOURS = _upsert("rollup_1h", False, HOUR_MS, _src("rollup_1m", False), merge=True)
REROLL_MINUTE = _upsert("rollup_1m", True, MINUTE_MS, _src("readings", True), merge=False)
REROLL_HOUR = _upsert("rollup_1h", False, HOUR_MS, _src("rollup_1m", True), merge=False)
LATE_INTO_MINUTE = _upsert("rollup_1m", True, MINUTE_MS, _src("readings", True), merge=True)
LATE_INTO_HOUR = _upsert("rollup_1h", True, HOUR_MS, _src("readings", True), merge=True)
FLOORS = {"readings": ("raw_floor", "ts", MINUTE_MS), "rollup_1m": ("rollup_1m_floor", "bucket", HOUR_MS),
          "rollup_1h": ("rollup_1h_floor", "bucket", HOUR_MS)}


def _days_ms(days: float | None) -> int | None:
    return None if days is None else int(days * DAY_MS)


@dataclass(slots=True)
class Progress:
    """What one maintain() call did; `more` means it stopped on its budget with work left."""

    rolled: int = 0  # raw readings rolled into minutes
    rerolled: int = 0  # dirty minutes rolled again
    deleted: int = 0  # raw readings and rollup rows deleted past their retention
    more: bool = False


class Rollups:
    """Maintains the rollups on the writer's connection; called only from the writer thread."""

    def __init__(self, db: sqlite3.Connection, raw_retention_days: float | None = 180,
                 rollup_1m_retention_days: float | None = 730, rollup_1h_retention_days: float | None = None):
        self.db = db
        self.keep = {"readings": _days_ms(raw_retention_days), "rollup_1m": _days_ms(rollup_1m_retention_days),
                     "rollup_1h": _days_ms(rollup_1h_retention_days)}
        db.executescript(SCHEMA)
        self._span = {"roll": MINUTE_MS, "readings": MINUTE_MS, "rollup_1m": HOUR_MS, "rollup_1h": HOUR_MS}
        self._load()

    def _load(self) -> None:
        state = dict(self.db.execute("SELECT name, value FROM rollup_state"))
        self.watermark = state.get("watermark", 0)
        self.floor = {t: state.get(key, 0) for t, (key, _, _) in FLOORS.items()}

    def _set(self, name: str, value: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO rollup_state(name, value) VALUES (?, ?)", (name, value))

    def _tx(self, step, *args) -> int:
        """Runs one step in its own transaction; a failure rolls it back whole and reloads the persisted state."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self._load()  # under the write lock: another maintainer of this file cannot make a minute count twice
            done = step(*args)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            self._load()
            raise
        return done

    # --- the write path -------------------------------------------------------------------------------------
    def mark_late(self, rows: list[tuple[int, int, float]]) -> None:
        """Inside the write's transaction: readings older than the watermark make their minute dirty."""
        wm = self.watermark
        late = {(pid, ts - ts % MINUTE_MS) for pid, ts, _ in rows if ts < wm}
        if late:
            self.db.executemany("INSERT OR IGNORE INTO rollup_dirty(point, minute) VALUES (?, ?)", late)

    # --- maintenance ----------------------------------------------------------------------------------------
    def maintain(self, now_ms: int, budget: int = 200_000) -> Progress:
        """Rolls up complete minutes, rolls dirty minutes again, deletes what is past retention: at most about
        `budget` rows read or deleted, in transactions of at most TX_ROWS. Idempotent; call it again while
        `more`."""
        p = Progress()
        target = (now_ms - ROLL_LAG_MS) // MINUTE_MS * MINUTE_MS
        while self.watermark < target and p.rolled < budget:
            p.rolled += self._tx(self._roll_forward, target, min(TX_ROWS, budget - p.rolled))
        spent = p.rolled
        while spent < budget:
            minutes, cost = self._tx(self._reroll_dirty, 500)
            if not minutes:
                break
            p.rerolled += minutes
            spent += cost
        for table in FLOORS:
            cutoff = self._cutoff(table, now_ms)
            while self.floor[table] < cutoff and spent + p.deleted < budget:
                p.deleted += self._tx(self._expire, table, cutoff, min(TX_ROWS, budget - spent - p.deleted))
        p.more = (self.watermark < target or spent + p.deleted >= budget
                  or any(self.floor[t] < self._cutoff(t, now_ms) for t in FLOORS))
        return p

    def _first_at_or_after(self, table: str, col: str, t: int) -> int | None:
        """The earliest row at or after t over all points: one index seek per point, never a table scan."""
        return self.db.execute(f"SELECT min((SELECT min({col}) FROM {table} WHERE point = p.id AND {col} >= ?)) "
                               "FROM point_ids p", (t,)).fetchone()[0]

    def _adapt(self, key: str, rows: int, want: int, unit: int) -> None:
        """Next span: doubled while a step finds few rows, halved when it found too many."""
        span = self._span[key]
        if rows < want // 2:
            self._span[key] = min(span * 2, DAY_MS)
        elif rows > want:
            self._span[key] = max(unit, span // 2 // unit * unit)

    def _roll_forward(self, target: int, want: int) -> int:
        first = self._first_at_or_after("readings", "ts", self.watermark)
        if first is None or first >= target:  # nothing stored in between: the watermark jumps
            self._set("watermark", target)
            self.watermark = target
            return 1
        a = max(self.watermark, first - first % MINUTE_MS)  # skip a silence (a shutdown) in one step
        b = min(target, a + self._span["roll"])
        self.db.execute(ROLL_MINUTES, {"a": a, "b": b})
        self.db.execute(MERGE_HOURS, {"a": a, "b": b})  # these minutes are new to their hours: merged in
        rows = self.db.execute("SELECT total(r.n) FROM " + _src("rollup_1m", False), {"a": a, "b": b}).fetchone()[0]
        self._set("watermark", b)
        self.watermark = b
        self._adapt("roll", int(rows), want, MINUTE_MS)
        return int(rows) + 1

    def _reroll_dirty(self, limit: int) -> tuple[int, int]:
        dirty = self.db.execute("SELECT point, minute FROM rollup_dirty ORDER BY point, minute LIMIT ?",
                                (limit,)).fetchall()
        raw_floor, m1_floor, h1_floor = self.floor["readings"], self.floor["rollup_1m"], self.floor["rollup_1h"]
        hours = set()
        for pid, m in dirty:
            args = {"pid": pid, "a": m, "b": m + MINUTE_MS}
            if m >= raw_floor:  # all of the minute's readings are here: roll it again from scratch
                self.db.execute("DELETE FROM rollup_1m WHERE point = ? AND bucket = ?", (pid, m))
                self.db.execute(REROLL_MINUTE, args)
                hours.add((pid, m - m % HOUR_MS))
            else:  # its older readings are deleted: only the late ones are here, merged into what is kept
                if m >= m1_floor:
                    self.db.execute(LATE_INTO_MINUTE, args)
                if m - m % HOUR_MS >= h1_floor:
                    self.db.execute(LATE_INTO_HOUR, args)
                self.db.execute("DELETE FROM readings WHERE point = :pid AND ts >= :a AND ts < :b", args)
        for pid, h in hours:  # every minute of these hours is kept (m1 retention stops at the raw floor's hour)
            self.db.execute("DELETE FROM rollup_1h WHERE point = ? AND bucket = ?", (pid, h))
            self.db.execute(REROLL_HOUR, {"pid": pid, "a": h, "b": h + HOUR_MS})
        self.db.executemany("DELETE FROM rollup_dirty WHERE point = ? AND minute = ?", dirty)
        return len(dirty), 60 * (len(dirty) + len(hours))  # (about the rows read: a minute at 1 Hz, an hour's minutes)

    def _cutoff(self, table: str, now_ms: int) -> int:
        """Delete before this: past retention, and never what a coarser level has not taken in yet."""
        keep = self.keep[table]
        if keep is None:
            return 0
        unit = FLOORS[table][2]
        cutoff = (now_ms - keep) // unit * unit
        if table == "readings":
            oldest_dirty = self.db.execute("SELECT min(minute) FROM rollup_dirty").fetchone()[0]
            return min(cutoff, self.watermark, cutoff if oldest_dirty is None else oldest_dirty)
        finer = self.floor["readings" if table == "rollup_1m" else "rollup_1m"]
        return min(cutoff, finer - finer % HOUR_MS)  # (a finer level kept forever keeps this one too)

    def _expire(self, table: str, cutoff: int, want: int) -> int:
        key, col, unit = FLOORS[table]
        first = self._first_at_or_after(table, col, self.floor[table])
        a = cutoff if first is None else max(self.floor[table], first - first % unit)
        b = min(cutoff, a + self._span[table])
        deleted = self.db.execute(f"DELETE FROM {table} WHERE point IN (SELECT id FROM point_ids) AND {col} >= ? "
                                  f"AND {col} < ?", (a, b)).rowcount if a < b else 0
        self._set(key, b)
        self.floor[table] = b
        self._adapt(table, deleted, want, unit)
        return deleted + 1


# --- history ----------------------------------------------------------------------------------------------
def read_history(db: sqlite3.Connection, pid: int, start: int, end: int, max_points: int
                 ) -> tuple[int, list[tuple]]:
    """(bucket ms, rows) for one point; call inside one read transaction so state and rows agree.
    Raw if few enough; raw buckets of the exact width over a short range; else whole minutes (or hours),
    grouped k at a time, plus the tail not rolled up yet read raw."""
    state = dict(db.execute("SELECT name, value FROM rollup_state"))
    wm, raw_floor = state.get("watermark", 0), state.get("raw_floor", 0)
    raw_whole = start >= raw_floor
    if raw_whole:
        n = db.execute("SELECT count(*) FROM (SELECT 1 FROM readings WHERE point=? AND ts BETWEEN ? AND ? LIMIT ?)",
                       (pid, start, end, max_points + 1)).fetchone()[0]
        if n <= max_points:
            return 0, db.execute("SELECT ts / 1000.0, value FROM readings WHERE point=? AND ts BETWEEN ? AND ? "
                                 "ORDER BY ts", (pid, start, end)).fetchall()
    span = end - start + 1
    want = -(-span // max_points)
    # raw buckets where whole minutes would halve the chart's detail (a range under max_points / 2 minutes, so
    # a bounded read), or where nothing is rolled up yet
    if raw_whole and (span < max_points // 2 * MINUTE_MS or wm <= start):
        rows = db.execute(
            "SELECT (ts - ?1) / ?2 AS b, min(value), max(value), avg(value), count(*) FROM readings "
            "WHERE point=?3 AND ts BETWEEN ?1 AND ?4 GROUP BY b ORDER BY b", (start, want, pid, end)).fetchall()
        return want, [((start + b * want) / 1000, lo, hi, mean, c) for b, lo, hi, mean, c in rows]
    if -(-want // MINUTE_MS) < 60 and start >= state.get("rollup_1m_floor", 0):
        size, table = MINUTE_MS, "rollup_1m"
    else:
        size, table = HOUR_MS, "rollup_1h"
    k = -(-want // size)
    while end // (k * size) - start // (k * size) + 1 > max_points:
        k += 1
    width = k * size
    origin = start - start % width  # buckets on a fixed grid: a chart that scrolls keeps its buckets
    acc: dict[int, list] = {}
    for b, lo, hi, s, c in db.execute(
            f"SELECT (bucket - ?1) / ?2 AS b, min(min_v), max(max_v), sum(sum_v), sum(n) FROM {table} "
            "WHERE point=?3 AND bucket >= ?1 AND bucket <= ?4 AND bucket < ?5 GROUP BY b",
            (origin, width, pid, end, wm)):
        acc[b] = [lo, hi, s, c]
    if wm <= end:
        for b, lo, hi, s, c in db.execute(
                "SELECT (ts - ?1) / ?2 AS b, min(value), max(value), sum(value), count(*) FROM readings "
                "WHERE point=?3 AND ts >= ?4 AND ts <= ?5 GROUP BY b", (origin, width, pid, max(wm, origin), end)):
            cur = acc.get(b)
            acc[b] = [lo, hi, s, c] if cur is None else [min(cur[0], lo), max(cur[1], hi), cur[2] + s, cur[3] + c]
    return width, [((origin + b * width) / 1000, lo, hi, s / c, c) for b, (lo, hi, s, c) in sorted(acc.items())]


def last_rolled(db: sqlite3.Connection, pid: int) -> tuple[int, float] | None:
    """A point's last reading from the rollups, once its raw readings have expired."""
    for table in ("rollup_1m", "rollup_1h"):
        row = db.execute(f"SELECT last_ts, last_v FROM {table} WHERE point=? ORDER BY bucket DESC LIMIT 1",
                         (pid,)).fetchone()
        if row:
            return row
    return None
