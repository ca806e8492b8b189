"""Real parts for the InfluxDB tests: Debian's VictoriaMetrics (it takes InfluxDB's v2 write API and shows what it
stored through its export API) and a loopback relay in front of it that keeps, in order, every batch of lines the
server acknowledged, or answers by itself where a test needs a status VictoriaMetrics never gives."""
from __future__ import annotations

import gzip
import http.client
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

from ingest.broker import free_port

BINARY = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"


class Victoria:
    """`with Victoria(tmp_path / "vm") as vm:` a VictoriaMetrics on a free loopback port; stop() and start() keep
    its data directory and port, as a restarted server would."""

    def __init__(self, data: Path, *flags: str):
        if not Path(BINARY).exists():
            raise RuntimeError("victoria-metrics is not installed: run setup.sh (Debian package victoria-metrics)")
        self.data = Path(data)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.flags = list(flags)
        self.proc: subprocess.Popen | None = None
        self.log = self.data.parent / f"{self.data.name}.log"

    def start(self) -> "Victoria":
        self.data.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [BINARY, f"-storageDataPath={self.data}", f"-httpListenAddr=127.0.0.1:{self.port}",
             "-retentionPeriod=100y",  # readings in the tests may be stamped years back
             "-search.latencyOffset=0", "-search.disableCache",  # what was written is visible at once
             "-dedup.minScrapeInterval=1ms",  # same series, same ms: one sample, as InfluxDB overwrites
             *self.flags],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"victoria-metrics did not start; see {self.log}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> "Victoria":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def series(self, metric: str) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
        """Every sample stored under metric, by its labels: {(("point", "dust1.dp"), ...): [(ts_ms, value), ...]}."""
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10).read()  # recent rows: searchable
        query = urllib.parse.urlencode({"match[]": f'{{__name__="{metric}"}}', "start": "0"}).encode()
        with urllib.request.urlopen(f"{self.url}/api/v1/export", data=query, timeout=30) as r:
            out = {}
            for line in r.read().decode().splitlines():
                row = json.loads(line)
                labels = tuple(sorted((k, v) for k, v in row["metric"].items() if k != "__name__"))
                out[labels] = out.get(labels, []) + list(zip(row["timestamps"], row["values"]))
            return out

    def samples(self, metric: str) -> dict[str, list[tuple[int, float]]]:
        """Samples by point, each series' samples in time order as exported (a copy would show twice)."""
        return {dict(labels)["point"]: rows for labels, rows in self.series(metric).items()}


class Relay:
    """A loopback HTTP relay: a request goes to `answer(lines)` first; None sends it on to the upstream server.
    Every batch answered 2xx is kept in `accepted`, in the order the answers went out. A stopped upstream is a
    dropped connection, as the server itself would give. `answer` returning SWALLOW sends the batch on and then
    drops the connection instead of answering: the server has the lines, the sender never learns it."""

    SWALLOW = -1

    def __init__(self, upstream: str, answer: Callable[[list[str]], int | None] = lambda lines: None):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.answer = answer
        self.accepted: list[list[str]] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet: pytest shows what matters
                pass

            def do_GET(self) -> None:
                relay._handle(self, b"")

            def do_POST(self) -> None:
                relay._handle(self, self.rfile.read(int(self.headers.get("Content-Length", 0))))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Relay":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def lines(self) -> list[str]:
        with self._lock:
            return [line for batch in self.accepted for line in batch]

    def _handle(self, req: BaseHTTPRequestHandler, body: bytes) -> None:
        raw = gzip.decompress(body) if req.headers.get("Content-Encoding") == "gzip" else body
        lines = [line for line in raw.decode().split("\n") if line]
        status = self.answer(lines) if req.command == "POST" else None
        swallow = status == self.SWALLOW
        reply = b""
        if status is None or swallow:
            try:
                conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
                headers = {k: v for k, v in req.headers.items() if k.lower() in
                           ("authorization", "content-encoding", "content-type", "accept")}
                conn.request(req.command, req.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                status, reply = resp.status, resp.read()
                conn.close()
            except OSError:  # the upstream is down: so is the relay, for this request
                req.connection.shutdown(socket.SHUT_RDWR)
                req.close_connection = True
                return
        if swallow:
            with self._lock:
                self.statuses.append(self.SWALLOW)
            req.connection.shutdown(socket.SHUT_RDWR)
            req.close_connection = True
            return
        with self._lock:  # recorded before the answer leaves: the client cannot act on it sooner
            self.statuses.append(status)
            if 200 <= status < 300 and req.command == "POST":
                self.accepted.append(lines)
        if status >= 400 and not reply:
            reply = json.dumps({"code": "invalid", "message": "refused by the test relay"}).encode()
        req.send_response(status)
        req.send_header("Content-Length", str(len(reply)))
        if status >= 400:
            req.send_header("Content-Type", "application/json")
        req.end_headers()
        req.wfile.write(reply)
