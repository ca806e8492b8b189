"""Pipeline benchmark: sustained readings/s and publish-to-websocket latency, beside a bare MQTT subscriber.

For each mode (one reading per message; gateway batches of 100) and each load (a flood past saturation for
throughput; a moderate load for latency), against the same real Mosquitto, it runs:
  - the baseline: a bare paho subscriber that only counts (and timestamps the probe messages);
  - riskwatch (`riskwatch serve`, a real process), read through /healthz and a websocket client.
During every run a probe publisher sends 10 readings/s on a dedicated point, alternately above and below its
red limit, and the time from publish to arrival (baseline) or to the alert event on the websocket (riskwatch)
is the latency. All processes share this machine's cores: compare within a run, not across machines.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Callable

import numpy as np
import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from websockets.sync.client import connect

from config.load import DEMO
from ingest.broker import EmbeddedBroker, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-0123456789abcdef"
PROBE = "bench.probe"
PROBE_TOPIC = f"rw/v1/demo/point/{PROBE}"
EPILOG = """examples:
  python -m bench.pipeline                            # both modes, 10 s per run (about 3 minutes)
  python -m bench.pipeline --duration 20 --json bench-pipeline.json
  python -m bench.pipeline --modes batch --flood-scale-batch 400
"""


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _client(client_id: str) -> paho.Client:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    c.on_socket_open = lambda cl, u, s: s.setsockopt(6, 1, 1)  # TCP_NODELAY, as riskwatch and the simulator
    return c


def plant_file(tmp: Path, scale: int, broker: EmbeddedBroker, api_port: int) -> Path:
    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    base = list(raw["points"])
    raw["points"] = [{**p, "id": f"{p['id']}~{k}"} for k in range(scale) for p in base] if scale > 1 else base
    raw["points"].append({"id": PROBE, "name": "基准探针", "area": raw["areas"][0]["id"], "unit": "", "range": [0, 100],
                          "interval_s": 86400, "high": {"red": 50}})
    raw["broker"] = {"host": broker.host, "port": broker.port, "client_id": f"bench-{api_port}"}
    raw["store"] = {"path": str(tmp / f"bench-{api_port}.db")}
    raw["api"] = {"host": "127.0.0.1", "port": api_port, "value_push_interval_s": 1.0}
    raw["users"] = [{"name": "bench", "role": "admin", "token": TOKEN}]
    path = tmp / f"plant-{scale}-{api_port}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def load(config: Path, broker: EmbeddedBroker, rate: float, batch: int, duration: float) -> tuple[list[float], float]:
    """The simulator floods for `duration` while probes go out at 10/s. Returns (probe publish times, seconds)."""
    probe = _client(f"bench-probe-{time.monotonic_ns()}")
    probe.connect(broker.host, broker.port)
    probe.loop_start()
    sim = subprocess.Popen([sys.executable, "-m", "riskwatch", "simulate", "--config", str(config),
                            "--broker", broker.address, "--rate", str(rate), "--batch", str(batch),
                            "--duration", str(duration), "--no-incident"], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.perf_counter()
    sent: list[float] = []
    while sim.poll() is None:
        ts = round(time.time(), 3)
        probe.publish(PROBE_TOPIC, json.dumps({"ts": ts, "value": 90 if len(sent) % 2 == 0 else 10}), qos=1)
        sent.append(ts)
        time.sleep(0.1)
    elapsed = time.perf_counter() - t0
    probe.loop_stop()
    probe.disconnect()
    if sim.returncode != 0:
        raise RuntimeError(f"the simulator failed with exit code {sim.returncode}")
    return sent, elapsed


def latency(sent: list[float], arrived: dict[float, float]) -> dict:
    lat = np.array([(arrived[t] - t) * 1000 for t in sent if t in arrived])
    if not len(lat):
        return {"p50": None, "p99": None, "max": None, "probes": len(sent), "arrived": 0}
    return {"p50": round(float(np.percentile(lat, 50)), 1), "p99": round(float(np.percentile(lat, 99)), 1),
            "max": round(float(lat.max()), 1), "probes": len(sent), "arrived": int(len(lat))}


def baseline(config: Path, broker: EmbeddedBroker, rate: float, batch: int, duration: float) -> dict:
    """A bare QoS 1 subscriber that counts messages and nothing else (and notes when each probe arrives)."""
    stamps: list[float] = []
    readings = [0]
    probes: dict[float, float] = {}

    def on_message(cl, u, m) -> None:
        stamps.append(time.perf_counter())
        readings[0] += m.payload.count(b'"point"') if batch else 1  # gateway messages vary in size
        if m.topic == PROBE_TOPIC:
            probes[json.loads(m.payload)["ts"]] = time.time()

    c = _client(f"bench-baseline-{time.monotonic_ns()}")
    c.on_message = on_message
    c.connect(broker.host, broker.port)
    c.subscribe("rw/v1/#", qos=1)
    c.loop_start()
    time.sleep(0.5)
    sent, _ = load(config, broker, rate, batch, duration)
    time.sleep(1.0)
    c.loop_stop()
    c.disconnect()
    n = readings[0] - len(probes)
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
    return {"readings_per_s": round(n / span) if n > 1 else 0, "latency_ms": latency(sent, probes)}


def watch_socket(api_port: int, arrived: dict[float, float], done: threading.Event, reconnects: list[int]) -> None:
    """Like the wall display: on a drop (e.g. 4408 after a storm) reconnect with the last seq seen."""
    since = None
    while not done.is_set():
        try:
            with connect(f"ws://127.0.0.1:{api_port}/ws", open_timeout=10, max_size=None) as ws:
                ws.send(json.dumps({"token": TOKEN, "since": since}))
                for raw in ws:
                    msg = json.loads(raw)
                    since = max(since or 0, msg.get("seq", 0))
                    if msg["type"] == "alert_event" and msg["event"]["point"] == PROBE:
                        arrived.setdefault(round(msg["event"]["ts"], 3), time.time())
                    if done.is_set():
                        return
        except Exception:
            pass
        reconnects[0] += 1
        time.sleep(0.2)


def riskwatch(config: Path, broker: EmbeddedBroker, api_port: int, rate: float, batch: int, duration: float) -> dict:
    log = open(config.with_suffix(".log"), "wb")
    rw = subprocess.Popen([sys.executable, "-m", "riskwatch", "serve", "--config", str(config)], cwd=ROOT,
                          stdout=log, stderr=subprocess.STDOUT)
    done = threading.Event()
    try:
        wait_for_port("127.0.0.1", api_port, 60)
        health: Callable[[], dict] = lambda: json.load(
            urllib.request.urlopen(f"http://127.0.0.1:{api_port}/healthz", timeout=10))
        while not health()["broker"]["connected"]:
            time.sleep(0.1)
        arrived: dict[float, float] = {}
        reconnects = [0]
        threading.Thread(target=watch_socket, args=(api_port, arrived, done, reconnects), daemon=True).start()
        time.sleep(0.5)
        start = health()["readings"]["accepted"]
        sent, load_s = load(config, broker, rate, batch, duration)
        during = health()["readings"]["accepted"] - start
        t_end, last = time.perf_counter(), -1
        while time.perf_counter() - t_end < 120:  # drain what the broker still holds for us
            h = health()["readings"]
            if h["accepted"] == last and h["backlog"] == 0:
                break
            last = h["accepted"]
            time.sleep(1.0)
        total = health()["readings"]["accepted"] - start
        drain_s = time.perf_counter() - t_end
        return {"readings_per_s": round(during / load_s), "readings_total": total,
                "readings_per_s_with_drain": round(total / (load_s + drain_s)), "drain_s": round(drain_s, 1),
                "latency_ms": latency(sent, arrived), "websocket_reconnects": reconnects[0],
                "rejected": health()["readings"]["rejected"]}
    finally:
        done.set()
        rw.terminate()
        rw.wait(30)
        log.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of load per run (default %(default)s)")
    ap.add_argument("--modes", default="single,batch", help="single, batch or both (default %(default)s)")
    ap.add_argument("--rate", type=float, default=10.0, help="Hz per point (default %(default)s)")
    ap.add_argument("--flood-scale-single", type=int, default=50, help="plant copies (22 points each) for the "
                    "single-message flood (default %(default)s: 11,000 readings/s offered)")
    ap.add_argument("--flood-scale-batch", type=int, default=200, help="plant copies for the batch flood "
                    "(default %(default)s: 44,000 readings/s offered)")
    ap.add_argument("--moderate-scale", type=int, default=9, help="plant copies for the latency run "
                    "(default %(default)s: ~2,000 readings/s)")
    ap.add_argument("--batch", type=int, default=100, help="readings per gateway message (default %(default)s)")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    results: dict = {"duration_s": args.duration, "rate_hz": args.rate}
    runs = [(mode, load_name) for mode in args.modes.split(",") for load_name in ("flood", "moderate")]
    with tempfile.TemporaryDirectory(prefix="rw-bench-") as tmp, EmbeddedBroker(Path(tmp) / "broker") as broker:
        for i, (mode, load_name) in enumerate(runs, 1):
            batch = 0 if mode == "single" else args.batch
            scale = (args.moderate_scale if load_name == "moderate"
                     else args.flood_scale_single if mode == "single" else args.flood_scale_batch)
            api_port = free_port()
            config = plant_file(Path(tmp), scale, broker, api_port)
            offered = 22 * scale * args.rate
            head = f"[{i}/{len(runs)} {mode} {load_name}]"
            say(f"{head} {22 * scale:,} points at {args.rate:g} Hz = {offered:,.0f} readings/s offered, "
                f"{'batches of %d' % batch if batch else 'one reading per message'}")
            say(f"{head} baseline (bare subscriber), {args.duration:g} s ...")
            base = baseline(config, broker, args.rate, batch, args.duration)
            say(f"{head}   {base['readings_per_s']:,} readings/s, latency p50 {base['latency_ms']['p50']} ms, "
                f"p99 {base['latency_ms']['p99']} ms")
            say(f"{head} riskwatch, {args.duration:g} s + drain ...")
            rw = riskwatch(config, broker, api_port, args.rate, batch, args.duration)
            say(f"{head}   {rw['readings_per_s']:,} readings/s, latency p50 {rw['latency_ms']['p50']} ms, "
                f"p99 {rw['latency_ms']['p99']} ms")
            ratio = rw["readings_per_s"] / base["readings_per_s"] if base["readings_per_s"] else None
            results[f"{mode}_{load_name}"] = {"offered_readings_per_s": offered, "baseline": base, "riskwatch": rw,
                                              "throughput_ratio": round(ratio, 3) if ratio else None}
    out = json.dumps(results, indent=2)
    print(out)
    if args.json:
        Path(args.json).write_text(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
