"""Publishes the demo plant model to an MQTT broker in real time, the way the plant's sensors and gateways would.

One tick every 1 / rate_hz seconds on an absolute schedule: tick k samples the model at t = k / rate_hz and
stamps its readings with the tick's wall-clock time. Topics and payloads come from `ingest.payload`.
At QoS 1 every PUBACK is matched to its readings, so a test can check that each acknowledged reading was stored.
"""
from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from config.model import Plant
from ingest.payload import encode_batch, encode_reading, gateway_topic, point_topic
from simulators.demo_plant import DemoPlant

MAX_INFLIGHT = 1000
QUEUE_LIMIT = 50_000      # messages held while the broker is away; beyond that they are dropped and counted
CONNECT_TIMEOUT_S = 10.0
DRAIN_S = 5.0             # at the end of a run, wait this long for outstanding PUBACKs
DRAIN_ON_STOP_S = 0.5     # shorter when stopped, so stop.set() ends a run within ~1 s


@dataclass
class PublishStats:
    ticks: int = 0
    ticks_skipped: int = 0      # ticks given up because the publisher fell more than one period behind
    behind_s: float = 0.0       # worst lateness of a tick against its schedule
    sent: int = 0               # messages handed to the client (at QoS 1 held for the broker while disconnected)
    sent_readings: int = 0
    acked: int = 0              # messages the broker acknowledged (QoS 1 and 2 only)
    acked_reading_count: int = 0
    acked_readings: list[tuple[str, int]] = field(default_factory=list)  # (point_id, ts_ms), with record_acked
    refused: int = 0            # acknowledged with a failure reason code (MQTT 5), e.g. not authorised
    dropped: int = 0            # never queued: not connected at QoS 0, or the client's queue full
    connects: int = 0
    disconnects: int = 0        # connections lost (not counting the clean disconnect at the end)

    @property
    def unacked(self) -> int:
        return self.sent - self.acked - self.refused


def make_client(client_id: str = "", protocol: int = mqtt.MQTTv5) -> mqtt.Client:
    """A paho 2.x client with Nagle switched off on every socket it opens (paho leaves it on: ~40 ms stalls)."""
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    client.on_socket_open = _no_delay
    return client


def _no_delay(client: mqtt.Client, userdata, sock) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass  # unix-domain and websocket transports have no Nagle to switch off


class _Acks:
    """Matches PUBACKs to the readings each message carried.

    paho may deliver the PUBACK before publish() has returned the mid to us, so early acks are parked until the
    mid is registered. Our lock is never held while calling into paho, which holds its own locks in callbacks.
    """

    def __init__(self, stats: PublishStats, record: bool):
        self.stats = stats
        self.record = record
        self.lock = threading.Lock()
        self.pending: dict[int, list[tuple[str, int]] | int] = {}
        self.early: dict[int, bool] = {}  # mid -> refused

    def register(self, mid: int, readings: list[tuple[str, int]]) -> None:
        carried = readings if self.record else len(readings)
        with self.lock:
            refused = self.early.pop(mid, None)
            if refused is None:
                self.pending[mid] = carried
            else:
                self._settle(carried, refused)

    def on_publish(self, client, userdata, mid: int, reason_code, properties) -> None:
        refused = bool(getattr(reason_code, "is_failure", False))
        with self.lock:
            carried = self.pending.pop(mid, None)
            if carried is None:
                self.early[mid] = refused
            else:
                self._settle(carried, refused)

    def outstanding(self) -> int:
        with self.lock:
            return len(self.pending)

    def _settle(self, carried: list[tuple[str, int]] | int, refused: bool) -> None:
        if refused:
            self.stats.refused += 1
            return
        self.stats.acked += 1
        if isinstance(carried, int):
            self.stats.acked_reading_count += carried
        else:
            self.stats.acked_reading_count += len(carried)
            self.stats.acked_readings.extend(carried)


class _Route:
    """Which topic each reading goes out on: its own point topic, or its area's gateway in batches of `batch`."""

    def __init__(self, plant: Plant, batch: int):
        prefix, site = plant.broker.topic_prefix, plant.site
        self.batch = batch
        self.point_topics = [point_topic(prefix, site, p.id) for p in plant.points]
        self.areas: dict[str, list[int]] = {}
        for i, p in enumerate(plant.points):
            self.areas.setdefault(p.area, []).append(i)
        self.gateway_topics = {a: gateway_topic(prefix, site, f"gw-{a}") for a in self.areas}

    def messages(self, ids: list[str], values: list[float], ts: float):
        """Yields (topic, payload, point ids carried)."""
        if self.batch <= 0:
            for i, (pid, value) in enumerate(zip(ids, values)):
                yield self.point_topics[i], encode_reading(ts, value), (pid,)
            return
        for area, members in self.areas.items():
            for lo in range(0, len(members), self.batch):
                chunk = [ids[i] for i in members[lo:lo + self.batch]]
                body = encode_batch([(ids[i], ts, values[i]) for i in members[lo:lo + self.batch]])
                yield self.gateway_topics[area], body, chunk


def publish_plant(plant: Plant, host: str, port: int, *, rate_hz: float = 1.0, batch: int = 0, seed: int = 1,
                  duration: float | None = None, incident_at: float | None = 20.0,
                  incident_period: float | None = 360.0, qos: int = 1, stop: threading.Event | None = None,
                  on_progress: Callable[[PublishStats], None] | None = None, clock: Callable[[], float] = time.time,
                  record_acked: bool = False, client_id: str | None = None, protocol: int = mqtt.MQTTv5,
                  username: str | None = None, password: str | None = None,
                  connect_timeout: float = CONNECT_TIMEOUT_S) -> PublishStats:
    """Publishes the plant model until `duration` seconds of schedule have been sent or `stop` is set.

    batch == 0: one message per point on its point topic; batch == N: gateway messages of at most N readings,
    one gateway per area (`gw-<area>`). Raises ConnectionError if the broker cannot be reached at the start;
    after that, lost connections are re-established by paho and QoS 1 messages wait for them.
    """
    if rate_hz <= 0:
        raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
    stop = stop or threading.Event()
    model = DemoPlant(plant, seed=seed, incident_at=incident_at, incident_period=incident_period)
    route = _Route(plant, batch)
    stats = PublishStats()
    acks = _Acks(stats, record_acked)
    connected = threading.Event()
    closing = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            stats.connects += 1
            connected.set()

    def on_disconnect(client, userdata, flags, reason_code, properties) -> None:
        if connected.is_set() and not closing.is_set():  # count lost connections, not our own goodbye
            stats.disconnects += 1
        connected.clear()

    client = make_client(client_id or f"riskwatch-sim-{plant.site}-{os.getpid()}-{id(stats):x}", protocol)
    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    if qos > 0:
        client.on_publish = acks.on_publish
    if username is not None:
        client.username_pw_set(username, password)
    client.max_inflight_messages_set(MAX_INFLIGHT)
    client.max_queued_messages_set(QUEUE_LIMIT)
    client.reconnect_delay_set(min_delay=0.2, max_delay=5)  # type: ignore[arg-type]  # floats work
    client.connect_async(host, port, keepalive=30)
    client.loop_start()
    try:
        deadline = time.monotonic() + connect_timeout
        while not connected.wait(0.1):
            if stop.is_set():
                return stats
            if time.monotonic() > deadline:
                raise ConnectionError(f"no MQTT broker answered at {host}:{port} within {connect_timeout:g} s")
        _run(client, model, route, acks, stats, rate_hz=rate_hz, duration=duration, qos=qos, stop=stop,
             on_progress=on_progress, clock=clock)
        drain_until = time.monotonic() + (DRAIN_ON_STOP_S if stop.is_set() else DRAIN_S)
        while acks.outstanding() and time.monotonic() < drain_until:
            time.sleep(0.02)
        return stats
    finally:
        closing.set()
        client.disconnect()
        client.loop_stop()


def _run(client: mqtt.Client, model: DemoPlant, route: _Route, acks: _Acks, stats: PublishStats, *, rate_hz: float,
         duration: float | None, qos: int, stop: threading.Event, on_progress, clock) -> None:
    period = 1.0 / rate_hz
    start = clock()
    k = 0
    while not stop.is_set():
        t = k * period
        if duration is not None and t >= duration - 1e-9:
            return
        delay = start + t - clock()
        if delay > 0:
            if stop.wait(delay):
                return
        else:
            stats.behind_s = max(stats.behind_s, -delay)
            if -delay >= period:  # skip to the tick now due rather than burst the backlog
                missed = int(-delay // period)
                stats.ticks_skipped += missed
                k += missed
                continue
        ts = start + t
        ts_ms = int(round(round(ts, 3) * 1000))  # as ingest will read it back from the payload
        values = model.sample_array(t).tolist()
        for topic, payload, carried in route.messages(model.point_ids, values, ts):
            info = client.publish(topic, payload, qos=qos)
            # at QoS 1 a message published while disconnected is held by paho and sent after the reconnect
            held = qos > 0 and info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS and not held:
                stats.dropped += 1
                continue
            stats.sent += 1
            stats.sent_readings += len(carried)
            if qos > 0:
                acks.register(info.mid, [(pid, ts_ms) for pid in carried] if acks.record else carried)
        stats.ticks += 1
        k += 1
        if on_progress is not None:
            on_progress(stats)


async def publish_plant_async(plant: Plant, host: str, port: int, **options) -> PublishStats:
    """publish_plant in a worker thread; cancelling the task stops it and waits for the clean disconnect."""
    stop = options.pop("stop", None) or threading.Event()
    run = asyncio.ensure_future(asyncio.to_thread(publish_plant, plant, host, port, stop=stop, **options))
    try:
        return await asyncio.shield(run)
    except asyncio.CancelledError:
        stop.set()
        await run
        raise


def publish_one(host: str, port: int, topic: str, payload: bytes | str, qos: int = 1,
                timeout: float = 5.0, protocol: int = mqtt.MQTTv5) -> None:
    """Publishes one message and returns once the broker has it (PUBACK at QoS 1); raises if it does not."""
    client = make_client(protocol=protocol)
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=qos)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise TimeoutError(f"broker at {host}:{port} did not acknowledge {topic} within {timeout} s")
    finally:
        client.disconnect()
        client.loop_stop()
