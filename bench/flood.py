"""Flood publisher: QoS 1 readings as fast as the broker acknowledges them (or at a target rate), for a duration.

Payloads are encoded once per topic with `ingest.payload` (so they have exactly the ingest's forms) around a
sentinel timestamp; per message only the timestamp is substituted (`bytes.replace`). Every (point, ts) is unique
across the run: one round publishes each of this process's points once, stamped with the round's own millisecond,
max(now, previous round + 1 ms); processes get disjoint point ids. One thread, no paho network thread: publish()
writes straight to the socket, and the PUBACKs are read between publishes, at most `--inflight` unacknowledged.

The flood points are copies of one quiet point kind (`dust1.fan_a`, fan_current: range 0-500 A, no limits), all at
85.0 A, so a flood is a flood of readings, not of alarms. The last line on stdout is the result as JSON.
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from dataclasses import asdict, dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ingest.payload import encode_batch, encode_reading, gateway_topic, point_topic

BASE_POINT = "dust1.fan_a"       # kind fan_current: range [0, 500], no alarm limits
VALUE = 85.0
SENTINEL = 9999999999.999        # encodes as these 14 bytes, replaced per message by the real stamp (same width)
SENTINEL_B = b"9999999999.999"
EPILOG = """examples:
  python -m bench.flood --broker 127.0.0.1:1883 --count 1000 --duration 10             # single readings, max rate
  python -m bench.flood --broker 127.0.0.1:1883 --count 4000 --batch 100 --duration 10  # gateway batches of 100
  python -m bench.flood --broker 127.0.0.1:1883 --first 500 --count 500 --rate 2000     # 2,000 msg/s, points 500-999
"""


def point_ids(first: int, count: int) -> list[str]:
    """The flood's point ids, `dust1.fan_a~<k>`; the plant file must declare the same ones."""
    return [f"{BASE_POINT}~{k}" for k in range(first, first + count)]


def stamp(ms: int) -> bytes:
    """Epoch milliseconds as JSON seconds with 3 decimals, always 14 bytes (until the year 2286)."""
    return b"%d.%03d" % divmod(ms, 1000)


def templates(first: int, count: int, batch: int, prefix: str = "rw/v1", site: str = "demo"
              ) -> list[tuple[str, bytes, int]]:
    """(topic, payload with the sentinel timestamp, readings carried) for one round over the points."""
    ids = point_ids(first, count)
    if batch <= 0:
        return [(point_topic(prefix, site, p), encode_reading(SENTINEL, VALUE), 1) for p in ids]
    out = []
    for lo in range(0, len(ids), batch):
        chunk = ids[lo:lo + batch]
        body = encode_batch([(p, SENTINEL, VALUE) for p in chunk])
        out.append((gateway_topic(prefix, site, f"gw{(first + lo) // batch}"), body, len(chunk)))
    return out


@dataclass
class FloodStats:
    messages_published: int = 0
    messages_acked: int = 0
    readings_published: int = 0
    readings_acked: int = 0
    refused: int = 0             # acknowledged with a failure reason code
    unacked: int = 0             # still unacknowledged when the drain gave up
    publish_s: float = 0.0       # first publish -> deadline (or last publish)
    elapsed_s: float = 0.0       # first publish -> last acknowledgement
    started_at: float = 0.0      # wall clock (time.time()) of the first publish
    ended_at: float = 0.0        # wall clock of the last acknowledgement

    @property
    def readings_per_s(self) -> float:
        return self.readings_acked / self.elapsed_s if self.elapsed_s > 0 else 0.0


def _nodelay(client, userdata, sock) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass


def flood(host: str, port: int, first: int, count: int, *, batch: int = 0, duration: float = 10.0,
          rate: float = 0.0, inflight: int = 1000, drain_s: float = 10.0, client_id: str = "") -> FloodStats:
    """Publishes rounds over points first..first+count-1 for `duration` s; rate = messages/s, 0 = as fast as
    acknowledged. Then waits up to drain_s for the outstanding PUBACKs."""
    st = FloodStats()
    carried: dict[int, int] = {}  # mid -> readings in that message

    def on_publish(client, userdata, mid, reason_code, properties) -> None:
        n = carried.pop(mid, 0)
        if reason_code.is_failure:
            st.refused += 1
            return
        st.messages_acked += 1
        st.readings_acked += n
        st.ended_at = time.time()

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    c.on_socket_open = _nodelay
    c.on_publish = on_publish
    c.max_inflight_messages_set(inflight)
    c.max_queued_messages_set(inflight)  # never reached: we keep at most `inflight` unacknowledged ourselves
    c.connect(host, port, keepalive=60)
    deadline = time.monotonic() + 10
    while not c.is_connected():
        if c.loop(0.1) or time.monotonic() > deadline:
            raise ConnectionError(f"no CONNACK from {host}:{port}")

    plan = templates(first, count, batch)
    i, last_ms, ts = 0, 0, b""
    t0 = time.perf_counter()
    st.started_at = time.time()
    end = t0 + duration
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        if rate > 0 and t0 + st.messages_published / rate > now:
            c.loop(min(t0 + st.messages_published / rate - now, 0.01))
            continue
        if len(carried) >= inflight:
            c.loop(0.01)  # wait for acknowledgements
            continue
        if i == 0:  # a new round: its own millisecond, so every (point, ts) is new
            last_ms = max(int(time.time() * 1000), last_ms + 1)
            ts = stamp(last_ms)
        topic, payload, n = plan[i]
        info = c.publish(topic, payload.replace(SENTINEL_B, ts), qos=1)
        if info.rc:
            raise ConnectionError(f"publish failed: {paho.error_string(info.rc)}")
        carried[info.mid] = n
        st.messages_published += 1
        st.readings_published += n
        i = i + 1 if i + 1 < len(plan) else 0
        if st.messages_published % 32 == 0:
            c.loop(0)  # read the PUBACKs that have arrived
    st.publish_s = time.perf_counter() - t0
    give_up = time.monotonic() + drain_s
    while carried and time.monotonic() < give_up:
        c.loop(0.05)
    st.unacked = len(carried)
    st.elapsed_s = max(st.ended_at - st.started_at, 1e-9) if st.messages_acked else 0.0
    c.disconnect()
    return st


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.flood", description=__doc__, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", default="127.0.0.1:1883", help="HOST:PORT (default %(default)s)")
    ap.add_argument("--first", type=int, default=0, help="index of the first point, dust1.fan_a~<first> "
                    "(default %(default)s); give each process its own range")
    ap.add_argument("--count", type=int, default=1000, help="points (default %(default)s)")
    ap.add_argument("--batch", type=int, default=0, help="readings per gateway message; 0 = one reading per "
                    "message on its point topic (default %(default)s)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of publishing (default %(default)s)")
    ap.add_argument("--rate", type=float, default=0.0, help="messages/s; 0 = as fast as acknowledged (default)")
    ap.add_argument("--inflight", type=int, default=1000, help="unacknowledged messages at most (default %(default)s)")
    args = ap.parse_args(argv)
    host, _, port = args.broker.rpartition(":")
    if args.batch > 0 and args.first % args.batch:
        ap.error("--first must be a multiple of --batch (gateway names follow the point index)")
    st = flood(host or "127.0.0.1", int(port), args.first, args.count, batch=args.batch, duration=args.duration,
               rate=args.rate, inflight=args.inflight)
    print(f"flood: {st.messages_acked:,}/{st.messages_published:,} messages acknowledged, "
          f"{st.readings_per_s:,.0f} readings/s over {st.elapsed_s:.1f} s", file=sys.stderr)
    print(json.dumps({**asdict(st), "readings_per_s": round(st.readings_per_s)}), flush=True)
    return 0 if st.unacked == 0 and st.refused == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
