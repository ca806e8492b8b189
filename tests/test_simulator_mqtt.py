"""The demo plant published through a real mosquitto: every acknowledged reading arrives and decodes cleanly."""
from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from config.load import DEMO, load_plant
from config.model import Plant
from ingest.payload import Decoder, Reading, Rejected, encode_reading, point_topic
from simulators.publish import make_client, publish_one, publish_plant, publish_plant_async

from conftest import wait_until
from ingest.broker import EmbeddedBroker, free_port

WAIT_S = 15.0  # an upper bound against hangs on a busy machine; tests never assert on speed

@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory):
    with EmbeddedBroker(tmp_path_factory.mktemp("mosquitto")) as broker:
        yield broker


@pytest.fixture(scope="module")
def plant() -> Plant:
    return load_plant(DEMO)


class Subscriber:
    """Everything under the plant's topics, collected as (topic, payload); resubscribes after a reconnect."""

    def __init__(self, broker: EmbeddedBroker, plant: Plant):
        self.filter = f"{plant.broker.topic_prefix}/{plant.site}/#"
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = make_client()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(self.filter, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_disconnect = lambda c, u, f, rc, p: self.subscribed.clear()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=1)
        self.client.connect(broker.host, broker.port, keepalive=30)

    def _on_message(self, client, userdata, message) -> None:
        with self.lock:
            self.messages.append((message.topic, message.payload))

    def __enter__(self) -> "Subscriber":
        self.client.loop_start()
        assert self.subscribed.wait(WAIT_S), "no SUBACK from the broker"
        return self

    def __exit__(self, *exc) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def decoded(self, plant: Plant) -> tuple[list[Reading], list[Rejected]]:
        decoder = Decoder(plant.point_map(), plant.ingest, plant.broker.topic_prefix, plant.site)
        readings: list[Reading] = []
        rejects: list[Rejected] = []
        with self.lock:
            messages = list(self.messages)
        for topic, payload in messages:
            decoder.decode(topic, payload, time.time(), readings, rejects)
        return readings, rejects


@pytest.mark.parametrize("batch", [0, 10])
def test_every_acknowledged_reading_reaches_a_subscriber_and_decodes(mosquitto, plant, batch):
    with Subscriber(mosquitto, plant) as sub:
        stats = publish_plant(plant, mosquitto.host, mosquitto.port, rate_hz=2.0, duration=3.0, batch=batch,
                              record_acked=True)
        assert stats.ticks + stats.ticks_skipped == 6
        assert stats.sent > 0 and stats.acked == stats.sent and stats.dropped == stats.refused == 0
        assert stats.acked_reading_count == len(stats.acked_readings) == stats.ticks * len(plant.points)
        acked = set(stats.acked_readings)

        def received() -> set[tuple[str, int]]:
            return {(r.point, r.ts_ms) for r in sub.decoded(plant)[0]}

        wait_until(lambda: acked <= received(), what="every acknowledged reading at the subscriber")
        readings, rejects = sub.decoded(plant)
        topics = {topic for topic, _ in sub.messages}

    assert rejects == []
    assert {r.point for r in readings} == {p.id for p in plant.points}
    assert len({r.ts_ms for r in readings}) == stats.ticks
    if batch == 0:
        assert all("/point/" in t for t in topics) and len(sub.messages) == stats.sent
    else:
        assert topics == {f"rw/v1/demo/gateway/gw-{a.id}" for a in plant.areas}
        assert max(p.count(b'"point"') for _, p in sub.messages) <= 10


def test_a_scaled_plant_publishes_every_copy_in_gateway_batches(mosquitto, plant):
    scaled = plant.scaled(20)
    with Subscriber(mosquitto, scaled) as sub:
        stats = publish_plant(scaled, mosquitto.host, mosquitto.port, rate_hz=2.0, duration=1.0, batch=50,
                              record_acked=True)
        acked = set(stats.acked_readings)
        wait_until(lambda: acked <= {(r.point, r.ts_ms) for r in sub.decoded(scaled)[0]}, what="scaled readings")
        readings, rejects = sub.decoded(scaled)
    assert rejects == [] and {r.point for r in readings} == {p.id for p in scaled.points}


def test_stop_ends_a_run_without_a_duration_and_disconnects(mosquitto, plant):
    stop = threading.Event()
    result = {}
    with Subscriber(mosquitto, plant) as sub:
        worker = threading.Thread(target=lambda: result.update(stats=publish_plant(
            plant, mosquitto.host, mosquitto.port, rate_hz=5.0, stop=stop)))
        worker.start()
        wait_until(lambda: sub.count() >= 3 * len(plant.points), what="three ticks")
        stop.set()
        worker.join(WAIT_S)
        assert not worker.is_alive()
    stats = result["stats"]
    assert stats.ticks >= 3 and stats.disconnects == 0


def test_the_asyncio_wrapper_stops_its_thread_when_cancelled(mosquitto, plant):
    progress: list[int] = []

    async def scenario():
        task = asyncio.create_task(publish_plant_async(plant, mosquitto.host, mosquitto.port, rate_hz=5.0,
                                                       on_progress=lambda s: progress.append(s.ticks)))
        while len(progress) < 2:
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return threading.active_count()

    before = threading.active_count()
    assert asyncio.run(asyncio.wait_for(scenario(), WAIT_S)) <= before + 1  # the to_thread worker may idle on
    assert progress[:2] == [1, 2]


def test_publishing_resumes_after_the_broker_restarts(mosquitto, plant):
    stop = threading.Event()
    result = {}
    with Subscriber(mosquitto, plant) as sub:
        worker = threading.Thread(target=lambda: result.update(stats=publish_plant(
            plant, mosquitto.host, mosquitto.port, rate_hz=5.0, stop=stop, batch=22)))
        worker.start()
        wait_until(lambda: sub.count() >= 2, what="readings before the restart")
        mosquitto.stop()
        mosquitto.start()
        seen_before = sub.count()
        wait_until(sub.subscribed.is_set, what="the subscriber to come back")
        wait_until(lambda: sub.count() >= seen_before + 3, what="readings after the restart")
        stop.set()
        worker.join(WAIT_S)
        assert not worker.is_alive()
        _, rejects = sub.decoded(plant)
    stats = result["stats"]
    assert stats.connects >= 2 and stats.disconnects >= 1 and rejects == []


def test_an_unreachable_broker_is_reported_not_waited_for_forever(plant):
    with pytest.raises(ConnectionError):
        publish_plant(plant, "127.0.0.1", free_port(), duration=1.0, connect_timeout=0.5)


def test_publish_one_returns_once_the_broker_has_the_message(mosquitto, plant):
    topic = point_topic(plant.broker.topic_prefix, plant.site, "sump1.h2s")
    with Subscriber(mosquitto, plant) as sub:
        publish_one(mosquitto.host, mosquitto.port, topic, encode_reading(time.time(), 0.4))
        wait_until(lambda: sub.count() == 1, what="the one message")
        readings, rejects = sub.decoded(plant)
    assert rejects == [] and [(r.point, r.value) for r in readings] == [("sump1.h2s", 0.4)]


def test_the_publisher_switches_off_nagle(mosquitto):
    client = make_client()
    client.connect(mosquitto.host, mosquitto.port)
    try:
        assert client.socket().getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        client.disconnect()
