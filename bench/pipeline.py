"""Pipeline benchmark: sustained readings/s and publish-to-websocket latency, beside a bare MQTT subscriber.

For each mode (one reading per message; gateway batches) it runs, against the same real Mosquitto:
  1. the ceiling: a bare paho subscriber that only counts, while the simulator floods the broker;
  2. riskwatch (`riskwatch serve`, a real process) under the same flood, reading its /healthz counters, while
     probe readings on a dedicated point raise and clear an alert, timed from publish to the websocket push.
Everything shares this machine's cores, so the figures are comparable within a run, not across machines.
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
EPILOG = """examples:
  python -m bench.pipeline                       # both modes, 10 s each
  python -m bench.pipeline --duration 20 --json bench-pipeline.json
  python -m bench.pipeline --modes batch --scale-batch 1000
"""


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


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
    path = tmp / f"plant-{scale}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def simulate(config: Path, broker: EmbeddedBroker, rate: float, batch: int, duration: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "riskwatch", "simulate", "--config", str(config),
                             "--broker", broker.address, "--rate", str(rate), "--batch", str(batch),
                             "--duration", str(duration), "--no-incident"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ceiling(config: Path, broker: EmbeddedBroker, rate: float, batch: int, duration: float) -> dict:
    """A bare QoS 1 subscriber that counts messages and readings and nothing else."""
    stamps: list[float] = []
    per_msg = max(batch, 1)
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-ceiling", protocol=paho.MQTTv5)
    c.on_message = lambda cl, u, m: stamps.append(time.perf_counter())
    c.on_socket_open = lambda cl, u, s: s.setsockopt(6, 1, 1)
    c.connect(broker.host, broker.port)
    c.subscribe("rw/v1/#", qos=1)
    c.loop_start()
    time.sleep(0.5)
    sim = simulate(config, broker, rate, batch, duration)
    sim.wait()
    time.sleep(1.0)
    c.loop_stop()
    c.disconnect()
    n = len(stamps)
    span = (stamps[-1] - stamps[0]) if n > 1 else float("nan")
    return {"messages": n, "readings_per_s": round(n * per_msg / span) if n > 1 else 0,
            "messages_per_s": round(n / span) if n > 1 else 0}


def riskwatch_run(config: Path, broker: EmbeddedBroker, api_port: int, rate: float, batch: int, duration: float,
                  probes_per_s: float = 10.0) -> dict:
    log = open(config.with_suffix(".log"), "wb")
    rw = subprocess.Popen([sys.executable, "-m", "riskwatch", "serve", "--config", str(config)], cwd=ROOT,
                          stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.1", api_port, 60)
        health = lambda: json.load(urllib.request.urlopen(f"http://127.0.0.1:{api_port}/healthz", timeout=10))
        while not health()["broker"]["connected"]:
            time.sleep(0.1)
        pushes: dict[float, float] = {}
        ws = connect(f"ws://127.0.0.1:{api_port}/ws", open_timeout=10, max_size=None)
        ws.send(json.dumps({"token": TOKEN, "since": None}))

        def listen() -> None:
            try:
                for raw in ws:
                    msg = json.loads(raw)
                    if msg["type"] == "alert_event" and msg["event"]["point"] == PROBE:
                        pushes.setdefault(round(msg["event"]["ts"], 3), time.time())
            except Exception:
                return

        threading.Thread(target=listen, daemon=True).start()
        probe = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe", protocol=paho.MQTTv5)
        probe.on_socket_open = lambda cl, u, s: s.setsockopt(6, 1, 1)
        probe.connect(broker.host, broker.port)
        probe.loop_start()
        start_count = health()["readings"]["accepted"]
        t0 = time.perf_counter()
        sim = simulate(config, broker, rate, batch, duration)
        sent: list[float] = []
        k = 0
        while sim.poll() is None:
            ts = round(time.time(), 3)
            probe.publish(f"rw/v1/demo/point/{PROBE}", json.dumps({"ts": ts, "value": 90 if k % 2 == 0 else 10}), qos=1)
            sent.append(ts)
            k += 1
            time.sleep(1 / probes_per_s)
        load_s = time.perf_counter() - t0
        during = health()["readings"]["accepted"] - start_count
        deadline = time.monotonic() + 120
        last = -1
        while time.monotonic() < deadline:  # drain: whatever was queued in the broker is still processed
            h = health()["readings"]
            if h["accepted"] == last and h["backlog"] == 0:
                break
            last = h["accepted"]
            time.sleep(1.0)
        total = health()["readings"]["accepted"] - start_count
        drain_s = time.perf_counter() - t0 - load_s
        probe.loop_stop()
        probe.disconnect()
        ws.close()
        lat = np.array([(pushes[t] - t) * 1000 for t in sent if t in pushes])
        return {"readings_per_s_during_load": round(during / load_s), "readings_total": total,
                "readings_per_s_including_drain": round(total / (load_s + drain_s)), "drain_s": round(drain_s, 1),
                "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
                               "p99": round(float(np.percentile(lat, 99)), 1) if len(lat) else None,
                               "max": round(float(lat.max()), 1) if len(lat) else None,
                               "probes": len(sent), "pushed": int(len(lat))}}
    finally:
        rw.terminate()
        rw.wait(30)
        log.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of load per run (default %(default)s)")
    ap.add_argument("--modes", default="single,batch", help="single, batch or both (default %(default)s)")
    ap.add_argument("--scale-single", type=int, default=50, help="plant copies for single mode (22 points each)")
    ap.add_argument("--rate-single", type=float, default=10.0, help="Hz per point in single mode")
    ap.add_argument("--scale-batch", type=int, default=200, help="plant copies for batch mode")
    ap.add_argument("--rate-batch", type=float, default=10.0, help="Hz per point in batch mode")
    ap.add_argument("--batch", type=int, default=100, help="readings per gateway message in batch mode")
    ap.add_argument("--json", help="write the results to this file")
    args = ap.parse_args(argv)
    results: dict = {"duration_s": args.duration}
    with tempfile.TemporaryDirectory(prefix="rw-bench-") as tmp, EmbeddedBroker(Path(tmp) / "broker") as broker:
        for mode in args.modes.split(","):
            scale, rate, batch = ((args.scale_single, args.rate_single, 0) if mode == "single"
                                  else (args.scale_batch, args.rate_batch, args.batch))
            api_port = free_port()
            config = plant_file(Path(tmp), scale, broker, api_port)
            offered = 22 * scale * rate
            say(f"[{mode}] {22 * scale} points at {rate:g} Hz = {offered:,.0f} readings/s offered; "
                f"{'batches of %d' % batch if batch else 'one reading per message'}")
            say(f"[{mode}] 1/2 ceiling: bare subscriber, {args.duration:g} s ...")
            base = ceiling(config, broker, rate, batch, args.duration)
            say(f"[{mode}]     {base['readings_per_s']:,} readings/s")
            say(f"[{mode}] 2/2 riskwatch, {args.duration:g} s + drain ...")
            rw = riskwatch_run(config, broker, api_port, rate, batch, args.duration)
            say(f"[{mode}]     {rw['readings_per_s_during_load']:,} readings/s, latency p50 "
                f"{rw['latency_ms']['p50']} ms p99 {rw['latency_ms']['p99']} ms")
            ratio = rw["readings_per_s_during_load"] / base["readings_per_s"] if base["readings_per_s"] else None
            results[mode] = {"offered_readings_per_s": offered, "ceiling": base, "riskwatch": rw,
                             "ratio_to_ceiling": round(ratio, 3) if ratio else None}
    out = json.dumps(results, indent=2)
    print(out)
    if args.json:
        Path(args.json).write_text(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
