"""Real parts for the tests: a Mosquitto on a free loopback port and riskwatch itself as a subprocess."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from websockets.sync.client import connect

from config.load import DEMO
from ingest.broker import EmbeddedBroker, free_port

ROOT = Path(__file__).resolve().parents[1]
TOKENS = {"display": "display-token-0123456789", "operator": "operator-token-0123456789",
          "engineer": "engineer-token-0123456789", "admin": "admin-token-0123456789abc"}


def wait_until(check, timeout_s: float = 30.0, what: str = "condition", interval_s: float = 0.05):
    """Polls until check() is truthy; a deadline only bounds a hang, the test asserts behaviour, not speed."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval_s)


class WallClient:
    """A websocket client speaking the wall display's protocol on an open connection: the first message carries the
    token and the last seq seen; the server answers `hello` (read here), replays, sends a `snapshot`, then goes live."""

    def __init__(self, ws, token: str, since: int | None = None):
        self.ws = ws
        self.seq = since or 0
        self.ws.send(json.dumps({"token": token, "since": since}))
        self.hello = self.recv()
        assert self.hello["type"] == "hello", self.hello
        self.seq = self.hello["seq"]

    def recv(self, timeout: float = 30) -> dict:
        msg = json.loads(self.ws.recv(timeout=timeout))
        self.seq = max(self.seq, msg.get("seq", 0))
        return msg

    def until(self, pred, timeout: float = 60) -> list[dict]:
        """Every message up to and including the first one matching pred (the bound only stops a hang)."""
        seen, deadline = [], time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching message within {timeout} s; saw {len(seen)} others")
            msg = self.recv(timeout=left)
            seen.append(msg)
            if pred(msg):
                return seen


@contextmanager
def wall_client(port: int, token: str, since: int | None = None):
    """`with wall_client(port, token) as wall:` a connected, authenticated wall display, closed on the way out."""
    with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as ws:
        yield WallClient(ws, token, since)


def alert_event(kind: str, point: str, rule: str, tier: str | None = None):
    """A predicate for wall messages: this kind of event on this point's rule (at this tier, if given)."""
    return lambda m: (m["type"] == "alert_event" and m["event"]["kind"] == kind and m["event"]["point"] == point
                      and m["event"]["rule"] == rule and (tier is None or m["event"]["tier"] == tier))


class RiskwatchProcess:
    """`riskwatch serve` on the demo plant, pointed at a test broker, with a database in tmp."""

    def __init__(self, tmp: Path, broker: EmbeddedBroker, **overrides):
        self.tmp = tmp
        self.port = free_port()
        self.db = tmp / "riskwatch.db"
        raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
        raw["broker"] = {"host": broker.host, "port": broker.port, "client_id": f"rw-test-{self.port}"}
        raw["store"] = {"path": str(self.db)}
        raw["api"] = {"host": "127.0.0.1", "port": self.port, "value_push_interval_s": 0.2}
        raw["users"] = [{"name": f"{r}-user", "role": r, "token": t} for r, t in TOKENS.items()]
        for key, value in overrides.items():
            raw[key] = value
        self.config = tmp / "plant.yaml"
        self.config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        self.proc: subprocess.Popen | None = None
        self.log = tmp / "riskwatch.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "RiskwatchProcess":
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "riskwatch", "serve", "--config", str(self.config)],
                                     cwd=ROOT, env=env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        wait_until(lambda: self._healthy(), 30, "riskwatch to serve and connect to the broker")
        return self

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"riskwatch exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            return self.health()["broker"]["connected"]
        except (OSError, urllib.error.URLError):
            return False

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def wall(self, since: int | None = None, role: str = "display"):
        return wall_client(self.port, TOKENS[role], since)

    def alerts(self, point: str, rule: str) -> list[dict]:
        """The listed alerts of one point's rule: other points (e.g. the interlock points going stale a few
        seconds after start when nothing publishes) never change what a test sees."""
        status, listed = self.get("/api/alerts/active")
        assert status == 200, listed
        return [a for a in listed if a["point"] == point and a["rule"] == rule]

    def events(self, since: int = 0, point: str | None = None, rule: str | None = None) -> list[dict]:
        status, log = self.get(f"/api/alerts/events?since={since}&limit=10000")
        assert status == 200, log
        return [e for e in log if (point is None or e["point"] == point) and (rule is None or e["rule"] == rule)]

    def health(self) -> dict:
        with urllib.request.urlopen(self.url + "/healthz", timeout=5) as r:
            return json.load(r)

    def get(self, path: str, role: str = "display"):
        return self.call("GET", path, role=role)

    def call(self, method: str, path: str, body: dict | None = None, role: str | None = "display"):
        """Returns (status, parsed JSON body)."""
        req = urllib.request.Request(self.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
        if role:
            req.add_header("Authorization", f"Bearer {TOKENS[role]}")
        if body is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


@pytest.fixture
def broker(tmp_path):
    with EmbeddedBroker(tmp_path / "broker") as b:
        yield b


@pytest.fixture
def riskwatch(tmp_path, broker):
    rw = RiskwatchProcess(tmp_path, broker).start()
    yield rw
    rw.stop()
