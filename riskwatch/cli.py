"""The `riskwatch` command."""
from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import shutil
import sys
import threading
import time
from pathlib import Path

from config.load import DEMO, ConfigError, load_plant
from config.model import Plant, Role
from ingest.broker import PortInUse

EPILOG = """\
examples:
  riskwatch demo                                  # broker, pipeline, demo plant and wall page in one go
  riskwatch demo --port 8080 --fresh              # another port, forgetting earlier demo alerts
  riskwatch serve --config /etc/riskwatch/plant.yaml
  riskwatch simulate --config plant.yaml --broker 127.0.0.1:1883 --rate 2 --scale 10
                                                  # ...to a `riskwatch serve --config plant.yaml --scale 10`
  riskwatch check-config /etc/riskwatch/plant.yaml
  riskwatch notify-test --config /etc/riskwatch/plant.yaml --channel duty-sms --to 13800000000
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="riskwatch", description="Real-time risk monitoring and early warning "
                                     "for industrial plants.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="run everything on embedded defaults: broker, pipeline, simulator, web page",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="example:\n  riskwatch demo --port 8000 --broker-port 0\n\nA scripted dust-hopper "
                              "self-heating incident starts 20 s after start and repeats every 6 minutes.")
    p.add_argument("--host", default="127.0.0.1", help="address of the web page and API (default %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port of the web page and API (default %(default)s)")
    p.add_argument("--broker-port", type=int, default=0, help="embedded broker port; 0 = a free one (default)")
    p.add_argument("--data", default=".riskwatch/demo", help="folder for the database and broker (default %(default)s)")
    p.add_argument("--fresh", action="store_true", help="delete the demo's earlier data first")
    p.add_argument("--seed", type=int, default=1, help="simulator seed (default %(default)s)")
    p.add_argument("--rate", type=float, default=1.0, help="readings per point per second (default %(default)s)")

    p = sub.add_parser("serve", help="run in production: external broker, plant configuration file",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="example:\n  riskwatch serve --config /etc/riskwatch/plant.yaml --port 8000")
    p.add_argument("--config", required=True, help="plant configuration (YAML); see config/demo.yaml")
    p.add_argument("--host", help="override api.host")
    p.add_argument("--port", type=int, help="override api.port")
    p.add_argument("--scale", type=int, default=1, help="load tests: serve every point N times (ids <id>~<k>, "
                   "as `riskwatch simulate --scale N` publishes them)")

    p = sub.add_parser("simulate", help="publish a simulated plant to any MQTT broker",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  riskwatch simulate --broker 127.0.0.1:1883\n"
                              "  riskwatch simulate --config plant.yaml --broker mqtt.local:1883 --rate 10 --scale 50 "
                              "--batch 100 --duration 60")
    p.add_argument("--config", default=str(DEMO), help="plant whose points are simulated (default: the demo plant)")
    p.add_argument("--broker", default="127.0.0.1:1883", help="HOST:PORT (default %(default)s)")
    p.add_argument("--rate", type=float, default=1.0, help="readings per point per second (default %(default)s)")
    p.add_argument("--scale", type=int, default=1, help="repeat every point N times, ids <id>~<k> (default 1); "
                   "serve the same plant with `riskwatch serve --scale N` or its readings are unknown points")
    p.add_argument("--batch", type=int, default=0, help="readings per gateway message; 0 = one message per reading")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C)")
    p.add_argument("--incident-at", type=float, default=20.0, help="seconds until the hopper self-heating incident")
    p.add_argument("--no-incident", action="store_true", help="a normal plant, no incident")
    p.add_argument("--scenario", help="replay a scenario (`riskwatch eval --list`) in real time instead of the "
                   "demo model; with --speed and --from")
    p.add_argument("--speed", type=float, default=1.0, help="scenario time per wall-clock second (default 1)")
    p.add_argument("--from", dest="skip", type=float, default=0.0, help="start this many seconds into the scenario")

    p = sub.add_parser("eval", help="score detection on the accident scenarios and alarm quality on normal life",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  riskwatch eval\n  riskwatch eval --scenario kunshan --scenario normal-week "
                              "--json eval.json\n  riskwatch eval --list\n  riskwatch eval --check   # exit 1 if "
                              "the bar is not met\n\nEvery scenario runs in simulated time through the same "
                              "detectors and alert book as `serve`.")
    p.add_argument("--config", default=str(DEMO), help="plant whose limits are evaluated (default: the demo plant)")
    p.add_argument("--scenario", action="append", help="run only this scenario (repeatable); default: all")
    p.add_argument("--seed", type=int, default=1, help="simulation seed (default %(default)s)")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--check", action="store_true", help="exit 1 when the bar is not met (for CI)")

    p = sub.add_parser("check-config", help="validate a plant configuration file and list every problem",
                       epilog="example:\n  riskwatch check-config config/demo.yaml",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file")

    p = sub.add_parser("notify-test", help="send a test message through one configured channel and show the "
                       "provider's answer", formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  riskwatch notify-test --config plant.yaml --channel duty-robot\n"
                              "  riskwatch notify-test --config plant.yaml --channel duty-sms --to 13800000000\n\n"
                              "Without --to, the message goes to the plant's duty operators (level 0) "
                              "(SMS, e-mail, WeCom app) or to the robot's group. Exit status 0 only if the provider "
                              "accepted it.")
    p.add_argument("--config", required=True, help="plant configuration file with a notify: block")
    p.add_argument("--channel", required=True, help="a name from notify.channels")
    p.add_argument("--to", action="append", help="address (phone, e-mail, WeCom user id; repeatable)")

    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return {"demo": _demo, "serve": _serve, "simulate": _simulate, "eval": _eval,
                "check-config": _check, "notify-test": _notify_test}[args.command](args)
    except ConfigError as e:
        print(f"riskwatch: configuration errors:\n{e}", file=sys.stderr)
        return 1
    except (PortInUse, FileNotFoundError, ConnectionError, TimeoutError) as e:
        print(f"riskwatch: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"riskwatch: {e.strerror or e} ({getattr(e, 'filename', '') or 'network'})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _notify_test(args) -> int:
    from alerting.channels import build
    from alerting.channels.base import Message
    from alerting.notify import ADDRESS
    from config.model import Tier

    plant = load_plant(args.config)
    configs = {c.name: c for c in plant.notify.channels}
    if args.channel not in configs:
        print(f"riskwatch: no channel {args.channel!r} in {args.config} (notify.channels has: "
              f"{', '.join(configs) or 'none'})", file=sys.stderr)
        return 1
    cfg = configs[args.channel]
    to = tuple(args.to or [getattr(p, ADDRESS[cfg.kind]) for p in plant.notify.people
                           if p.level == "duty_operator" and getattr(p, ADDRESS[cfg.kind])])
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    msg = Message(key=f"test-{int(time.time())}", tier=Tier.BLUE, title="【测试】riskwatch 通知测试",
                  text=f"这是一条来自 {plant.name} riskwatch 的测试消息（{now}），无需处理。"
                       f"This is a test message from riskwatch; no action needed.",
                  to=to, params={"site": plant.name[:20], "tier": "测试", "area": "-", "subject": "通知测试",
                                 "reason": "测试消息，无需处理", "state": "测试"})
    print(f"sending through {cfg.name} ({cfg.kind}) to {', '.join(to) or 'the group'} ...", flush=True)
    result = build(cfg).send(msg)
    verdict = "accepted" if result.ok else "REFUSED" + (" (try again later)" if result.retry else "")
    print(f"{verdict}: provider code {result.provider_code or '-'}; {result.detail or ''}".rstrip("; "))
    return 0 if result.ok else 1


def _eval(args) -> int:
    import json

    from riskwatch.eval import evaluate, meets_bar, table
    from simulators.scenarios import all_scenarios

    scenarios = all_scenarios()
    if args.list:
        for name, sc in scenarios.items():
            kind = "accident" if sc.truth else "must raise nothing" + (f" but {'/'.join(sorted(sc.allowed_rules))}"
                                                                     if sc.allowed_rules else "")
            print(f"{name:<24} {sc.duration_s / 3600:6.1f} h  {kind:<32} {sc.title_zh} / {sc.title_en}")
        return 0
    unknown = [n for n in args.scenario or [] if n not in scenarios]
    if unknown:
        print(f"riskwatch: unknown scenario {', '.join(unknown)}; `riskwatch eval --list` shows them", file=sys.stderr)
        return 2
    chosen = [scenarios[n] for n in args.scenario] if args.scenario else list(scenarios.values())
    started = time.perf_counter()
    result = evaluate(load_plant(args.config), chosen, args.seed, lambda s: print(s, file=sys.stderr, flush=True))
    result["total_wall_s"] = round(time.perf_counter() - started, 1)
    print(table(result))
    fails = meets_bar(result)
    print("\nbar: " + ("met" if not fails else "NOT met:\n  " + "\n  ".join(fails)))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    return 1 if args.check and fails else 0


def _simulate_scenario(args, plant: Plant, host: str, port: int, stop: threading.Event) -> int:
    from simulators.replay import publish_scenario
    from simulators.scenarios import all_scenarios

    scenario = all_scenarios().get(args.scenario)
    if scenario is None:
        print(f"riskwatch: unknown scenario {args.scenario!r}; `riskwatch eval --list` shows them", file=sys.stderr)
        return 2
    print(f"replaying {scenario.name} ({scenario.title_zh}) from {args.skip:g} s at {args.speed:g}x to "
          f"{host}:{port}; {scenario.duration_s:.0f} s of scenario; Ctrl-C stops", file=sys.stderr)
    progress = lambda at, st: print(f"  scenario time {at:8.0f} s  sent {st.sent}  acked {st.acked}",
                                    file=sys.stderr, flush=True)
    try:
        stats = publish_scenario(plant, scenario, host, port, seed=args.seed, speed=args.speed, skip_s=args.skip,
                                 stop=stop, on_progress=progress)
    except KeyboardInterrupt:
        stop.set()
        return 130
    print(f"done: sent {stats.sent} readings, {stats.acked} acknowledged by the broker", file=sys.stderr)
    return 0


def _check(args) -> int:
    plant = load_plant(args.file)
    print(f"{args.file}: OK, site {plant.site} ({plant.name}), {len(plant.areas)} areas, {len(plant.points)} points, "
          f"{len(plant.users)} users")
    return 0


def _serve(args) -> int:
    from riskwatch.app import run

    plant = load_plant(args.config).scaled(args.scale)
    if not plant.users:
        print(f"riskwatch: {args.config} has no users: every route but /healthz needs a token. Add users with "
              "name, role and token (token: env:VARIABLE keeps it out of the file).", file=sys.stderr)
        return 1
    updates = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    plant = plant.model_copy(update={"api": plant.api.model_copy(update=updates)})
    ready = lambda: print(f"riskwatch serving http://{plant.api.host}:{plant.api.port}/ "
                          f"(broker {plant.broker.host}:{plant.broker.port})", flush=True)
    asyncio.run(run(plant, on_ready=ready))
    return 0


def _demo(args) -> int:
    from ingest.broker import EmbeddedBroker
    from riskwatch.app import run
    from simulators.publish import publish_plant_async

    data = Path(args.data)
    if args.fresh and data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    tokens = {role: secrets.token_urlsafe(18) for role in Role}
    users = [{"name": role.value, "role": role.value, "token": tok} for role, tok in tokens.items()]
    with EmbeddedBroker(data / "broker", port=args.broker_port) as broker:
        plant = load_plant(DEMO, {"broker.port": broker.port, "store.path": str(data / "riskwatch.db"),
                                  "api.host": args.host, "api.port": args.port, "users": users})

        async def simulator() -> None:
            await publish_plant_async(plant, broker.host, broker.port, rate_hz=args.rate, seed=args.seed,
                                      incident_at=20.0, incident_period=360.0, client_id="riskwatch-demo-sim")

        def ready() -> None:
            print(_banner(plant, broker.address, tokens), flush=True)

        asyncio.run(run(plant, on_ready=ready, background=[simulator]))
    return 0


def _banner(plant: Plant, broker: str, tokens: dict) -> str:
    lines = ["", "riskwatch demo is running", f"  web page : http://{plant.api.host}:{plant.api.port}/",
             f"  API docs : http://{plant.api.host}:{plant.api.port}/docs",
             f"  broker   : mqtt://{broker}  (topics {plant.broker.topic_prefix}/{plant.site}/#)",
             "  tokens (paste one into the page's login):"]
    lines += [f"    {role.value:<9} {tok}" for role, tok in tokens.items()]
    lines += ["  A dust-hopper self-heating incident starts in 20 s. Ctrl-C stops.", ""]
    return "\n".join(lines)


def _simulate(args) -> int:
    from simulators.publish import publish_plant

    plant = load_plant(args.config).scaled(args.scale)
    host, _, port = args.broker.rpartition(":")
    if not host or not port.isdigit():
        print(f"riskwatch: --broker wants HOST:PORT, got {args.broker!r}", file=sys.stderr)
        return 2
    stop = threading.Event()
    started = time.time()
    if args.scenario:
        return _simulate_scenario(args, plant, host, int(port), stop)

    def progress(stats) -> None:
        print(f"  {time.time() - started:6.0f} s  sent {stats.sent}  acked {stats.acked}  behind {stats.behind_s:.1f} s",
              file=sys.stderr, flush=True)

    print(f"publishing {len(plant.points)} points at {args.rate:g} Hz to {args.broker} "
          f"({'batches of %d' % args.batch if args.batch else 'one message per reading'}); Ctrl-C stops",
          file=sys.stderr)
    try:
        stats = publish_plant(plant, host, int(port), rate_hz=args.rate, batch=args.batch, seed=args.seed,
                              duration=args.duration, incident_at=None if args.no_incident else args.incident_at,
                              stop=stop, on_progress=progress)
    except KeyboardInterrupt:
        stop.set()
        return 130
    print(f"done: sent {stats.sent} messages, {stats.acked} acknowledged by the broker", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
