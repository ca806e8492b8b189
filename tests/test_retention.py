"""Retention and rollups in the embedded store: minutes and hours summarise exactly what was measured (late
back-fills included), raw readings expire while history still answers from the rollups, alerts are never
touched, a crash mid-maintenance leaves consistent data. Real SQLite files, explicit timestamps, no clock."""
from __future__ import annotations

import asyncio
import random
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from pydantic import ValidationError

from alerting.book import AlertBook
from config.load import DEMO, load_plant
from config.model import StoreConfig, Tier
from detectors.finding import Finding
from ingest import rollup
from ingest.payload import Reading
from ingest.store import SQLiteStore
from riskwatch.pipeline import Pipeline

T0 = 1_794_999_600_000  # ms, on an hour boundary
MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
HOPPER, INLET = "dust1.hopper_t", "dust1.inlet_t"
LAG = rollup.ROLL_LAG_MS  # a minute is rolled up this long after it ends


def readings(point: str, start_ms: int, end_ms: int, every_ms: int, seed: int = 1, base: float = 40.0):
    rnd = random.Random(seed)
    return [Reading(point, ts, round(base + rnd.gauss(0, 2), 3)) for ts in range(start_ms, end_ms, every_ms)]


def write(store: SQLiteStore, rows: list[Reading], batch: int = 5_000) -> None:
    for i in range(0, len(rows), batch):
        store.write(rows[i:i + batch], [], 0.0)


def maintain_fully(store: SQLiteStore, now_ms: int, budget: int = 1_000_000) -> int:
    calls = 1
    while store.maintain(now_ms, budget):
        calls += 1
        assert calls < 10_000, "maintenance does not converge"
    return calls


def brute_force(rows: list[tuple[int, float]], size: int, before: int) -> dict[int, tuple]:
    """(min, max, sum, count, last ts, last) per bucket, straight from the readings."""
    out: dict[int, list] = {}
    for ts, v in sorted(rows):
        if ts >= before:
            continue
        b = ts - ts % size
        cur = out.get(b)
        out[b] = [v, v, v, 1, ts, v] if cur is None else [min(cur[0], v), max(cur[1], v), cur[2] + v, cur[3] + 1, ts, v]
    return {b: tuple(x) for b, x in out.items()}


def stored(path, table: str, pid_of: str) -> dict[int, tuple]:
    db = sqlite3.connect(path)
    rows = db.execute(f"SELECT bucket, min_v, max_v, sum_v, n, last_ts, last_v FROM {table} r "
                      "JOIN point_ids p ON p.id = r.point WHERE p.name = ?", (pid_of,)).fetchall()
    db.close()
    return {b: rest for b, *rest in rows}


def assert_same(got: dict[int, tuple], want: dict[int, tuple]) -> None:
    assert got.keys() == want.keys()
    for b, (lo, hi, s, n, lt, lv) in want.items():
        g = got[b]
        assert (g[0], g[1], g[3], g[4], g[5]) == (lo, hi, n, lt, lv), b
        assert g[2] == pytest.approx(s), b


def test_minute_and_hour_rollups_match_the_readings_even_after_a_gateway_back_fills_a_gap(tmp_path):
    path = tmp_path / "rw.db"
    store = SQLiteStore(path)
    hopper = readings(HOPPER, T0, T0 + 3 * HOUR, 5_000, seed=1)
    inlet = readings(INLET, T0, T0 + 3 * HOUR, 7_000, seed=2, base=25.0)
    gap = [r for r in hopper if T0 + 60 * MIN <= r.ts_ms < T0 + 80 * MIN]  # the gateway lost its uplink
    write(store, [r for r in hopper if r not in gap] + inlet)
    maintain_fully(store, T0 + 3 * HOUR + LAG)
    wm = store._rollups.watermark
    assert wm == T0 + 3 * HOUR
    # back on line, the gateway sends what it buffered, and one reading that extends a rolled minute's maximum
    late = [Reading(HOPPER, T0 + 30 * MIN + 59_999, 99.5)]
    write(store, gap + late)
    maintain_fully(store, T0 + 3 * HOUR + LAG)
    for point in (HOPPER, INLET):
        raw = store.readings(point)
        assert_same(stored(path, "rollup_1m", point), brute_force(raw, MIN, wm))
        assert_same(stored(path, "rollup_1h", point), brute_force(raw, HOUR, wm))
    minute = stored(path, "rollup_1m", HOPPER)[T0 + 30 * MIN]
    assert minute[1] == 99.5 and minute[5] == 99.5  # its max, and its last value (latest in that minute)
    assert sqlite3.connect(path).execute("SELECT count(*) FROM rollup_dirty").fetchone()[0] == 0


def test_raw_readings_expire_after_their_retention_and_history_still_answers_from_the_rollups(tmp_path):
    path = tmp_path / "rw.db"
    store = SQLiteStore(path, raw_retention_days=1)
    hopper = readings(HOPPER, T0, T0 + 3 * DAY, 30_000)
    write(store, hopper + readings(INLET, T0, T0 + 6 * HOUR, 30_000))  # the inlet sensor was removed after 6 h
    now = T0 + 3 * DAY + 30_000
    maintain_fully(store, now)
    cutoff = now - DAY - (now - DAY) % MIN
    assert store.readings(HOPPER)[0][0] == cutoff and store.count(INLET) == 0
    first_day = store.history(HOPPER, T0, T0 + DAY - 1, max_points=2000)
    assert first_day.bucket_s == 60 and len(first_day.rows) == 1440
    assert sum(r[4] for r in first_day.rows) == DAY // 30_000
    want = brute_force([(r.ts_ms, r.value) for r in hopper], MIN, cutoff)
    for ts, lo, hi, mean, n in first_day.rows:
        w = want[int(ts * 1000)]
        assert (lo, hi, n) == (w[0], w[1], w[3]) and mean == pytest.approx(w[2] / w[3])
    hour_ago = store.history(HOPPER, T0 + 36 * HOUR, T0 + 37 * HOUR - 1)  # raw gone: minutes, not nothing
    assert hour_ago.bucket_s == 60 and sum(r[4] for r in hour_ago.rows) == 120
    recent = store.history(HOPPER, now - HOUR, now)
    assert recent.bucket_s == 0 and len(recent.rows) == 119  # raw, up to the last reading
    # a gateway back-fills a reading from two days ago (within ingest.max_past_s): merged into what is kept
    write(store, [Reading(HOPPER, T0 + 36 * HOUR + 15_000, 41.0)])
    maintain_fully(store, now)
    assert sum(r[4] for r in store.history(HOPPER, T0 + 36 * HOUR, T0 + 37 * HOUR - 1).rows) == 121
    assert store.readings(HOPPER)[0][0] == cutoff  # and its raw copy is gone with the others of its day
    store.close()
    assert SQLiteStore(path).latest()[INLET] == (T0 + 6 * HOUR - 30_000, hopper_last(INLET))


def hopper_last(point: str) -> float:
    return readings(point, T0, T0 + 6 * HOUR, 30_000)[-1].value


def test_maintenance_never_rolls_up_nor_deletes_alerts_their_events_or_rejected_input(tmp_path):
    path = tmp_path / "rw.db"
    points = load_plant(DEMO).point_map()
    book = AlertBook(path, points)
    store = SQLiteStore(path, raw_retention_days=1, rollup_1m_retention_days=2, rollup_1h_retention_days=3)
    t = T0 / 1000
    book.apply([Finding(HOPPER, "high", Tier.YELLOW, t + 60, 62.0, "灰斗温度 黄色", "hopper yellow")])
    book.apply([Finding(HOPPER, "high", Tier.RED, t + 120, 81.0, "灰斗温度 红色", "hopper red")])
    book.apply([Finding(HOPPER, "high", Tier.NORMAL, t + 600, 45.0, "灰斗温度 正常", "hopper normal")])
    events = [e.to_json() for e in book.events_since(0)]
    write(store, readings(HOPPER, T0, T0 + 2 * HOUR, 10_000))
    maintain_fully(store, T0 + 400 * DAY)  # every reading and rollup is past its retention by now
    db = sqlite3.connect(path)
    assert [db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("readings", "rollup_1m", "rollup_1h")] \
        == [0, 0, 0]
    assert [e.to_json() for e in AlertBook(path, points).events_since(0)] == events and len(events) == 3
    assert db.execute("SELECT count(*) FROM alerts").fetchone()[0] == 1


def test_a_chart_of_the_last_hours_includes_the_minutes_not_rolled_up_yet(tmp_path):
    store = SQLiteStore(tmp_path / "rw.db")
    write(store, readings(HOPPER, T0, T0 + HOUR, 1_000))
    maintain_fully(store, T0 + HOUR)
    write(store, readings(HOPPER, T0 + HOUR, T0 + 2 * HOUR, 1_000, seed=3))  # the last hour: not rolled up
    h = store.history(HOPPER, T0, T0 + 2 * HOUR - 1, max_points=100)
    assert store._rollups.watermark < T0 + HOUR and h.bucket_s == 120 and len(h.rows) == 60
    assert sum(r[4] for r in h.rows) == 7_200 and h.rows[-1][0] == (T0 + 2 * HOUR - 120_000) / 1000
    whole_hours = store.history(HOPPER, T0, T0 + 2 * HOUR - 1, max_points=2)
    assert whole_hours.bucket_s == 3600 and [r[4] for r in whole_hours.rows] == [3_600, 3_600]


def test_history_picks_its_resolution_from_the_range(tmp_path):
    store = SQLiteStore(tmp_path / "rw.db")
    write(store, readings(HOPPER, T0, T0 + 3 * DAY, 5_000), batch=20_000)
    maintain_fully(store, T0 + 3 * DAY)
    end = T0 + 3 * DAY - 1
    cases = {"ten minutes": (end - 10 * MIN + 1, 2000), "two hours": (end - 2 * HOUR + 1, 1000),
             "one day": (end - DAY + 1, 2000), "three days": (T0, 2000), "three days on a small chart": (T0, 50)}
    got = {name: store.history(HOPPER, start, end, n) for name, (start, n) in cases.items()}
    assert {name: h.bucket_s for name, h in got.items()} == {
        "ten minutes": 0,  # raw readings
        "two hours": 7.2,  # raw, in buckets finer than a minute
        "one day": 60, "three days": 180,  # minutes, grouped by three
        "three days on a small chart": 7200}  # hours, grouped by two
    assert all(len(h.rows) <= cases[name][1] for name, h in got.items())
    for name in ("two hours", "one day", "three days", "three days on a small chart"):
        assert sum(r[4] for r in got[name].rows) == (end + 1 - cases[name][0]) // 5_000, name


def test_maintenance_in_small_steps_ends_where_one_big_step_does(tmp_path):
    small = SQLiteStore(tmp_path / "small.db", raw_retention_days=0.5)
    big = SQLiteStore(tmp_path / "big.db", raw_retention_days=0.5)
    data = readings(HOPPER, T0, T0 + DAY, 10_000) + readings(INLET, T0, T0 + DAY, 15_000)
    write(small, data)
    write(big, data)
    assert maintain_fully(small, T0 + DAY, budget=2_000) > 5  # the writer is never held for long
    assert maintain_fully(big, T0 + DAY) == 1
    for table in ("rollup_1m", "rollup_1h"):
        for point in (HOPPER, INLET):
            assert_same(stored(tmp_path / "small.db", table, point), stored(tmp_path / "big.db", table, point))
    assert small.readings(HOPPER) == big.readings(HOPPER)


def test_a_failure_inside_maintenance_rolls_its_step_back_and_the_next_run_completes(tmp_path, monkeypatch):
    path = tmp_path / "rw.db"
    store = SQLiteStore(path)
    data = readings(HOPPER, T0, T0 + 2 * HOUR, 2_000)
    write(store, data)
    monkeypatch.setattr(rollup, "MERGE_HOURS", "SELECT no_such_function()")  # fails after the minutes are in
    with pytest.raises(sqlite3.OperationalError):
        store.maintain(T0 + 2 * HOUR + LAG)
    assert store._rollups.watermark == 0 and stored(path, "rollup_1m", HOPPER) == {}
    monkeypatch.undo()
    maintain_fully(store, T0 + 2 * HOUR + LAG)
    raw = [(r.ts_ms, r.value) for r in data]
    assert_same(stored(path, "rollup_1h", HOPPER), brute_force(raw, HOUR, T0 + 2 * HOUR))


KILLED_MID_MAINTENANCE = textwrap.dedent("""
    import os, signal, sys
    from ingest import rollup
    from ingest.store import SQLiteStore
    calls = 0
    def die():  # called once per hour row merged: the process is killed inside a transaction
        global calls
        calls += 1
        if calls == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)
        return 1
    rollup.TX_ROWS = 600
    rollup.MERGE_HOURS = rollup.MERGE_HOURS.replace("WHERE true", "WHERE die()")
    store = SQLiteStore(sys.argv[1], raw_retention_days=0.25)
    store._db.create_function("die", 0, die)
    while store.maintain(int(sys.argv[3]), budget=600):
        pass
""")


def test_a_process_killed_in_the_middle_of_maintenance_leaves_data_the_next_run_completes(tmp_path):
    path = tmp_path / "rw.db"
    store = SQLiteStore(path, raw_retention_days=0.25)
    data = readings(HOPPER, T0, T0 + 12 * HOUR, 6_000) + readings(INLET, T0, T0 + 12 * HOUR, 9_000, seed=5)
    write(store, data)
    store.close()
    now = T0 + 12 * HOUR + LAG
    run = subprocess.run([sys.executable, "-c", KILLED_MID_MAINTENANCE, str(path), "40", str(now)],
                         capture_output=True, text=True)
    assert run.returncode == -9, run.stderr
    db = sqlite3.connect(path)
    wm = db.execute("SELECT value FROM rollup_state WHERE name='watermark'").fetchone()[0]
    assert T0 < wm < T0 + 12 * HOUR  # it got some way, then died
    assert db.execute("SELECT count(*) FROM rollup_1m WHERE bucket >= ?", (wm,)).fetchone()[0] == 0
    hours_total = db.execute("SELECT sum(n) FROM rollup_1h").fetchone()[0]
    assert hours_total == db.execute("SELECT sum(n) FROM rollup_1m").fetchone()[0]  # no half-merged hour
    store = SQLiteStore(path, raw_retention_days=0.25)
    maintain_fully(store, now)
    for point in (HOPPER, INLET):
        raw = [(r.ts_ms, r.value) for r in data if r.point == point]
        assert_same(stored(path, "rollup_1m", point), brute_force(raw, MIN, T0 + 12 * HOUR))
        assert_same(stored(path, "rollup_1h", point), brute_force(raw, HOUR, T0 + 12 * HOUR))
        assert store.readings(point)[0][0] >= now - DAY // 4 - MIN


def test_the_store_configuration_keeps_coarser_rollups_at_least_as_long_as_finer_data():
    assert StoreConfig().raw_retention_days == 180 and StoreConfig().rollup_1h_retention_days is None
    assert StoreConfig(raw_retention_days=None, rollup_1m_retention_days=None).raw_retention_days is None
    with pytest.raises(ValidationError, match="rollup_1m_retention_days"):
        StoreConfig(raw_retention_days=800)
    with pytest.raises(ValidationError, match="rollup_1m_retention_days"):
        StoreConfig(raw_retention_days=None)  # raw kept forever, minutes derived from it must be too
    with pytest.raises(ValidationError, match="rollup_1h_retention_days"):
        StoreConfig(rollup_1h_retention_days=30)


class Source:
    connected, backlog = True, 0


class Sink:
    def alert_events(self, events) -> None:
        pass

    def values(self, readings) -> None:
        pass

    def suppressions(self, open_now) -> None:
        pass


class CountingStore:
    """A store that only counts maintenance calls, and asks for one more step on its first."""

    def __init__(self):
        self.calls: list[int] = []

    def maintain(self, now_ms: int) -> bool:
        self.calls.append(now_ms)
        return len(self.calls) == 1


def test_the_pipeline_runs_maintenance_through_its_writer_at_the_configured_interval(tmp_path):
    plant = load_plant(DEMO, {"store.maintain_interval_s": 3600})
    store = CountingStore()
    book = AlertBook(tmp_path / "rw.db", plant.point_map())
    pipeline = Pipeline(plant, store, book, [], Sink(), clock=lambda: T0 / 1000)

    async def run():
        task = asyncio.create_task(pipeline.run_ticks(Source(), period_s=0.01, settle_s=0))
        while len(store.calls) < 2:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # many ticks later: the next maintenance is an hour away
        task.cancel()

    asyncio.run(run())
    pipeline.close()
    assert store.calls == [T0, T0]  # the first asked for more, so the second came on the next tick
