"""Store benchmark: the SQLite writer's sustained rows/s with and without rollup maintenance, and history queries
on a year of 1 Hz data for one point, against the old GROUP BY over raw readings.

writer: N points, each batch one reading per point (1 s of plant time per batch), written through
  SQLiteStore.write three ways side by side, taking turns batch by batch, each on its own file pre-filled with
  `--prefill` batches (untimed: every point has pages of its own, as in a store that has run a while):
  writes only; writes + maintain() every `--maintain-every` batches (60 = once a minute of plant time, its
  normal cadence) with raw kept; the same with a raw retention of `--prefill` batches, so each maintain deletes
  as much as was written (the steady state: every row written, rolled up, deleted). Reported: rows/s including
  maintenance, the ratio to writes only, and how long each maintain() held the writer. Plant time runs ~25x
  faster than real time here, so the ratio is the maintenance cost per row, not a wall-clock cadence.
history: one point, `--days` days at 1 reading/s (365: 31.5M rows, 0.8 GB on disk) generated with executemany in
  day-sized transactions (timed apart), rollups built by maintain() (timed apart), then the median of
  `--repeat` history() calls for 1 year, 1 month, 1 day and 1 hour ending at the last reading (max_points 2000),
  and the same ranges with the old query (count, then GROUP BY over raw), run once for the year.
Both parts use a temporary directory (`--dir`); progress goes to stderr, the results as JSON to stdout.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ingest.payload import Reading
from ingest.rollup import DAY_MS, MINUTE_MS
from ingest.store import SQLiteStore

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC, ms
BYTES_PER_ROW = 26  # a raw row on disk, measured on a generated year (794 MB): for the free-space check
EPILOG = """examples:
  python -m bench.store                                  # both parts: 1,000 points x 600 batches; a year at 1 Hz
  python -m bench.store --part writer --points 1000 --batches 1200
  python -m bench.store --part history --days 30         # a month instead of a year (quicker, less disk)
  python -m bench.store --part history --keep /var/tmp/year.db   # keep the year; later runs reuse it
  python -m bench.store --json bench-store.json
"""


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["writer", "history", "both"], default="both")
    ap.add_argument("--points", type=int, default=1000, help="writer: points (default %(default)s)")
    ap.add_argument("--batches", type=int, default=600, help="writer: timed batches (default %(default)s)")
    ap.add_argument("--maintain-every", type=int, default=60, help="writer: batches between maintain() calls "
                    "(default %(default)s: once a minute of plant time)")
    ap.add_argument("--prefill", type=int, default=600,
                    help="writer: untimed batches first, and the raw retention of the third way (default %(default)s)")
    ap.add_argument("--days", type=float, default=365, help="history: days of 1 Hz data (default %(default)s)")
    ap.add_argument("--repeat", type=int, default=5, help="history: calls per range, median kept (default %(default)s)")
    ap.add_argument("--no-old", action="store_true", help="history: skip the old GROUP BY query")
    ap.add_argument("--keep", help="history: keep the generated database at this path (reused if it exists)")
    ap.add_argument("--dir", help="where temporary databases go (default: the system's temporary directory)")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)

    result: dict = {"sqlite": sqlite3.sqlite_version}
    with tempfile.TemporaryDirectory(prefix="rw-bench-store-", dir=args.dir) as tmp:
        if args.part in ("writer", "both"):
            result["writer"] = writer(Path(tmp), args)
        if args.part in ("history", "both"):
            result["history"] = history(Path(tmp), args)
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


# --- writer -----------------------------------------------------------------------------------------------
def writer(tmp: Path, args) -> dict:
    names = [f"bench.p{i:05d}" for i in range(args.points)]
    rnd = np.random.default_rng(1)
    warm = args.prefill
    batches = [[Reading(p, T0 + b * 1000, v) for p, v in zip(names, (20 + rnd.normal(0, 1, len(names))).tolist())]
               for b in range(warm + args.batches)]
    rows = args.points * args.batches
    retention_days = warm * 1000 / DAY_MS
    ways = {"writes only": (False, None), "writes + rollups": (True, None),
            "writes + rollups + retention": (True, retention_days)}
    say(f"writer: {args.points:,} points, {args.batches} timed batches ({rows:,} rows), maintain every "
        f"{args.maintain_every} batches, {warm} batches pre-filled (and kept by the retention way)")
    stores = {}
    for i, (way, (maintain, keep)) in enumerate(ways.items()):
        store = stores[way] = SQLiteStore(tmp / f"writer-{i}.db", raw_retention_days=keep,
                                          rollup_1m_retention_days=None)
        for j in range(0, warm, 60):  # not timed, in big transactions: a store that has run for a while
            store.write([r for b in batches[j:min(j + 60, warm)] for r in b], [], 0.0)
        while maintain and store.maintain(T0 + warm * 1000, budget=10**9):
            pass
    writing = {w: 0.0 for w in ways}
    held: dict[str, list[float]] = {w: [] for w in ways}
    deleted = {w: 0 for w in ways}
    # the ways take turns batch by batch: whatever else loads this machine weighs on each alike
    for k, b in enumerate(batches[warm:], warm + 1):
        for way, (maintain, _) in ways.items():
            t = time.perf_counter()
            stores[way].write(b, [], 0.0)
            writing[way] += time.perf_counter() - t
            if maintain and k % args.maintain_every == 0:
                t = time.perf_counter()
                deleted[way] += stores[way].maintain_progress(T0 + k * 1000).deleted
                held[way].append(time.perf_counter() - t)
        if (k - warm) % 100 == 0:
            say(f"  {k - warm} of {args.batches} batches")
    out = {"points": args.points, "batches": args.batches, "rows": rows, "maintain_every_batches": args.maintain_every,
           "prefill_batches": warm}
    base = rows / writing["writes only"]
    for way, (maintain, _) in ways.items():
        stores[way].close()
        total = writing[way] + sum(held[way])
        out[way] = {"rows_per_s": round(rows / total), "vs_writes_only": round(rows / total / base, 3),
                    "write_s": round(writing[way], 2)}
        if maintain:
            out[way].update(maintain_s=round(sum(held[way]), 2), maintain_share=round(sum(held[way]) / total, 3),
                            maintain_calls=len(held[way]), maintain_ms_mean=round(1000 * statistics.mean(held[way]), 1),
                            maintain_ms_max=round(1000 * max(held[way]), 1), deleted=deleted[way])
        say(f"  {way}: {out[way]['rows_per_s']:,} rows/s ({out[way]['vs_writes_only']}x writes only)")
    return out


# --- history ----------------------------------------------------------------------------------------------
POINT = "bench.year"


def history(tmp: Path, args) -> dict:
    rows = int(args.days * 86_400)
    path = Path(args.keep) if args.keep else tmp / "year.db"
    out: dict = {"days": args.days, "rows": rows}
    if not path.exists():
        need = rows * BYTES_PER_ROW * 1.3  # the file, and the WAL of one day's transaction
        free = shutil.disk_usage(path.parent).free
        say(f"history: {rows:,} rows, about {need / 1e9:.1f} GB needed, {free / 1e9:.1f} GB free in {path.parent}")
        if free < need:
            raise SystemExit(f"not enough disk for {args.days} days: try --days {int(args.days * free / need)} "
                             "or --dir elsewhere")
        out["generate_s"], out["rollup_build_s"] = _generate(path, rows)
    else:
        say(f"history: reusing {path}")
    out["db_bytes"] = path.stat().st_size
    end = T0 + rows * 1000 - 1
    store = SQLiteStore(path, raw_retention_days=None, rollup_1m_retention_days=None)
    old = sqlite3.connect(path)
    ranges = {"1 year": 365 * DAY_MS, "1 month": 30 * DAY_MS, "1 day": DAY_MS, "1 hour": 3_600_000}
    out["queries"] = {}
    for name, span in ranges.items():
        start = max(T0, end + 1 - span)
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            h = store.history(POINT, start, end, 2000)
            times.append(time.perf_counter() - t)
        q = {"ms": round(1000 * statistics.median(times), 2), "first_ms": round(1000 * times[0], 2),
             "bucket_s": h.bucket_s, "rows": len(h.rows), "readings_covered": sum(r[4] for r in h.rows)
             if h.bucket_s else len(h.rows)}
        if not args.no_old:
            n = 1 if span > 30 * DAY_MS else args.repeat
            olds = []
            for _ in range(n):
                t = time.perf_counter()
                bucket_s, old_rows = _old_history(old, start, end, 2000)
                olds.append(time.perf_counter() - t)
            q.update(old_ms=round(1000 * statistics.median(olds), 2), old_bucket_s=bucket_s, old_rows=len(old_rows),
                     speedup=round(statistics.median(olds) / statistics.median(times), 1))
        out["queries"][name] = q
        say(f"  {name}: {q['ms']} ms ({q['rows']} rows, bucket {q['bucket_s']} s)"
            + (f"; old GROUP BY {q['old_ms']} ms" if "old_ms" in q else ""))
    store.close()
    old.close()
    return out


def _generate(path: Path, rows: int) -> tuple[float, float]:
    """A slow-moving process value with noise; one executemany per day, one transaction each."""
    store = SQLiteStore(path, raw_retention_days=None, rollup_1m_retention_days=None)
    store.write([Reading(POINT, T0, 20.0)], [], 0.0)  # registers the point the usual way
    pid = store._ids[POINT]
    store.close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")  # a benchmark fixture: the file is thrown away if this crashes
    rnd = np.random.default_rng(7)
    started = time.perf_counter()
    day = 86_400
    for d0 in range(1, rows, day):
        ts = np.arange(d0, min(d0 + day, rows), dtype=np.int64)
        values = 20 + 5 * np.sin(ts * (2 * np.pi / 86_400)) + rnd.normal(0, 0.3, len(ts))
        db.execute("BEGIN")
        db.executemany("INSERT INTO readings(point, ts, value) VALUES (?, ?, ?)",
                       zip([pid] * len(ts), (T0 + ts * 1000).tolist(), values.round(3).tolist()))
        db.execute("COMMIT")
        if (d0 // day) % 30 == 0:
            say(f"  generated {d0 // day} of {rows // day} days")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    generate_s = time.perf_counter() - started
    say(f"  generated {rows:,} rows in {generate_s:.1f} s; building rollups")
    store = SQLiteStore(path, raw_retention_days=None, rollup_1m_retention_days=None)
    started = time.perf_counter()
    while store.maintain(T0 + rows * 1000 + MINUTE_MS, budget=10**9):
        pass
    build_s = time.perf_counter() - started
    store.close()
    say(f"  rollups built in {build_s:.1f} s")
    return round(generate_s, 1), round(build_s, 1)


def _old_history(db: sqlite3.Connection, start: int, end: int, max_points: int) -> tuple[float, list]:
    """The history query before rollups (a count, then GROUP BY over every raw reading in the range)."""
    pid = db.execute("SELECT id FROM point_ids WHERE name=?", (POINT,)).fetchone()[0]
    n = db.execute("SELECT count(*) FROM readings WHERE point=? AND ts BETWEEN ? AND ?",
                   (pid, start, end)).fetchone()[0]
    if n <= max_points:
        return 0, db.execute("SELECT ts / 1000.0, value FROM readings WHERE point=? AND ts BETWEEN ? AND ? ORDER BY ts",
                             (pid, start, end)).fetchall()
    bucket_ms = -(-(end - start + 1) // max_points)
    rows = db.execute("SELECT (ts - ?1) / ?2 AS b, min(value), max(value), avg(value), count(*) FROM readings "
                      "WHERE point=?3 AND ts BETWEEN ?1 AND ?4 GROUP BY b ORDER BY b",
                      (start, bucket_ms, pid, end)).fetchall()
    return bucket_ms / 1000, rows


if __name__ == "__main__":
    sys.exit(main())
