"""The README's first command: `riskwatch demo` shows a scripted incident raising a tiered alert."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import urllib.request

from conftest import ROOT, wait_until
from ingest.broker import free_port


def test_the_demo_prints_how_to_log_in_and_its_hopper_incident_raises_a_tiered_alert(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "riskwatch", "demo", "--port", str(port), "--data",
                             str(tmp_path / "demo")], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    out: list[str] = []
    threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True).start()
    try:
        banner = wait_until(lambda: "".join(out) if "A dust-hopper" in "".join(out) else None, 60, "the banner")
        assert f"http://127.0.0.1:{port}/" in banner
        assert re.search(r"broker\s+: mqtt://127\.0\.0\.1:\d+", banner)
        tokens = dict(re.findall(r"^\s+(display|operator|engineer|admin)\s+(\S+)$", banner, re.M))
        assert set(tokens) == {"display", "operator", "engineer", "admin"}

        def hopper_alert():
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/alerts/active",
                                         headers={"Authorization": f"Bearer {tokens['display']}"})
            alerts = json.load(urllib.request.urlopen(req, timeout=5))
            return [a for a in alerts if a["point"] == "dust1.hopper_t" and a["tier"] in ("yellow", "orange", "red")]

        # the promise is "within two minutes"; this bound only stops a hung test
        alert = wait_until(hopper_alert, 120, "the hopper incident to raise a yellow or higher alert", 1.0)[0]
        assert "灰斗温度" in alert["reason_zh"]
        others = [a for a in json.load(urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{port}/api/alerts/active", headers={"Authorization": f"Bearer {tokens['display']}"})))
            if a["point"] != "dust1.hopper_t"]
        assert others == []  # the rest of the demo plant is normal: no false alarm on the wall
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    assert "Traceback" not in "".join(out)
