"""MQTT in: paho's network loop (its own thread) hands batches of messages to asyncio; acks follow the commit.

Why paho and not aiomqtt on this path: on this machine paho receives ~15k messages/s, aiomqtt ~7k, because
aiomqtt pays asyncio overhead per message (../shared/measurements.md). Here the thread only appends to a list
and wakes the event loop once per batch.

No loss: the session is persistent (fixed client id, clean_start off, long session expiry), messages are QoS 1,
and PUBACK is sent manually only after the pipeline has committed the message's readings (or its rejection).
A process killed before the commit leaves the message unacknowledged, and the broker delivers it again.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from config.model import BrokerConfig

log = logging.getLogger("riskwatch.ingest")

SESSION_EXPIRY_S = 7 * 86400  # the broker keeps our queue this long while riskwatch is down


@dataclass(slots=True)
class Message:
    mid: int
    qos: int
    topic: str
    payload: bytes
    received_at: float
    generation: int  # which connection delivered it: an ack on a later connection would be meaningless


class MqttSource:
    """`async with MqttSource(cfg, site) as src: async for batch in src.batches(): ...; src.ack(batch)`."""

    def __init__(self, cfg: BrokerConfig, site: str, batch_max: int = 5000):
        self.cfg = cfg
        self.topic = f"{cfg.topic_prefix}/{site}/#"
        self.batch_max = batch_max
        self.connected = False
        self.connects = 0
        self.sessions_lost = 0
        self.last_error: str | None = None
        self._generation = 0
        self._pending: list[Message] = []
        self._lock = threading.Lock()
        self._signalled = False
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client = self._make_client()

    @property
    def address(self) -> str:
        return f"{self.cfg.host}:{self.cfg.port}"

    def _make_client(self) -> paho.Client:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.cfg.client_id, protocol=paho.MQTTv5,
                        manual_ack=True)
        if self.cfg.username:
            c.username_pw_set(self.cfg.username, self.cfg.password)
        c.reconnect_delay_set(min_delay=1, max_delay=10)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_socket_open = _nodelay
        return c

    async def __aenter__(self) -> "MqttSource":
        self._loop = asyncio.get_running_loop()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = self.cfg.receive_maximum
        self._client.connect_async(self.cfg.host, self.cfg.port, keepalive=15, clean_start=False, properties=props)
        self._client.loop_start()
        return self

    async def __aexit__(self, *exc) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    # --- paho's thread -------------------------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.last_error = f"connect refused: {reason_code}"
            log.error("broker %s refused the connection: %s", self.address, reason_code)
            return
        with self._lock:
            self._generation += 1
        self.connected = True
        self.connects += 1
        self.last_error = None
        if flags.session_present or self.connects == 1:
            log.info("connected to broker %s (session present: %s)", self.address, flags.session_present)
        else:  # the broker forgot our queue (restarted without persistence?): what it held for us is gone
            self.sessions_lost += 1
            log.warning("reconnected to broker %s but it kept no session for us: messages queued for riskwatch "
                        "while it was away may be lost; check the broker's persistence", self.address)
        client.subscribe(self.topic, qos=1)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected = False
        if reason_code != 0:
            self.last_error = f"disconnected: {reason_code}"
            log.warning("lost broker %s: %s; reconnecting", self.address, reason_code)

    def _on_message(self, client, userdata, msg: paho.MQTTMessage) -> None:
        # msg.topic would raise on bytes that are not UTF-8 and stop paho's thread: decode leniently
        topic = msg._topic.decode("utf-8", "backslashreplace") if isinstance(msg._topic, bytes) else str(msg.topic)
        m = Message(msg.mid, msg.qos, topic, msg.payload, time.time(), self._generation)
        with self._lock:
            self._pending.append(m)
            wake = not self._signalled
            self._signalled = True
        if wake and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    # --- asyncio side ---------------------------------------------------------------------------------------
    async def batches(self):
        while True:
            await self._wake.wait()
            with self._lock:
                batch = self._pending[: self.batch_max]
                del self._pending[: self.batch_max]
                if not self._pending:
                    self._signalled = False
                    self._wake.clear()
            if batch:
                yield batch

    def ack(self, batch: list[Message]) -> None:
        with self._lock:  # a reconnect between the check and the ack would put the PUBACK on a new connection
            gen = self._generation
            for m in batch:
                if m.qos > 0 and m.generation == gen:
                    self._client.ack(m.mid, m.qos)

    @property
    def alive(self) -> bool:
        """paho's network thread is running (it stops for good if a callback raises)."""
        thread = getattr(self._client, "_thread", None)
        return thread is not None and thread.is_alive()

    @property
    def backlog(self) -> int:
        with self._lock:
            return len(self._pending)


def _nodelay(client, userdata, sock) -> None:
    # paho leaves Nagle on, which costs a recurring ~40 ms on small messages (measurements.md).
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass
