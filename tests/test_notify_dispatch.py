"""Notifications on the wire: a storm within the robots' rate limit, an outage then recovery delivering each
message once, a restart in the middle, and a dead channel falling back to the next. Real channels against the
loopback providers of tests/fake_im.py; the dispatcher's clock is the test's, moved with the fakes' clocks."""
from __future__ import annotations

import asyncio

import pytest

from alerting.book import AlertBook
from alerting.channels import build
from alerting.notify import Dispatcher, Planner
from alerting.outbox import Outbox
from config.load import DEMO, load_plant
from config.model import Tier
from config.notify import NotifyConfig
from detectors.finding import Finding
from fake_im import FakeWebhook, FakeWecomRobot

T0 = 1_795_000_000.0  # 2026-11-18 17:46 +08:00, the day shift


class Clock:
    def __init__(self, *fakes):
        self.t, self.fakes = T0, fakes

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s
        for f in self.fakes:
            f.advance(s)


def setup(tmp_path, channel_cfgs, routes, clock, people=()):
    notify = NotifyConfig.model_validate({
        "channels": [c.model_dump(mode="python", by_alias=True) | {k: v.get_secret_value() for k, v in
                     c if hasattr(v, "get_secret_value")} for c in channel_cfgs],
        "routes": routes, "people": list(people), "initial_levels": {"red": 0, "orange": 0}})
    plant = load_plant(DEMO).model_copy(update={"notify": notify})
    db = tmp_path / "rw.db"
    book = AlertBook(db, plant.point_map())
    outbox = Outbox(db, idempotent_channels={c.name for c in channel_cfgs if c.kind == "webhook"})
    planner = Planner(plant, book, outbox)
    dispatcher = Dispatcher(outbox, {c.name: build(c) for c in notify.channels}, max_attempts=3, clock=clock)
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
