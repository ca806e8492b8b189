"""The alert book: one alert per (point, rule) episode, acknowledged by a named operator, kept in an append-only
event log that survives a restart. Real SQLite files under tmp_path."""
from __future__ import annotations

import sqlite3

import pytest

from alerting.book import AckError, AlertBook
from config.load import DEMO, load_plant
from config.model import Tier
from detectors.finding import Finding

T0 = 1_732_300_000.0
POINTS = load_plant(DEMO).point_map()
HOPPER = "dust1.hopper_t"
O2 = "sump1.o2"


def finding(tier: Tier, at_s: float, point: str = HOPPER, rule: str = "high", value: float | None = 75.0) -> Finding:
    name = POINTS[point].name if point in POINTS else point
    return Finding(point, rule, tier, T0 + at_s, value, f"{name} {tier.zh}", f"{point} {tier.label}")


@pytest.fixture
def book_path(tmp_path):
    return tmp_path / "alerts.db"


@pytest.fixture
def book(book_path):
    b = AlertBook(book_path, POINTS)
    yield b
    b.close()


def kinds(events) -> list[tuple[str, Tier]]:
    return [(e.kind, e.tier) for e in events]


def hopper_episode(book: AlertBook):
    """Self-heating: blue, yellow, red, back to orange, then the hopper is cooled and the alarm clears."""
    events = []
    for tier, at_s in ((Tier.BLUE, 0), (Tier.YELLOW, 60), (Tier.RED, 120), (Tier.ORANGE, 300), (Tier.NORMAL, 600)):
        events += book.apply([finding(tier, at_s)])
    return events


# --- the lifecycle ------------------------------------------------------------------------------------------

def test_a_self_heating_hopper_is_raised_escalated_eased_and_cleared_in_one_alert(book):
    events = hopper_episode(book)
    assert kinds(events) == [("raised", Tier.BLUE), ("tier_up", Tier.YELLOW), ("tier_up", Tier.RED),
                             ("tier_down", Tier.ORANGE), ("cleared", Tier.NORMAL)]
    assert len({e.alert_id for e in events}) == 1
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    alert = book.get(events[0].alert_id)
    assert (alert.point, alert.area, alert.rule) == (HOPPER, "dust1", "high")
    assert (alert.state, alert.tier, alert.max_tier) == ("cleared", Tier.ORANGE, Tier.RED)
    assert (alert.raised_at, alert.cleared_at) == (T0, T0 + 600)


def test_each_event_carries_the_alert_as_it_was_at_that_moment(book):
    events = hopper_episode(book)
    assert [e.alert.tier for e in events] == [Tier.BLUE, Tier.YELLOW, Tier.RED, Tier.ORANGE, Tier.ORANGE]
    assert [e.alert.state for e in events] == ["active"] * 4 + ["cleared"]
    assert events[2].reason_zh == "灰斗温度 红色" and events[2].alert.reason_zh == "灰斗温度 红色"


def test_a_finding_at_the_tier_already_held_adds_nothing(book):
    book.apply([finding(Tier.ORANGE, 0)])
    assert book.apply([finding(Tier.ORANGE, 1), finding(Tier.ORANGE, 2)]) == []
    assert book.last_seq() == 1


def test_a_normal_finding_without_an_open_alert_adds_nothing(book):
    assert book.apply([finding(Tier.NORMAL, 0)]) == []
    assert book.last_seq() == 0 and book.listed() == []


def test_one_alert_per_point_and_rule_and_a_new_episode_after_clearing_gets_a_new_id(book):
    first = book.apply([finding(Tier.YELLOW, 0), finding(Tier.ORANGE, 10)])
    assert first[0].alert_id == first[1].alert_id
    low = book.apply([finding(Tier.RED, 20, point=O2, rule="low", value=17.9)])
    stale = book.apply([finding(Tier.BLUE, 20, point=O2, rule="stale", value=None)])
    assert len({first[0].alert_id, low[0].alert_id, stale[0].alert_id}) == 3
    book.apply([finding(Tier.NORMAL, 30)])
    again = book.apply([finding(Tier.YELLOW, 100)])
    assert kinds(again) == [("raised", Tier.YELLOW)] and again[0].alert_id != first[0].alert_id


def test_findings_in_one_batch_become_events_in_order(book):
    events = book.apply([finding(Tier.BLUE, 0), finding(Tier.RED, 1, point=O2, rule="low"),
                         finding(Tier.YELLOW, 2), finding(Tier.NORMAL, 3, point=O2, rule="low")])
    assert [(e.alert.point, e.kind) for e in events] == [(HOPPER, "raised"), (O2, "raised"), (HOPPER, "tier_up"),
                                                         (O2, "cleared")]
    assert [e.seq for e in events] == [1, 2, 3, 4]


def test_a_batch_that_fails_half_way_leaves_the_book_as_it_was(book):
    book.apply([finding(Tier.RED, 0)])
    # a detector bug hands over a complex number (an FFT's output), which SQLite cannot store: all or nothing
    with pytest.raises(sqlite3.Error):
        book.apply([finding(Tier.BLUE, 5, point=O2, rule="low"), finding(Tier.NORMAL, 10, value=complex(30, 0))])
    assert book.open_tiers() == {(HOPPER, "high"): Tier.RED}
    assert book.last_seq() == 1 and [a.point for a in book.listed()] == [HOPPER]
    assert [e.kind for e in book.apply([finding(Tier.NORMAL, 20)])] == ["cleared"]


# --- acknowledgement ----------------------------------------------------------------------------------------

def test_an_operator_acknowledges_a_red_alarm_and_the_book_records_who_when_and_the_note(book):
    raised = book.apply([finding(Tier.RED, 0)])[0]
    ack = book.ack(raised.alert_id, "张工", T0 + 90, "已通知现场核查")
    assert (ack.kind, ack.tier, ack.actor, ack.note, ack.ts) == ("acked", Tier.RED, "张工", "已通知现场核查", T0 + 90)
    assert ack.seq == raised.seq + 1
    alert = book.get(raised.alert_id)
    assert (alert.acked_by, alert.acked_at, alert.ack_note) == ("张工", T0 + 90, "已通知现场核查")
    assert alert.state == "active" and alert.listed


def test_an_acknowledgement_without_a_note_stores_no_note(book):
    raised = book.apply([finding(Tier.BLUE, 0)])[0]
    assert book.ack(raised.alert_id, "李工", T0 + 5).note is None
    assert book.get(raised.alert_id).ack_note is None


def test_a_second_acknowledgement_is_refused_and_logs_nothing(book):
    raised = book.apply([finding(Tier.RED, 0)])[0]
    book.ack(raised.alert_id, "张工", T0 + 90)
    with pytest.raises(AckError, match="张工"):
        book.ack(raised.alert_id, "李工", T0 + 95)
    assert book.get(raised.alert_id).acked_by == "张工"
    assert [e.kind for e in book.events_since(0)] == ["raised", "acked"]


def test_acknowledging_an_alert_that_does_not_exist_is_a_key_error(book):
    with pytest.raises(KeyError):
        book.ack(404, "张工", T0)


def test_a_higher_tier_after_an_acknowledgement_needs_a_new_acknowledgement(book):
    raised = book.apply([finding(Tier.YELLOW, 0)])[0]
    book.ack(raised.alert_id, "张工", T0 + 30, "黄色已知悉")
    up = book.apply([finding(Tier.RED, 60)])[0]
    assert up.kind == "tier_up" and up.alert.acked_by is None
    alert = book.get(raised.alert_id)
    assert (alert.acked_by, alert.acked_at, alert.ack_note) == (None, None, None)
    again = book.ack(raised.alert_id, "李工", T0 + 70, "红色已处置")
    assert again.kind == "acked" and book.get(raised.alert_id).acked_by == "李工"


def test_a_lower_tier_after_an_acknowledgement_keeps_it(book):
    raised = book.apply([finding(Tier.RED, 0)])[0]
    book.ack(raised.alert_id, "张工", T0 + 30)
    assert book.apply([finding(Tier.YELLOW, 60)])[0].kind == "tier_down"
    assert book.get(raised.alert_id).acked_by == "张工"


def test_a_cleared_alarm_nobody_acknowledged_stays_listed_until_someone_does(book):
    raised = book.apply([finding(Tier.ORANGE, 0)])[0]
    book.apply([finding(Tier.NORMAL, 120)])
    listed = book.listed()
    assert [(a.id, a.state) for a in listed] == [(raised.alert_id, "cleared")] and listed[0].listed
    assert book.open_tiers() == {} and book.counts_by_tier()["orange"] == 0
    ack = book.ack(raised.alert_id, "张工", T0 + 300, "夜班时发生，已复核")
    assert ack.alert.state == "cleared" and not ack.alert.listed
    assert book.listed() == []
    with pytest.raises(AckError):
        book.ack(raised.alert_id, "李工", T0 + 400)


def test_an_acknowledged_alarm_leaves_the_list_when_it_clears(book):
    raised = book.apply([finding(Tier.ORANGE, 0)])[0]
    book.ack(raised.alert_id, "张工", T0 + 30)
    book.apply([finding(Tier.NORMAL, 120)])
    assert book.listed() == []
    with pytest.raises(AckError):
        book.ack(raised.alert_id, "张工", T0 + 130)


def test_the_list_puts_the_highest_tier_first(book):
    book.apply([finding(Tier.BLUE, 0, point="sump1.h2s"), finding(Tier.RED, 1, point=O2, rule="low"),
                finding(Tier.YELLOW, 2)])
    assert [a.tier for a in book.listed()] == [Tier.RED, Tier.YELLOW, Tier.BLUE]


def test_counts_by_tier_count_the_open_alerts(book):
    assert book.counts_by_tier() == {"red": 0, "orange": 0, "yellow": 0, "blue": 0}
    book.apply([finding(Tier.RED, 0), finding(Tier.RED, 0, point=O2, rule="low"),
                finding(Tier.YELLOW, 0, point="sump1.h2s"), finding(Tier.BLUE, 0, point="steel1.co_a"),
                finding(Tier.BLUE, 0, point="steel1.co_b")])
    assert book.counts_by_tier() == {"red": 2, "orange": 0, "yellow": 1, "blue": 2}
    book.apply([finding(Tier.ORANGE, 10), finding(Tier.NORMAL, 10, point="steel1.co_a")])
    assert book.counts_by_tier() == {"red": 1, "orange": 1, "yellow": 1, "blue": 1}


# --- the event log ------------------------------------------------------------------------------------------

def test_events_since_returns_exactly_the_events_after_a_seq_in_order(book):
    all_events = hopper_episode(book)
    all_events.append(book.ack(all_events[0].alert_id, "张工", T0 + 700))
    for seq in range(0, len(all_events) + 2):
        got = book.events_since(seq)
        assert [e.seq for e in got] == [e.seq for e in all_events if e.seq > seq]
        assert [(e.kind, e.tier, e.ts, e.actor) for e in got] == \
               [(e.kind, e.tier, e.ts, e.actor) for e in all_events if e.seq > seq]
    assert [e.seq for e in book.events_since(1, limit=2)] == [2, 3]
    assert book.last_seq() == all_events[-1].seq


def test_the_event_log_refuses_updates_and_deletes(book, book_path):
    hopper_episode(book)
    db = sqlite3.connect(book_path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE alert_events SET actor = 'someone else'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM alert_events WHERE kind = 'raised'")
    finally:
        db.close()
    assert len(book.events_since(0)) == 5


# --- restart ------------------------------------------------------------------------------------------------

def test_everything_survives_closing_and_reopening_the_book(book_path):
    book = AlertBook(book_path, POINTS)
    hopper = book.apply([finding(Tier.RED, 0)])[0]
    o2 = book.apply([finding(Tier.ORANGE, 5, point=O2, rule="low", value=19.4)])[0]
    h2s = book.apply([finding(Tier.YELLOW, 6, point="sump1.h2s")])[0]
    book.apply([finding(Tier.NORMAL, 50, point="sump1.h2s")])  # cleared, not acknowledged: stays listed
    book.ack(hopper.alert_id, "张工", T0 + 20, "已通知现场")
    co = book.apply([finding(Tier.BLUE, 7, point="steel1.co_a")])[0]
    book.ack(co.alert_id, "李工", T0 + 30)
    book.apply([finding(Tier.NORMAL, 60, point="steel1.co_a")])  # cleared and acknowledged: gone
    before = {"listed": [(a.id, a.tier, a.state, a.acked_by) for a in book.listed()],
              "open": book.open_tiers(), "counts": book.counts_by_tier(), "seq": book.last_seq(),
              "log": [(e.seq, e.kind, e.tier, e.actor, e.note) for e in book.events_since(0)]}
    book.close()

    book = AlertBook(book_path, POINTS)
    try:
        after = {"listed": [(a.id, a.tier, a.state, a.acked_by) for a in book.listed()],
                 "open": book.open_tiers(), "counts": book.counts_by_tier(), "seq": book.last_seq(),
                 "log": [(e.seq, e.kind, e.tier, e.actor, e.note) for e in book.events_since(0)]}
        assert after == before
        assert {a.id for a in book.listed()} == {hopper.alert_id, o2.alert_id, h2s.alert_id}
        assert book.open_tiers() == {(HOPPER, "high"): Tier.RED, (O2, "low"): Tier.ORANGE}
        # the reopened book carries on with the same alerts
        with pytest.raises(AckError):
            book.ack(hopper.alert_id, "王工", T0 + 100)
        down = book.apply([finding(Tier.ORANGE, 100)])[0]
        assert (down.kind, down.alert_id) == ("tier_down", hopper.alert_id)
        assert down.seq == before["seq"] + 1
        assert book.ack(h2s.alert_id, "王工", T0 + 110).alert.state == "cleared"
        assert {a.id for a in book.listed()} == {hopper.alert_id, o2.alert_id}
        assert book.get(hopper.alert_id).ack_note == "已通知现场"
    finally:
        book.close()


def test_an_alert_for_a_point_no_longer_configured_is_kept_with_no_area(book):
    ev = book.apply([finding(Tier.BLUE, 0, point="dust9.removed")])[0]
    assert ev.alert.area == "" and ev.kind == "raised"


def test_event_json_names_tiers_by_colour(book):
    ev = book.apply([finding(Tier.RED, 0)])[0]
    body = ev.to_json()
    assert (body["tier"], body["alert"]["tier"], body["point"], body["area"]) == ("red", "red", HOPPER, "dust1")
