"""The embedded SQLite store: batched writes, duplicates ignored, rejections kept, history downsampled."""
from __future__ import annotations

from ingest.payload import Reading, Reason, Rejected
from ingest.store import SQLiteStore

T0 = 1_795_000_000_000  # ms


def test_a_batch_is_committed_once_and_a_redelivered_batch_only_counts_duplicates(tmp_path):
    store = SQLiteStore(tmp_path / "rw.db")
    batch = [Reading("dust1.dp", T0 + i * 1000, 1000.0 + i) for i in range(100)]
    first = store.write(batch, [], 0.0)
    again = store.write(batch, [], 0.0)
    assert (first.inserted, first.duplicates) == (100, 0)
    assert (again.inserted, again.duplicates) == (0, 100)
    assert store.count("dust1.dp") == 100


def test_rejections_are_kept_with_reason_and_payload_and_a_redelivered_one_is_kept_once(tmp_path):
    store = SQLiteStore(tmp_path / "rw.db")
    bad = Rejected(Reason.MALFORMED_JSON, "Expecting value", "rw/v1/demo/point/x", b"{oops", None)
    assert store.write([], [bad], 1.0).rejected == 1
    assert store.write([], [bad], 2.0).rejected == 0
    kept = store.rejected()
    assert len(kept) == 1 and kept[0]["reason"] == "malformed_json" and kept[0]["payload"] == "{oops"
    assert store.rejected_counts() == {"malformed_json": 1}


def test_latest_values_survive_a_restart(tmp_path):
    store = SQLiteStore(tmp_path / "rw.db")
    store.write([Reading("sump1.h2s", T0 + 5000, 0.4), Reading("sump1.h2s", T0, 0.1)], [], 0.0)
    assert store.latest()["sump1.h2s"] == (T0 + 5000, 0.4)
    store.close()
    assert SQLiteStore(tmp_path / "rw.db").latest()["sump1.h2s"] == (T0 + 5000, 0.4)


def test_a_short_range_returns_raw_readings_and_a_long_one_buckets_with_min_max_mean(tmp_path):
    store = SQLiteStore(tmp_path / "rw.db")
    day = [Reading("cast1.water_p", T0 + i * 1000, 0.30 + (0.02 if i % 2 else -0.02)) for i in range(86_400)]
    store.write(day, [], 0.0)
    short = store.history("cast1.water_p", T0, T0 + 59_999, max_points=2000)
    assert short.bucket_s == 0 and len(short.rows) == 60
    long = store.history("cast1.water_p", T0, T0 + 86_400_000 - 1, max_points=1000)
    assert long.bucket_s == 86.4 and len(long.rows) == 1000
    ts, lo, hi, mean, count = long.rows[0]
    assert ts == T0 / 1000 and round(lo, 2) == 0.28 and round(hi, 2) == 0.32 and abs(mean - 0.30) < 0.001
    assert sum(r[4] for r in long.rows) == 86_400  # every reading counted in exactly one bucket


def test_an_unknown_point_has_no_history(tmp_path):
    assert SQLiteStore(tmp_path / "rw.db").history("nope", 0, 10).rows == []


def test_another_value_for_a_stored_instant_is_rejected_as_a_conflict_not_counted_as_a_copy(tmp_path):
    store = SQLiteStore(tmp_path / "rw.db")
    store.write([Reading("sump1.h2s", T0, 0.4)], [], 0.0)
    result = store.write([Reading("sump1.h2s", T0, 0.4), Reading("sump1.h2s", T0, 9.9)], [], 1.0)
    assert (result.inserted, result.duplicates, result.rejected_by_reason) == (0, 1, {"conflicting_duplicate": 1})
    assert [r.value for r in result.conflicting] == [9.9]
    kept = store.rejected()
    assert kept[0]["reason"] == "conflicting_duplicate" and "stored 0.4, received 9.9" in kept[0]["detail"]
    assert store.readings("sump1.h2s") == [(T0, 0.4)]


def test_a_rejection_with_unencodable_text_is_kept_rather_than_stopping_the_store(tmp_path):
    store = SQLiteStore(tmp_path / "rw.db")
    bad = Rejected(Reason.UNKNOWN_POINT, "point '\ud800' is not configured", "rw/v1/demo/gateway/gw1",
                   b'{"readings":[{"point":"\\ud800","value":1}]}', "\ud800")
    assert store.write([Reading("dust1.dp", T0, 1000.0)], [bad], 0.0).rejected == 1
    assert store.rejected()[0]["point"] == "\\ud800"
