"""Notifications on the wire: a storm within the robots' rate limit, an outage then recovery delivering each
message once, a restart in the middle, a dead channel falling back to the next, and SMS answers that reach some
duty phones and not others (each phone gets the alarm exactly once, counted at the provider). Real channels against
the loopback providers of tests/fake_im.py and tests/fake_sms.py; the dispatcher's clock is the test's, moved with
the fakes' clocks (the SMS fakes and channels read it directly)."""
from __future__ import annotations

import asyncio
import json

import pytest

from alerting.book import AlertBook
from alerting.channels import build
from alerting.channels.aliyun_sms import AliyunSmsChannel
from alerting.channels.base import Message
from alerting.channels.tencent_sms import TencentSmsChannel
from alerting.notify import Dispatcher, Planner
from alerting.outbox import Outbox
from config.load import DEMO, load_plant
from config.model import Tier
from config.notify import NotifyConfig
from detectors.finding import Finding
from fake_im import FakeWebhook, FakeWecomRobot
from fake_sms import FakeAliyunSms, FakeTencentSms

T0 = 1_795_000_000.0  # 2026-11-18 17:46 +08:00, the day shift
DUTY, SAFETY, HEAD = "13800001234", "13900005678", "13700009012"
MISTYPED = "1380000123"  # a digit short: the roster's pattern takes it, no mobile network does


class Clock:
    def __init__(self, *fakes):
        self.t, self.fakes = T0, fakes

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s
        for f in self.fakes:
            f.advance(s)


def setup(tmp_path, channel_cfgs, routes, clock, people=(), channels=None):
    notify = NotifyConfig.model_validate({
        "channels": [c.model_dump(mode="python", by_alias=True) | {k: v.get_secret_value() for k, v in
                     c if hasattr(v, "get_secret_value")} for c in channel_cfgs],
        "routes": routes, "people": list(people), "initial_levels": {"red": 0, "orange": 0}})
    plant = load_plant(DEMO).model_copy(update={"notify": notify})
    db = tmp_path / "rw.db"
    book = AlertBook(db, plant.point_map())
    outbox = Outbox(db, idempotent_channels={c.name for c in channel_cfgs if c.kind == "webhook"})
    planner = Planner(plant, book, outbox)
    built = {c.name: build(c) for c in notify.channels} | (channels or {})  # SMS channels come on the test's clock
    dispatcher = Dispatcher(outbox, built, max_attempts=3, clock=clock)
    return book, outbox, planner, dispatcher


def raise_many(book, n: int, at: float, tier: Tier = Tier.RED) -> None:
    book.apply([Finding("dust1.hopper_t", f"r{i}", tier, at + i * 0.1, 90.0 + i % 10, f"第{i}号报警 灰斗温度高",
                        f"alarm {i}") for i in range(n)])


def drain(planner, dispatcher, clock, minutes: int, step_s: float = 5.0) -> None:
    for _ in range(int(minutes * 60 / step_s)):
        planner.run_once(clock())
        asyncio.run(dispatcher.send_due())
        clock.advance(step_s)


def test_a_storm_of_500_red_alerts_in_a_minute_reaches_the_robot_as_digests_within_its_rate_limit(tmp_path):
    with FakeWecomRobot() as robot:
        clock = Clock(robot)
        book, outbox, planner, dispatcher = setup(tmp_path, [robot.config()],
                                                  [{"tiers": ["red"], "channels": ["duty-wecom"]}], clock)
        raise_many(book, 500, T0)
        drain(planner, dispatcher, clock, minutes=3)
        answers = [r for r in robot.received]
        assert all(r.delivered for r in answers), "the provider throttled us: the limit was not kept"
        assert 0 < len(robot.delivered) <= 20 * 3  # the fake refuses the 21st in any minute (45009)
        texts = "\n".join(r.json["markdown"]["content"] for r in robot.delivered)
        assert "报警汇总" in texts
        counts = outbox.counts()
        assert counts.get("pending", 0) == 0 and counts.get("failed", 0) == 0
        # every one of the 500 decisions was sent alone or inside a digest that was sent
        rows = outbox.rows("WHERE kind != 'digest'")
        assert len(rows) == 500 and all(r["state"] in ("sent", "merged") for r in rows)
        digests = {r["id"]: r for r in outbox.rows("WHERE kind = 'digest'")}
        assert all(digests[r["merged_into"]]["state"] == "sent" for r in rows if r["state"] == "merged")


def test_an_outage_then_recovery_delivers_every_message_exactly_once(tmp_path):
    with FakeWebhook() as hook:
        clock = Clock(hook)
        book, outbox, planner, dispatcher = setup(tmp_path, [hook.config()],
                                                  [{"tiers": ["red", "orange"], "channels": ["plant-webhook"]}], clock)
        hook.down()
        raise_many(book, 2, T0, Tier.ORANGE)
        drain(planner, dispatcher, clock, minutes=0.5)
        assert hook.delivered == [] and outbox.counts().get("pending") == 2
        hook.up()
        drain(planner, dispatcher, clock, minutes=2)
        keys = [r.json["key"] for r in hook.delivered]
        assert len(keys) == 2 and len(set(keys)) == 2
        assert outbox.counts() == {"sent": 2}


def test_a_restart_while_sending_sends_an_idempotent_channel_again_and_the_provider_keeps_one(tmp_path):
    with FakeWebhook() as hook:
        clock = Clock(hook)
        book, outbox, planner, dispatcher = setup(tmp_path, [hook.config()],
                                                  [{"tiers": ["red"], "channels": ["plant-webhook"]}], clock)
        raise_many(book, 1, T0)
        planner.run_once(clock())
        (note,) = outbox.due(clock())
        outbox.mark_sending([note.id])  # riskwatch dies here, the request in flight
        dispatcher._send("plant-webhook", [note], clock())  # (the request did reach the provider)
        outbox.close()
        book.close()
        book, outbox, planner, dispatcher = setup(tmp_path, [hook.config()],
                                                  [{"tiers": ["red"], "channels": ["plant-webhook"]}], clock)
        drain(planner, dispatcher, clock, minutes=1)
        assert len(hook.delivered) == 1  # sent again after the restart, deduplicated by the provider on our key


def test_a_restart_while_sending_does_not_send_an_sms_style_channel_twice(tmp_path):
    with FakeWecomRobot() as robot:
        clock = Clock(robot)
        route = [{"tiers": ["red"], "channels": ["duty-wecom"]}]
        book, outbox, planner, dispatcher = setup(tmp_path, [robot.config()], route, clock)
        raise_many(book, 1, T0)
        planner.run_once(clock())
        (note,) = outbox.due(clock())
        outbox.mark_sending([note.id])
        outbox.close()
        book.close()
        book, outbox, planner, dispatcher = setup(tmp_path, [robot.config()], route, clock)
        assert outbox.unknown_after_restart == 1
        drain(planner, dispatcher, clock, minutes=1)
        assert robot.delivered == [] and outbox.counts() == {"unknown": 1}


def test_a_channel_refusing_for_good_falls_back_to_the_next_one_in_the_route(tmp_path):
    with FakeWecomRobot() as robot, FakeWebhook() as hook:
        clock = Clock(robot, hook)
        wrong_key = robot.config(key="not-the-key-of-this-robot")
        book, outbox, planner, dispatcher = setup(
            tmp_path, [wrong_key, hook.config()], [{"tiers": ["red"], "channels": ["duty-wecom", "plant-webhook"]}],
            clock)
        raise_many(book, 1, T0)
        drain(planner, dispatcher, clock, minutes=1)
        assert robot.delivered == [] and len(hook.delivered) == 1
        states = {r["channel"]: (r["state"], r["provider_code"]) for r in outbox.rows()}
        assert states == {"duty-wecom": ("failed", "93000"), "plant-webhook": ("sent", "200")}


@pytest.mark.parametrize("busy_for_s", [20])
def test_a_throttled_channel_is_held_and_nothing_is_lost(tmp_path, busy_for_s):
    with FakeWebhook() as hook:
        clock = Clock(hook)
        book, outbox, planner, dispatcher = setup(tmp_path, [hook.config()],
                                                  [{"tiers": ["red"], "channels": ["plant-webhook"]}], clock)
        hook.busy()  # 429 Retry-After: 7
        raise_many(book, 3, T0)
        drain(planner, dispatcher, clock, minutes=busy_for_s / 60)
        assert hook.delivered == []
        hook.up()
        drain(planner, dispatcher, clock, minutes=2)
        assert len({r.json["key"] for r in hook.delivered}) == len(hook.delivered) >= 1
        rows = outbox.rows("WHERE kind != 'digest'")
        assert all(r["state"] in ("sent", "merged") for r in rows) and len(rows) == 3


# --- SMS answers that reach some duty phones and not others ---------------------------------------------------

def duty(*phones: str) -> list[dict]:
    names = ("王班长", "李班长", "赵班长")
    return [{"name": names[i], "level": "duty_operator", "phone": p} for i, p in enumerate(phones)]


def tencent_plant(tmp_path, tencent, clock):
    cfg = tencent.config()
    return setup(tmp_path, [cfg], [{"tiers": ["red"], "channels": [cfg.name]}], clock, people=duty(DUTY, SAFETY),
                 channels={cfg.name: TencentSmsChannel(cfg, clock)})


def first_round_with_one_phone_over_its_30_s_limit(tmp_path, tencent, clock):
    """A red alarm for two duty phones; 王班长's phone had this very text 10 s ago, so Tencent answers "Ok" for
    李班长's phone and LimitExceeded.PhoneNumberThirtySecondLimit for his."""
    book, outbox, planner, dispatcher = tencent_plant(tmp_path, tencent, clock)
    raise_many(book, 1, T0)
    planner.run_once(clock())
    (row,) = outbox.due(clock())
    assert row.recipients == (DUTY, SAFETY)
    earlier = Message("rw-earlier", row.tier, row.title, row.text, (DUTY,), row.params)
    assert TencentSmsChannel(tencent.config(), clock).send(earlier).ok
    clock.advance(10)
    assert dispatcher.send_due_now() == 1
    assert tencent.delivered == {DUTY: 1, SAFETY: 1}  # 李班长 has it now; 王班长 only the earlier one
    return book, outbox, planner, dispatcher


def test_two_duty_phones_one_over_its_30_s_limit_each_get_the_red_alarm_exactly_once(tmp_path):
    clock = Clock()
    with FakeTencentSms(clock=clock, same_text_per_30s=1) as tencent:
        book, outbox, planner, dispatcher = first_round_with_one_phone_over_its_30_s_limit(tmp_path, tencent, clock)
        first, rest = outbox.rows()
        assert first["state"] == "sent"
        assert first["provider_code"] == "partial:LimitExceeded.PhoneNumberThirtySecondLimit"
        assert "1/2 delivered" in first["last_error"] and "138****1234" in first["last_error"]
        assert DUTY not in first["last_error"] and SAFETY not in first["last_error"]
        assert (rest["state"], rest["recipients"]) == ("pending", f'["{DUTY}"]')
        assert rest["dedup"] == f"{first['dedup']}~rest1"
        assert rest["not_before"] == clock() + 30 and rest["attempts"] == 1
        assert (rest["alert_id"], rest["kind"], rest["tier"], rest["params"]) == (
            first["alert_id"], first["kind"], first["tier"], first["params"])
        drain(planner, dispatcher, clock, minutes=0.25)  # still inside his 30 s: nothing more goes out
        assert tencent.delivered == {DUTY: 1, SAFETY: 1}
        drain(planner, dispatcher, clock, minutes=2)
        assert tencent.delivered == {DUTY: 2, SAFETY: 1}  # his one after the wait; hers not again
        assert json_numbers(tencent.requests) == [[f"+86{DUTY}"], [f"+86{DUTY}", f"+86{SAFETY}"], [f"+86{DUTY}"]]
        assert outbox.counts() == {"sent": 2}


def test_a_restart_between_the_partial_answer_and_the_retry_sends_only_the_phone_still_waiting(tmp_path):
    clock = Clock()
    with FakeTencentSms(clock=clock, same_text_per_30s=1) as tencent:
        book, outbox, planner, dispatcher = first_round_with_one_phone_over_its_30_s_limit(tmp_path, tencent, clock)
        outbox.close()  # riskwatch stops with 王班长's row waiting out his 30 s
        book.close()
        book, outbox, planner, dispatcher = tencent_plant(tmp_path, tencent, clock)
        assert outbox.unknown_after_restart == 0
        drain(planner, dispatcher, clock, minutes=2)
        assert tencent.delivered == {DUTY: 2, SAFETY: 1}
        assert outbox.counts() == {"sent": 2}


def test_a_restart_while_the_waiting_phone_is_being_texted_does_not_text_anyone_again(tmp_path):
    clock = Clock()
    with FakeTencentSms(clock=clock, same_text_per_30s=1) as tencent:
        book, outbox, planner, dispatcher = first_round_with_one_phone_over_its_30_s_limit(tmp_path, tencent, clock)
        clock.advance(30)
        (rest,) = outbox.due(clock())
        outbox.mark_sending([rest.id])  # riskwatch dies here, the request in flight (and it did reach Tencent)
        in_flight = Message(f"rw-{rest.id}", rest.tier, rest.title, rest.text, rest.recipients, rest.params)
        assert dispatcher.channels[rest.channel].send(in_flight).ok
        outbox.close()
        book.close()
        book, outbox, planner, dispatcher = tencent_plant(tmp_path, tencent, clock)
        assert outbox.unknown_after_restart == 1
        drain(planner, dispatcher, clock, minutes=2)
        assert tencent.delivered == {DUTY: 2, SAFETY: 1}
        assert outbox.counts() == {"sent": 1, "unknown": 1}


def test_a_mistyped_number_on_the_roster_does_not_keep_the_red_alarm_from_the_other_duty_phones(tmp_path):
    clock = Clock()
    with FakeAliyunSms(clock=clock) as aliyun, FakeWebhook() as hook:
        sms = aliyun.config()
        book, outbox, planner, dispatcher = setup(
            tmp_path, [sms, hook.config()], [{"tiers": ["red"], "channels": [sms.name, "plant-webhook"]}], clock,
            people=duty(DUTY, MISTYPED, HEAD), channels={sms.name: AliyunSmsChannel(sms, clock)})
        raise_many(book, 1, T0)
        drain(planner, dispatcher, clock, minutes=1)
        assert aliyun.delivered == {DUTY: 1, HEAD: 1}
        assert len(aliyun.requests) == 4  # refused for all three, then one by one
        (handed_over,) = [r.json for r in hook.delivered]  # the mistyped one went on to the next channel
        assert handed_over["to"] == [MISTYPED]
        rows = {r["channel"] + ("~rest" if "~rest" in r["dedup"] else ""): r for r in outbox.rows()}
        assert (rows["duty-sms"]["state"], rows["duty-sms"]["provider_code"]) == ("sent",
                                                                                   "partial:isv.MOBILE_NUMBER_ILLEGAL")
        assert "2/3 delivered" in rows["duty-sms"]["last_error"] and MISTYPED not in rows["duty-sms"]["last_error"]
        assert (rows["duty-sms~rest"]["state"], rows["duty-sms~rest"]["recipients"]) == ("failed", f'["{MISTYPED}"]')
        assert rows["plant-webhook~rest"]["state"] == "sent"
        assert outbox.undelivered_since(T0 - 1) == 0


def json_numbers(requests) -> list[list[str]]:
    return [json.loads(r.body)["PhoneNumberSet"] for r in requests]
