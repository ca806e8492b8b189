"""The alarm-system quality report (ISA-18.2 / EEMUA 191 yardsticks): built alarm histories written through a real
alert book, then the report's figures; and GET /api/quality over real HTTP with the roles that may see it."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import uvicorn
from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from alerting.book import AlertBook
from alerting.quality import Shift, flood_periods, most_in, report, shift_slices, verdict
from api.auth import current_user
from api.quality import STATIC, events_for, quality_router
from config.load import DEMO, load_plant
from config.model import Tier, User
from conftest import TOKENS, wait_until
from detectors.finding import Finding
from ingest.broker import free_port

PLANT = load_plant(DEMO)
POINTS = PLANT.point_map()
CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 2, tzinfo=CST).timestamp()  # Monday 2 March 2026, midnight at the plant
HOPPER, INLET, CO = "dust1.hopper_t", "dust1.inlet_t", "steel1.co_a"
H, DAY = 3600.0, 86400.0


class Console:
    """An alarm history written through a real alert book; times in seconds after T0."""

    def __init__(self, book: AlertBook | None = None):
        self.book = book or AlertBook(":memory:", POINTS)

    def set(self, at: float, tier: Tier, point: str = HOPPER, rule: str = "high") -> int | None:
        evs = self.book.apply([Finding(point, rule, tier, T0 + at, 80.0, f"{point} {tier.zh}", f"{point} {tier.label}")])
        return evs[0].alert_id if evs else None

    def alarm(self, at: float, point: str = HOPPER, rule: str = "high", tier: Tier = Tier.YELLOW,
              lasts: float | None = None) -> int:
        alert_id = self.set(at, tier, point, rule)
        if lasts is not None:
            self.set(at + lasts, Tier.NORMAL, point, rule)
        return alert_id

    def ack(self, alert_id: int, at: float) -> None:
        self.book.ack(alert_id, "operator-user", T0 + at)

    def burst(self, at: float, n: int, every: float, point: str = HOPPER, prefix: str = "b") -> None:
        """n alarms of different rules on one point, `every` seconds apart, each cleared a minute later."""
        for i in range(n):
            self.alarm(at + i * every, point, f"{prefix}{i}", lasts=60.0)

    def report(self, start: float = 0.0, end: float = DAY, **kw) -> dict:
        return report(self.book.events_since(0, 10**9), T0 + start, T0 + end, **kw)

    def area(self, area: str = "dust1", **kw) -> dict:
        return next(a for a in self.report(**kw)["areas"] if a["area"] == area)


# --- the alarm rate and floods --------------------------------------------------------------------------------

def test_ten_alarms_in_ten_minutes_is_the_limit_and_the_eleventh_is_a_flood():
    ten = Console()
    ten.burst(9 * H, 10, every=59.0)
    a = ten.area()
    assert (a["summary"]["alarms"], a["summary"]["per_10min_peak"], a["floods"]) == (10, 10, [])
    assert a["verdict"]["peak_10min"]["level"] == "acceptable"

    eleven = Console()
    eleven.burst(9 * H, 11, every=59.0)  # the 11th at 590 s: the first is still inside the window
    a = eleven.area()
    assert a["summary"]["per_10min_peak"] == 11
    assert a["floods"] == [{"start": T0 + 9 * H + 590.0, "end": T0 + 9 * H + 600.0, "duration_s": 10.0,
                            "alarms": 11, "peak": 11}]
    assert a["verdict"]["peak_10min"]["level"] == "overloaded" and a["verdict"]["level"] == "overloaded"


def test_an_alarm_exactly_ten_minutes_after_the_first_no_longer_counts_with_it():
    c = Console()
    c.burst(9 * H, 11, every=60.0)  # 0 .. 600 s: any window of 600 s holds at most 10 of them
    a = c.area()
    assert a["summary"]["per_10min_peak"] == 10 and a["floods"] == []


def test_a_flood_straddling_a_clock_ten_minutes_is_found_by_the_sliding_window():
    c = Console()
    c.burst(9 * H + 540, 6, every=10.0, prefix="x")  # 09:09:00 .. 09:09:50
    c.burst(9 * H + 610, 6, every=10.0, prefix="y")  # 09:10:10 .. 09:11:00
    a = c.area()
    assert a["summary"]["per_10min_peak"] == 12 and len(a["floods"]) == 1
    assert a["floods"][0]["start"] == T0 + 9 * H + 650.0  # the 11th alarm


def test_overlapping_flood_windows_merge_into_one_period_and_count_its_alarms():
    c = Console()
    c.burst(10 * H, 11, every=5.0, prefix="x")       # flood from the 11th alarm at +50 s
    c.burst(10 * H + 500, 11, every=5.0, prefix="y")  # starts before the first one has ebbed
    c.burst(12 * H, 11, every=5.0, prefix="z")        # a separate flood two hours later
    a = c.area()
    assert [(f["start"] - T0 - 10 * H, f["alarms"]) for f in a["floods"]] == [(50.0, 22), (2 * H + 50.0, 11)]
    first = a["floods"][0]
    assert first["end"] == T0 + 10 * H + 500 + 600  # the rate falls back to 10 when the first "y" alarm ebbs
    assert a["summary"]["floods"] == 2
    flooded = sum(f["duration_s"] for f in a["floods"])
    assert a["summary"]["flood_s"] == flooded
    assert a["summary"]["flood_pct"] == round(100 * flooded / DAY, 3)


def test_flood_periods_are_the_times_the_sliding_rate_is_above_ten():
    times = sorted(float(t) for t in np.random.default_rng(7).uniform(0, 7200, 300))
    periods = flood_periods(times)
    for probe in np.arange(0, 7800, 7.0):
        rate = sum(1 for t in times if probe - 600 < t <= probe)
        inside = any(a <= probe < b for a, b in periods)
        assert inside == (rate > 10), probe
    assert most_in(times, 600) == max(sum(1 for t in times if p - 600 < t <= p) for p in times)


def test_the_average_rate_is_alarms_per_ten_minutes_of_the_period():
    c = Console()
    for i in range(6):
        c.alarm(i * 600.0 + 30, rule=f"r{i}", lasts=30)
    a = c.area(end=H)
    assert a["summary"]["per_10min_avg"] == 1.0 and a["verdict"]["average_per_10min"]["level"] == "acceptable"
    c.alarm(3500.0, rule="r7")
    a = c.area(end=H)
    assert a["summary"]["per_10min_avg"] == round(7 / 6, 3)
    assert a["verdict"]["average_per_10min"]["level"] == "manageable" and a["verdict"]["level"] == "manageable"


# --- chattering, fleeting, stale ------------------------------------------------------------------------------

def test_an_alarm_raised_cleared_and_raised_again_within_a_minute_is_chattering():
    c = Console()
    c.alarm(9 * H, lasts=20)   # raised, cleared at +20 s
    c.alarm(9 * H + 50)        # raised again at +50 s: three transitions in 50 s
    a = c.area()
    assert a["summary"]["chattering"] == 1
    assert a["chattering"] == [{"point": HOPPER, "rule": "high", "first_ts": T0 + 9 * H + 50, "times": 1}]
    assert a["top"][0]["chattering"] is True and a["top"][0]["alarms"] == 2


def test_three_transitions_spread_over_a_full_minute_are_not_chattering():
    c = Console()
    c.alarm(9 * H, lasts=30)
    c.alarm(9 * H + 60)  # 60 s after the first transition: outside its window
    a = c.area()
    assert a["summary"]["chattering"] == 0 and a["chattering"] == []


def test_an_alarm_cleared_within_ten_seconds_is_fleeting_and_one_that_lasts_ten_is_not():
    c = Console()
    c.alarm(9 * H, rule="quick", lasts=9.9)
    c.alarm(10 * H, rule="slow", lasts=10.0)
    a = c.area()
    assert a["summary"]["fleeting"] == 1
    assert [(f["rule"], f["duration_s"]) for f in a["fleeting"]] == [("quick", 9.9)]


def test_an_alarm_standing_more_than_a_day_at_the_end_of_the_period_is_stale():
    c = Console()
    old = c.alarm(-30 * H, rule="old")                  # raised the day before, never cleared
    c.alarm(-25 * H, rule="cured", lasts=24 * H)        # stood 24 h but cleared before the end
    c.alarm(2 * H, rule="young")                        # active, but only 22 h at the end
    c.ack(old, -29 * H)
    a = c.area()
    assert [(s["rule"], s["active_s"], s["acked"], s["tier"]) for s in a["stale"]] == [("old", 54 * H, True, "yellow")]
    assert a["summary"]["stale"] == 1 and a["summary"]["alarms"] == 1  # the old ones were raised before the period
    night = [s for s in a["shifts"] if s["shift"] == "night" and s["day"] == "2026-03-01"][0]
    assert night["stale"] == 1  # at 08:00 on the 2nd the old alarm had stood 38 h; "cured" had cleared at 23:00


def test_an_escalation_reopens_the_alarm_to_a_new_acknowledgement_and_counts_as_an_annunciation():
    c = Console()
    alert = c.alarm(9 * H, tier=Tier.YELLOW)
    c.ack(alert, 9 * H + 30)
    c.set(9 * H + 100, Tier.RED)
    c.ack(alert, 9 * H + 105)
    c.set(9 * H + 400, Tier.NORMAL)
    s = c.area()["summary"]
    assert (s["alarms"], s["tier_ups"], s["annunciations"]) == (1, 1, 2)
    assert s["by_tier"] == {"red": 1, "orange": 0, "yellow": 1, "blue": 0}
    assert (s["ack"]["yellow"]["median_s"], s["ack"]["red"]["median_s"]) == (30.0, 5.0)
    assert s["clear"]["red"] == {"count": 1, "not_cleared": 0, "median_s": 400.0, "p90_s": 400.0, "max_s": 400.0}
    assert s["clear"]["yellow"]["count"] == 0  # grouped by the highest tier the alarm reached


# --- time to acknowledge and to clear -------------------------------------------------------------------------

def test_time_to_acknowledge_per_tier_has_median_p90_max_and_the_unacknowledged():
    c = Console()
    delays = [10.0 * k for k in range(1, 11)]
    for i, d in enumerate(delays):
        alert = c.alarm(9 * H + i * 900, rule=f"r{i}", tier=Tier.RED, lasts=600)
        c.ack(alert, 9 * H + i * 900 + d)
    c.alarm(20 * H, rule="ignored", tier=Tier.RED)  # nobody acknowledged it
    ack = c.area()["summary"]["ack"]["red"]
    assert ack == {"count": 10, "never_acked": 1, "median_s": round(float(np.percentile(delays, 50)), 1),
                   "p90_s": round(float(np.percentile(delays, 90)), 1), "max_s": 100.0}
    assert (ack["median_s"], ack["p90_s"]) == (55.0, 91.0)
    clear = c.area()["summary"]["clear"]["red"]
    assert (clear["count"], clear["not_cleared"], clear["median_s"]) == (10, 1, 600.0)


def test_an_alarm_acknowledged_after_the_period_is_measured_to_its_late_acknowledgement():
    c = Console()
    alert = c.alarm(23 * H + 50 * 60, tier=Tier.ORANGE)
    c.ack(alert, DAY + 20 * 60)  # 30 min later, after midnight
    ack = c.area()["summary"]["ack"]["orange"]
    assert (ack["count"], ack["never_acked"], ack["max_s"]) == (1, 0, 1800.0)


# --- per day and shift ----------------------------------------------------------------------------------------

def test_the_night_shift_runs_across_midnight_and_belongs_to_the_day_it_starts():
    c = Console()
    for at in (21 * H, 25 * H, 31 * H + 59 * 60):     # 21:00, 01:00, 07:59 of the night of the 2nd
        c.alarm(at, rule=f"n{at}", lasts=30)
    c.alarm(32 * H, rule="day", lasts=30)              # 08:00 on the 3rd: the day shift
    c.alarm(19 * H + 59 * 60, rule="eve", lasts=30)    # 19:59 on the 2nd: still the day shift
    a = c.area(start=8 * H, end=44 * H)
    got = [(s["day"], s["shift"], s["alarms"], s["hours"]) for s in a["shifts"]]
    assert got == [("2026-03-02", "day", 1, 12.0), ("2026-03-02", "night", 3, 12.0), ("2026-03-03", "day", 1, 12.0)]
    assert sum(s["alarms"] for s in a["shifts"]) == a["summary"]["alarms"] == 5


def test_shifts_follow_the_plant_offset_and_are_clipped_to_the_period():
    slices = shift_slices(T0 + 2 * H, T0 + 10 * H)
    assert [(d, s, (a - T0) / H, (b - T0) / H) for d, s, a, b in slices] == [
        ("2026-03-01", "night", 2.0, 8.0), ("2026-03-02", "day", 8.0, 10.0)]
    utc = shift_slices(T0, T0 + DAY, tz=timezone.utc)  # the plant's midnight is 16:00 UTC: a UTC day shift
    assert [(s, (a - T0) / H) for _, s, a, _ in utc] == [("day", 0.0), ("night", 4.0), ("day", 16.0)]
    three = (Shift("A", "06:00", "14:00"), Shift("B", "14:00", "22:00"), Shift("C", "22:00", "06:00"))
    assert [s for _, s, _, _ in shift_slices(T0, T0 + DAY, three)] == ["C", "A", "B", "C"]


def test_a_flood_across_the_shift_change_is_flooded_time_for_both_crews():
    c = Console()
    c.burst(20 * H - 100, 12, every=5.0)  # 19:58:20 .. 19:59:15: a flood from 19:59:10 to 20:08:25
    a = c.area()
    day, night = [s for s in a["shifts"] if s["day"] == "2026-03-02"]
    assert day["floods"] == night["floods"] == 1 and (day["flood_s"], night["flood_s"]) == (50.0, 505.0)
    assert day["per_10min_peak"] == night["per_10min_peak"] == 12  # the night crew took over a flooded console
    assert night["alarms"] == 0 and day["flood_s"] + night["flood_s"] == a["summary"]["flood_s"]


# --- the report as a whole ------------------------------------------------------------------------------------

def test_every_console_asked_for_is_reported_quiet_ones_included_with_the_noisiest_points_first():
    c = Console()
    for i in range(12):  # rule k alarms k+1 times
        for j in range(i + 1):
            c.alarm(i * H + j * 120, rule=f"k{i:02d}", lasts=30)
    c.alarm(5 * H, point=CO, rule="high", lasts=30)
    r = c.report(areas=["dust1", "steel1", "nh3"])
    assert [a["area"] for a in r["areas"]] == ["dust1", "nh3", "steel1"]
    nh3 = r["areas"][1]
    assert nh3["summary"]["alarms"] == 0 and nh3["verdict"]["level"] == "acceptable" and nh3["top"] == []
    top = r["areas"][0]["top"]
    assert [n["rule"] for n in top] == [f"k{i:02d}" for i in range(11, 1, -1)] and top[0]["alarms"] == 12
    assert len(r["top"]) == 10 and r["top"][0]["area"] == "dust1"
    assert r["areas"][0]["summary"]["overdue_steps"] == {"total": 0, "by_step": {}} and "overdue_steps" in r["notes"]
    assert r["definitions"]["rate_window"] == "sliding" and r["definitions"]["fleeting_s"] == 10.0
    json.dumps(r)  # plain JSON all the way down


@pytest.mark.parametrize("avg, peak, flood, level", [
    (0.5, 3, 0.0, "acceptable"), (1.0, 10, 0.99, "acceptable"), (1.5, 3, 0.0, "manageable"),
    (2.0, 10, 0.0, "manageable"), (2.01, 3, 0.0, "overloaded"), (0.5, 11, 0.0, "overloaded"),
    (0.5, 3, 1.0, "overloaded")])
def test_the_benchmark_verdict_is_the_worst_of_average_peak_and_flood_time(avg, peak, flood, level):
    assert verdict(avg, peak, flood)["level"] == level


def test_the_api_reads_from_the_log_only_what_the_period_needs(tmp_path):
    c = Console(AlertBook(tmp_path / "alerts.db", POINTS))
    c.alarm(-50 * H, rule="over", lasts=H)         # over long before: not needed
    standing = c.alarm(-30 * H, rule="standing")   # still active: a stale alarm
    c.alarm(5 * H, rule="inside", lasts=60)
    c.alarm(DAY + H, rule="after")                 # raised after the period
    events = events_for(c.book, T0, T0 + DAY)
    assert {e.alert.rule for e in events} == {"standing", "inside"}
    assert {e.alert_id for e in events if e.alert.rule == "standing"} == {standing}
    full = report(c.book.events_since(0, 10**9), T0, T0 + DAY)
    assert report(events, T0, T0 + DAY) == full


# --- GET /api/quality over HTTP -------------------------------------------------------------------------------

def quality_app(book: AlertBook, plant_names: bool = False) -> FastAPI:
    """The router as api/app.py includes it, with the plant's users and the static files."""
    app = FastAPI()
    app.state.users = [User(name=f"{role}-user", role=role, token=token) for role, token in TOKENS.items()]
    app.include_router(quality_router(lambda: book))
    if plant_names:  # what the page reads names from in the full app (GET /api/plant there)
        @app.get("/api/plant")
        def plant(user: User = Depends(current_user)) -> dict:
            return {"site": PLANT.site, "name": PLANT.name, "name_en": PLANT.name_en,
                    "areas": [a.model_dump(include={"id", "name", "name_en"}) for a in PLANT.areas],
                    "points": [p.model_dump(include={"id", "name", "name_en", "area"}) for p in PLANT.points],
                    "subjects": []}
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


@contextmanager
def serve(app: FastAPI):
    """uvicorn on a free loopback port, in a thread; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 20, "the test server to listen")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def get(url: str, role: str | None = None) -> tuple[int, object]:
    req = urllib.request.Request(url)
    if role:
        req.add_header("Authorization", f"Bearer {TOKENS[role]}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


@pytest.fixture
def flooded_book(tmp_path):
    """A dust console flooded at 09:00 on 2 March, its hopper alarm acknowledged, and a quiet gas console."""
    book = AlertBook(tmp_path / "alerts.db", POINTS)
    c = Console(book)
    c.burst(9 * H, 12, every=20.0, point=INLET)
    alert = c.alarm(9 * H + 30, tier=Tier.RED)
    c.ack(alert, 9 * H + 90)
    yield book
    book.close()


def test_only_engineers_and_admins_may_read_the_quality_report(flooded_book):
    q = f"/api/quality?start={T0}&end={T0 + DAY}"
    with serve(quality_app(flooded_book)) as url:
        assert get(url + q)[0] == 401
        assert get(url + q, "display")[0] == 403
        assert get(url + q, "operator")[0] == 403
        status, body = get(url + q, "engineer")
        assert status == 200, body
        assert get(url + q, "admin")[0] == 200
        dust = next(a for a in body["areas"] if a["area"] == "dust1")
        assert dust["summary"]["alarms"] == 13 and dust["summary"]["per_10min_peak"] == 13
        assert [(f["start"] - T0, f["alarms"]) for f in dust["floods"]] == [(9 * H + 180.0, 13)]
        assert dust["summary"]["ack"]["red"]["median_s"] == 60.0 and dust["verdict"]["level"] == "overloaded"
        assert {a["area"] for a in body["areas"]} == {a.id for a in PLANT.areas}  # quiet consoles too
        steel = next(a for a in body["areas"] if a["area"] == "steel1")
        assert steel["summary"]["alarms"] == 0 and steel["verdict"]["level"] == "acceptable"


def test_the_quality_report_checks_its_range_and_area(flooded_book):
    with serve(quality_app(flooded_book)) as url:
        status, body = get(url + f"/api/quality?start={T0}&end={T0 + DAY}&area=dust1", "engineer")
        assert status == 200 and [a["area"] for a in body["areas"]] == ["dust1"]
        assert get(url + f"/api/quality?start={T0}&end={T0 + 93 * DAY}", "engineer")[0] == 422
        assert get(url + f"/api/quality?start={T0}&end={T0 + 92 * DAY}", "engineer")[0] == 200
        assert get(url + f"/api/quality?start={T0 + DAY}&end={T0}", "engineer")[0] == 422
        assert get(url + "/api/quality?area=nowhere", "engineer")[0] == 404
        status, body = get(url + "/api/quality", "engineer")  # the last 24 h: nothing happened
        assert status == 200 and round(body["end"] - body["start"]) == DAY
        status, body = get(url + f"/api/quality?start={T0}&end={T0 + DAY}&tz=%2B00:00", "engineer")
        assert status == 200 and body["tz"] == "+00:00"
        assert body["areas"][0]["shifts"][0]["day"] == "2026-03-01"  # 00:00 at the plant is 16:00 UTC the day before
