"""An embedded Mosquitto for the demo and the tests, configured so that QoS 1 messages are never dropped.

Mosquitto's defaults lose QoS 1 messages for a slow subscriber (max_queued_messages 1000, dropped silently;
../shared/measurements.md), and Nagle's algorithm adds ~40 ms tails. The same settings belong in a production
broker: see config/mosquitto.conf.
"""
from __future__ import annotations

import ctypes
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

NO_LOSS_SETTINGS = """\
persistence true
autosave_interval 10
max_queued_messages 0
max_queued_bytes 0
max_inflight_messages 1000
set_tcp_nodelay true
"""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Linux: the broker gets SIGTERM when riskwatch dies, even by SIGKILL, instead of lingering on its port."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class PortInUse(Exception):
    pass


def ensure_free(host: str, port: int, flag: str) -> None:
    """Fails early and clearly, before anything starts, when a port is taken."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            raise PortInUse(f"{host}:{port} is already in use; choose another with {flag}") from None


def wait_for_port(host: str, port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s:.0f} s") from None
            time.sleep(0.05)


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if found is None:
        raise FileNotFoundError("mosquitto is not installed: run `bash setup.sh` (or `apt-get install mosquitto`)")
    return found


class EmbeddedBroker:
    """`with EmbeddedBroker(data_dir) as b: b.port` -- a mosquitto subprocess on a free loopback port.
    stop()/start() keep the same port and persistence file, for restart tests."""

    def __init__(self, data_dir: str | Path | None = None, port: int = 0, host: str = "127.0.0.1"):
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="riskwatch-broker-")
        self.dir = Path(data_dir or self._tmp.name)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port or free_port(host)
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "EmbeddedBroker":
        ensure_free(self.host, self.port, "--broker-port")
        conf = self.dir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} {self.host}\nallow_anonymous true\n"
                        f"persistence_location {self.dir}/\n{NO_LOSS_SETTINGS}"
                        f"log_dest file {self.dir}/mosquitto.log\n")
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        try:
            wait_for_port(self.host, self.port)
        except TimeoutError:
            self.proc.kill()
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise RuntimeError(f"mosquitto did not start on {self.address}: {err.strip()}") from None
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._tmp:
            self._tmp.cleanup()
