"""InfluxDB forwarding benchmark: what the spool costs the pipeline, and how fast it drains to a loopback server.

The server is Debian's VictoriaMetrics on loopback (InfluxDB v2 write API), started here on a free port with a
temporary data directory (tests/victoria.py: run from the checkout). Readings are the demo plant's points, one
second apart per point, written through `ForwardedStore.write` in batches as the pipeline's writer commits them.

Runs, each on a fresh store and server:
  - write:    readings/s the pipeline's writer thread sustains: store.write alone (SQLiteStore), through the
              spool with the server down (the append's own cost), and with the forwarder draining meanwhile.
  - live:     the writer writes for --duration s while the forwarder drains: forwarded points/s sustained, then the
              time to send what was left.
  - backfill: N readings spooled while the server is down, then the server starts: time until the spool is empty.
  - gap:      the same with --spool-max-rows below N: the queue, then the gaps re-read from the store.
All share this machine's cores (writer, forwarder, server): compare within a run, not across machines.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

from config.influx import InfluxConfig
from config.load import DEMO, load_plant
from ingest.influx import ForwardedStore
from ingest.payload import Reading
from ingest.store import SQLiteStore

try:
    from tests.victoria import Victoria
except ImportError:  # pragma: no cover
    sys.exit("run from the riskwatch checkout: python -m bench.influx (it uses tests/victoria.py)")

T0 = 1_700_000_000_000
EPILOG = """examples:
  python -m bench.influx                                  # every run, 200,000 readings (a minute or two)
  python -m bench.influx --runs backfill --readings 1000000 --json bench-influx.json
  python -m bench.influx --runs live --duration 20 --batch-size 10000
  python -m bench.influx --runs gap --readings 300000 --spool-max-rows 50000 --no-gzip
"""


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Run:
    def __init__(self, args: argparse.Namespace, tmp: Path, name: str):
        self.args = args
        self.plant = load_plant(DEMO)
        self.points = [p.id for p in self.plant.points]
        self.dir = tmp / name
        self.dir.mkdir()
        self.vm = Victoria(self.dir / "vm")
        self.next = 0

    def config(self, **kw) -> InfluxConfig:
        a = self.args
        return InfluxConfig(url=self.vm.url, token="bench-token", org="bench", bucket="bench",
                            batch_size=a.batch_size, gzip=not a.no_gzip, flush_interval_s=0.2, max_backoff_s=0.5,
                            spool_max_rows=kw.pop("spool_max_rows", 10 * a.readings), **kw)

    def batch(self) -> list[Reading]:
        n, pts = self.args.write_batch, self.points
        out = [Reading(pts[i % len(pts)], T0 + (i // len(pts)) * 1000, float(i % 997))
               for i in range(self.next, self.next + n)]
        self.next += n
        return out

    def fill(self, store, count: int) -> float:
        started = time.monotonic()
        while self.next < count:
            store.write(self.batch(), [], time.time())
        return time.monotonic() - started

    def drain(self, store, what: str) -> float:
        started, shown = time.monotonic(), 0.0
        while True:
            s = store.stats()
            if s["spooled"] == 0 and s["backfill_points"] == 0 and not s["full"]:
                return time.monotonic() - started
            if time.monotonic() - started > self.args.limit:
                raise SystemExit(f"{what}: not drained within {self.args.limit} s: {s}")
            if time.monotonic() - shown > 1:
                shown = time.monotonic()
                say(f"  {what}: {s['spooled']:,} spooled, {s['backfill_points']} points to back-fill, "
                    f"{s['sent']:,} sent")
            time.sleep(0.05)


def run_write(args, tmp: Path) -> dict:
    """The writer thread's cost: the store alone, plus the spool append (server down: the forwarder idles), and
    plus the forwarder draining at the same time (server up: it shares the process, the GIL and the cores)."""
    r = Run(args, tmp, "write")
    plain = SQLiteStore(r.dir / "plain.db")
    t_plain = r.fill(plain, args.readings)
    plain.close()
    r.next = 0
    store = ForwardedStore(SQLiteStore(r.dir / "down.db"), r.config(), r.plant)
    t_down = r.fill(store, args.readings)
    store.close()
    with r.vm:
        r.next = 0
        store = ForwardedStore(SQLiteStore(r.dir / "up.db"), r.config(), r.plant)
        t_up = r.fill(store, args.readings)
        r.drain(store, "write")
        store.close()
    return {"run": "write", "readings": args.readings, "store_only_per_s": round(args.readings / t_plain),
            "with_spool_per_s": round(args.readings / t_down),
            "with_spool_draining_per_s": round(args.readings / t_up)}


def run_live(args, tmp: Path) -> dict:
    r = Run(args, tmp, "live")
    with r.vm:
        store = ForwardedStore(SQLiteStore(r.dir / "rw.db"), r.config(), r.plant)
        stop = threading.Event()

        def writer() -> None:  # as fast as the writer thread goes: more than the forwarder can send
            while not stop.is_set():
                store.write(r.batch(), [], time.time())

        t = threading.Thread(target=writer)
        started = time.monotonic()
        t.start()
        while time.monotonic() - started < args.duration:
            time.sleep(1)
            s = store.stats()
            say(f"  live: {r.next:,} written, {s['sent']:,} sent, {s['spooled']:,} spooled")
        sent_at_stop = store.stats()["sent"]
        stop.set()
        t.join()
        window = time.monotonic() - started
        rest = r.drain(store, "live")
        store.close()
    return {"run": "live", "seconds": round(window, 1), "written_per_s": round(r.next / window),
            "forwarded_per_s": round(sent_at_stop / window), "left_at_stop": r.next - sent_at_stop,
            "drain_rest_s": round(rest, 1), "readings": r.next}


def run_backfill(args, tmp: Path, gap: bool) -> dict:
    name = "gap" if gap else "backfill"
    r = Run(args, tmp, name)
    limit = {"spool_max_rows": args.spool_max_rows} if gap else {}
    store = ForwardedStore(SQLiteStore(r.dir / "rw.db"), r.config(**limit), r.plant)
    say(f"  {name}: spooling {args.readings:,} readings with the server down")
    t_fill = r.fill(store, args.readings)
    s = store.stats()
    with r.vm:
        took = r.drain(store, name)
        got = sum(len(v) for v in r.vm.samples("riskwatch_value").values())
    store.close()
    if got != args.readings:
        raise SystemExit(f"{name}: the server holds {got} samples, expected {args.readings}")
    return {"run": name, "readings": args.readings, "spooled": s["spooled"], "gap_readings": s["gap_readings"],
            "fill_per_s": round(args.readings / t_fill), "drain_s": round(took, 1),
            "backfill_per_s": round(args.readings / took)}


def table(rows: list[dict]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    width = {k: max(len(k), *(len(f"{r.get(k, ''):,}" if isinstance(r.get(k), int) else str(r.get(k, "")))
                                for r in rows)) for k in keys}
    cell = lambda v: f"{v:,}" if isinstance(v, int) else str(v)  # noqa: E731
    lines = ["  ".join(k.ljust(width[k]) for k in keys)]
    lines += ["  ".join(cell(r.get(k, "")).rjust(width[k]) if r.get(k) is not None else "".ljust(width[k])
                        for k in keys) for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.influx", description=__doc__, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="write,live,backfill,gap", help="any of write, live, backfill, gap "
                    "(default %(default)s)")
    ap.add_argument("--readings", type=int, default=200_000, help="readings per run (default %(default)s)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of writing in the live run "
                    "(default %(default)s)")
    ap.add_argument("--batch-size", type=int, default=5000, help="lines per request (default %(default)s)")
    ap.add_argument("--write-batch", type=int, default=1000, help="readings per store.write, as one pipeline "
                    "commit (default %(default)s)")
    ap.add_argument("--spool-max-rows", type=int, default=20_000, help="spool bound in the gap run "
                    "(default %(default)s)")
    ap.add_argument("--no-gzip", action="store_true", help="send uncompressed")
    ap.add_argument("--limit", type=float, default=600.0, help="seconds to wait at most for a drain")
    ap.add_argument("--json", help="also write the results to this file")
    args = ap.parse_args(argv)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    unknown = set(runs) - {"write", "live", "backfill", "gap"}
    if unknown:
        ap.error(f"unknown runs: {', '.join(sorted(unknown))}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-influx-") as tmp:
        for name in runs:
            say(f"{name} ...")
            fn = {"write": run_write, "live": run_live, "backfill": lambda a, t: run_backfill(a, t, False),
                  "gap": lambda a, t: run_backfill(a, t, True)}[name]
            results.append(fn(args, Path(tmp)))
            say(f"  {results[-1]}")
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
