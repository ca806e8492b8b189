"""Every accepted reading also reaches InfluxDB, once, in order, whatever the server does meanwhile.

The server is a real VictoriaMetrics on loopback (it takes InfluxDB's v2 write API, names a measurement's field
`measurement_field`, and keeps one sample per series and millisecond, as InfluxDB overwrites). A relay in front
of it (tests/victoria.py) keeps what the server acknowledged, in order, and gives the answers it never gives.
"""
from __future__ import annotations

import json
import logging

import pytest

from config.influx import InfluxConfig
from config.load import DEMO, load_plant
from ingest.influx import DEAD_STREAK, ForwardedStore, LineLayout
from ingest.payload import Reading
from ingest.store import SQLiteStore
from conftest import wait_until
from victoria import Relay, Victoria

T0 = 1_700_000_000_000  # ms; VictoriaMetrics keeps it with -retentionPeriod=100y
TOKEN = "s3cret-token-never-logged-0123456789"
METRIC = "riskwatch_value"
PLANT = load_plant(DEMO)
POINTS = list({p.area: p.id for p in reversed(PLANT.points)}.values())[::-1]  # the first point of each area


def readings(n: int, start: int = 0) -> list[Reading]:
    """n readings in arrival order, round robin over POINTS, one second apart per point."""
    return [Reading(POINTS[i % len(POINTS)], T0 + (i // len(POINTS)) * 1000, round(i * 0.25, 2))
            for i in range(start, start + n)]


def by_point(rows: list[Reading]) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for r in sorted(rows, key=lambda r: (r.point, r.ts_ms)):
        out.setdefault(r.point, []).append((r.ts_ms, r.value))
    return out


def config(url: str, tmp_path, **kw) -> InfluxConfig:
    return InfluxConfig(**{"url": url, "token": TOKEN, "org": "plant", "bucket": "riskwatch",
                           "flush_interval_s": 0.05, "max_backoff_s": 0.3, "batch_size": 50, **kw})


def write_in_batches(store, rows: list[Reading], size: int = 25) -> None:
    for i in range(0, len(rows), size):  # as the pipeline commits: one write per batch of messages
        store.write(rows[i:i + size], [], 1.0)


def acked(relay: Relay) -> list[tuple[str, int]]:
    """(point, ts) of each line the server acknowledged, in the order it did."""
    out = []
    for line in relay.lines():
        head, _, ts = line.rpartition(" ")
        point = next(t.split("=", 1)[1] for t in head.split(" ")[0].split(",")[1:] if t.startswith("point="))
        out.append((point, int(ts)))
    return out


def drained(store) -> bool:
    s = store.stats()
    return s["spooled"] == 0 and s["backfill_points"] == 0 and not s["full"]


@pytest.fixture
def vm(tmp_path):
    with Victoria(tmp_path / "vm") as server:
        yield server


def test_every_accepted_reading_reaches_influx_once_with_its_plant_tags(vm, tmp_path):
    store = ForwardedStore(SQLiteStore(tmp_path / "rw.db"), config(vm.url, tmp_path), PLANT)
    try:
        first = readings(200)
        write_in_batches(store, first)
        store.write(first[:25], [], 2.0)  # a redelivered batch: stored once, harmless if sent again
        other = Reading(first[0].point, first[0].ts_ms, 999.0)  # another value for a stored instant: rejected
        assert store.write([other], [], 3.0).conflicting == [other]
        wait_until(lambda: drained(store) and vm.samples(METRIC) == by_point(first), 60, "readings in the server")

        labels = {dict(k)["point"]: dict(k) for k in vm.series(METRIC)}
        assert labels["dust1.hopper_t"] == {"point": "dust1.hopper_t", "site": "demo", "area": "dust1",
                                            "sector": "dust", "unit": "℃"}
        stats = store.stats()
        assert stats["connected"] and stats["sent"] == 225 and stats["failures"] == 0 and stats["dead_lines"] == 0
        assert TOKEN not in json.dumps(stats)
        assert store.count() == 200  # the wrapped store still answers everything it answered before
    finally:
        store.close()


def test_an_outage_spools_readings_and_back_fills_them_in_order_when_the_server_returns(vm, tmp_path):
    with Relay(vm.url) as relay:
        store = ForwardedStore(SQLiteStore(tmp_path / "rw.db"),
                               config(relay.url, tmp_path, spool_max_rows=1000, near_full_fraction=0.8), PLANT)
        try:
            before, during, after = readings(100), readings(850, 100), readings(50, 950)
            write_in_batches(store, before)
            wait_until(lambda: drained(store), 60, "the first readings sent")
            vm.stop()

            write_in_batches(store, during)
            wait_until(lambda: not store.stats()["connected"], 60, "the forwarder to notice the outage")
            stats = store.stats()
            assert stats["spooled"] == 850 and stats["near_full"] and not stats["full"]
            assert stats["failures"] >= 1 and stats["last_error"] and stats["oldest_spooled_age_s"] >= 0

            vm.start()  # same data directory, same port
            write_in_batches(store, after)
            wait_until(lambda: drained(store), 60, "the spool back-filled")
            everything = before + during + after
            assert acked(relay) == [(r.point, r.ts_ms) for r in everything]  # each once, in the order written
            assert vm.samples(METRIC) == by_point(everything)
            stats = store.stats()
            assert stats["connected"] and not stats["near_full"] and stats["sent"] == 1000
        finally:
            store.close()


def test_a_batch_the_server_stored_but_never_acknowledged_is_sent_again_after_a_restart_and_stored_once(vm, tmp_path):
    rows = readings(120)
    with Relay(vm.url, answer=lambda lines: Relay.SWALLOW) as relay:  # stored, then the answer is lost
        store = ForwardedStore(SQLiteStore(tmp_path / "rw.db"), config(relay.url, tmp_path), PLANT)
        try:
            write_in_batches(store, rows)
            wait_until(lambda: relay.statuses.count(Relay.SWALLOW) >= 3, 60, "batches stored without an answer")
        finally:
            store.close()  # the process stops with every reading still in its spool
    assert vm.samples(METRIC) != {}  # the server does have some of them already

    with Relay(vm.url) as relay:
        store = ForwardedStore(SQLiteStore(tmp_path / "rw.db"), config(relay.url, tmp_path), PLANT)
        try:
            wait_until(lambda: drained(store), 60, "the spool replayed after the restart")
            assert acked(relay) == [(r.point, r.ts_ms) for r in rows]  # every line sent again, in order
            assert vm.samples(METRIC) == by_point(rows)  # and stored once
        finally:
            store.close()


def test_a_full_spool_records_gaps_that_survive_a_restart_and_are_back_filled_from_the_store(tmp_path):
    vm = Victoria(tmp_path / "vm")  # down while the plant keeps talking
    limits = {"spool_max_rows": 100, "near_full_fraction": 0.8}
    store = ForwardedStore(SQLiteStore(tmp_path / "rw.db"), config(vm.url, tmp_path, **limits), PLANT)
    try:
        live = readings(500)
        late = [Reading(POINTS[-1], T0 - 3_600_000 + i * 1000, 0.5) for i in range(10)]  # a gateway's back-log
        write_in_batches(store, live[:300])
        store.write(late, [], 1.0)
        write_in_batches(store, live[300:])
        stats = store.stats()
        assert stats["spooled"] == 100 and stats["full"] and stats["near_full"]
        assert stats["gap_readings"] == 410 and stats["gap_points"] == len(POINTS)
    finally:
        store.close()  # a restart with the gaps open

    with vm, Relay(vm.url) as relay:
        store = ForwardedStore(SQLiteStore(tmp_path / "rw.db"), config(relay.url, tmp_path, **limits), PLANT)
        try:
            assert store.stats()["gap_points"] == len(POINTS)  # remembered across the restart
            wait_until(lambda: drained(store), 60, "the queue sent and the gaps back-filled")
            assert acked(relay)[:100] == [(r.point, r.ts_ms) for r in live[:100]]  # the queue first, in order
            assert vm.samples(METRIC) == by_point(live + late)
            stats = store.stats()
            assert stats["backfilled"] >= 410 and stats["gap_readings"] == 410 and stats["gap_points"] == 0

            more = readings(40, 500)  # spooled again once the gaps are closed
            write_in_batches(store, more)
            wait_until(lambda: drained(store) and vm.samples(METRIC) == by_point(live + late + more), 60,
                       "readings after the back-fill")
        finally:
            store.close()


def test_a_refused_token_keeps_every_reading_says_so_and_never_logs_the_token(tmp_path, caplog):
    vm = Victoria(tmp_path / "vm", "-httpAuth.username=riskwatch", "-httpAuth.password=other-secret")
    caplog.set_level(logging.INFO, logger="riskwatch.influx")
    with vm:
        store = ForwardedStore(SQLiteStore(tmp_path / "rw.db"), config(vm.url, tmp_path), PLANT)
        try:
            rows = readings(200)
            write_in_batches(store, rows)
            wait_until(lambda: store.stats()["refused_status"] == 401, 60, "the 401 reported")
            stats = store.stats()
            assert stats["refused"] and not stats["connected"] and "401" in stats["last_error"]
            assert stats["spooled"] == 200 and stats["sent"] == 0 and stats["dead_lines"] == 0  # nothing dropped
            assert TOKEN not in json.dumps(stats) and TOKEN not in caplog.text
            assert "401" in caplog.text  # said in the log, once per kind of failure
            failures = stats["failures"]
            wait_until(lambda: store.stats()["failures"] > failures, 60, "the forwarder to keep trying")

            vm.stop()  # the server's side is put right (here: authentication off); riskwatch is not restarted
            vm.flags = []
            vm.start()
            wait_until(lambda: drained(store), 60, "the spool delivered once the server accepts")
            assert vm.samples(METRIC) == by_point(rows)
            assert not store.stats()["refused"] and store.stats()["connected"]
        finally:
            store.close()


def test_a_line_the_server_refuses_for_itself_is_set_aside_and_the_rest_go_through(vm, tmp_path):
    # VictoriaMetrics takes almost any line (a bad value becomes 0), so the relay plays InfluxDB's 400 answer
    refuse = lambda lines: 400 if any(" value=666.0 " in line for line in lines) else None  # noqa: E731
    with Relay(vm.url, answer=refuse) as relay:
        store = ForwardedStore(SQLiteStore(tmp_path / "rw.db"), config(relay.url, tmp_path), PLANT)
        try:
            rows = readings(200)
            bad = Reading(POINTS[1], T0 + 500, 666.0)
            write_in_batches(store, rows[:100] + [bad] + rows[100:])
            wait_until(lambda: drained(store), 60, "the queue past the bad line")
            assert vm.samples(METRIC) == by_point(rows)
            assert acked(relay) == [(r.point, r.ts_ms) for r in rows]  # the rest in order, once each
            stats = store.stats()
            assert stats["dead_lines"] == 1 and stats["connected"] and not stats["refused"]
            assert [(d["point"], d["ts_ms"], d["value"], d["status"]) for d in store.spool.dead()] == [
                (POINTS[1], T0 + 500, 666.0, 400)]
        finally:
            store.close()


def test_a_server_refusing_every_line_is_a_refusal_not_a_reason_to_discard_the_queue(vm, tmp_path):
    with Relay(vm.url, answer=lambda lines: 400) as relay:
        store = ForwardedStore(SQLiteStore(tmp_path / "rw.db"), config(relay.url, tmp_path), PLANT)
        try:
            write_in_batches(store, readings(200))
            wait_until(lambda: store.stats()["refused_status"] == 400, 60, "the refusal reported")
            stats = store.stats()
            assert stats["dead_lines"] == DEAD_STREAK and stats["spooled"] == 200 and "400" in stats["last_error"]
            assert relay.accepted == []
        finally:
            store.close()


def test_the_line_layout_follows_the_plant_file_and_escapes_what_line_protocol_needs():
    raw = PLANT.model_dump()
    raw["points"][0]["unit"] = "% LEL, dry"  # a space and a comma: escaped, not a broken line
    plant = type(PLANT).model_validate(raw)
    layout = LineLayout(InfluxConfig(url="http://influx:8086", token=TOKEN, bucket="b", measurement="rw_{sector}",
                                     field="reading", tags=["point", "area", "unit"]), plant)
    p = plant.points[0]
    assert layout.body([(p.id, T0, 21.5)]) == (
        f"rw_dust,area=dust1,point={p.id},unit=%\\ LEL\\,\\ dry reading=21.5 {T0}".encode())
    assert layout.body([("gone.point", T0, 1.0)]) == f"rw_,point=gone.point reading=1.0 {T0}".encode()


def test_the_influx_block_refuses_a_layout_that_would_merge_points_and_never_shows_its_token():
    with pytest.raises(ValueError, match="must include 'point'"):
        InfluxConfig(url="http://influx:8086", token=TOKEN, bucket="b", tags=["site", "area"])
    with pytest.raises(ValueError, match="unknown placeholders"):
        InfluxConfig(url="http://influx:8086", token=TOKEN, bucket="b", measurement="rw_{line}")
    cfg = InfluxConfig(url="http://influx:8086", token=TOKEN, bucket="b")
    assert TOKEN not in repr(cfg) and TOKEN not in cfg.model_dump_json()
    assert str(cfg.spool_file("/var/lib/riskwatch/rw.db")) == "/var/lib/riskwatch/rw.db.influx-spool"



def test_readings_older_than_the_buckets_retention_are_set_aside_without_holding_up_the_rest(vm, tmp_path):
    # InfluxDB answers 422 to points beyond a bucket's retention; VictoriaMetrics keeps them, so the relay plays it
    old = [Reading(p, T0 - 86_400_000 + i * 1000, 1.0) for i in range(10) for p in POINTS]  # 60: past DEAD_STREAK
    beyond_retention = lambda lines: 422 if any(int(line.rpartition(" ")[2]) < T0 for line in lines) else None  # noqa
    with Relay(vm.url, answer=beyond_retention) as relay:
        store = ForwardedStore(SQLiteStore(tmp_path / "rw.db"), config(relay.url, tmp_path), PLANT)
        try:
            rows = readings(100)
            write_in_batches(store, old + rows)
            wait_until(lambda: drained(store), 60, "the queue past the old readings")
            assert acked(relay) == [(r.point, r.ts_ms) for r in rows]
            stats = store.stats()
            assert stats["dead_lines"] == len(old) and not stats["refused"] and stats["connected"]
        finally:
            store.close()
