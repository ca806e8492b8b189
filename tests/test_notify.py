"""Who is told, when, and that a decision is made once: the notification planner over a real alert book and a
real outbox (SQLite files in tmp), on a clock the test hands in."""
from __future__ import annotations

from datetime import datetime

import pytest

from alerting.book import AlertBook
from alerting.notify import Planner
from alerting.outbox import Outbox
from config.load import DEMO, load_plant
from config.model import Tier
from config.notify import NotifyConfig
from detectors.finding import Finding

NOON = datetime.fromisoformat("2026-11-20T12:00:00+08:00").timestamp()
MIDNIGHT = datetime.fromisoformat("2026-11-20T23:30:00+08:00").timestamp()

NOTIFY = {
    "channels": [
        {"name": "duty-robot", "kind": "wecom_robot", "key": "k" * 20},
        {"name": "sms", "kind": "aliyun_sms", "access_key_id": "id", "access_key_secret": "s" * 20,
         "sign_name": "示范工厂", "template_code": "SMS_1"},
        {"name": "mail", "kind": "email", "host": "127.0.0.1", "from": "rw@example.com"},
    ],
    "people": [
        {"name": "王班长", "level": "duty_operator", "shifts": ["day"], "phone": "13800000001"},
        {"name": "夜班李工", "level": "duty_operator", "shifts": ["night"], "phone": "13800000002"},
        {"name": "安全科张科长", "level": "safety_manager", "phone": "13800000003", "email": "zhang@example.com"},
        {"name": "厂长", "level": "site_head", "phone": "13800000004"},
        {"name": "铸造车间主任", "level": "duty_operator", "areas": ["cast1"], "phone": "13800000005"},
    ],
    "routes": [
        {"tiers": ["red", "orange"], "channels": ["sms", "mail"]},
        {"tiers": ["red", "orange", "yellow"], "areas": ["dust1"], "channels": ["duty-robot"]},
    ],
    # everyone starts at the duty operator here, to watch escalation step by step
    "initial_levels": {"yellow": 0, "orange": 0, "red": 0},
    "escalate_after_min": {"red": [5, 15, 30], "orange": [15, 60]},
}


@pytest.fixture
def plant():
    base = load_plant(DEMO)
    return base.model_copy(update={"notify": NotifyConfig.model_validate(NOTIFY)})


@pytest.fixture
def db(tmp_path):
    return tmp_path / "rw.db"


def parts(plant, db):
    book = AlertBook(db, plant.point_map())
    outbox = Outbox(db)
    return book, outbox, Planner(plant, book, outbox)


def raise_alert(book, point: str, tier: Tier, at: float, rule: str = "high") -> int:
    (ev,) = book.apply([Finding(point, rule, tier, at, 99.0, "灰斗温度 99 高于红色阈值 80", "hopper 99 above red 80")])
    return ev.alert_id


def sent(outbox, **where) -> list[tuple]:
    rows = outbox.rows()
    return [(r["kind"], r["channel"], tuple(eval_list(r["recipients"]))) for r in rows
            if all(r[k] == v for k, v in where.items())]


def eval_list(text: str) -> list[str]:
    import json
    return json.loads(text)


def test_a_red_alarm_goes_to_the_duty_operator_on_shift_by_sms_and_to_the_area_robot(plant, db):
    book, outbox, planner = parts(plant, db)
    raise_alert(book, "dust1.hopper_t", Tier.RED, NOON)
    assert planner.run_once(NOON) == 2
    assert sorted(sent(outbox)) == [("raised", "duty-robot", ("13800000001",)), ("raised", "sms", ("13800000001",))]
    row = outbox.rows("WHERE channel='sms'")[0]
    assert row["title"] == "【红色预警】抛光车间除尘系统"
    assert row["text"].startswith("【红色预警·新报警】示范工厂抛光车间除尘系统：灰斗温度，灰斗温度 99 高于红色阈值 80")
    assert eval_list(row["route"]) == ["mail"]  # the fallback


def test_deciding_again_or_after_a_restart_adds_nothing(plant, db):
    book, outbox, planner = parts(plant, db)
    raise_alert(book, "dust1.hopper_t", Tier.RED, NOON)
    planner.run_once(NOON)
    assert planner.run_once(NOON + 1) == 0
    book.close(), outbox.close()
    book, outbox, planner = parts(plant, db)  # restarted: the cursor and the dedup keys are on disk
    assert planner.run_once(NOON + 2) == 0
    assert len(outbox.rows()) == 2


def test_at_night_the_night_shift_is_told_and_an_area_owner_answers_for_his_area_only(plant, db):
    book, outbox, planner = parts(plant, db)
    raise_alert(book, "cast1.water_p", Tier.ORANGE, MIDNIGHT, rule="low")
    planner.run_once(MIDNIGHT)
    assert sent(outbox, channel="sms") == [("raised", "sms", ("13800000002", "13800000005"))]


def test_an_unacknowledged_red_climbs_one_level_at_a_time_and_an_ack_stops_it(plant, db):
    book, outbox, planner = parts(plant, db)
    alert_id = raise_alert(book, "sump1.h2s", Tier.RED, NOON)
    planner.run_once(NOON)
    planner.run_once(NOON + 5 * 60)  # red: 5 min -> safety manager
    assert [r[2] for r in sent(outbox, kind="escalated")] == [("13800000003",)]
    book.ack(alert_id, "王班长", NOON + 6 * 60)
    planner.run_once(NOON + 60 * 60)
    assert [r[2] for r in sent(outbox, kind="escalated")] == [("13800000003",)]  # no site head, no repeats
    assert sent(outbox, kind="repeat") == [("repeat", "sms", ("13800000001",))]  # the one due at 5 min


def test_red_repeats_every_five_minutes_to_everyone_told_until_acknowledged(plant, db):
    book, outbox, planner = parts(plant, db)
    raise_alert(book, "sump1.h2s", Tier.RED, NOON)
    for minute in range(0, 16):
        planner.run_once(NOON + minute * 60)
    repeats = sent(outbox, kind="repeat")
    assert len([r for r in repeats if r[2] == ("13800000001",)]) == 3  # at 5, 10, 15 min
    # the safety manager, told at 5 min, hears the repeats at 10 and 15; the site head, told at 15, no repeat yet
    assert len([r for r in repeats if r[2] == ("13800000003",)]) == 2
    assert ("repeat", "sms", ("13800000004",)) not in repeats
    escalated = {r[2] for r in sent(outbox, kind="escalated")}
    assert escalated == {("13800000003",), ("13800000004",)}


def test_a_return_to_normal_is_sent_to_whoever_was_told(plant, db):
    book, outbox, planner = parts(plant, db)
    raise_alert(book, "sump1.h2s", Tier.ORANGE, NOON)
    planner.run_once(NOON + 16 * 60)  # orange: 15 min -> safety manager
    book.apply([Finding("sump1.h2s", "high", Tier.NORMAL, NOON + 17 * 60, 1.0, "硫化氢已恢复正常", "H2S normal")])
    planner.run_once(NOON + 17 * 60)
    cleared = sent(outbox, kind="cleared")
    assert sorted(r[2] for r in cleared) == [("13800000001",), ("13800000003",)]
    assert outbox.rows("WHERE kind='cleared'")[0]["title"] == "【已解除】污水池有限空间"


def test_blue_goes_nowhere_and_yellow_only_where_a_route_takes_it(plant, db):
    book, outbox, planner = parts(plant, db)
    raise_alert(book, "steel1.co_a", Tier.BLUE, NOON)
    raise_alert(book, "steel1.co_b", Tier.YELLOW, NOON)
    raise_alert(book, "dust1.inlet_t", Tier.YELLOW, NOON)
    planner.run_once(NOON)
    assert sent(outbox) == [("raised", "duty-robot", ("13800000001",))]


def test_templates_fill_named_fields_only_and_cannot_reach_into_objects(plant, db):
    notify = NotifyConfig.model_validate({**NOTIFY, "templates": {
        "red": "${tier}|${area}|${subject}|{site.__class__}|${nope}"}})
    book, outbox, planner = parts(plant.model_copy(update={"notify": notify}), db)
    raise_alert(book, "sump1.h2s", Tier.RED, NOON)
    planner.run_once(NOON)
    assert outbox.rows("WHERE channel='sms'")[0]["text"] == "红色|污水池有限空间|硫化氢浓度|{site.__class__}|${nope}"


def test_by_default_red_goes_to_every_level_at_once_as_the_domain_matrix_says(plant, db):
    notify = NotifyConfig.model_validate({k: v for k, v in NOTIFY.items()
                                          if k not in ("initial_levels", "escalate_after_min")})
    book, outbox, planner = parts(plant.model_copy(update={"notify": notify}), db)
    raise_alert(book, "sump1.h2s", Tier.RED, NOON)
    planner.run_once(NOON)
    assert sorted(r[2] for r in sent(outbox, channel="sms")) == [("13800000001",), ("13800000003",),
                                                                 ("13800000004",)]


def test_a_route_naming_an_unknown_channel_or_shift_is_a_config_error():
    with pytest.raises(ValueError, match="routes\\[0\\] names channel 'pager'"):
        NotifyConfig.model_validate({**NOTIFY, "routes": [{"tiers": ["red"], "channels": ["pager"]}]})
    with pytest.raises(ValueError, match="names shift 'weekend'"):
        NotifyConfig.model_validate({**NOTIFY, "people": [{"name": "x", "level": "site_head",
                                                           "shifts": ["weekend"]}]})
