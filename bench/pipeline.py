"""Pipeline benchmark: sustained readings/s and publish-to-websocket latency, beside a bare MQTT subscriber.

For each mode (one reading per message; gateway batches of 100) and each load, against the same real Mosquitto:
  - flood: `bench.flood` processes publish QoS 1 as fast as the broker acknowledges, more than a bare subscriber
    can take, so the bare subscriber's rate is a ceiling (a warning says so when it is not). The flood points are
    copies of a quiet point kind (no limits, reporting interval 1 h: no alarm or offline storm).
  - moderate: `riskwatch simulate` publishes the demo plant model (realistic data) at ~2,000 readings/s, for latency.
Each load is run twice: to the baseline, a bare paho subscriber that only counts (and timestamps probe messages),
then to riskwatch (`riskwatch serve`, a real process), read through /healthz and a websocket client.
A probe publisher sends 10 readings/s on a dedicated point, alternately above and below its red limit; the time
from publish to arrival (baseline) or to the alert event on the websocket (riskwatch) is the latency.

Reported per run: offered = readings the broker acknowledged to the publishers / publishing time; readings_per_s =
received (baseline) or stored (riskwatch) while the publishers ran; drain = what arrived after they stopped, from
the broker's queue, with the cores free of publishers. All processes share this machine's cores: compare within a
run, not across machines.
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
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
from websockets.sync.client import connect

from bench.flood import BASE_POINT, point_ids
from config.load import DEMO
from ingest.broker import EmbeddedBroker, free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-0123456789abcdef"
PROBE = "bench.probe"
PROBE_TOPIC = f"rw/v1/demo/point/{PROBE}"
SAMPLE_S = 0.25
WARNING = "the publisher, not the subscriber, was the limit"
EPILOG = """examples:
  python -m bench.pipeline                            # both modes, 10 s per run (a few minutes)
  python -m bench.pipeline --duration 20 --json bench-pipeline.json
  python -m bench.pipeline --modes batch --loads flood --flood-processes-batch 3
  python -m bench.flood --help                        # the flood publisher on its own
"""


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _client(client_id: str) -> paho.Client:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    c.on_socket_open = lambda cl, u, s: s.setsockopt(6, 1, 1)  # TCP_NODELAY, as riskwatch and the simulator
    return c


def plant_file(tmp: Path, name: str, points: list[dict], broker: EmbeddedBroker, api_port: int) -> Path:
    """The demo plant's site and areas with the given points plus the probe point."""
    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    raw["points"] = points + [{"id": PROBE, "name": "基准探针", "area": raw["areas"][0]["id"], "unit": "",
                               "range": [0, 100], "interval_s": 86400, "high": {"red": 50}}]
    raw["broker"] = {"host": broker.host, "port": broker.port, "client_id": f"bench-{api_port}"}
    raw["store"] = {"path": str(tmp / f"bench-{api_port}.db")}
    raw["api"] = {"host": "127.0.0.1", "port": api_port, "value_push_interval_s": 1.0}
    raw["users"] = [{"name": "bench", "role": "admin", "token": TOKEN}]
    path = tmp / f"plant-{name}-{api_port}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def demo_points(scale: int) -> list[dict]:
    """The demo plant's points, `scale` copies (ids `<id>~<k>`, and `active_when` naming the same copy)."""
    base = list(yaml.safe_load(DEMO.read_text(encoding="utf-8"))["points"])
    if scale <= 1:
        return base
    copy = lambda p, k: {**p, "id": f"{p['id']}~{k}",
                         **({"active_when": f"{p['active_when']}~{k}"} if p.get("active_when") else {})}
    return [copy(p, k) for k in range(scale) for p in base]


def flood_points(count: int) -> list[dict]:
    """Copies of the quiet fan-current point (range 0-500 A, no limits); an hour's interval keeps the stale
    detector quiet when the flood stops or riskwatch falls behind."""
    return [{"id": p, "name": "风机电流", "area": "dust1", "kind": "fan_current", "interval_s": 3600}
            for p in point_ids(0, count)]


class Run:
    """One load: a flood (bench.flood processes) or the simulator, plus probes at 10/s while it lasts."""

    def __init__(self, args: argparse.Namespace, mode: str, kind: str):
        self.mode, self.kind, self.duration = mode, kind, args.duration
        self.batch = 0 if mode == "single" else args.batch
        if kind == "flood":
            self.points = args.flood_points_single if mode == "single" else args.flood_points_batch
            self.processes = args.flood_processes_single if mode == "single" else args.flood_processes_batch
            self.plant = flood_points(self.points)
        else:
            self.rate = args.rate
            per_copy = len(demo_points(1)) * self.rate
            self.plant = demo_points(max(1, round(args.moderate_readings / per_copy)))

    def describe(self) -> str:
        how = f"batches of {self.batch}" if self.batch else "one reading per message"
        if self.kind == "flood":
            return f"flood: {self.points:,} points, {self.processes} publisher process(es) at full speed, {how}"
        return f"simulator: {len(self.plant):,} points at {self.rate:g} Hz = {len(self.plant) * self.rate:,.0f} " \
               f"readings/s, {how}"

    def _spawn(self, config: Path, broker: EmbeddedBroker, log) -> list[subprocess.Popen]:
        if self.kind == "moderate":  # the simulator gets the plant without the probe, or it would publish it too
            raw = yaml.safe_load(config.read_text(encoding="utf-8"))
            raw["points"] = [p for p in raw["points"] if p["id"] != PROBE]
            sim_config = config.with_suffix(".simulated.yaml")
            sim_config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
            return [subprocess.Popen([sys.executable, "-m", "riskwatch", "simulate", "--config", str(sim_config),
                                      "--broker", broker.address, "--rate", str(self.rate), "--batch", str(self.batch),
                                      "--duration", str(self.duration), "--no-incident"], cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=log)]
        unit = self.batch or 1
        share = -(-self.points // unit // self.processes) * unit  # points per process, whole gateways
        return [subprocess.Popen([sys.executable, "-m", "bench.flood", "--broker", broker.address,
                                  "--first", str(first), "--count", str(min(share, self.points - first)),
                                  "--batch", str(self.batch), "--duration", str(self.duration)], cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=log)
                for first in range(0, self.points, share)]

    def load(self, config: Path, broker: EmbeddedBroker) -> dict:
        """Returns probe publish times, the publishing window (wall clock) and what was offered."""
        probe = _client(f"bench-probe-{time.monotonic_ns()}")
        probe.connect(broker.host, broker.port)
        probe.loop_start()
        spawned = time.time()
        log_path = config.with_suffix(".publishers.log")
        with open(log_path, "wb") as log:
            procs = self._spawn(config, broker, log)
        sent: list[float] = []
        while any(p.poll() is None for p in procs):
            ts = round(time.time(), 3)
            probe.publish(PROBE_TOPIC, json.dumps({"ts": ts, "value": 90 if len(sent) % 2 == 0 else 10}), qos=1)
            sent.append(ts)
            time.sleep(0.1)
        ended = time.time()
        probe.loop_stop()
        probe.disconnect()
        if any(p.returncode for p in procs):
            raise RuntimeError(f"a publisher failed: exit codes {[p.returncode for p in procs]}; its output:\n"
                               + log_path.read_text(errors="replace")[-3000:])
        if self.kind == "moderate":  # the simulator publishes `duration` s of schedule, after its start-up
            total = round(len(self.plant) * self.rate * self.duration)
            return {"probes": sent, "window": (max(spawned, ended - self.duration), ended), "offered": {
                "readings_per_s": round(len(self.plant) * self.rate), "readings_total": total, "source": "nominal"}}
        stats = [json.loads(p.stdout.read().decode().strip().splitlines()[-1]) for p in procs]
        start = min(s["started_at"] for s in stats)
        end = max(s["ended_at"] for s in stats)
        acked = sum(s["readings_acked"] for s in stats)
        return {"probes": sent, "window": (start, max(s["started_at"] + s["publish_s"] for s in stats)), "offered": {
            "readings_per_s": round(acked / (end - start)), "readings_total": acked,
            "messages_acked": sum(s["messages_acked"] for s in stats),
            "unacked": sum(s["unacked"] for s in stats), "refused": sum(s["refused"] for s in stats),
            "per_process_readings_per_s": [s["readings_per_s"] for s in stats], "source": "acknowledged"}}


class Sampler:
    """Samples a counter every SAMPLE_S on its own thread: rates within a window, and when it stops moving."""

    def __init__(self, read: Callable[[], int]):
        self.read = read
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.time(), self.read()))
            except Exception:
                pass
            self._stop.wait(SAMPLE_S)

    def at(self, t: float) -> tuple[float, int]:
        """The last sample taken at or before t (or the first one)."""
        best = self.samples[0]
        for s in self.samples:
            if s[0] > t:
                break
            best = s
        return best

    def rate(self, t0: float, t1: float) -> float:
        """Readings/s between t0 and t1, the counter interpolated linearly between samples."""
        t, v = np.array(self.samples, dtype=float).T
        return float((np.interp(t1, t, v) - np.interp(t0, t, v)) / (t1 - t0)) if t1 > t0 else 0.0

    def drain(self, t_end: float, limit_s: float, target: int | None = None) -> dict:
        """Waits until the count has stopped moving for a second and reached `target` (if given), or has stopped
        moving for 10 s (some never arrived), or limit_s has passed since t_end."""
        while time.time() - t_end < limit_s:
            time.sleep(SAMPLE_S)
            last_t, last = self.samples[-1]
            moved = [t for t, v in self.samples if v != last]
            idle = last_t - max(moved[-1] if moved else t_end, t_end)
            if idle >= 10.0 or idle >= 1.0 and (target is None or last >= target):
                break
        self._stop.set()
        self._thread.join()
        _, before = self.at(t_end)
        final = self.samples[-1][1]
        moved = [t for (t, v), (_, prev) in zip(self.samples[1:], self.samples) if v != prev and t > t_end]
        drain_s = max((moved[-1] if moved else t_end) - t_end, 0.0)
        return {"drained": final - before, "drain_s": round(drain_s, 1), "total": final,
                "drain_readings_per_s": round((final - before) / drain_s) if drain_s >= 1.0 else None,
                "drain_complete": time.time() - t_end < limit_s}


def latency(sent: list[float], arrived: dict[float, float]) -> dict:
    lat = np.array([(arrived[t] - t) * 1000 for t in sent if t in arrived])
    if not len(lat):
        return {"p50": None, "p99": None, "max": None, "probes": len(sent), "arrived": 0}
    return {"p50": round(float(np.percentile(lat, 50)), 1), "p99": round(float(np.percentile(lat, 99)), 1),
            "max": round(float(lat.max()), 1), "probes": len(sent), "arrived": int(len(lat))}


def baseline(run: Run, config: Path, broker: EmbeddedBroker, drain_limit: float) -> tuple[dict, dict]:
    """A bare QoS 1 subscriber that counts readings and nothing else (and notes when each probe arrives)."""
    count = [0]
    probes: dict[float, float] = {}
    batch = run.batch

    def on_message(cl, u, m) -> None:
        if m.topic == PROBE_TOPIC:
            probes[json.loads(m.payload)["ts"]] = time.time()
        else:
            count[0] += m.payload.count(b'"point"') if batch else 1

    c = _client(f"bench-baseline-{time.monotonic_ns()}")
    c.on_message = on_message
    c.connect(broker.host, broker.port)
    c.subscribe("rw/v1/#", qos=1)
    c.loop_start()
    time.sleep(0.5)
    sampler = Sampler(lambda: count[0])
    load = run.load(config, broker)
    offered_total = load["offered"]["readings_total"] if run.kind == "flood" else None  # the simulator's: nominal
    drained = sampler.drain(load["window"][1], drain_limit, offered_total)
    c.loop_stop()
    c.disconnect()
    return {"readings_per_s": round(sampler.rate(*load["window"])), "received_total": drained["total"],
            "missing": offered_total - drained["total"] if offered_total is not None else None,
            **{k: drained[k] for k in ("drain_s", "drain_readings_per_s", "drain_complete")},
            "latency_ms": latency(load["probes"], probes)}, load["offered"]


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


def forget_session(broker: EmbeddedBroker, client_id: str) -> None:
    """riskwatch's session is persistent: once it has stopped, end the session, or the broker would go on queueing
    every later run's messages for it (the queue is unlimited)."""
    c = _client(client_id)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    c.connect(broker.host, broker.port, clean_start=True, properties=props)
    c.loop_start()
    time.sleep(0.3)
    c.disconnect()
    c.loop_stop()


def riskwatch(run: Run, config: Path, broker: EmbeddedBroker, api_port: int, drain_limit: float) -> dict:
    log = open(config.with_suffix(".log"), "wb")
    rw = subprocess.Popen([sys.executable, "-m", "riskwatch", "serve", "--config", str(config)], cwd=ROOT,
                          stdout=log, stderr=subprocess.STDOUT)
    done = threading.Event()
    try:
        wait_for_port("127.0.0.1", api_port, 60)
        health: Callable[[], dict] = lambda: json.load(
            urllib.request.urlopen(f"http://127.0.0.1:{api_port}/healthz", timeout=10))["readings"]
        while not json.load(urllib.request.urlopen(f"http://127.0.0.1:{api_port}/healthz"))["broker"]["connected"]:
            time.sleep(0.1)
        arrived: dict[float, float] = {}
        reconnects = [0]
        threading.Thread(target=watch_socket, args=(api_port, arrived, done, reconnects), daemon=True).start()
        time.sleep(0.5)
        start = health()["accepted"]
        sampler = Sampler(lambda: health()["accepted"] - start)
        load = run.load(config, broker)
        t_end = load["window"][1]  # the publishers' last publish: what arrives later was queued in the broker
        target = load["offered"]["readings_total"] + len(load["probes"]) if run.kind == "flood" else None
        drained = sampler.drain(t_end, drain_limit, target)
        during = sampler.at(t_end)[1]
        h = health()
        return {"offered_readings_per_s": load["offered"]["readings_per_s"],
                "offered_readings_total": load["offered"]["readings_total"],
                "missing": target - drained["total"] if target is not None else None,  # offered + probes - stored
                "readings_per_s": round(sampler.rate(*load["window"])), "readings_total": drained["total"],
                "readings_per_s_with_drain": round(drained["total"] / (t_end - load["window"][0] + drained["drain_s"])),
                **{k: drained[k] for k in ("drain_s", "drain_readings_per_s", "drain_complete")},
                "stored_during_load": during, "latency_ms": latency(load["probes"], arrived),
                "websocket_reconnects": reconnects[0], "rejected": h["rejected"], "duplicates": h["duplicates"]}
    finally:
        done.set()
        rw.terminate()
        try:
            rw.wait(30)
        except subprocess.TimeoutExpired:
            rw.kill()
            rw.wait()
        log.close()
        forget_session(broker, f"bench-{api_port}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of load per run (default %(default)s)")
    ap.add_argument("--modes", default="single,batch", help="single, batch or both (default %(default)s)")
    ap.add_argument("--loads", default="flood,moderate", help="flood, moderate or both (default %(default)s)")
    ap.add_argument("--flood-points-single", type=int, default=1000, help="points flooded with one reading per "
                    "message (default %(default)s)")
    ap.add_argument("--flood-points-batch", type=int, default=4000, help="points flooded in gateway batches "
                    "(default %(default)s)")
    ap.add_argument("--flood-processes-single", type=int, default=2, help="flood publisher processes, single "
                    "mode (default %(default)s)")
    ap.add_argument("--flood-processes-batch", type=int, default=2, help="flood publisher processes, batch mode "
                    "(default %(default)s)")
    ap.add_argument("--rate", type=float, default=10.0, help="Hz per point at moderate load (default %(default)s)")
    ap.add_argument("--moderate-readings", type=float, default=2000, help="readings/s at moderate load, rounded to "
                    "whole copies of the demo plant (default %(default)s)")
    ap.add_argument("--batch", type=int, default=100, help="readings per gateway message (default %(default)s)")
    ap.add_argument("--drain-limit", type=float, default=300.0, help="seconds to wait at most for a subscriber to "
                    "empty the broker's queue after a load (default %(default)s)")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    results: dict = {"duration_s": args.duration, "base_point": BASE_POINT}
    runs = [(mode, kind) for mode in args.modes.split(",") for kind in args.loads.split(",")]
    with tempfile.TemporaryDirectory(prefix="rw-bench-") as tmp, EmbeddedBroker(Path(tmp) / "broker") as broker:
        for i, (mode, kind) in enumerate(runs, 1):
            run = Run(args, mode, kind)
            api_port = free_port()
            config = plant_file(Path(tmp), f"{mode}-{kind}", run.plant, broker, api_port)
            head = f"[{i}/{len(runs)} {mode} {kind}]"
            say(f"{head} {run.describe()}")
            say(f"{head} baseline (bare subscriber), {args.duration:g} s + drain ...")
            base, offered = baseline(run, config, broker, args.drain_limit)
            say(f"{head}   offered {offered['readings_per_s']:,} readings/s; bare subscriber "
                f"{base['readings_per_s']:,} readings/s (drain {base['drain_readings_per_s'] or '-'}), latency "
                f"p50 {base['latency_ms']['p50']} ms, p99 {base['latency_ms']['p99']} ms")
            entry: dict = {"offered": offered, "baseline": base}
            if kind == "flood" and base["readings_per_s"] >= 0.95 * offered["readings_per_s"]:
                entry["warning"] = WARNING
                say(f"{head}   WARNING: {WARNING} (bare subscriber {base['readings_per_s']:,} >= 95 % of offered "
                    f"{offered['readings_per_s']:,} readings/s): the baseline is not a ceiling")
            say(f"{head} riskwatch, {args.duration:g} s + drain ...")
            rw = riskwatch(run, config, broker, api_port, args.drain_limit)
            say(f"{head}   {rw['readings_per_s']:,} readings/s (drain {rw['drain_readings_per_s'] or '-'} over "
                f"{rw['drain_s']} s), latency p50 {rw['latency_ms']['p50']} ms, p99 {rw['latency_ms']['p99']} ms")
            if kind == "flood" and rw["readings_per_s"] >= 0.95 * rw["offered_readings_per_s"]:
                entry["riskwatch_warning"] = f"riskwatch kept up with the flood: {WARNING}"
                say(f"{head}   WARNING: {entry['riskwatch_warning']} (its rate is a lower bound)")
            ratio = rw["readings_per_s"] / base["readings_per_s"] if base["readings_per_s"] else None
            drains = (rw["drain_readings_per_s"], base["drain_readings_per_s"])
            entry.update(riskwatch=rw, throughput_ratio=round(ratio, 3) if ratio else None,
                         drain_ratio=round(drains[0] / drains[1], 3) if all(drains) else None)
            results[f"{mode}_{kind}"] = entry
    out = json.dumps(results, indent=2, ensure_ascii=False)
    print(out)
    if args.json:
        Path(args.json).write_text(out, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
